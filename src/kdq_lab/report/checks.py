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

A hostile folder is a list of problems, never a hang or a crash: links are followed only to
regular files and folders inside the report (a link loop, a FIFO, a socket or a device, a name
with a NUL byte is a problem), no page above :data:`MAX_PAGE_BYTES` is read, and in the browser
each page has :data:`PAGE_SECONDS` to load and answer before it is reported, closed, and the
next page opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import shutil
import stat
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, unquote_to_bytes, urlsplit

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
#: Larger pages are a problem and are never read whole (the report's largest, a run's page with its figures, is
#: a few MB): a crafted 800 MB page cannot exhaust memory or time.
MAX_PAGE_BYTES = 50 * 2**20
#: Seconds a page has in the browser to load and answer the checks; then it is a problem, closed, and the next
#: page is opened (a script that never ends would otherwise hang the check).
PAGE_SECONDS = 30.0
#: Console messages, uncaught errors and refused requests recorded per page (then counted), and their length shown.
MESSAGES_PER_PAGE, MESSAGE_SHOWN = 20, 300
DIFF_PAGE = "diff.html"  # written by kdq-lab diff into the newer report
REQUIRED_FILES = ("index.html", "comparison.csv", "comparison.md", "paired.csv", "manifest.json")
SCREEN: Any = {"width": 1280, "height": 900}
T = TypeVar("T")
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


class _Unreadable(Exception):
    """A page or a link target that is not read: why (a link loop, a FIFO, too large, a NUL byte in its name)."""


def _read(path: Path) -> _Page:
    """Parse a page; a FIFO, socket or device, or a page above :data:`MAX_PAGE_BYTES`, is never read.

    Opened without blocking and checked on the open file, so a file swapped for a FIFO after a
    check is still not read; at most ``MAX_PAGE_BYTES`` bytes are read in any case.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise _Unreadable(_why(exc)) from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _Unreadable(f"{_kind(info.st_mode)}, not a file")
        if info.st_size > MAX_PAGE_BYTES:
            raise _Unreadable(f"{info.st_size:,} bytes, more than a page may have ({MAX_PAGE_BYTES:,})")
        data = handle.read(info.st_size)  # the page as it was when opened, even if it grows meanwhile
    page = _Page()
    try:
        page.feed(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise KdqError(f"{path}: not a UTF-8 page (byte {exc.start}); not a report the lab wrote") from None
    return page


def _why(exc: OSError) -> str:
    return "a link loop" if exc.errno == errno.ELOOP else (exc.strerror or str(exc))


def _kind(mode: int) -> str:
    kinds = [(stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device")]
    kinds += [(stat.S_ISBLK, "a device"), (stat.S_ISDIR, "a folder")]
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def _target(page: Path, href: str) -> tuple[Path, str] | None:
    """The local path and ``#anchor`` (as written) a link points to (``None`` for mailto: and the like).

    The path is percent-decoded to bytes, as a browser does for ``file:`` URLs; a name that no
    file can have (a NUL byte) raises :class:`_Unreadable`.
    """
    parts = urlsplit(href)  # never raises: links with a host (``//``) are remote and never come here
    if parts.scheme and parts.scheme != "file":
        return None
    raw = unquote_to_bytes(parts.path)
    if b"\0" in raw:
        raise _Unreadable("names a file with a NUL byte")
    path = Path(os.fsdecode(raw)) if parts.scheme == "file" else page.parent / os.fsdecode(raw)
    return (page if not parts.path else path), parts.fragment


def _locate(root: Path, path: Path) -> Path:
    """``path`` with every symbolic link resolved, checked: inside ``root`` and a regular file or a folder.

    Raises :class:`_Unreadable` with what the link leads to otherwise (out of the report, a missing
    file, a link loop, a FIFO, a socket, a device).
    """
    try:
        resolved = Path(os.path.realpath(path, strict=True))
        mode = os.stat(resolved).st_mode
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
            raise _Unreadable(f"leads to {_why(exc)}") from None
        outside = not Path(os.path.realpath(path)).is_relative_to(root)
        raise _Unreadable("leads out of the report folder" if outside else "leads to a missing file") from None
    if not resolved.is_relative_to(root):
        raise _Unreadable("leads out of the report folder")
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise _Unreadable(f"leads to {_kind(mode)}, not a file")
    return resolved


def _cut(text: str) -> str:
    """A link as a problem shows it: at most :data:`MESSAGE_SHOWN` characters."""
    return text if len(text) <= MESSAGE_SHOWN else text[: MESSAGE_SHOWN - 3] + "..."


def linked_pages(report: Path) -> list[Path]:
    """``index.html`` and every local HTML page it links to, in link order (resolved paths), then ``diff.html``
    (what changed since the previous report, ``kdq-lab diff``) when the report holds one.

    Only pages that may be read are listed: regular files inside the report, at most
    :data:`MAX_PAGE_BYTES` each (:func:`static_problems` names the others); none if
    ``index.html`` is not such a page.
    """
    root = Path(report).resolve()
    try:
        index = _locate(root, root / "index.html")
    except _Unreadable:
        return []
    if not _is_page(index):
        return []
    pages = [index]
    for path in [*_links_of(index), root / DIFF_PAGE]:
        try:
            page = _locate(root, path) if path.suffix == ".html" and os.path.lexists(path) else None
        except _Unreadable:
            continue
        if page is not None and page not in pages and _is_page(page):
            pages.append(page)
    return pages


def _is_page(path: Path) -> bool:
    """Whether a resolved path is a regular file of at most :data:`MAX_PAGE_BYTES`."""
    info = path.stat()
    return stat.S_ISREG(info.st_mode) and info.st_size <= MAX_PAGE_BYTES


def _links_of(index: Path) -> list[Path]:
    """The local files ``index`` links to (none if it cannot be read)."""
    try:
        hrefs = _read(index).links
    except _Unreadable:
        return []
    targets = []
    for href in hrefs:
        try:
            target = None if _REMOTE.match(href) else _target(index, href)
        except _Unreadable:
            continue
        if target is not None:
            targets.append(target[0])
    return targets


def static_problems(report: Path) -> list[str]:
    """Problems found by reading the report's files (see the module docstring)."""
    report = Path(report)
    root = report.resolve()
    problems = []
    for name in REQUIRED_FILES:
        try:
            mode = os.stat(report / name).st_mode
        except OSError as exc:
            missing = exc.errno in (errno.ENOENT, errno.ENOTDIR)
            problems.append(f"{name}: missing" if missing else f"{name}: {_why(exc)}")
            continue
        if not stat.S_ISREG(mode):
            problems.append(f"{name}: {_kind(mode)}, not a file")
    if any(problem.startswith("index.html: ") for problem in problems):
        return problems
    parsed: dict[Path, _Page | _Unreadable] = {}

    def parse(path: Path) -> _Page:
        if path not in parsed:
            try:
                parsed[path] = _read(path)
            except _Unreadable as why:
                parsed[path] = why
        outcome = parsed[path]
        if isinstance(outcome, _Unreadable):
            raise outcome
        return outcome

    try:
        index = parse(_locate(root, report / "index.html"))
    except _Unreadable as why:
        return [*problems, f"index.html: {why}"]
    if not index.findings:
        problems.append('index.html: no Findings section (<section id="findings">)')
    if not any(index.best_runs):
        problems.append("index.html: the Findings section names no best run (class kdq-best)")
    for page in linked_pages(report):
        content = parse(page)
        shown = page.relative_to(root)
        problems += [f"{shown}: loads {_cut(src)} from the network" for src in content.resources if _REMOTE.match(src)]
        problems += [
            f"{shown}: a stylesheet loads from the network" for css in content.styles if _CSS_REMOTE.search(css)
        ]
        for href in content.links:
            if _REMOTE.match(href):
                continue
            try:
                target = _target(page, href)
                if target is None:
                    continue
                path = _locate(root, target[0])
            except _Unreadable as why:
                problems.append(f"{shown}: link {_cut(href)} {why}")
                continue
            try:
                ids = parse(path).ids if path.suffix == ".html" and stat.S_ISREG(path.stat().st_mode) else set()
            except _Unreadable as why:
                problems.append(f"{shown}: link {_cut(href)} leads to a page that is not read: {why}")
                continue
            anchor = target[1]
            if anchor and not {anchor, unquote(anchor)} & ids:  # browsers try the fragment as written, then decoded
                problems.append(f"{shown}: link {_cut(href)} leads to a missing anchor")
    return problems


@asynccontextmanager
async def _browser(chromium: Path) -> AsyncIterator[Any]:
    """A fresh headless Chromium (its own profile folder) with one context; requests off the machine are refused."""
    import tempfile

    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import async_playwright

    asyncio.get_running_loop().set_exception_handler(_quiet_when_interrupted)
    with tempfile.TemporaryDirectory(prefix="kdq-chromium-") as profile:
        async with async_playwright() as playwright:
            context = await playwright.chromium.launch_persistent_context(
                profile, executable_path=str(chromium), headless=True, args=list(CHROMIUM_ARGS), viewport=SCREEN
            )
            try:
                yield context
            finally:
                with contextlib.suppress(PlaywrightError):  # gone already (Ctrl-C reaches the browser too)
                    await context.close()


def _quiet_when_interrupted(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Drop what a browser killed by Ctrl-C leaves behind (its driver's unread "connection closed"); report the rest."""
    if not str(context.get("message", "")).endswith("exception was never retrieved"):
        loop.default_exception_handler(context)


async def _open(context: Any, page_path: Path, problems: list[str], name: str) -> Any:
    """A new page listening for console errors, uncaught errors and requests off the machine, then ``page_path``."""
    page = await context.new_page()
    heard: list[str] = []

    def hear(what: str) -> None:  # a page that logs errors in a loop is named, not recorded a million times
        if len(heard) < MESSAGES_PER_PAGE:
            problems.append(f"{name}: {what[:MESSAGE_SHOWN]}")
        elif len(heard) == MESSAGES_PER_PAGE:
            problems.append(f"{name}: more console messages and errors, not shown")
        heard.append(what)

    page.on("console", lambda message: hear(f"console error: {message.text}") if message.type == "error" else None)
    page.on("pageerror", lambda error: hear(f"uncaught error: {error}"))

    async def refuse(route: Any) -> None:
        hear(f"requested {route.request.url}")
        await route.abort()

    await page.route(re.compile(r"^(?!file:|data:).*"), refuse)
    await page.goto(page_path.as_uri(), wait_until="load")
    return page


class _Stuck(Exception):
    """A page that did not load, or stopped answering, within its time limit."""


async def _bounded(work: Awaitable[T], seconds: float) -> T:
    """``work`` within ``seconds``, else :class:`_Stuck` (Playwright's own waits end by then too)."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    try:
        return await asyncio.wait_for(work, seconds)
    except (TimeoutError, PlaywrightTimeout):
        raise _Stuck(f"did not finish loading in {seconds:g} s (a script that never ends?); closed") from None


_BROKEN_IMAGES = (
    "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
    ".map(i => (i.getAttribute('src') || '').slice(0, 80))"
)
_FIRST_COLUMN = "t => Array.from(t.tBodies[0].rows).filter(r => !r.hidden).map(r => r.cells[0].textContent.trim())"


async def _table_problems(page: Any) -> list[str]:
    """A click on the run header sorts the first sortable table; a second click reverses; the filter hides rows."""
    table = page.locator(".kdq-table").first
    if await table.count() == 0:
        return ["index.html: no sortable table"]
    rows = table.locator("table")
    before = await rows.evaluate(_FIRST_COLUMN)
    header = table.locator("th").first
    await header.click()
    descending = await rows.evaluate(_FIRST_COLUMN)
    await header.click()
    ascending = await rows.evaluate(_FIRST_COLUMN)
    problems = []
    wanted = sorted(before, key=str.lower)
    if ascending != wanted or descending != wanted[::-1]:
        problems.append(f"index.html: clicking the run header does not sort the table ({before[:3]} ...)")
    if len(set(before)) > 1 and before == descending == ascending:
        problems.append("index.html: clicking a column header does not reorder the table")
    if before:
        await table.locator("input").fill(before[0])
        shown = await rows.evaluate(_FIRST_COLUMN)
        if not shown or any(before[0].lower() not in text.lower() for text in shown):
            problems.append("index.html: the filter box does not filter the rows")
    return problems


async def _page_problems(context: Any, path: Path, name: str, problems: list[str]) -> Any:
    """Open one page and check it (images; on ``index.html`` the Findings and the table); return the page."""
    page = await _open(context, path, problems, name)
    problems += [f"{name}: image not loaded: {src}" for src in await page.evaluate(_BROKEN_IMAGES)]
    if name == "index.html":
        best = page.locator("#findings .kdq-best")
        if await best.count() == 0 or not (await best.first.inner_text()).strip():
            problems.append("index.html: the Findings section names no best run")
        problems += await _table_problems(page)
    return page


def browser_problems(report: Path, chromium: Path, page_seconds: float = PAGE_SECONDS) -> list[str]:
    """Problems found by opening the report's pages in headless Chromium (see the module docstring).

    Each page has ``page_seconds`` to load and answer the checks; a page that does not (a script
    that never ends, an image that never arrives) is a problem, is closed, and the next page is opened.
    """
    return asyncio.run(_browser_problems(Path(report).resolve(), chromium, page_seconds))


async def _browser_problems(report: Path, chromium: Path, seconds: float) -> list[str]:
    from playwright.async_api import Error as PlaywrightError

    problems: list[str] = []
    async with _browser(chromium) as context:
        context.set_default_timeout(seconds * 1000)
        for path in linked_pages(report):
            name = str(path.relative_to(report))
            before = set(context.pages)
            try:
                await _bounded(_page_problems(context, path, name, problems), seconds)
            except _Stuck as why:
                problems.append(f"{name}: {why}")
            except PlaywrightError as exc:  # the page crashed, or the browser refused it
                problems.append(f"{name}: the browser failed on it: {_first_line(exc)}")
            try:
                for page in set(context.pages) - before:
                    await _bounded(page.close(), seconds)
            except _Stuck:
                problems.append(f"{name}: the browser stopped answering; the pages after it were not checked")
                break
    return problems


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:MESSAGE_SHOWN]


def screenshots(report: Path, chromium: Path, page_seconds: float = PAGE_SECONDS) -> list[Path]:
    """Save ``screenshots/first-screen.png`` (index.html as it opens) and ``screenshots/run-page.png`` (the
    page of the first best run the Findings name, else the first run page linked); each page has ``page_seconds``.

    ``screenshots/`` is replaced whole (if the lab wrote it) and recorded in the report's marker.
    """
    report = Path(report).resolve()
    pages = linked_pages(report)
    if not pages:
        raise KdqError(f"{report / 'index.html'}: not a page that can be read (see `kdq-lab check-report`)")
    best = [run for run in _read(pages[0]).best_runs if run]
    runs = [p for p in pages if p.is_relative_to(report / "runs")]
    # the best run's page first (folders are <run>__<split>: the last "__" ends the run, see experiment.run_folder)
    runs.sort(key=lambda p: not (best and p.parent.name.rsplit("__", 1)[0] == best[0]))
    shots = [(pages[0], "first-screen.png"), *((runs[0], "run-page.png") for _ in runs[:1])]
    images = asyncio.run(_screenshots(shots, chromium, page_seconds))
    with atomic_dir(report / SCREENSHOTS) as tmp:  # the report's only change: this one subfolder, listed in its marker
        for (_, filename), image in zip(shots, images, strict=True):
            (tmp / filename).write_bytes(image)
    record_in_marker(report, [report / SCREENSHOTS])
    return [report / SCREENSHOTS / filename for _, filename in shots]


async def _screenshots(shots: list[tuple[Path, str]], chromium: Path, seconds: float) -> list[bytes]:
    async def shoot(context: Any, path: Path, filename: str) -> bytes:
        page = await _open(context, path, [], filename)
        return bytes(await page.screenshot())

    images = []
    async with _browser(chromium) as context:
        context.set_default_timeout(seconds * 1000)
        for path, filename in shots:
            try:
                images.append(await _bounded(shoot(context, path, filename), seconds))
            except _Stuck as why:
                raise KdqError(f"{path}: {why}; no screenshot taken") from None
    return images
