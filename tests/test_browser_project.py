"""Projects in a real headless Chromium (issue 12): add three videos at once, review the first while
the others are scored in the background, edit, reload, score again with an edited question (the
edits stay), switch videos, export the whole project and check every file. Plus what lost work
before: an MKV's result after a reload, CLIP's proposal adding only what is ticked, classes and
questions after a reload before any run, and no download link that opens anything but its file."""

from __future__ import annotations

import csv
import json
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

from app_server import EXAMPLE_CLIP, SECOND_CLIP, start_app
from browser_support import (WAIT_MS, add_videos, choose_classes, intervals, launch_browser, open_tab, open_video,
                             require_browser, rescore, wait_ready, wait_saved, wait_status, ws)
from cli_support import DATA, MKV_CLIP

THIRD_CLIP = DATA / "tests_data_test.mp4"
CLASSES = ["BasketballDunk", "Diving"]
HINT = "Is a diver standing"
VIEWPORT = {"width": 1440, "height": 900}

pytestmark = pytest.mark.timeout(480)


@pytest.fixture(scope="module")
def app(tmp_path_factory, tiny):
    require_browser()
    proc = start_app(tmp_path_factory.mktemp("project_app"), tiny.app_flags())
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def browser(app):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch_browser(p)
        yield b
        b.close()


def new_page(browser, app, errors: list[str]):
    page = browser.new_page(viewport=VIEWPORT, accept_downloads=True)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(app.url)
    page.wait_for_selector("#zeal-videos .zv-head", timeout=WAIT_MS)
    return page


def chosen(page) -> list[str]:
    """The class names shown as chosen in the Project tab's class picker."""
    return [t.strip() for t in page.locator("#zeal-classes .token").all_inner_texts()]


def download_all(page, tmp_path: Path) -> dict[str, Path]:
    links = page.locator("#zeal-files a[download]")
    links.first.wait_for(timeout=WAIT_MS)
    out = {}
    for k in range(links.count()):
        with page.expect_download(timeout=WAIT_MS) as d:
            links.nth(k).click()
        target = tmp_path / d.value.suggested_filename
        d.value.save_as(target)
        out[target.name] = target
    return out


def test_a_project_of_three_videos_reviewed_while_the_rest_score(app, browser, tmp_path):
    errors: list[str] = []
    page = new_page(browser, app, errors)
    # reload before any run: the classes and a typed question come back
    choose_classes(page, CLASSES, HINT)
    page.reload()
    page.wait_for_selector(f"#zeal-queries :text('{HINT}')", timeout=WAIT_MS)
    assert chosen(page) == CLASSES

    add_videos(page, [EXAMPLE_CLIP, SECOND_CLIP, THIRD_CLIP])  # queued in this order, scored one by one
    wait_status(page, EXAMPLE_CLIP.name)
    open_video(page, EXAMPLE_CLIP.name)
    # the other two are in the project, scored in the background while this one is reviewed
    others = {v["name"]: v["status"] for v in ws(page, "videos()") if v["name"] != EXAMPLE_CLIP.name}
    assert set(others) == {SECOND_CLIP.name, THIRD_CLIP.name}
    page.click("#zeal-workspace .zw-counts")
    for key in ("n", "a", "n", "r"):
        page.keyboard.press(key)
    wait_saved(page)
    first = {i: (iv["state"], iv["start_s"], iv["end_s"]) for i, iv in intervals(page).items() if iv["state"] != "unreviewed"}
    assert sorted(s for s, _, _ in first.values()) == ["accepted", "rejected"]

    # reload: the same video opens with the same work
    page.reload()
    wait_ready(page)
    assert ws(page, "video()") and {i: (iv["state"], iv["start_s"], iv["end_s"]) for i, iv in intervals(page).items()
                                    if iv["state"] != "unreviewed"} == first

    # an edited question, scored again: the two decisions stay
    open_tab(page, "setup")
    page.locator("#zeal-queries").get_by_text(HINT).first.dblclick()
    page.keyboard.press("Control+a")
    page.keyboard.type("Is a diver standing still at the end of the board?")
    page.keyboard.press("Enter")
    page.click("#zeal-header")
    rescore(page, timeout_ms=240_000)
    assert {i: (iv["state"], iv["start_s"], iv["end_s"]) for i, iv in intervals(page).items()
            if iv["state"] != "unreviewed"} == first

    # the next video to review, with a key; mark the first one done from the list
    open_tab(page, "setup")
    wait_status(page, SECOND_CLIP.name, timeout_ms=240_000)
    wait_status(page, THIRD_CLIP.name, timeout_ms=240_000)
    page.locator("#zeal-videos .zv-row", has_text=EXAMPLE_CLIP.name).locator("[data-act='done']").click()
    page.wait_for_selector(f"#zeal-videos .zv-row:has-text('{EXAMPLE_CLIP.name}') .zv-s-done", timeout=WAIT_MS)
    open_tab(page, "review")
    page.click("#zeal-workspace .zw-counts")
    page.keyboard.press("Shift+N")
    page.wait_for_function("(n) => window.zealWorkspace.videos().find(v => v.id === window.zealWorkspace.video()).name !== n",
                           arg=EXAMPLE_CLIP.name, timeout=WAIT_MS)
    wait_ready(page)
    second = ws(page, "video()")
    page.keyboard.press("n")
    page.keyboard.press("a")
    wait_saved(page)

    # export the whole project: one CSV, JSON, Label Studio and ActivityNet file, the rest zipped
    open_tab(page, "export")
    page.get_by_label("the whole project").check()
    page.get_by_label("accepted + unreviewed").check()
    for fmt in ("csv", "json", "labelstudio", "elan", "webvtt", "activitynet"):
        box = page.locator("#zeal-formats").get_by_label(fmt, exact=True)
        if not box.is_checked():
            box.check()
    page.click("#zeal-export")
    files = download_all(page, tmp_path)
    assert set(files) == {"project.csv", "project.json", "project.labelstudio.json", "project.labelstudio.xml",
                          "project.activitynet.json", "project.elan.zip", "project.webvtt.zip"}, files
    with files["project.csv"].open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    stems = {EXAMPLE_CLIP.stem, SECOND_CLIP.stem, THIRD_CLIP.stem}
    assert {r["video"] for r in rows} <= stems and {r["state"] for r in rows} <= {"accepted", "unreviewed"}
    assert set(first) - {i for i, (st, _, _) in first.items() if st == "rejected"} <= {r["id"] for r in rows}
    assert not ({i for i, (st, _, _) in first.items() if st == "rejected"} & {r["id"] for r in rows})
    data = json.loads(files["project.json"].read_text())
    assert {v["id"] for v in data["videos"]} == stems
    assert len(json.loads(files["project.labelstudio.json"].read_text())) == 3
    assert set(json.loads(files["project.activitynet.json"].read_text())["results"]) == stems
    for name in ("project.elan.zip", "project.webvtt.zip"):
        with zipfile.ZipFile(files[name]) as z:
            assert len(z.namelist()) == 3
    assert second and not errors, errors
    page.close()

    # the next day, in another browser: the video last worked on opens, the export is set as it was left
    other = new_page(browser, app, errors)
    open_tab(other, "review")
    wait_ready(other)
    assert ws(other, "video()") == second
    open_tab(other, "export")
    assert other.get_by_label("the whole project").is_checked() and other.get_by_label("accepted + unreviewed").is_checked()
    for fmt in ("csv", "json", "labelstudio", "elan", "webvtt", "activitynet"):
        assert other.locator("#zeal-formats").get_by_label(fmt, exact=True).is_checked(), fmt
    assert not errors, errors
    other.close()


def test_an_mkv_keeps_its_result_after_a_reload(app, browser):
    errors: list[str] = []
    page = new_page(browser, app, errors)
    add_videos(page, [MKV_CLIP])
    wait_status(page, MKV_CLIP.name, timeout_ms=240_000)
    open_video(page, MKV_CLIP.name)
    page.click("#zeal-workspace .zw-counts")
    page.keyboard.press("n")
    page.keyboard.press("a")
    wait_saved(page)
    accepted = {i for i, iv in intervals(page).items() if iv["state"] == "accepted"}
    page.reload()
    wait_ready(page)
    assert ws(page, "videos()") and {i for i, iv in intervals(page).items() if iv["state"] == "accepted"} == accepted
    assert not errors, errors
    page.close()


def test_clip_proposes_and_adds_only_what_is_ticked(app, browser):
    errors: list[str] = []
    page = new_page(browser, app, errors)
    open_tab(page, "setup")
    page.click("#zeal-classes input")
    page.keyboard.type("Unicycling")
    page.keyboard.press("Enter")
    page.click("#zeal-header")
    before = chosen(page)
    assert "Unicycling" in before
    page.get_by_text("Propose classes with CLIP").click()
    page.click("#zeal-propose")
    page.wait_for_selector("#zeal-ranking input[type=checkbox]", timeout=WAIT_MS)
    assert chosen(page) == before  # a proposal removes and adds nothing by itself
    ticked = page.locator("#zeal-ranking label:has(input:checked)").all_inner_texts()
    assert ticked
    page.click("#zeal-add-ranked")
    page.wait_for_function("(n) => document.querySelectorAll('#zeal-classes .token').length > n", arg=len(before),
                           timeout=WAIT_MS)
    after = chosen(page)
    assert after[:len(before)] == before and len(after) > len(before)  # added, none removed
    assert "Unicycling" in page.inner_text("#zeal-queries")
    assert not errors, errors
    page.close()


def test_download_links_open_their_file_and_nothing_else(app, browser, tmp_path):
    errors: list[str] = []
    page = new_page(browser, app, errors)
    open_tab(page, "export")
    page.get_by_label("the whole project").check()
    page.click("#zeal-export")
    link = page.locator("#zeal-files a[download$='.csv']").first
    link.wait_for(timeout=WAIT_MS)
    href = link.get_attribute("href")
    url = urllib.parse.urljoin(app.url, href)
    project = str(app.work_dir / "project")
    assert project not in urllib.parse.unquote(url) and "/project/" not in urllib.parse.unquote(url)
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.status == 200 and b"video" in r.read()
    for other in ("project.json", "../project.json", "../../project/project.json"):
        try:
            with urllib.request.urlopen(url.rsplit("/", 1)[0] + "/" + other, timeout=10) as r:
                assert r.status != 200, other
        except urllib.error.HTTPError as exc:
            assert exc.code in (403, 404), (other, exc.code)
    src = page.locator("#zeal-workspace video").get_attribute("src") if page.locator("#zeal-workspace video").count() else None
    assert src is None or project not in urllib.parse.unquote(src)
    assert not errors, errors
    page.close()
