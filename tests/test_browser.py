"""The annotator's whole job in a real headless Chromium, and what broke before: add a clip to the
project, let it be scored, open it, zoom, drag an edge, draw an interval, accept, reject, undo and
redo, edit a question and score again, reload, export, and check that the exported file holds
exactly the corrections made (ids, times, states). Plus: fast edits on several intervals never touch
another one; Space on a focused button plays the video and runs nothing; zoom survives updates; a
re-run keeps every reviewed interval. (Projects of several videos: tests/test_browser_project.py.)"""

from __future__ import annotations

import os
import shutil

import pytest

from app_server import EXAMPLE_CLIP, ROOT, start_app
from browser_support import (WAIT_MS, drag, export_csv, interval_point, intervals, lane_point, lanes_box,
                             launch_browser, open_clip, open_tab, require_browser, rescore, wait_ready,
                             wait_saved, ws)

ARTIFACTS = ROOT / "tests" / "artifacts"
SCREENSHOT = ARTIFACTS / "workspace.png"
README_SCREENSHOT = ROOT / "docs" / "screenshot.png"
CLASSES = ["BasketballDunk", "Diving"]
HINT = "Is a diver standing"
VIEWPORT = {"width": 1440, "height": 900}

pytestmark = pytest.mark.timeout(420)
# The lanes' canvas is drawn to its box (its rows scroll under it).
LANES_FILL_THEIR_BOX = """() => {
  const box = document.querySelector('#zeal-workspace .zw-lanes-box');
  const cv = document.querySelector('#zeal-workspace canvas.zw-cv-lanes');
  return box.clientHeight > 0 && cv.clientHeight === box.clientHeight; }"""


@pytest.fixture(scope="module")
def app(tmp_path_factory, tiny):
    require_browser()
    tmp = tmp_path_factory.mktemp("browser_app")
    proc = start_app(tmp, tiny.app_flags())
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def browser(app):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch_browser(p)
        yield b
        b.close()


def fresh_page(browser, app, errors: list[str], viewport: dict | None = None):
    page = browser.new_page(viewport=viewport or VIEWPORT, accept_downloads=True)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(app.url)
    page.wait_for_selector("#zeal-videos", timeout=WAIT_MS)
    return page


def analysed_page(browser, app, errors, viewport: dict | None = None):
    page = fresh_page(browser, app, errors, viewport)
    open_clip(page, EXAMPLE_CLIP, CLASSES, HINT)
    return page


def shown(ivs: dict) -> list[dict]:
    return sorted((iv for iv in ivs.values() if iv["visible"]), key=lambda iv: (iv["start_s"], iv["end_s"]))


def key_of(iv: dict) -> tuple:
    return iv["label"], iv["start_s"], iv["end_s"], iv["state"], iv["source"]


def reviewed(ivs: dict) -> dict:
    return {i: key_of(iv) for i, iv in ivs.items() if iv["state"] != "unreviewed" or iv["source"] == "human"}


def wait_for(page, predicate: str, arg=None) -> None:
    page.wait_for_function(predicate, arg=arg, timeout=WAIT_MS)


def test_the_annotators_whole_job(app, browser, tmp_path):
    errors: list[str] = []
    page = analysed_page(browser, app, errors)

    # One screen: the video, the list and the timeline are all inside the 1440x900 window.
    for selector in ("#zeal-workspace video", "#zeal-workspace .zw-list-body", "#zeal-workspace canvas.zw-cv-lanes",
                     "#zeal-workspace canvas.zw-cv-curves"):
        box = page.locator(selector).bounding_box()
        assert box and box["y"] >= 0 and box["y"] + box["height"] <= VIEWPORT["height"], (selector, box)
    # the lanes fill their box from the first look, before any click (the box settles after the tab shows)
    wait_for(page, LANES_FILL_THEIR_BOX)
    first = intervals(page)
    assert first and all(iv["state"] == "unreviewed" and iv["source"] == "model" for iv in first.values())
    duration = ws(page, "view()")["duration"]

    # Zoom with the wheel, then back to the whole video with '0'.
    box = lanes_box(page)
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + 10)
    page.mouse.wheel(0, -500)
    wait_for(page, "(d) => { const v = window.zealWorkspace.view(); return v.t1 - v.t0 < d * 0.8; }", duration)
    page.keyboard.press("0")
    wait_for(page, "(d) => { const v = window.zealWorkspace.view(); return v.t1 - v.t0 > d * 0.99; }", duration)

    # Drag the end edge of the first Diving proposal one second later: it snaps to a sampled frame,
    # keeps its id and becomes a person's accepted interval.
    diving = next(iv for iv in shown(first) if iv["label"] == "Diving")
    target = min(diving["end_s"] + 1.0, duration - 0.3)
    drag(page, interval_point(page, diving["id"], diving["end_s"]), interval_point(page, diving["id"], target))
    wait_for(page, "([id, e]) => window.zealWorkspace.intervals().find(i => i.id === id).end_s !== e",
             [diving["id"], diving["end_s"]])
    moved = intervals(page)[diving["id"]]
    assert abs(moved["end_s"] - target) <= 0.26 and moved["start_s"] == diving["start_s"]  # frames 0.5 s apart
    assert (moved["state"], moved["source"]) == ("accepted", "human")

    # Draw a new BasketballDunk interval on the empty end of its lane.
    before = set(intervals(page))
    drag(page, lane_point(page, 0, duration - 1.6), lane_point(page, 0, duration - 0.5))
    wait_for(page, "(n) => window.zealWorkspace.intervals().length > n", len(before))
    (drawn_id,) = set(intervals(page)) - before
    drawn = intervals(page)[drawn_id]
    assert (drawn["label"], drawn["state"], drawn["source"]) == ("BasketballDunk", "accepted", "human")
    assert abs(drawn["start_s"] - (duration - 1.6)) <= 0.26 and abs(drawn["end_s"] - (duration - 0.5)) <= 0.26

    # Accept one from the list (click, a), reject another (n, r).
    unrev = [iv for iv in shown(intervals(page)) if iv["state"] == "unreviewed"]
    assert len(unrev) >= 2
    page.locator(f"#zeal-workspace .zw-list-row[data-id='{unrev[0]['id']}']").click()
    page.keyboard.press("a")
    page.locator(f"#zeal-workspace .zw-list-row[data-id='{unrev[1]['id']}']").click()
    page.keyboard.press("r")
    now = intervals(page)
    assert now[unrev[0]["id"]]["state"] == "accepted" and now[unrev[1]["id"]]["state"] == "rejected"

    # Undo the reject, redo it; undo and redo again with the other shortcuts.
    page.keyboard.press("Control+z")
    assert intervals(page)[unrev[1]["id"]]["state"] == "unreviewed"
    page.keyboard.press("Control+Shift+z")
    assert intervals(page)[unrev[1]["id"]]["state"] == "rejected"
    page.keyboard.press("Control+z")
    page.keyboard.press("Control+y")
    assert intervals(page)[unrev[1]["id"]]["state"] == "rejected"
    wait_saved(page)
    work = reviewed(intervals(page))
    assert len(work) == 4  # the moved, the drawn, the accepted and the rejected one
    # the playback speed and the accept-all threshold are the annotator's: they outlast a reload
    page.keyboard.press(">")
    page.fill("#zeal-workspace input.zw-thresh", "0.35")
    page.keyboard.press("Enter")
    page.click("#zeal-workspace .zw-counts")

    # Edit one question and run again: every reviewed interval stays exactly as it was.
    open_tab(page, "setup")
    cell = page.locator("#zeal-queries").get_by_text(HINT).first
    cell.dblclick()
    page.keyboard.press("Control+a")
    page.keyboard.type("Is a diver standing at the end of a springboard?")
    page.keyboard.press("Enter")
    page.click("#zeal-header")
    rescore(page)
    assert reviewed(intervals(page)) == work
    # the workspace says what the new result kept and replaced
    wait_for(page, "() => { const n = document.querySelector('#zeal-workspace .zw-notice');"
                   " return !n.hidden && n.textContent.includes('kept 4 reviewed'); }")
    open_tab(page, "setup")
    page.wait_for_selector("#zeal-videos .zv-status[title*='kept 4 reviewed']", timeout=WAIT_MS)
    # opening the Review tab looks at the videos at once (not at the next timed look, 1-5 s later),
    # so a run that ended meanwhile shows without a wait
    with page.expect_request(lambda r: "component_server" in r.url and '"videos"' in (r.post_data or ""), timeout=500):
        open_tab(page, "review")
    before_reload = intervals(page)

    # Reload: the same intervals and the undo history come back; undo and redo still work.
    page.reload()
    wait_ready(page)
    assert {i: key_of(iv) for i, iv in intervals(page).items()} == {i: key_of(iv) for i, iv in before_reload.items()}
    assert ws(page, "undoDepth()") >= 4
    assert ws(page, "view()")["rate"] == 1.25 and page.input_value("#zeal-workspace input.zw-thresh") == "0.35"
    page.click("#zeal-workspace .zw-counts")
    page.keyboard.press("Control+z")  # the last step was the redone reject
    assert intervals(page)[unrev[1]["id"]]["state"] == "unreviewed"
    page.keyboard.press("Control+Shift+z")
    assert intervals(page)[unrev[1]["id"]]["state"] == "rejected"
    wait_saved(page)

    # Export, accepted only (the default): exactly the accepted intervals, with their ids and times.
    rows = export_csv(page, tmp_path, "accepted only", "accepted.csv")
    final = intervals(page)
    want = {i: key_of(iv) for i, iv in final.items() if iv["state"] == "accepted"}
    got = {r["id"]: (r["class"], float(r["start_s"]), float(r["end_s"]), r["state"], r["source"]) for r in rows}
    assert set(got) == set(want) == {diving["id"], drawn_id, unrev[0]["id"]}
    for i, (label, s, e, state, source) in got.items():
        assert (label, state, source) == (want[i][0], want[i][3], want[i][4])
        assert abs(s - want[i][1]) < 1e-6 and abs(e - want[i][2]) < 1e-6
    # accepted + unreviewed: the review set shown, without the rejected one
    rows = export_csv(page, tmp_path, "accepted + unreviewed", "review.csv")
    assert {r["id"] for r in rows} == {i for i, iv in final.items() if iv["visible"] and iv["state"] != "rejected"}

    open_tab(page, "review")
    page.locator(f"#zeal-workspace .zw-list-row[data-id='{diving['id']}']").click()
    # the picture without a passing notice or a half-loaded frame
    page.wait_for_function("document.querySelector('#zeal-workspace .zw-notice').hidden"
                           " && document.querySelector('#zeal-workspace video').readyState >= 2", timeout=15000)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))
    if os.environ.get("ZEAL_UPDATE_SCREENSHOT"):  # refresh the README's picture only when asked
        README_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SCREENSHOT, README_SCREENSHOT)
    assert not errors, f"JavaScript errors on the page: {errors}"
    page.close()


def test_fast_successive_edits_touch_only_their_interval(app, browser):
    errors: list[str] = []
    page = analysed_page(browser, app, errors)
    page.select_option("#zeal-workspace select.zw-set", "all")  # enough intervals to edit
    start = intervals(page)
    order = ws(page, "visibleIds()")
    assert len(order) >= 3
    # No waiting between key presses: accept the 1st, move the 2nd's start, reject the 3rd.
    page.click("#zeal-workspace .zw-counts")
    for key in ("n", "a", "n", "]", "n", "r"):
        page.keyboard.press(key)
    a, b = order[0], order[1]
    moved_order = ws(page, "visibleIds()")  # moving b's start may move it down the list: n goes on from there
    c = moved_order[moved_order.index(b) + 1]
    wait_saved(page)
    page.reload()  # what the server saved, not what the page remembers
    wait_ready(page)
    after = intervals(page)
    assert after[a]["state"] == "accepted" and key_of(after[a])[:3] == key_of(start[a])[:3]
    assert after[b]["start_s"] > start[b]["start_s"] and after[b]["end_s"] == start[b]["end_s"]
    assert (after[b]["state"], after[b]["source"]) == ("accepted", "human")
    assert after[c]["state"] == "rejected" and key_of(after[c])[:3] == key_of(start[c])[:3]
    for i, iv in start.items():
        if i not in (a, b, c):
            assert key_of(after[i]) == key_of(iv), f"interval {i} changed though nobody touched it"
    assert not errors, errors
    page.close()


def test_a_list_cell_edits_its_own_interval_and_the_list_still_selects(app, browser, tmp_path):
    """A double click on a list cell opens its editor; the typed time lands on that interval (not read
    as shortcuts), and a click on another row afterwards selects that row for the next key."""
    errors: list[str] = []
    page = analysed_page(browser, app, errors)
    page.select_option("#zeal-workspace select.zw-set", "all")
    start = intervals(page)
    order = ws(page, "visibleIds()")
    assert len(order) >= 3
    a, b = order[1], order[2]
    view = ws(page, "view()")
    page.locator(f"#zeal-workspace .zw-list-row[data-id='{a}'] [data-field='end']").dblclick()
    editor = page.locator("#zeal-workspace .zw-list-row input.zw-cell-input")
    editor.wait_for(timeout=WAIT_MS)
    assert editor.evaluate("(el) => el === document.activeElement")
    new_end = round((start[a]["start_s"] + start[a]["end_s"]) / 2, 3)
    clock = f"00:{int(new_end // 60):02d}:{new_end % 60:06.3f}"
    page.keyboard.type(clock)  # digits, '.' and ':' are shortcuts elsewhere: here they are a time
    page.keyboard.press("Enter")
    wait_for(page, "(id) => !document.querySelector('#zeal-workspace input.zw-cell-input')", a)
    now = intervals(page)
    assert abs(now[a]["end_s"] - new_end) < 1e-6 and now[a]["label"] == start[a]["label"]
    after_view = ws(page, "view()")
    assert (after_view["t0"], after_view["t1"], after_view["rate"]) == (view["t0"], view["t1"], 1)
    page.locator(f"#zeal-workspace .zw-list-row[data-id='{b}'] [data-field='class']").click()
    assert ws(page, "view().selected") == b
    page.keyboard.press("r")
    wait_saved(page)
    page.reload()
    wait_ready(page)
    after = intervals(page)
    assert (after[a]["state"], after[a]["source"], after[a]["end_s"]) == ("accepted", "human", now[a]["end_s"])
    assert after[b]["state"] == "rejected" and key_of(after[b])[:3] == key_of(start[b])[:3]
    for i, iv in start.items():
        if i not in (a, b):
            assert key_of(after[i]) == key_of(iv), f"interval {i} changed though nobody touched it"
    rows = {r["id"]: r for r in export_csv(page, tmp_path, "accepted + unreviewed", "cells.csv")}
    assert abs(float(rows[a]["end_s"]) - new_end) < 1e-3 and b not in rows
    assert not errors, errors
    page.close()


def test_split_at_the_parked_play_head_merge_and_undo(app, browser, tmp_path):
    """The play head parked inside an interval stays there when the interval is clicked, so split
    acts where the annotator put it; merge joins the halves; undo and redo step through both."""
    errors: list[str] = []
    page = analysed_page(browser, app, errors)
    start = intervals(page)
    shown_now = [iv for iv in start.values() if iv["visible"]]
    # one whose class has no other interval starting inside it: merge then joins the two halves
    alone = [iv for iv in shown_now if not any(o["id"] != iv["id"] and o["label"] == iv["label"]
                                               and iv["start_s"] <= o["start_s"] <= iv["end_s"] for o in shown_now)]
    x = max(alone, key=lambda iv: iv["end_s"] - iv["start_s"])
    assert x["end_s"] - x["start_s"] > 1.0
    fps = ws(page, "view()")["fps"]
    head = x["start_s"] + 0.6 * (x["end_s"] - x["start_s"])
    axis = page.locator("#zeal-workspace canvas.zw-cv-axis").bounding_box()
    page.mouse.click(axis["x"] + ws(page, "xOf(arg)", head), axis["y"] + axis["height"] / 2)  # seek
    # the player reports the asked time until the seek ends, then where it landed (to the microsecond)
    wait_for(page, "() => !document.querySelector('#zeal-workspace video').seeking")
    parked = ws(page, "view()")["playhead"]
    assert abs(parked - head) < 2.0 / fps
    page.mouse.click(*interval_point(page, x["id"], x["start_s"] + 0.15 * (x["end_s"] - x["start_s"])))
    assert ws(page, "view().selected") == x["id"]
    wait_for(page, "() => !document.querySelector('#zeal-workspace video').seeking")
    assert abs(ws(page, "view()")["playhead"] - parked) < 1e-5  # selecting did not move it
    page.keyboard.press("s")
    now = intervals(page)
    right = next(iv for i, iv in now.items() if i not in start)
    cut = now[x["id"]]["end_s"]
    assert abs(cut - parked) < 1.0 / fps and right["start_s"] == cut and right["end_s"] == x["end_s"]
    assert right["label"] == x["label"] and now[x["id"]]["state"] == "accepted"
    page.keyboard.press("m")
    merged = intervals(page)
    assert right["id"] not in merged and merged[x["id"]]["end_s"] == x["end_s"]
    page.keyboard.press("Control+z")
    page.keyboard.press("Control+z")
    undone = intervals(page)
    assert set(undone) == set(start) and key_of(undone[x["id"]]) == key_of(x)
    page.keyboard.press("Control+Shift+z")  # the split again
    wait_saved(page)
    page.reload()
    wait_ready(page)
    after = intervals(page)
    assert after[x["id"]]["end_s"] == cut and after[right["id"]]["start_s"] == cut
    for i, iv in start.items():
        if i != x["id"]:
            assert key_of(after[i]) == key_of(iv), f"interval {i} changed though nobody touched it"
    rows = {r["id"]: r for r in export_csv(page, tmp_path, "accepted only", "split.csv")}
    assert {x["id"], right["id"]} <= set(rows)
    assert abs(float(rows[x["id"]]["end_s"]) - cut) < 1e-3 and abs(float(rows[right["id"]]["start_s"]) - cut) < 1e-3
    assert not errors, errors
    page.close()


def test_space_on_a_focused_button_plays_and_runs_nothing(app, browser):
    errors: list[str] = []
    page = analysed_page(browser, app, errors)
    runs: list[str] = []
    page.on("request", lambda r: runs.append(r.url) if "queue/join" in r.url else None)
    rev = ws(page, "rev()")
    open_tab(page, "setup")
    page.locator("#zeal-run").focus()
    page.keyboard.press(" ")
    page.keyboard.press("Enter")
    page.wait_for_timeout(1500)
    assert not runs and ws(page, "rev()") == rev, "a key press on the focused Run button started a run"
    open_tab(page, "review")
    page.locator("#zeal-workspace button[data-act='help']").first.focus()
    page.keyboard.press(" ")
    wait_for(page, "() => !window.zealWorkspace.view().paused")
    assert page.locator("#zeal-workspace .zw-help").is_hidden()  # the focused '? keys' button was not pressed
    page.keyboard.press(" ")
    wait_for(page, "() => window.zealWorkspace.view().paused")
    open_tab(page, "export")
    page.locator("#zeal-export").focus()
    page.keyboard.press("Enter")
    page.keyboard.press(" ")
    page.wait_for_timeout(1000)
    assert not runs and page.locator("#zeal-files a").count() == 0, "a key press exported"
    assert not errors, errors
    page.close()


def test_zoom_survives_updates_and_a_rerun_keeps_the_work(app, browser):
    errors: list[str] = []
    page = analysed_page(browser, app, errors)
    box = lanes_box(page)
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + 10)
    page.mouse.wheel(0, -400)
    page.wait_for_timeout(200)
    zoom = ws(page, "view()")
    requests = ws(page, "requests()")
    # seeking, panning, selecting never ask the server
    page.keyboard.press("ArrowRight")
    page.mouse.wheel(0, 0)
    page.keyboard.press("n")
    assert ws(page, "requests()") == requests
    page.keyboard.press("a")  # an edit: the page updates, the zoom stays
    wait_saved(page)
    view = ws(page, "view()")
    assert (view["t0"], view["t1"]) == (zoom["t0"], zoom["t1"])
    accepted = ws(page, "view()")["selected"]
    # a slider move re-proposes: the zoom and the accepted interval stay
    page.click("#zeal-workspace button[data-act='params']")
    slider = page.locator("#zeal-workspace input[data-param='min_score']")
    slider.focus()
    rev = ws(page, "rev()")  # read before the move: its answer can come before a read after it
    page.keyboard.press("End")
    wait_for(page, "(r) => window.zealWorkspace.rev() > r", rev)
    view = ws(page, "view()")
    assert (view["t0"], view["t1"]) == (zoom["t0"], zoom["t1"])
    assert intervals(page)[accepted]["state"] == "accepted"
    # a re-run (same questions) keeps it too, and the zoom
    rescore(page)
    view = ws(page, "view()")
    assert (view["t0"], view["t1"]) == (zoom["t0"], zoom["t1"])
    assert intervals(page)[accepted]["state"] == "accepted"
    assert not errors, errors
    page.close()


def test_at_1280x720_every_lane_is_in_reach(app, browser):
    """A small window takes height from the curves first; lanes that still do not fit (a smaller window) scroll with the
    wheel over the class names (the wheel elsewhere zooms), and showing a class's curves brings its
    lane into sight."""
    errors: list[str] = []
    page = analysed_page(browser, app, errors, {"width": 1280, "height": 720})
    page.select_option("#zeal-workspace select.zw-set", "all")  # every proposal: many sub-rows
    wait_for(page, LANES_FILL_THEIR_BOX)
    box = page.locator("#zeal-workspace .zw-lanes-box")
    # the curves give up height first: down to their least, or until the lanes fit or have 110 px
    assert page.evaluate("""() => { const b = document.querySelector('#zeal-workspace .zw-lanes-box');
      const c = document.querySelector('#zeal-workspace canvas.zw-cv-curves').clientHeight;
      return c <= 56 || b.scrollHeight <= b.clientHeight || b.clientHeight >= 110; }"""), \
        "the curves kept the height the lanes need"
    # a window smaller still: the rows no longer fit their box
    page.set_viewport_size({"width": 1280, "height": 600})
    wait_for(page, "() => { const b = document.querySelector('#zeal-workspace .zw-lanes-box'); return b.scrollHeight > b.clientHeight; }")
    wait_for(page, LANES_FILL_THEIR_BOX)
    view = ws(page, "view()")
    lanes = lanes_box(page)
    page.mouse.move(lanes["x"] + 20, lanes["y"] + lanes["height"] / 2)  # over the class names
    page.mouse.wheel(0, 400)
    wait_for(page, "() => document.querySelector('#zeal-workspace .zw-lanes-box').scrollTop > 0")
    assert (ws(page, "view()")["t0"], ws(page, "view()")["t1"]) == (view["t0"], view["t1"])  # no zoom
    # the first class's lane is out of sight now; 'c' twice shows its curves again and scrolls to it
    page.click("#zeal-workspace .zw-counts")
    page.keyboard.press("c")
    page.keyboard.press("c")
    assert ws(page, "view()")["shown"] == 0
    wait_for(page, "() => document.querySelector('#zeal-workspace .zw-lanes-box').scrollTop === 0")
    # an interval on the lowest row: the wheel over the class names brings it into sight, a click selects it
    rows = {iv["id"]: ws(page, "laneY(arg)", iv["id"]) for iv in intervals(page).values() if iv["visible"]}
    low = max(rows, key=rows.get)
    inside = "(id) => { const y = window.zealWorkspace.laneY(id), r = window.zealWorkspace.geometry().rowH;" \
             " return y - r / 2 >= 0 && y + r / 2 <= document.querySelector('#zeal-workspace .zw-lanes-box').clientHeight; }"
    assert not page.evaluate(inside, low), "the lowest row fits without scrolling"
    page.mouse.move(lanes["x"] + 20, lanes["y"] + lanes["height"] / 2)
    for _ in range(40):
        if page.evaluate(inside, low):
            break
        page.mouse.wheel(0, 60)
        page.wait_for_timeout(50)
    assert page.evaluate(inside, low), "the lowest row cannot be scrolled into sight"
    iv = intervals(page)[low]
    page.mouse.click(*interval_point(page, low, (iv["start_s"] + iv["end_s"]) / 2))
    assert ws(page, "view().selected") == low
    want = "accepted" if iv["state"] == "rejected" else "rejected"
    page.keyboard.press(want[0])
    wait_saved(page)
    assert intervals(page)[low]["state"] == want
    assert not errors, errors
    page.close()


def test_what_is_hidden_or_deleted_is_never_edited_and_n_goes_on_from_there(app, browser):
    """With rejected intervals hidden, a rejected interval is no longer selected, so no key edits it
    unseen; after a reject or a delete, n and p go on from where it was (not from the video's ends);
    Ctrl+Z with the focus on a menu is the workspace's undo, never the browser's undo of a text box."""
    errors: list[str] = []
    page = analysed_page(browser, app, errors)
    page.select_option("#zeal-workspace select.zw-set", "all")
    page.check("#zeal-workspace input.zw-hide-rejected")
    page.click("#zeal-workspace .zw-counts")
    order = ws(page, "visibleIds()")
    assert len(order) >= 4
    start = intervals(page)
    for key in ("n", "n", "n"):
        page.keyboard.press(key)
    second, third = order[2], order[3]
    assert ws(page, "view().selected") == second
    page.keyboard.press("r")
    assert ws(page, "view().selected") is None and second not in ws(page, "visibleIds()")
    page.keyboard.press("]")  # nothing selected: it moves nothing
    page.keyboard.press("a")
    wait_saved(page)
    now = intervals(page)
    assert now[second]["state"] == "rejected" and key_of(now[second])[:3] == key_of(start[second])[:3]
    page.keyboard.press("n")
    assert ws(page, "view().selected") == third, "n did not go on from the rejected interval"
    page.keyboard.press("Delete")
    assert ws(page, "view().selected") is None
    page.keyboard.press("p")
    assert ws(page, "view().selected") == order[1], "p did not go back from the deleted interval"
    # Ctrl+Z with the focus on a menu: the delete comes back, the threshold box keeps what was typed
    page.fill("#zeal-workspace input.zw-thresh", "0.3")
    page.keyboard.press("Tab")
    page.locator("#zeal-workspace select.zw-speed").focus()
    page.keyboard.press("Control+z")
    assert third in intervals(page), "Ctrl+Z on a menu did not undo the delete"
    assert page.input_value("#zeal-workspace input.zw-thresh") == "0.3"
    wait_saved(page)
    page.reload()
    wait_ready(page)
    after = intervals(page)
    assert third in after and after[second]["state"] == "rejected"
    assert {i: key_of(iv) for i, iv in after.items() if i not in (second,)} == \
        {i: key_of(iv) for i, iv in start.items() if i not in (second,)}
    assert not errors, errors
    page.close()


def test_u_goes_on_to_the_next_unreviewed_interval_and_edits_nothing(app, browser):
    """u / Shift+U: the next / previous interval nobody reviewed, past the accepted and rejected
    ones (n and p visit every interval); where there is none it says so and stays."""
    errors: list[str] = []
    page = analysed_page(browser, app, errors)  # the module's other tests reviewed some already
    page.select_option("#zeal-workspace select.zw-set", "all")
    page.click("#zeal-workspace .zw-counts")
    order = ws(page, "visibleIds()")
    assert len(order) >= 3
    page.keyboard.press("n")
    page.keyboard.press("n")
    if intervals(page)[order[1]]["state"] == "unreviewed":
        page.keyboard.press("r")  # the second is reviewed: u from the first must pass over it
    page.keyboard.press("p")
    wait_saved(page)
    before = intervals(page)
    assert ws(page, "view().selected") == order[0] and before[order[1]]["state"] != "unreviewed"
    later = [i for i in order[1:] if before[i]["state"] == "unreviewed"]
    page.keyboard.press("u")
    if later:
        assert ws(page, "view().selected") == later[0]
        page.keyboard.press("Shift+U")
        earlier = [i for i in order[:order.index(later[0])] if before[i]["state"] == "unreviewed"]
        assert ws(page, "view().selected") == (earlier[-1] if earlier else later[0])
    else:
        assert ws(page, "view().selected") == order[0]
        wait_for(page, "() => { const n = document.querySelector('#zeal-workspace .zw-notice');"
                       " return !n.hidden && n.textContent.includes('No unreviewed interval after'); }")
    wait_saved(page)
    page.reload()
    wait_ready(page)
    assert {i: key_of(iv) for i, iv in intervals(page).items()} == {i: key_of(iv) for i, iv in before.items()}
    assert not errors, errors
    page.close()
