"""check-report on a hostile folder: link loops, FIFOs, sockets, NUL bytes, huge pages and pages that never finish
loading are problems (exit 1) or a folder that is not a report (exit 2), never a hang and never a traceback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from kdq_lab.cli import main
from kdq_lab.errors import KdqError
from kdq_lab.report.checks import (
    MAX_PAGE_BYTES,
    MESSAGES_PER_PAGE,
    browser_problems,
    find_chromium,
    linked_pages,
    screenshots,
    static_problems,
)

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = find_chromium()
needs_browser = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="no Chromium installed (apt-get install chromium; .ci/run installs it)",
)
FINDINGS = '<section id="findings"><b class="kdq-best" data-run="pop">pop</b></section>'


def report(folder: Path, links: str = "", **pages: str) -> Path:
    """A small report folder: the required files, an index.html with ``links``, and ``pages`` (name: html)."""
    folder.mkdir()
    for name in ("comparison.csv", "comparison.md", "paired.csv", "manifest.json"):
        (folder / name).write_text("{}\n", encoding="utf-8")
    (folder / "index.html").write_text(f"<html><body>{FINDINGS}{links}</body></html>", encoding="utf-8")
    for name, html in pages.items():
        (folder / name).write_text(html, encoding="utf-8")
    return folder


def loop(folder: Path) -> None:
    (folder / "a.html").symlink_to("b.html")
    (folder / "b.html").symlink_to("a.html")


def self_loop(folder: Path) -> None:
    (folder / "a.html").symlink_to("a.html")


def fifo(folder: Path) -> None:
    os.mkfifo(folder / "a.html")


def unix_socket(folder: Path) -> None:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(folder / "a.html"))
    server.close()  # the socket file stays


def sparse(path: Path) -> None:
    with open(path, "wb") as handle:
        handle.truncate(800 * 2**20)  # 800 MB that take no disk


def huge(folder: Path) -> None:
    sparse(folder / "a.html")


def loop_through_a_folder(folder: Path) -> None:
    (folder / "sub").symlink_to("sub")


MAKERS: list[tuple[Callable[[Path], None], str, str]] = [
    (loop, "a.html", "index.html: link a.html leads to a link loop"),
    (self_loop, "a.html", "index.html: link a.html leads to a link loop"),
    (loop_through_a_folder, "sub/a.html", "index.html: link sub/a.html leads to a link loop"),
    (fifo, "a.html", "index.html: link a.html leads to a FIFO, not a file"),
    (unix_socket, "a.html", "index.html: link a.html leads to a socket, not a file"),
    (huge, "a.html", "index.html: link a.html leads to a page that is not read: 838,860,800 bytes, more than a page"),
    (lambda folder: None, "a%00.html", "index.html: link a%00.html names a file with a NUL byte"),
    (lambda folder: None, "runs/%00/x.html#top", "index.html: link runs/%00/x.html#top names a file with a NUL byte"),
    (lambda folder: None, "a" * 5000 + ".html", "leads to File name too long"),
]


@pytest.mark.parametrize("make, href, problem", MAKERS, ids=[f"{m.__name__}-{h[:12]}" for m, h, _ in MAKERS])
def test_what_a_link_leads_to_is_a_problem_never_a_hang(make, href, problem, tmp_path, capsys):
    folder = report(tmp_path / "r", f'<a href="{href}">x</a><a href="ok.html">ok</a>', **{"ok.html": "<p>ok</p>"})
    make(folder)
    assert any(problem in p for p in static_problems(folder)), static_problems(folder)
    assert [p.name for p in linked_pages(folder)] == ["index.html", "ok.html"], "only pages that can be read"
    assert main(["check-report", str(folder)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("problem: ") and problem[:60] in err


def test_a_huge_page_is_never_read(tmp_path):
    folder = report(tmp_path / "r", '<a href="a.html">x</a>')
    huge(folder)
    tracemalloc.start()
    try:
        static_problems(folder)
        linked_pages(folder)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MAX_PAGE_BYTES // 10, f"{peak:,} bytes allocated: the page was read"


@pytest.mark.parametrize(
    "make, problem",
    [
        (os.mkfifo, "comparison.csv: a FIFO, not a file"),
        (lambda path: path.mkdir(), "comparison.csv: a folder, not a file"),
        (lambda path: path.symlink_to(path.name), "comparison.csv: a link loop"),
    ],
)
def test_a_required_file_that_is_not_a_file(make, problem, tmp_path):
    folder = report(tmp_path / "r")
    (folder / "comparison.csv").unlink()
    make(folder / "comparison.csv")
    assert problem in static_problems(folder)


@pytest.mark.slow  # starts another Python process
@pytest.mark.parametrize(
    "make, code, fragment",
    [
        (os.mkfifo, 2, "no index.html; not a report folder"),
        (lambda index: index.symlink_to("index.html"), 2, "no index.html; not a report folder"),
        (lambda index: index.mkdir(), 2, "no index.html; not a report folder"),
        (sparse, 1, "problem: index.html: 838,860,800 bytes"),
    ],
    ids=["fifo", "loop", "folder", "huge"],
)
def test_an_index_that_cannot_be_read(make, code, fragment, tmp_path):
    folder = report(tmp_path / "r")
    (folder / "index.html").unlink()
    make(folder / "index.html")
    proc = subprocess.run(
        [sys.executable, "-m", "kdq_lab.cli", "check-report", str(folder)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == code and fragment in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert linked_pages(folder) == []


def test_links_that_are_not_urls_or_hold_control_characters(tmp_path, capsys):
    links = '<a href="http://[::1">v6</a><a href="a&#10;b.html">nl</a><a href="\x1b[31mred.html">esc</a>'
    folder = report(tmp_path / "r", links)
    assert main(["check-report", str(folder)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "problem: index.html: link a\\nb.html leads to a missing file",
        "problem: index.html: link \\x1b[31mred.html leads to a missing file",
    ], "one line per problem, nothing a terminal would act on"


def test_undecodable_names_are_looked_up_as_bytes(tmp_path):
    folder = report(tmp_path / "r", '<a href="%FF.html">x</a><a href="%FE.html">y</a>')
    (folder / os.fsdecode(b"\xff.html")).write_text("<p>there</p>", encoding="utf-8")
    assert static_problems(folder) == ["index.html: link %FE.html leads to a missing file"]
    assert [p.name for p in linked_pages(folder)] == ["index.html", os.fsdecode(b"\xff.html")]


STUCK = "<html><body><p>x</p><script>while (true) {}</script></body></html>"
STUCK_ON_CLICK = (  # loads, then never answers once the checks click the table's header
    '<div class="kdq-table"><input><table><thead><tr><th onclick="while (true) {}">run</th></tr></thead>'
    "<tbody><tr><td>b</td></tr><tr><td>a</td></tr></tbody></table></div>"
)
STUCK_IMAGE = '<html><body><img src="pipe.png"></body></html>'  # a FIFO never delivers the image
AFTER = "<html><body><script>console.error('checked after')</script></body></html>"
SPAM = "<html><body><script>for (let i = 0; i < 500; i++) console.error('spam ' + i)</script></body></html>"


@pytest.mark.slow  # Chromium
@needs_browser
@pytest.mark.parametrize("stuck", [STUCK, STUCK_IMAGE], ids=["loop", "fifo-image"])
def test_a_page_that_never_finishes_is_a_problem_and_the_browser_moves_on(stuck, tmp_path):
    assert CHROMIUM is not None, "CI must have a browser: .ci/run installs Debian's chromium"
    folder = report(
        tmp_path / "r",
        '<a href="stuck.html">s</a><a href="after.html">a</a>',
        **{"stuck.html": stuck, "after.html": AFTER},
    )
    os.mkfifo(folder / "pipe.png")
    problems = browser_problems(folder, CHROMIUM, page_seconds=3)
    assert "stuck.html: did not finish loading in 3 s (a script that never ends?); closed" in problems
    assert "after.html: console error: checked after" in problems, "the next page is still checked"


@pytest.mark.slow  # Chromium
@needs_browser
def test_a_page_that_stops_answering_during_the_checks_is_a_problem(tmp_path):
    assert CHROMIUM is not None, "CI must have a browser: .ci/run installs Debian's chromium"
    folder = report(tmp_path / "r", STUCK_ON_CLICK + '<a href="after.html">a</a>', **{"after.html": AFTER})
    problems = browser_problems(folder, CHROMIUM, page_seconds=3)
    assert "index.html: did not finish loading in 3 s (a script that never ends?); closed" in problems
    assert "after.html: console error: checked after" in problems, "the next page is still checked"


@pytest.mark.slow  # Chromium
@needs_browser
def test_console_messages_are_counted_not_kept(tmp_path):
    assert CHROMIUM is not None, "CI must have a browser: .ci/run installs Debian's chromium"
    folder = report(tmp_path / "r", '<a href="spam.html">s</a>', **{"spam.html": SPAM})
    problems = [p for p in browser_problems(folder, CHROMIUM, page_seconds=10) if p.startswith("spam.html")]
    assert problems[:2] == ["spam.html: console error: spam 0", "spam.html: console error: spam 1"]
    assert len(problems) == MESSAGES_PER_PAGE + 1 and problems[-1].endswith("not shown")


@pytest.mark.slow  # Chromium
@needs_browser
def test_screenshots_of_a_page_that_never_finishes_are_refused(tmp_path):
    assert CHROMIUM is not None, "CI must have a browser: .ci/run installs Debian's chromium"
    folder = report(tmp_path / "r")
    (folder / "index.html").write_text(STUCK.replace("<p>x</p>", FINDINGS), encoding="utf-8")
    with pytest.raises(KdqError, match="did not finish loading in 2 s"):
        screenshots(folder, CHROMIUM, page_seconds=2)
    assert not (folder / "screenshots").exists()


@pytest.mark.slow  # Chromium
@needs_browser
@pytest.mark.parametrize("after", [0.5, 3.0])
def test_ctrl_c_during_the_browser_checks_is_one_line(after, tmp_path):
    """Ctrl-C reaches the browser and its driver too; what they leave behind is not printed."""
    folder = report(tmp_path / "r", '<a href="stuck.html">s</a>', **{"stuck.html": STUCK})  # still running at `after`
    command = [sys.executable, "-m", "kdq_lab.cli", "check-report", str(folder), "--browser"]
    proc = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True, start_new_session=True)
    time.sleep(after)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and err == "interrupted\n", err
