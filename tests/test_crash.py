"""The app killed with SIGKILL in the middle of work, and started again on the same project: no edit
the page saw acknowledged (shown as saved) is lost, and the video that was being scored is scored
again from where the score cache left it, not from the start."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from app_server import EXAMPLE_CLIP, PageServer, start_app
from media_factory import write_clip
from zeal.project import Project

pytestmark = pytest.mark.timeout(600)
CLASSES = ["BasketballDunk", "Diving"]
LONG_S = 3600  # an hour at 2 frames per second: long enough to be killed while it is scored
EDIT_ROUNDS = 30


def interval_dicts(page: dict) -> dict[str, dict]:
    fields = page["result"]["fields"]
    classes = [c["name"] for c in page["result"]["classes"]]
    out = {}
    for row in page["result"]["intervals"]:
        d = dict(zip(fields, row))
        out[d["id"]] = {"id": d["id"], "label": classes[d["class"]], "start_s": d["start_s"], "end_s": d["end_s"],
                        "score": d["score"], "source": "human" if d["human"] else "model",
                        "state": ("unreviewed", "accepted", "rejected")[d["state"]],
                        "in_review_set": bool(d["in_review_set"]), "version": d["version"]}
    return out


def test_sigkill_during_scoring_and_a_burst_of_edits_loses_nothing_saved(tiny, tmp_path):
    from gradio_client import Client, handle_file

    long_clip = write_clip(tmp_path / "long match.mp4", LONG_S * 2, size=(64, 48), rate=2)
    app = start_app(tmp_path, tiny.app_flags())
    try:
        c = Client(app.url, verbose=False)
        c.predict(CLASSES, {"headers": [], "data": []}, api_name="/set_classes")
        c.predict([handle_file(str(EXAMPLE_CLIP))], api_name="/add_videos")
        server = PageServer(app.url)
        short = server.wait_scored({EXAMPLE_CLIP.name})[EXAMPLE_CLIP.name]["id"]
        cached = lambda: sum(1 for f in (tmp_path / "cache").rglob("*") if f.is_file())  # noqa: E731
        before = cached()
        c.predict([handle_file(str(long_clip))], api_name="/add_videos")
        ivs = interval_dicts(server.call("load", {"video": short}))
        targets = sorted(ivs.values(), key=lambda iv: iv["start_s"])
        acked: dict[str, str] = {}  # interval id -> the state the server acknowledged
        # the edit sent when the app died: it may be on disk though its answer never came back
        unanswered: dict[str, str] = {}
        versions = {iv["id"]: iv["version"] for iv in targets}
        stop = threading.Event()

        def burst() -> None:
            seq = 0
            for k in range(EDIT_ROUNDS * len(targets)):
                if stop.is_set():
                    return
                iv = targets[k % len(targets)]
                state = ("accepted", "rejected")[(k // len(targets)) % 2]
                before = {f: v for f, v in iv.items() if f != "version"}
                after = {**before, "state": state}
                seq += 1
                edit = {"seq": seq, "kind": "do", "gid": f"g{seq}", "label": state,
                        "ops": [{"id": iv["id"], "v": versions[iv["id"]] + 1, "before": before, "after": after}]}
                try:
                    ack = server.call("edit", {"video": short, "client": "burst", "edits": [edit]})
                except OSError:
                    unanswered[iv["id"]] = state  # the app is gone: this edit was never acknowledged
                    return
                if ack.get("last_seq") == seq and "error" not in ack:
                    acked[iv["id"]] = state
                    versions[iv["id"]] += 1
                    iv.update(state=state)
                time.sleep(0.02)

        # wait until the long video is being scored and its first partial scores reached the cache
        # (the pipeline writes them every FLUSH_INTERVAL_S while it scores)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            long = next(v for v in server.call("videos", {})["videos"] if v["name"] == long_clip.name)
            if long["status"] == "scoring" and cached() > before:
                break
            assert long["status"] in ("queued", "scoring"), f"scored before the first flush: {long}"
            time.sleep(0.5)
        else:
            raise AssertionError(f"no partial scores reached the cache: {long}")
        sender = threading.Thread(target=burst)
        sender.start()
        time.sleep(1.5)
        app.proc.kill()  # SIGKILL: no clean-up of any kind
        app.proc.wait()
        stop.set()
        sender.join(timeout=30)
        assert acked, "no edit was acknowledged before the kill"
    finally:
        app.stop()

    # started again on the same project and cache
    app = start_app(tmp_path, tiny.app_flags())
    try:
        server = PageServer(app.url)
        now = interval_dicts(server.call("load", {"video": short}))
        for iid, state in acked.items():
            # what was acknowledged is there, unless the one edit that got no answer came after it
            assert now[iid]["state"] in {state, unanswered.get(iid)}, (iid, state, unanswered, now[iid]["state"])
        long = next(v for v in server.call("videos", {})["videos"] if v["name"] == long_clip.name)
        assert long["status"] in ("queued", "scoring", "scored")  # the interrupted run is queued again
        server.wait_scored({long_clip.name}, timeout_s=400)
    finally:
        app.stop()
    # nothing of the killed app lives on (its decoding child had, stuck, for as long as the machine ran)
    deadline = time.monotonic() + 20
    while _processes_of(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _processes_of(tmp_path), _processes_of(tmp_path)
    project = Project.open(tmp_path / "work" / "project")
    entry = next(e for e in project.entries() if e.name == long_clip.name)
    result = project.record(entry.id).result
    frames = result.run.stats["lvlm"]["frames"]
    assert 0 < frames < len(result.times_s), (frames, len(result.times_s))  # resumed, not restarted
    assert json.loads((tmp_path / "work" / "project" / "project.json").read_text())["videos"][-1] == entry.id


def test_edits_made_while_the_app_is_down_are_saved_once_it_is_back(tiny, tmp_path):
    """The annotator keeps working while the app restarts: the page says it is offline, keeps the
    edits, and sends them when the app answers again, without a reload."""
    from playwright.sync_api import sync_playwright

    from browser_support import launch_browser, open_clip, require_browser, wait_saved, ws

    require_browser()
    app = start_app(tmp_path, tiny.app_flags())
    port = int(app.url.rsplit(":", 1)[1].strip("/"))
    try:
        with sync_playwright() as p:
            browser = launch_browser(p)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(app.url)
            open_clip(page, EXAMPLE_CLIP, CLASSES, "")
            video = ws(page, "video()")
            page.keyboard.press("n")
            page.keyboard.press("a")  # saved while the app runs
            wait_saved(page)
            first = ws(page, "view().selected")
            app.proc.kill()
            app.proc.wait()
            page.keyboard.press("n")
            page.keyboard.press("r")  # made while the app is gone
            second = ws(page, "view().selected")
            assert second != first
            page.wait_for_function("() => window.zealWorkspace.saveState() === 'offline'", timeout=30000)
            assert ws(page, "pending()") == 1
            app = start_app(tmp_path, tiny.app_flags(), port=port)
            wait_saved(page)  # no reload: the page sent it by itself
            browser.close()
        now = interval_dicts(PageServer(app.url).call("load", {"video": video}))
        assert (now[first]["state"], now[second]["state"]) == ("accepted", "rejected")
    finally:
        app.stop()


def _processes_of(tmp_path) -> list[str]:
    """Live (not zombie) processes whose command line names this test's folder."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (proc / "stat").read_text().split(")")[-1].split()[0]
        except (OSError, IndexError):
            continue
        if str(tmp_path) in cmd and state not in ("Z", "X"):
            found.append(f"{proc.name}: {cmd[:120]}")
    return found
