"""The report as a reader gets it: files and links checked statically, then every page opened in headless Chromium.

The browser tests skip, with the reason shown, only when no Chromium is installed (Debian's ``chromium``; ``.ci/run``
installs it); under CI (``CI`` set) a missing browser is a failure. The checks are shown to fail on a report broken on
purpose.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from kdq_lab.files import MARKER, made_by_lab
from kdq_lab.report.checks import browser_problems, find_chromium, linked_pages, screenshots, static_problems

CHROMIUM = find_chromium()
needs_browser = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="no Chromium installed (apt-get install chromium; .ci/run installs it)",
)


@pytest.fixture
def broken(smoke_report, tmp_path) -> Path:
    """A copy of the smoke report with a missing image, a dead link, a network script and a console error."""
    copy = Path(shutil.copytree(smoke_report, tmp_path / "broken"))
    page = next((copy / "runs").glob("*/03_train_evaluate.html"))
    html = page.read_text(encoding="utf-8").replace(
        "</body>",
        '<img src="missing.png"><a href="nowhere.html">x</a><a href="#no-such-anchor">y</a>'
        '<script src="https://cdn.example.org/lib.js"></script><script>console.error("boom")</script></body>',
    )
    page.write_text(html, encoding="utf-8")
    return copy


@pytest.mark.slow  # a whole experiment (the smoke report)
def test_index_links_every_run_page_and_notebook(smoke_report):
    pages = {str(p.relative_to(smoke_report.resolve())) for p in linked_pages(smoke_report)}
    runs = {f"runs/{p.name}/03_train_evaluate.html" for p in (smoke_report / "runs").iterdir()}
    assert runs <= pages and "01_explore_catalog.html" in pages and "splits/global/02_prepare_data.html" in pages


@pytest.mark.slow  # a whole experiment (the smoke report)
def test_static_checks_pass_on_the_report(smoke_report):
    assert static_problems(smoke_report) == []


@pytest.mark.slow  # a whole experiment (the smoke report)
def test_static_checks_find_what_is_broken(broken):
    problems = "\n".join(static_problems(broken))
    assert "nowhere.html leads to a missing file" in problems
    assert "#no-such-anchor leads to a missing anchor" in problems
    assert "loads https://cdn.example.org/lib.js from the network" in problems
    (broken / "index.html").write_text("<p>no findings</p>", encoding="utf-8")
    assert any("no Findings section" in p for p in static_problems(broken))


def test_a_folder_the_lab_did_not_write_is_a_problem_not_a_crash(tmp_path):
    from kdq_lab.cli import main

    (tmp_path / "outside.html").write_text("<p>elsewhere</p>", encoding="utf-8")
    report = tmp_path / "report"
    report.mkdir()
    (report / "index.html").write_text('<a href="../outside.html">out</a>', encoding="utf-8")
    assert linked_pages(report) == [(report / "index.html").resolve()], "pages outside the report are not its own"
    assert any("../outside.html leads out of the report folder" in p for p in static_problems(report))
    (report / "index.html").write_bytes(b"<p>caf\xe9</p>")
    assert main(["check-report", str(report)]) == 2, "not UTF-8: a clear error, not a traceback"


@pytest.mark.slow  # Chromium and the smoke report
@needs_browser
def test_every_page_works_in_chromium(smoke_report):
    assert CHROMIUM is not None, "CI must have a browser: .ci/run installs Debian's chromium"
    assert browser_problems(smoke_report, CHROMIUM) == []


@pytest.mark.slow  # Chromium and the smoke report
@needs_browser
def test_chromium_finds_what_is_broken(broken):
    assert CHROMIUM is not None, "CI must have a browser: .ci/run installs Debian's chromium"
    problems = "\n".join(browser_problems(broken, CHROMIUM))
    assert "console error: boom" in problems
    assert "image not loaded" in problems and "missing.png" in problems
    assert "requested https://cdn.example.org/lib.js" in problems, "requests off the machine are refused and named"


@pytest.mark.slow  # Chromium and the smoke report
@needs_browser
def test_sorting_that_does_nothing_is_caught(broken):
    assert CHROMIUM is not None, "CI must have a browser: .ci/run installs Debian's chromium"
    index = broken / "index.html"
    index.write_text(index.read_text(encoding="utf-8").replace("window.kdqTable(", "void("), encoding="utf-8")
    problems = "\n".join(browser_problems(broken, CHROMIUM))
    assert "does not sort the table" in problems and "filter box does not filter" in problems


@pytest.mark.slow  # Chromium and the smoke report
@needs_browser
def test_screenshots_of_first_screen_and_best_run(smoke_report, tmp_path):
    assert CHROMIUM is not None, "CI must have a browser: .ci/run installs Debian's chromium"
    copy = Path(shutil.copytree(smoke_report, tmp_path / "shots"))
    before = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file() and p.name != MARKER}
    saved = screenshots(copy, CHROMIUM)
    assert [p.name for p in saved] == ["first-screen.png", "run-page.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000 for p in saved)
    after = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file() and p.name != MARKER}
    assert {p: b for p, b in after.items() if p.parent.name != "screenshots"} == before, "only screenshots/ is added"
    assert made_by_lab(copy), "what it added is listed in the report's marker: `run` may still replace the report"
    screenshots(copy, CHROMIUM)  # again: the lab's own screenshots/ is replaced
    assert made_by_lab(copy)


@pytest.mark.slow  # Chromium and the smoke report
def test_check_report_command(smoke_report, broken, tmp_path):
    from kdq_lab.cli import main

    assert main(["check-report", str(smoke_report)]) == 0
    assert main(["check-report", str(broken)]) == 1, "problems found: exit 1"
    assert main(["check-report", str(tmp_path / "nothing")]) == 2, "not a report: exit 2"
