"""The annotator's path in a real headless Chromium: upload a clip, choose classes, run, see the
chart, click it, move a slider (the interval count changes), use the keyboard, reload (the result
comes back), export (the CSV downloads). Saves a screenshot of the finished page."""

from __future__ import annotations

import csv
import os
import re
import shutil
from pathlib import Path

import pytest

from app_server import EXAMPLE_CLIP, ROOT, start_app, tiny_models

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "tests" / "artifacts"
SCREENSHOT = ARTIFACTS / "app.png"
README_SCREENSHOT = ROOT / "docs" / "screenshot.png"
CLASSES = ["BasketballDunk", "Diving"]
WAIT_MS = 60_000
STATUS_RE = re.compile(r"(\d+) intervals \((\d+) accepted\)")

pytestmark = pytest.mark.timeout(300)


def _skip_reason() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (Debian: apt-get install chromium chromium-driver; `make test` does it as root)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright for Python is not installed"
    return None


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    reason = _skip_reason()
    if reason:
        print(f"SKIP browser test: {reason}")
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("browser_app")
    proc = start_app(tmp, tiny_models(tmp_path_factory.mktemp("browser_models")))
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def browser(app):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def status_counts(page) -> tuple[int, int]:
    text = page.inner_text("#zeal-status")
    m = STATUS_RE.search(text)
    assert m, f"no interval count in the status line: {text!r}"
    return int(m.group(1)), int(m.group(2))


def wait_status_change(page, before: str) -> str:
    """Wait until the status line shows other interval counts than `before` (and no busy timer)."""
    page.wait_for_function(
        """(b) => {
             const e = document.querySelector('#zeal-status');
             if (!e || /^\\s*\\d+(\\.\\d+)?s/.test(e.innerText)) return false;
             const re = /(\\d+) intervals \\((\\d+) accepted\\)/;
             const now = e.innerText.match(re), old = b.match(re);
             return !!now && (!old || now[0] !== old[0]);
           }""", arg=before, timeout=WAIT_MS)
    return page.inner_text("#zeal-status")


def test_upload_run_tune_edit_reload_export(app, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(app.url)
    # the page's load event (restoring a saved session) has run once the empty chart says so
    page.wait_for_selector("#zeal-chart :text('Run the analysis')", timeout=WAIT_MS)

    # 1. upload a real clip: its duration, fps and size are shown
    page.set_input_files("#zeal-video input[type=file]", str(EXAMPLE_CLIP))
    page.wait_for_selector("#zeal-info :text('426×240')", timeout=WAIT_MS)
    assert "10.01 s" in page.inner_text("#zeal-info")

    # 2. choose classes by typing them: the question table fills from the library
    page.click("#zeal-classes input")
    for name in CLASSES:
        page.keyboard.type(name)
        page.keyboard.press("Enter")
    page.click("#zeal-header")
    page.wait_for_selector("#zeal-queries :text('Is a diver standing')", timeout=WAIT_MS)

    # 3. run: the chart with its curves appears, the status says what the model scored
    page.click("#zeal-run")
    page.wait_for_selector("#zeal-status :text('intervals')", timeout=WAIT_MS)
    page.wait_for_selector("#zeal-chart .js-plotly-plot .scatterlayer .trace", timeout=WAIT_MS)
    assert page.locator("#zeal-chart .scatterlayer .trace").count() >= 3  # start, end, actionness
    assert "4 scored by the model" in page.inner_text("#zeal-status")
    n_before, _ = status_counts(page)
    assert n_before > 0

    # 4. a real mouse click on the chart seeks the video and shows that frame
    plot_area = page.locator("#zeal-chart .nsewdrag").first
    plot_area.scroll_into_view_if_needed()
    box = plot_area.bounding_box()
    x, y = box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5
    page.mouse.move(x - 10, y)
    page.mouse.move(x, y, steps=3)  # plotly picks the clicked point from the hover before the click
    page.wait_for_timeout(300)
    page.mouse.click(x, y)
    page.wait_for_selector("#zeal-thumb img", timeout=WAIT_MS)
    t = page.evaluate("document.querySelector('#zeal-video video').currentTime")
    assert 3.0 < t < 7.0, f"the video did not seek to the clicked time (currentTime={t})"

    # 5. moving the min-score slider to its end re-proposes instantly: no interval scores 1.0
    before = page.inner_text("#zeal-status")
    page.focus("#zeal-min-score input[type=range]")
    page.keyboard.press("End")
    after = wait_status_change(page, before)
    n_after, _ = status_counts(page)
    assert n_after != n_before and n_after == 0, after
    page.focus("#zeal-min-score input[type=range]")
    before = page.inner_text("#zeal-status")
    page.keyboard.press("Home")
    wait_status_change(page, before)
    n_all, accepted_all = status_counts(page)
    assert n_all >= n_before and accepted_all == n_all

    # 6. keyboard: n selects the first interval, r rejects it
    page.click("#zeal-header")
    page.keyboard.press("n")
    page.wait_for_selector("#zeal-selection :text('Selected #0')", timeout=WAIT_MS)
    before = page.inner_text("#zeal-status")
    page.keyboard.press("r")
    wait_status_change(page, before)
    assert status_counts(page) == (n_all, n_all - 1)

    # 7. reload: the session's last result (with the rejection) comes back
    page.reload()
    page.wait_for_selector("#zeal-status :text('intervals')", timeout=WAIT_MS)
    assert status_counts(page) == (n_all, n_all - 1)
    page.wait_for_selector("#zeal-chart .js-plotly-plot", timeout=WAIT_MS)

    # 8. export: the CSV downloads and holds exactly the accepted intervals
    page.click("#zeal-export")
    link = page.locator("#zeal-files a[download$='.csv']").first
    link.wait_for(timeout=WAIT_MS)
    with page.expect_download(timeout=WAIT_MS) as download:
        link.click()
    target = tmp_path / "export.csv"
    download.value.save_as(target)
    with target.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == n_all - 1
    assert {"class", "start_s", "end_s", "score", "source"} <= set(rows[0])
    assert all(r["class"] in CLASSES and float(r["start_s"]) < float(r["end_s"]) for r in rows)

    # for the screenshot: select an interval by clicking its marker, so the frame thumbnail shows
    marker = page.locator("#zeal-chart .scatterlayer path.point").first
    marker.scroll_into_view_if_needed()
    mb = marker.bounding_box()
    page.mouse.move(mb["x"] + mb["width"] / 2 - 8, mb["y"] + mb["height"] / 2)
    page.mouse.move(mb["x"] + mb["width"] / 2, mb["y"] + mb["height"] / 2, steps=3)
    page.wait_for_timeout(300)
    page.mouse.click(mb["x"] + mb["width"] / 2, mb["y"] + mb["height"] / 2)
    page.wait_for_selector("#zeal-thumb img", timeout=WAIT_MS)
    page.wait_for_selector("#zeal-selection :text('Selected #')", timeout=WAIT_MS)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    if os.environ.get("ZEAL_UPDATE_SCREENSHOT"):  # refresh the README's picture only when asked
        README_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SCREENSHOT, README_SCREENSHOT)
    assert not errors, f"JavaScript errors on the page: {errors}"
    page.close()
