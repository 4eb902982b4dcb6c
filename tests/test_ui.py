"""The running app, driven through gradio_client and plain HTTP as a script would: upload a real clip,
choose classes, run with tiny real-architecture models, edit through the workspace's server
functions exactly as the page sends them, export, and two users at once."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from app_server import EXAMPLE_CLIP, ROOT, SECOND_CLIP, start_app

pytestmark = pytest.mark.timeout(300)
UPLOAD_LIMIT_MB = 1
ACCEPTED_ONLY, WITH_UNREVIEWED = "accepted only", "accepted + unreviewed"
REVIEW_SET = "review set (one candidate per action)"


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


def table_data(value) -> list[list]:
    """A Dataframe output (plain or wrapped in an update) -> its rows."""
    if isinstance(value, dict) and "value" in value:
        value = value["value"]
    return (value or {}).get("data", []) if isinstance(value, dict) else []


def read_csv(paths) -> list[dict]:
    csv_paths = [p for p in paths if str(p).endswith(".csv")]
    assert len(csv_paths) == 1, paths
    with open(csv_paths[0], newline="") as f:
        return list(csv.DictReader(f))


def analyse(c, video: Path, classes: list[str]) -> tuple[str, str]:
    """Open the video, choose known classes, run; returns (session id, status text)."""
    from gradio_client import handle_file

    # (gr.State outputs stay on the server; the workspace signal names the session)
    info, _, signal = c.predict(handle_file(str(video)), api_name="/open_video")
    assert video.name in info and "fps" in info
    questions = c.predict(classes, {"headers": [], "data": []}, api_name="/set_classes")
    assert [r[0] for r in table_data(questions)] == classes
    status, signal, *_ = c.predict(handle_file(str(video)), questions, True, api_name="/run")
    return json.loads(signal)["sid"], status


def export(c, include: str = ACCEPTED_ONLY) -> list[dict]:
    return read_csv(c.predict(["csv"], include, REVIEW_SET, api_name="/export"))


class Workspace:
    """The workspace's server functions over HTTP, as the page calls them (Gradio's
    /component_server route)."""

    def __init__(self, url: str):
        self.url = url
        with urllib.request.urlopen(url + "config", timeout=30) as r:
            config = json.load(r)
        self.component = next(c["id"] for c in config["components"]
                              if c.get("props", {}).get("elem_id") == "zeal-workspace")

    def call(self, fn: str, data: dict) -> dict:
        body = json.dumps({"data": data, "component_id": self.component, "fn_name": fn,
                           "session_hash": "test"}).encode()
        req = urllib.request.Request(self.url + "gradio_api/component_server/", data=body,
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.load(r)


def intervals_of(page: dict) -> dict[str, dict]:
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


def op(before: dict | None, after: dict | None) -> dict:
    strip = lambda d: d and {k: v for k, v in d.items() if k != "version"}  # noqa: E731
    iid = (after or before)["id"]
    return {"id": iid, "v": ((before or {}).get("version") or 0) + 1, "before": strip(before), "after": strip(after)}


def test_upload_run_edit_and_export(app):
    c = client(app)
    sid, status = analyse(c, EXAMPLE_CLIP, ["BasketballDunk", "Diving"])
    assert "4 scored by the model" in status and "review set" in status
    # nothing is accepted before the annotator says so: the default export is empty
    assert export(c) == []
    ws = Workspace(app.url)
    page = ws.call("load", {"sid": sid})
    ivs = intervals_of(page)
    shown = [iv for iv in ivs.values() if iv["in_review_set"]]
    assert shown and all(iv["state"] == "unreviewed" for iv in ivs.values())
    rows = export(c, WITH_UNREVIEWED)
    assert {r["id"] for r in rows} == {iv["id"] for iv in shown}

    # accept one, move another one's end, add one, delete one: one batch, as the page sends it
    a, b = sorted(shown, key=lambda iv: iv["start_s"])[:2]
    acc = {**a, "state": "accepted"}
    moved = {**b, "end_s": min(b["end_s"] + 0.5, 10.0), "source": "human", "state": "accepted"}
    new = {"id": "h0123456789ab", "label": "BasketballDunk", "start_s": 8.0, "end_s": 9.5, "score": 1.0,
           "source": "human", "state": "accepted", "in_review_set": True}
    edits = [{"seq": 1, "kind": "do", "gid": "g1", "label": "accept", "ops": [op(a, acc)]},
             {"seq": 2, "kind": "do", "gid": "g2", "label": "move end", "ops": [op(b, moved)]},
             {"seq": 3, "kind": "do", "gid": "g3", "label": "draw", "ops": [op(None, new)]}]
    ack = ws.call("edit", {"sid": sid, "client": "script", "edits": edits})
    assert ack["applied"] == 3 and ack["last_seq"] == 3
    assert ws.call("edit", {"sid": sid, "client": "script", "edits": edits})["applied"] == 0  # re-sent: once
    rows = export(c)
    got = {r["id"]: (r["class"], float(r["start_s"]), float(r["end_s"]), r["state"], r["source"]) for r in rows}
    us = lambda t: round(t, 6)  # noqa: E731 (the CSV keeps microseconds)
    assert got == {a["id"]: (a["label"], us(a["start_s"]), us(a["end_s"]), "accepted", "model"),
                   b["id"]: (b["label"], us(b["start_s"]), us(moved["end_s"]), "accepted", "human"),
                   new["id"]: ("BasketballDunk", 8.0, 9.5, "accepted", "human")}
    # a bad edit (end before start) is refused with a message, and nothing changes
    bad = {**new, "end_s": 7.0}
    refused = ws.call("edit", {"sid": sid, "client": "script",
                               "edits": [{"seq": 4, "kind": "do", "gid": "g4", "label": "x", "ops": [op(new, bad)]}]})
    assert "end must be after the start" in refused["error"]
    assert export(c) == rows

    # a re-run of the same questions reuses every score and keeps every reviewed interval
    sid2, status = analyse(c, EXAMPLE_CLIP, ["BasketballDunk", "Diving"])
    assert sid2 == sid and "0 scored by the model, 4 reused from cache" in status and "kept 3 reviewed" in status
    assert export(c) == rows


def test_two_users_at_once_get_their_own_results(app):
    jobs = {"a": (EXAMPLE_CLIP, ["BasketballDunk"]), "b": (SECOND_CLIP, ["Billiards", "Diving"])}
    results: dict[str, list[dict]] = {}
    errors: list[BaseException] = []

    def work(key: str) -> None:
        try:
            c = client(app)
            video, classes = jobs[key]
            analyse(c, video, classes)
            results[key] = export(c, WITH_UNREVIEWED)
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not errors, errors
    assert {r["video"] for r in results["a"]} <= {"basketball"}
    assert {r["class"] for r in results["a"]} <= {"BasketballDunk"}
    assert {r["video"] for r in results["b"]} <= {"arm_wrestling"}
    assert {r["class"] for r in results["b"]} <= {"Billiards", "Diving"}
    assert results["a"] and results["b"]


def test_help_lists_flags_and_environment():
    out = subprocess.run([sys.executable, str(ROOT / "app.py"), "--help"], capture_output=True, text=True,
                         timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    for word in ("--host", "--port", "--share", "--lvlm", "--clip-pretrained", "--clip-config",
                 "--max-upload-mb", "ZEAL_LVLM", "ZEAL_CLIP_PRETRAINED", "ZEAL_CACHE_DIR", "127.0.0.1"):
        assert word in out.stdout, word


def test_uploads_over_the_limit_are_refused_with_a_clear_message(app, tmp_path):
    from gradio_client import handle_file

    big = tmp_path / "too big.mp4"
    big.write_bytes(EXAMPLE_CLIP.read_bytes() * 3)  # about 1.7 MB
    with pytest.raises(Exception, match="(?i)(exceeds|too large|maximum).*"):
        client(app).predict(handle_file(str(big)), api_name="/open_video")


def test_clip_proposes_top_k_library_classes(app):
    from gradio_client import handle_file

    c = client(app)
    chosen, ranking = c.predict(handle_file(str(EXAMPLE_CLIP)), "cholec80", 2, api_name="/propose_classes")
    from zeal.queries import load_library

    library = load_library("cholec80").names
    chosen = chosen["value"] if isinstance(chosen, dict) else chosen
    assert len(chosen) == 2 and set(chosen) <= set(library)
    assert ranking.startswith("CLIP's ranking") and chosen[0] in ranking
