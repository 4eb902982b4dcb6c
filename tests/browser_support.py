"""Driving the app in a real headless Chromium the way an annotator does: real uploads, typed
classes, clicks, drags and key presses on the page (Playwright), and reading what the page shows
(`window.zealWorkspace`, the workspace's read-only view for tests)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required"]
# A wait ends as soon as its condition holds; the bound is generous because a re-run of the test clip
# took over 90 s on a 2-core machine with other work at load 6.
WAIT_MS = 240_000


def skip_reason() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (Debian: apt-get install chromium chromium-driver; `make test` does it as root)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright for Python is not installed"
    return None


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def ws(page, expr: str, arg=None):
    """Evaluate `window.zealWorkspace.<expr>` on the page."""
    return page.evaluate(f"(arg) => window.zealWorkspace.{expr}", arg)


def wait_ready(page, min_intervals: int = 1) -> None:
    page.wait_for_function("(n) => window.zealWorkspace && window.zealWorkspace.ready() && "
                           "window.zealWorkspace.intervals().length >= n", arg=min_intervals, timeout=WAIT_MS)


def wait_saved(page) -> None:
    """Until every edit the page made is acknowledged by the server."""
    page.wait_for_function("() => window.zealWorkspace.pending() === 0 && "
                           "window.zealWorkspace.saveState() === 'saved'", timeout=WAIT_MS)


def intervals(page) -> dict[str, dict]:
    return {iv["id"]: iv for iv in ws(page, "intervals()")}


def choose_classes(page, classes: list[str], question_hint: str) -> None:
    """Type class names into the Project tab's class picker, as a new annotator does."""
    open_tab(page, "setup")
    page.click("#zeal-classes input")
    for name in classes:
        page.keyboard.type(name)
        page.keyboard.press("Enter")
    page.click("#zeal-header")
    page.wait_for_selector(f"#zeal-queries :text('{question_hint}')", timeout=WAIT_MS)


def add_videos(page, clips: list[Path]) -> None:
    """Upload videos into the project (several at once) from the Project tab."""
    open_tab(page, "setup")
    page.set_input_files("#zeal-uploads input[type=file]", [str(c) for c in clips])
    for clip in clips:
        page.wait_for_selector(f"#zeal-videos .zv-row:has-text('{clip.name}')", timeout=WAIT_MS)


def wait_status(page, name: str, statuses: tuple[str, ...] = ("to review", "in review"),
                timeout_ms: int = WAIT_MS) -> None:
    """Until the list of videos shows this video in one of these states."""
    page.wait_for_function(
        """([name, statuses]) => Array.from(document.querySelectorAll('#zeal-videos .zv-row')).some(r =>
             r.querySelector('.zv-name').textContent === name &&
             statuses.some(s => r.querySelector('.zv-status').textContent.startsWith(s)))""",
        arg=[name, list(statuses)], timeout=timeout_ms)


def open_video(page, name: str, min_intervals: int = 1) -> None:
    """Click the video's name in the list (Project tab): the Review tab opens with it."""
    open_tab(page, "setup")
    page.locator("#zeal-videos .zv-name", has_text=name).first.click()
    page.wait_for_function("(name) => window.zealWorkspace && window.zealWorkspace.ready() && "
                           "window.zealWorkspace.videos().some(v => v.id === window.zealWorkspace.video() && v.name === name)",
                           arg=name, timeout=WAIT_MS)
    wait_ready(page, min_intervals)


def open_clip(page, clip: Path, classes: list[str], question_hint: str, timeout_ms: int = WAIT_MS) -> None:
    """A new project's first steps: classes typed, the clip uploaded, scored, opened for review."""
    choose_classes(page, classes, question_hint)
    add_videos(page, [clip])
    wait_status(page, clip.name, timeout_ms=timeout_ms)
    open_video(page, clip.name)


def rescore(page, timeout_ms: int = WAIT_MS) -> None:
    """Project tab: score the open video again; wait until the workspace shows the new result."""
    before = ws(page, "rev()")
    open_tab(page, "setup")
    page.click("#zeal-run")
    open_tab(page, "review")
    page.wait_for_function("(b) => window.zealWorkspace.ready() && window.zealWorkspace.rev() > b", arg=before,
                           timeout=timeout_ms)


def lanes_box(page) -> dict:
    return page.locator("#zeal-workspace canvas.zw-cv-lanes").bounding_box()


def interval_point(page, iv_id: str, t: float) -> tuple[float, float]:
    """Page coordinates of time t on the lane row of interval iv_id."""
    box = lanes_box(page)
    return box["x"] + ws(page, "xOf(arg)", t), box["y"] + ws(page, "laneY(arg)", iv_id)


def lane_point(page, class_index: int, t: float) -> tuple[float, float]:
    box = lanes_box(page)
    geo = ws(page, "geometry()")
    lane = geo["lanes"][class_index]
    return box["x"] + ws(page, "xOf(arg)", t), box["y"] + lane["y"] + geo["rowH"] / 2 - geo["scroll"]


def drag(page, start: tuple[float, float], end: tuple[float, float], steps: int = 6) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=steps)
    page.mouse.up()


def open_tab(page, tab_id: str) -> None:
    """setup, review, export or help."""
    page.click(f"#zeal-tab-{tab_id}-button")


def export_csv(page, tmp_path: Path, include: str, name: str, scope: str = "the open video") -> list[dict]:
    """Export as CSV from the Export tab and read back the downloaded file."""
    open_tab(page, "export")
    page.get_by_label(scope).check()
    page.get_by_label(include).check()
    page.click("#zeal-export")
    link = page.locator("#zeal-files a[download$='.csv']").first
    link.wait_for(timeout=WAIT_MS)
    with page.expect_download(timeout=WAIT_MS) as download:
        link.click()
    target = tmp_path / name
    download.value.save_as(target)
    with target.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def require_browser():
    reason = skip_reason()
    if reason:
        print(f"SKIP browser test: {reason}")
        pytest.skip(reason)
