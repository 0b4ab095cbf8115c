"""Checks of a finished report folder, shared by the tests, ``kdq-lab check-report`` and CI.

* :func:`static_problems` reads the files: the report's tables exist, ``index.html`` opens
  with a Findings section naming a best run, no page loads anything from the network, and
  every local link of ``index.html`` and of the pages it links to resolves (files and
  ``#anchors``).
* :func:`browser_problems` opens the same pages from ``file://`` in headless Chromium
  (Playwright driving the system browser; it never downloads one): no console error and no
  uncaught exception, every image loaded (``naturalWidth > 0``), no request leaves the
  machine, and on ``index.html`` a click on a column header reorders the table and the
  filter box hides rows.
* :func:`screenshots` saves the report's first screen and one run page as PNGs.

Each check returns a list of problems (empty: all good), naming the page.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from kdq_lab.errors import KdqError
from kdq_lab.files import atomic_dir, record_in_marker

CHROMIUM_ENV = "KDQ_LAB_CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
#: Headless Chromium that stays off the network and keeps no state between runs.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--metrics-recording-only",
)
#: The subfolder ``kdq-lab screenshots`` writes into a report (its only change to it).
SCREENSHOTS = "screenshots"
REQUIRED_FILES = ("index.html", "comparison.csv", "comparison.md", "paired.csv", "manifest.json")
SCREEN: Any = {"width": 1280, "height": 900}
_REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)
_CSS_REMOTE = re.compile(r"(?:url\(|@import)\s*['\"]?\s*(?:https?:)?//", re.IGNORECASE)


def find_chromium() -> Path | None:
    """The system Chromium: ``KDQ_LAB_CHROMIUM`` if set, else the first browser found on ``PATH``."""
    if env := os.environ.get(CHROMIUM_ENV):
        return Path(env) if Path(env).is_file() else None
    found = next((shutil.which(name) for name in CHROMIUM_NAMES if shutil.which(name)), None)
    return Path(found) if found else None


class _Page(HTMLParser):
    """Links, resources, element ids and the Findings markers of one HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.resources: list[str] = []
        self.ids: set[str] = set()
        self.findings = False
        self.best_runs: list[str] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        for name in ("id", "name"):
            if values.get(name):
                self.ids.add(values[name])
        if tag == "a" and "href" in values:
            self.links.append(values["href"])
        if tag in ("script", "img", "iframe", "audio", "video", "source", "embed") and values.get("src"):
            self.resources.append(values["src"])
        if tag == "link" and values.get("href"):
            self.resources.append(values["href"])
        if tag == "section" and values.get("id") == "findings":
            self.findings = True
        if "kdq-best" in values.get("class", "").split():
            self.best_runs.append(values.get("data-run", ""))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


def _parse(path: Path) -> _Page:
    page = _Page()
    try:
        page.feed(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise KdqError(f"{path}: not a UTF-8 page (byte {exc.start}); not a report the lab wrote") from None
    return page


def _target(page: Path, href: str) -> tuple[Path, str] | None:
    """The local file and ``#anchor`` (as written) a link points to (``None`` for mailto: and the like)."""
    parts = urlsplit(href)
    if parts.scheme and parts.scheme != "file":
        return None
    path = Path(unquote(parts.path)) if parts.scheme == "file" else page.parent / unquote(parts.path)
    return (page if not parts.path else path), parts.fragment


def linked_pages(report: Path) -> list[Path]:
    """``index.html`` and every local HTML page it links to, in link order (resolved paths)."""
    root = Path(report).resolve()
    index = root / "index.html"
    pages = [index]
    for href in _parse(index).links:
        target = _target(index, href)
        if target is None or target[0].suffix != ".html" or not target[0].is_file():
            continue
        page = target[0].resolve()
        if page.is_relative_to(root) and page not in pages:  # pages outside the report are not its own
            pages.append(page)
    return pages


def static_problems(report: Path) -> list[str]:
    """Problems found by reading the report's files (see the module docstring)."""
    report = Path(report)
    problems = [f"{name}: missing" for name in REQUIRED_FILES if not (report / name).is_file()]
    if not (report / "index.html").is_file():
        return problems
    index = _parse(report / "index.html")
    if not index.findings:
        problems.append('index.html: no Findings section (<section id="findings">)')
    if not any(index.best_runs):
        problems.append("index.html: the Findings section names no best run (class kdq-best)")
    parsed: dict[Path, _Page] = {}
    for page in linked_pages(report):
        content = parsed.setdefault(page, _parse(page))
        name = page.relative_to(report.resolve())
        problems += [f"{name}: loads {src} from the network" for src in content.resources if _REMOTE.match(src)]
        problems += [
            f"{name}: a stylesheet loads from the network" for css in content.styles if _CSS_REMOTE.search(css)
        ]
        for href in content.links:
            if _REMOTE.match(href):
                continue
            target = _target(page, href)
            if target is None:
                continue
            path, anchor = target
            if not path.resolve().is_relative_to(report.resolve()):
                problems.append(f"{name}: link {href} leads out of the report folder")
                continue
            if not path.exists():
                problems.append(f"{name}: link {href} leads to a missing file")
                continue
            ids = parsed.setdefault(path.resolve(), _parse(path)).ids if path.suffix == ".html" else set()
            if anchor and not {anchor, unquote(anchor)} & ids:  # browsers try the fragment as written, then decoded
                problems.append(f"{name}: link {href} leads to a missing anchor")
    return problems


@contextmanager
def _browser(chromium: Path) -> Iterator[Any]:
    """A fresh headless Chromium (its own profile folder) with one context; requests off the machine are refused."""
    import tempfile

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="kdq-chromium-") as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=str(chromium), headless=True, args=list(CHROMIUM_ARGS), viewport=SCREEN
        )
        try:
            yield context
        finally:
            context.close()


def _open(context: Any, page_path: Path, problems: list[str], name: str) -> Any:
    page = context.new_page()

    def console(message: Any) -> None:
        if message.type == "error":
            problems.append(f"{name}: console error: {message.text}")

    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(f"{name}: uncaught error: {error}"))

    def refuse(route: Any) -> None:
        problems.append(f"{name}: requested {route.request.url}")
        route.abort()

    page.route(re.compile(r"^(?!file:|data:).*"), refuse)
    page.goto(page_path.as_uri(), wait_until="load")
    return page


_BROKEN_IMAGES = (
    "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
    ".map(i => (i.getAttribute('src') || '').slice(0, 80))"
)
_FIRST_COLUMN = "t => Array.from(t.tBodies[0].rows).filter(r => !r.hidden).map(r => r.cells[0].textContent.trim())"


def _table_problems(page: Any) -> list[str]:
    """A click on the run header sorts the first sortable table; a second click reverses; the filter hides rows."""
    table = page.locator(".kdq-table").first
    if table.count() == 0:
        return ["index.html: no sortable table"]
    rows = table.locator("table")
    before = rows.evaluate(_FIRST_COLUMN)
    header = table.locator("th").first
    header.click()
    descending = rows.evaluate(_FIRST_COLUMN)
    header.click()
    ascending = rows.evaluate(_FIRST_COLUMN)
    problems = []
    wanted = sorted(before, key=str.lower)
    if ascending != wanted or descending != wanted[::-1]:
        problems.append(f"index.html: clicking the run header does not sort the table ({before[:3]} ...)")
    if len(set(before)) > 1 and before == descending == ascending:
        problems.append("index.html: clicking a column header does not reorder the table")
    if before:
        table.locator("input").fill(before[0])
        shown = rows.evaluate(_FIRST_COLUMN)
        if not shown or any(before[0].lower() not in text.lower() for text in shown):
            problems.append("index.html: the filter box does not filter the rows")
    return problems


def browser_problems(report: Path, chromium: Path) -> list[str]:
    """Problems found by opening the report's pages in headless Chromium (see the module docstring)."""
    report = Path(report).resolve()
    problems: list[str] = []
    with _browser(chromium) as context:
        for path in linked_pages(report):
            name = str(path.relative_to(report))
            page = _open(context, path, problems, name)
            problems += [f"{name}: image not loaded: {src}" for src in page.evaluate(_BROKEN_IMAGES)]
            if name == "index.html":
                best = page.locator("#findings .kdq-best")
                if best.count() == 0 or not best.first.inner_text().strip():
                    problems.append("index.html: the Findings section names no best run")
                problems += _table_problems(page)
            page.close()
    return problems


def screenshots(report: Path, chromium: Path) -> list[Path]:
    """Save ``screenshots/first-screen.png`` (index.html as it opens) and ``screenshots/run-page.png`` (the
    page of the first best run the Findings name, else the first run page linked).

    ``screenshots/`` is replaced whole (if the lab wrote it) and recorded in the report's marker.
    """
    report = Path(report).resolve()
    pages = linked_pages(report)
    best = [run for run in _parse(pages[0]).best_runs if run]
    runs = [p for p in pages if p.is_relative_to(report / "runs")]
    # the best run's page first (folders are <run>__<split>: the last "__" ends the run, see experiment.run_folder)
    runs.sort(key=lambda p: not (best and p.parent.name.rsplit("__", 1)[0] == best[0]))
    shots = [(pages[0], "first-screen.png"), *((runs[0], "run-page.png") for _ in runs[:1])]
    images = {}
    problems: list[str] = []
    with _browser(chromium) as context:
        for path, filename in shots:
            page = _open(context, path, problems, filename)
            images[filename] = page.screenshot()
            page.close()
    with atomic_dir(report / SCREENSHOTS) as tmp:  # the report's only change: this one subfolder, listed in its marker
        for filename, image in images.items():
            (tmp / filename).write_bytes(image)
    record_in_marker(report, [report / SCREENSHOTS])
    return [report / SCREENSHOTS / filename for filename in images]
