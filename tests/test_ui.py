"""The running app, driven through gradio_client and plain HTTP as a script would: add real clips to
the project, choose classes, let the background queue score them with tiny real-architecture
models, edit through the workspace's server functions exactly as the page sends them, score again,
export; two users at once; and no route serves the project's own files."""

from __future__ import annotations

import csv
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from app_server import EXAMPLE_CLIP, ROOT, SECOND_CLIP, PageServer, start_app

pytestmark = pytest.mark.timeout(300)
UPLOAD_LIMIT_MB = 1
ACCEPTED_ONLY, WITH_UNREVIEWED = "accepted only", "accepted + unreviewed"
REVIEW_SET = "review set (one candidate per action)"
VIDEO, PROJECT = "the open video", "the whole project"
CLASSES = ["BasketballDunk", "Diving"]


@pytest.fixture(scope="session")
def models(tiny):
    return tiny.app_flags()


@pytest.fixture(scope="module")
def app(tmp_path_factory, models):
    # the example clips are under 1 MB: a 1 MB upload limit lets them in and keeps bigger files out
    proc = start_app(tmp_path_factory.mktemp("ui_app"), models, extra=["--max-upload-mb", str(UPLOAD_LIMIT_MB)])
    yield proc
    proc.stop()


def client(app):
    from gradio_client import Client

    return Client(app.url, verbose=False)


def read_csv(paths) -> list[dict]:
    csv_paths = [p for p in paths if str(p).endswith(".csv")]
    assert len(csv_paths) == 1, paths
    with open(csv_paths[0], newline="") as f:
        return list(csv.DictReader(f))


def setup_classes(c) -> list[list]:
    questions = c.predict(CLASSES, {"headers": [], "data": []}, api_name="/set_classes")
    rows = (questions.get("value", questions) or {}).get("data", []) if isinstance(questions, dict) else questions
    assert [r[0] for r in rows] == CLASSES
    return rows


def add(c, *clips: Path) -> str:
    from gradio_client import handle_file

    status, _ = c.predict([handle_file(str(p)) for p in clips], api_name="/add_videos")
    return status


def intervals_of(page: dict) -> dict[str, dict]:
    fields = page["result"]["fields"]
    classes = [cl["name"] for cl in page["result"]["classes"]]
    out = {}
    for row in page["result"]["intervals"]:
        d = dict(zip(fields, row))
        out[d["id"]] = {"id": d["id"], "label": classes[d["class"]], "start_s": d["start_s"], "end_s": d["end_s"],
                        "score": d["score"], "source": "human" if d["human"] else "model",
                        "state": ("unreviewed", "accepted", "rejected")[d["state"]],
                        "in_review_set": bool(d["in_review_set"]), "version": d["version"]}
    return out


def op(before: dict | None, after: dict | None) -> dict:
    strip = lambda d: d and {k: v for k, v in d.items() if k != "version"}  # noqa: E731
    iid = (after or before)["id"]
    return {"id": iid, "v": ((before or {}).get("version") or 0) + 1, "before": strip(before), "after": strip(after)}


def test_add_score_edit_rescore_and_export(app):
    c = client(app)
    rows = setup_classes(c)
    assert "scoring them in the background" in add(c, EXAMPLE_CLIP)
    server = PageServer(app.url)
    vid = server.wait_scored({EXAMPLE_CLIP.name})[EXAMPLE_CLIP.name]["id"]
    # nothing is accepted before the annotator says so: the default export is empty
    assert read_csv(c.predict(VIDEO, vid, ["csv"], ACCEPTED_ONLY, REVIEW_SET, "", api_name="/export")) == []
    page = server.call("load", {"video": vid})
    ivs = intervals_of(page)
    shown = [iv for iv in ivs.values() if iv["in_review_set"]]
    assert shown and all(iv["state"] == "unreviewed" for iv in ivs.values())
    exported = read_csv(c.predict(VIDEO, vid, ["csv"], WITH_UNREVIEWED, REVIEW_SET, "", api_name="/export"))
    assert {r["id"] for r in exported} == {iv["id"] for iv in shown}

    # accept one, move another one's end, add one: one batch, as the page sends it
    a, b = sorted(shown, key=lambda iv: iv["start_s"])[:2]
    acc = {**a, "state": "accepted"}
    moved = {**b, "end_s": min(b["end_s"] + 0.5, 10.0), "source": "human", "state": "accepted"}
    new = {"id": "h0123456789ab", "label": "BasketballDunk", "start_s": 8.0, "end_s": 9.5, "score": 1.0,
           "source": "human", "state": "accepted", "in_review_set": True}
    edits = [{"seq": 1, "kind": "do", "gid": "g1", "label": "accept", "ops": [op(a, acc)]},
             {"seq": 2, "kind": "do", "gid": "g2", "label": "move end", "ops": [op(b, moved)]},
             {"seq": 3, "kind": "do", "gid": "g3", "label": "draw", "ops": [op(None, new)]}]
    ack = server.call("edit", {"video": vid, "client": "script", "edits": edits})
    assert ack["applied"] == 3 and ack["last_seq"] == 3
    assert server.call("edit", {"video": vid, "client": "script", "edits": edits})["applied"] == 0  # once
    accepted = read_csv(c.predict(VIDEO, vid, ["csv"], ACCEPTED_ONLY, REVIEW_SET, "", api_name="/export"))
    got = {r["id"]: (r["class"], float(r["start_s"]), float(r["end_s"]), r["state"], r["source"]) for r in accepted}
    us = lambda t: round(t, 6)  # noqa: E731 (the CSV keeps microseconds)
    assert got == {a["id"]: (a["label"], us(a["start_s"]), us(a["end_s"]), "accepted", "model"),
                   b["id"]: (b["label"], us(b["start_s"]), us(moved["end_s"]), "accepted", "human"),
                   new["id"]: ("BasketballDunk", 8.0, 9.5, "accepted", "human")}
    bad = {**new, "end_s": 7.0}
    refused = server.call("edit", {"video": vid, "client": "script",
                                   "edits": [{"seq": 4, "kind": "do", "gid": "g4", "label": "x", "ops": [op(new, bad)]}]})
    assert "end must be after the start" in refused["error"]

    # an edited question, scored again: every reviewed interval stays
    rows[1][1] = "Is a diver standing still at the end of the board?"
    c.predict(vid, {"headers": ["class", "start question", "end question", "description"], "data": rows},
              api_name="/score")
    deadline = time.monotonic() + 120
    while "re-scored" not in server.call("videos", {})["videos"][0]["message"] and time.monotonic() < deadline:
        time.sleep(0.5)
    entry = server.call("videos", {})["videos"][0]
    assert entry["status"] == "in review" and "kept 3 reviewed" in entry["message"]
    again = read_csv(c.predict(VIDEO, vid, ["csv"], ACCEPTED_ONLY, REVIEW_SET, "", api_name="/export"))
    assert again == accepted

    # the whole project: one CSV for every video, the per-video formats zipped
    files = c.predict(PROJECT, None, ["csv", "elan"], ACCEPTED_ONLY, REVIEW_SET, "", api_name="/export")
    assert sorted(Path(f).name for f in files) == ["project.csv", "project.elan.zip"]
    assert {r["id"] for r in read_csv(files)} == set(got)


def test_two_users_at_once_get_their_own_results(app):
    jobs = {"a": EXAMPLE_CLIP, "b": SECOND_CLIP}
    results: dict[str, list[dict]] = {}
    errors: list[BaseException] = []

    def work(key: str) -> None:
        try:
            c = client(app)
            setup_classes(c)
            add(c, jobs[key])
            server = PageServer(app.url)
            vid = server.wait_scored({jobs[key].name})[jobs[key].name]["id"]
            results[key] = read_csv(c.predict(VIDEO, vid, ["csv"], WITH_UNREVIEWED, REVIEW_SET, "", api_name="/export"))
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not errors, errors
    assert {r["video"] for r in results["a"]} == {"basketball"}
    assert {r["video"] for r in results["b"]} == {"arm_wrestling"}
    assert results["a"] and results["b"]


def test_no_route_serves_the_projects_own_files(app):
    project = app.work_dir / "project"
    PageServer(app.url).call("videos", {})  # the app is up and its project written
    targets = [p for p in project.rglob("*") if p.is_file()]
    assert any(p.name == "project.json" for p in targets) and any(p.name == "review.json" for p in targets)
    tried = []
    for path in targets:
        rel = path.relative_to(project).as_posix()
        for url in (f"gradio_api/file={path}", f"gradio_api/file={urllib.parse.quote(str(path))}", f"file={path}",
                    f"gradio_api/file/{path}", f"gradio_api/file=../project/{rel}", f"zeal/media/{rel}",
                    f"zeal/media/..%2F..%2F{rel}", f"static/{rel}", f"assets/{rel}", rel):
            tried.append(url)
            try:
                with urllib.request.urlopen(app.url + url, timeout=10) as r:
                    body = r.read()
                assert path.read_bytes() not in body or len(path.read_bytes()) < 8, f"{url} served {path}"
            except urllib.error.HTTPError as exc:
                assert exc.code in (403, 404, 405), (url, exc.code)
    assert len(tried) >= 50


def test_help_lists_flags_and_environment():
    out = subprocess.run([sys.executable, str(ROOT / "app.py"), "--help"], capture_output=True, text=True,
                         timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    for word in ("--host", "--port", "--share", "--lvlm", "--clip-pretrained", "--clip-config", "--project",
                 "--max-upload-mb", "ZEAL_LVLM", "ZEAL_CLIP_PRETRAINED", "ZEAL_CACHE_DIR", "127.0.0.1"):
        assert word in out.stdout, word


def test_uploads_over_the_limit_are_refused_with_a_clear_message(app, tmp_path):
    big = tmp_path / "too big.mp4"
    big.write_bytes(EXAMPLE_CLIP.read_bytes() * 3)  # about 1.7 MB
    with pytest.raises(Exception, match="(?i)(exceeds|too large|maximum).*"):
        add(client(app), big)


def test_freeze_heap_takes_what_is_alive_out_of_later_collections():
    import gc
    import weakref

    from zeal_ui.heap import freeze_heap

    class Node:  # in a cycle: only the collector frees it
        pass

    dead = Node()
    dead.me = dead
    gone = weakref.ref(dead)
    del dead
    before = gc.get_freeze_count()
    try:
        freeze_heap()
        assert gone() is None  # collected first, never frozen
        assert gc.get_freeze_count() > before + len(gc.get_objects()) // 2  # the rest is out of sight
    finally:
        gc.unfreeze()
