"""The app's handlers in-process, on a real project and the real pipeline with tiny models: adding
videos (uploads and a server folder, the duration limit, a bad file), the classes and questions
saved as they change (nothing removed silently: not by a query file, not by CLIP's proposal),
scoring and stopping, a model that cannot load, the LLM key never echoed, ground truth, exports.
(The review workspace's edits and files: tests/test_workspace.py; the queue: tests/test_project.py.)"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import gradio as gr
import pytest

from app_server import EXAMPLE_CLIP, SECOND_CLIP, in_process_app
from zeal.config import ZealConfig, with_overrides
from zeal.pipeline import ZealPipeline
from zeal.queries import lookup
from zeal_ui.app_state import AppLimits
from zeal_ui.callbacks import Callbacks, rows_for_classes


@pytest.fixture(scope="module")
def models(tiny):
    return tiny.app_flags()


def make_callbacks(tmp_path, models, lvlm: str | None = None, limits: AppLimits = AppLimits()) -> Callbacks:
    cfg = with_overrides(ZealConfig(), clip={"model": models["clip_model"], "pretrained": models["clip_pretrained"],
                                             "device": "cpu"},
                         lvlm={"model": lvlm or models["lvlm"], "device": "cpu"},
                         video={"fps": 4.0, "max_side": 128, "chunk": 4})
    cfg.cache_dir = str(tmp_path / "cache")
    return in_process_app(ZealPipeline.from_config(cfg), tmp_path, limits)


def score_now(cb: Callbacks, vid: str) -> None:
    cb.state.queue.score(vid)


def one_clip_with_questions(cb: Callbacks, classes: tuple[str, ...] = ("Diving",)) -> tuple[str, list[list[str]]]:
    """The example clip added to cb's project with the questions of `classes`: (video id, question table)."""
    table = rows_for_classes(list(classes), None)
    cb.set_questions(table)
    cb.add_uploads([str(EXAMPLE_CLIP)])
    return next(iter(cb.project.videos)), table


def test_adding_videos_and_the_limits(models, tmp_path):
    cb = make_callbacks(tmp_path, models, limits=AppLimits(max_duration_min=0.1))
    with pytest.raises(gr.Error, match=r"Not added: basketball.mp4 lasts 0.2 min, longer than this app's limit of "
                                       r"0.1 min \(restart with --max-duration-min\)"):
        cb.add_uploads([str(EXAMPLE_CLIP)])
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    cb = make_callbacks(tmp_path / "b", models)
    with pytest.raises(gr.Error, match="Not added: .*notes.mp4"):
        cb.add_uploads([str(bad)])
    status, _ = cb.add_uploads([str(EXAMPLE_CLIP), str(bad)])
    assert "Added 1 video(s)" in status and "choose classes" in status and "Not added" in status
    assert str(tmp_path) not in status  # the server's folders are not shown, only the file name
    folder = tmp_path / "server_videos"
    folder.mkdir()
    shutil.copyfile(SECOND_CLIP, folder / SECOND_CLIP.name)
    status, _ = cb.add_folder(str(folder))
    assert "Added 1 video(s)" in status and len(cb.project.videos) == 2
    with pytest.raises(gr.Error, match="not a folder on the server"):
        cb.add_folder(str(tmp_path / "nope"))


def test_classes_and_questions_are_saved_and_nothing_is_removed_silently(models, tmp_path):
    cb = make_callbacks(tmp_path, models)
    rows = cb.set_classes(["Diving", "Unicycling"], None)
    assert [r[0] for r in rows] == ["Diving", "Unicycling"] and rows[1][1:] == ["", "", ""]
    rows[1][1:] = ["Is a person stepping onto a unicycle?", "Is the person stepping off it?", "Riding a unicycle."]
    cb.set_questions(rows)
    # the page is reloaded before any run: the classes and the typed questions come back
    classes, questions, *_ = make_callbacks(tmp_path, models).restore()
    assert classes["value"] == ["Diving", "Unicycling"] and questions == rows
    # taking a class out and putting it back brings its typed questions back
    assert [r[0] for r in cb.set_classes(["Diving"], rows)] == ["Diving"]
    assert cb.set_classes(["Diving", "Unicycling"], [rows[0]])[1] == rows[1]
    # a query file adds its classes; the ones chosen before stay
    qfile = tmp_path / "q.json"
    lookup(["CliffDiving"]).save(qfile)
    choices, table = cb.load_queries(str(qfile), ["Diving", "Unicycling"])
    assert choices["value"] == ["Diving", "Unicycling", "CliffDiving"] and [r[0] for r in table] == choices["value"]


def test_clip_proposes_and_only_adds_what_is_ticked(models, tmp_path):
    cb = make_callbacks(tmp_path, models)
    cb.add_uploads([str(EXAMPLE_CLIP)])
    cb.set_classes(["Unicycling"], None)
    ranking, text = cb.propose_classes(None, "cholec80", 2, ["Unicycling"])
    assert len(ranking["choices"]) == 7 and len(ranking["value"]) == 2 and "nothing is removed" in text
    assert cb.project.settings.classes == ["Unicycling"]  # a proposal changes nothing by itself
    ticked = [ranking["value"][0]]
    classes, rows = cb.add_ticked(ticked, ["Unicycling"], None)
    assert classes["value"] == ["Unicycling", *ticked] and cb.project.settings.classes == classes["value"]


def test_scoring_stopping_and_the_status(models, tmp_path):
    cb = make_callbacks(tmp_path, models)
    vid, table = one_clip_with_questions(cb)
    with pytest.raises(gr.Error, match="open a video first"):
        cb.score(None, table)
    cb.score(vid, table)
    assert cb.project.videos[vid].status == "queued"
    queue = cb.state.queue
    seen = []
    real_set = cb.project.set_status

    def press_stop_while_scoring(v, status, progress=None, message=None, save=True):
        seen.append(status)
        if status == "scoring" and progress and progress > 0:
            queue.cancel()
        return real_set(v, status, progress, message, save)

    cb.project.set_status = press_stop_while_scoring
    score_now(cb, vid)
    cb.project.set_status = real_set
    assert cb.project.videos[vid].status == "new" and "cancelled" in cb.project.videos[vid].message
    assert cb.project.record(vid).result is None  # no half result
    cb.score(vid, table)
    score_now(cb, vid)  # not cancelled by the old press; reuses what was scored before it
    assert cb.project.videos[vid].status == "scored" and cb.project.record(vid).result is not None


def test_a_model_that_cannot_load_says_how_to_point_at_local_weights(models, tmp_path):
    cb = make_callbacks(tmp_path, models, lvlm=str(tmp_path / "no-such-model"))
    vid, table = one_clip_with_questions(cb)
    cb.score(vid, table)
    score_now(cb, vid)
    entry = cb.project.videos[vid]
    assert entry.status == "failed"
    assert "no-such-model" in entry.message and "--lvlm" in entry.message and len(entry.message) < 400


def test_export_before_any_result_says_what_to_do(models, tmp_path):
    cb = make_callbacks(tmp_path, models)
    with pytest.raises(gr.Error, match="open a video first"):
        cb.export("the open video", None, ["csv"], "accepted only", None)
    with pytest.raises(gr.Error, match="no video of this project is scored yet"):
        cb.export("the whole project", None, ["csv"], "accepted only", None)


def test_a_label_studio_export_without_a_media_url_names_the_field_that_fixes_it(models, tmp_path):
    cb = make_callbacks(tmp_path, models)
    vid, table = one_clip_with_questions(cb)
    cb.score(vid, table)
    score_now(cb, vid)
    with pytest.warns(UserWarning, match="fill in 'Media URL prefix' above") as caught:
        paths = cb.export("the open video", vid, ["labelstudio"], "accepted + unreviewed", None, None)
    assert paths and not any("media_url=" in str(w.message) for w in caught)  # not the Python API's words
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # with the prefix: no warning
        cb.export("the open video", vid, ["labelstudio"], "accepted + unreviewed", None, "/data/local-files/?d=v/")


class _BadLLM(BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint that answers with text that is not JSON."""

    seen_keys: list[str] = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("content-length", 0)))
        _BadLLM.seen_keys.append(self.headers.get("authorization", ""))
        body = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                           "choices": [{"index": 0, "finish_reason": "stop",
                                        "message": {"role": "assistant", "content": "I cannot do JSON today."}}]})
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


def test_the_llm_key_is_used_but_never_echoed(models, tmp_path, caplog):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BadLLM)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    key = "sk-test-SECRET-4242"
    cb = make_callbacks(tmp_path, models)
    try:
        with caplog.at_level(logging.DEBUG), pytest.raises(gr.Error) as info:
            cb.generate_with_llm([["Diving", "", "", ""]], f"http://127.0.0.1:{server.server_port}/v1", "m", key)
    finally:
        server.shutdown()
    assert any(key in k for k in _BadLLM.seen_keys)  # the key did reach the server
    assert key not in str(info.value) and key not in caplog.text
    assert not any(key in p.read_text(errors="ignore") for p in tmp_path.rglob("*") if p.is_file())


def test_ground_truth_csv_and_activitynet(models, tmp_path):
    cb = make_callbacks(tmp_path, models)
    cb.add_uploads([str(EXAMPLE_CLIP)])
    vid = next(iter(cb.project.videos))
    csv_file = tmp_path / "gt.csv"
    csv_file.write_text("video-id,t-start,t-end,label\nbasketball,1.0,2.5,A\nother,3,4,A\nbasketball,5,6,B\n")
    assert "basketball.mp4 (2)" in cb.load_ground_truth(str(csv_file))
    assert cb.project.ground_truth(vid) == {"A": [(1.0, 2.5)], "B": [(5.0, 6.0)]}
    js = tmp_path / "gt.json"
    js.write_text(json.dumps({"database": {"basketball": {"annotations": [{"segment": [1, 2], "label": "A"}]}}}))
    cb.load_ground_truth(str(js))
    assert cb.project.ground_truth(vid) == {"A": [(1.0, 2.0)]}
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(gr.Error, match="header lacks column"):
        cb.load_ground_truth(str(tmp_path / "bad.csv"))
