"""The app's handlers in-process, on the real pipeline with tiny models: cancel, a model that cannot
load, the duration limit, the LLM key never echoed, ground truth. (The review workspace's edits and
files: tests/test_workspace.py.)"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import gradio as gr
import pytest

from app_server import EXAMPLE_CLIP
from zeal.config import ZealConfig, with_overrides
from zeal.errors import ZealError
from zeal.pipeline import ZealPipeline
from zeal_ui.callbacks import AppLimits, Callbacks, rows_for_classes
from zeal_ui.session import SessionStore, read_ground_truth


@pytest.fixture(scope="module")
def models(tiny):
    return tiny.app_flags()


def make_callbacks(tmp_path, lvlm: str, clip_model: str, clip_pretrained: str) -> Callbacks:
    cfg = with_overrides(ZealConfig(), clip={"model": clip_model, "pretrained": clip_pretrained, "device": "cpu"},
                         lvlm={"model": lvlm, "device": "cpu"}, video={"fps": 4.0, "max_side": 128, "chunk": 4})
    cfg.cache_dir = str(tmp_path / "cache")
    return Callbacks(ZealPipeline.from_config(cfg), SessionStore(tmp_path / "sessions"))


def test_cancel_stops_the_run_and_keeps_the_previous_state(models, tmp_path):
    cb = make_callbacks(tmp_path, models["lvlm"], models["clip_model"], models["clip_pretrained"])
    s = cb.session(None)
    table = rows_for_classes(["Diving"], None)
    calls = []

    def press_cancel_on_first_report(progress, desc=None, **_):
        calls.append(desc)
        if desc and desc.startswith("scoring frames"):
            s.cancel.set()

    with pytest.warns(UserWarning, match="cancelled"):  # gr.Warning outside a page is a Python warning
        out = cb.run(str(EXAMPLE_CLIP), table, True, s.sid, progress=press_cancel_on_first_report)
    assert out[0] == s.sid and s.result is None  # cancelled: no half result
    frames = [d for d in calls if d and d.startswith("scoring frames")]
    assert frames and "ETA" in frames[0] and "/41" in frames[0]  # 10 s at 4 fps: 41 frames
    # the next run is not cancelled by the old press, and reuses the frames scored before it
    out = cb.run(str(EXAMPLE_CLIP), table, True, s.sid)
    assert s.result is not None and set(s.result.classes) == {"Diving"}
    assert "frames sampled" in out[1] and json.loads(out[2])["sid"] == s.sid


def test_a_model_that_cannot_load_says_how_to_point_at_local_weights(models, tmp_path):
    cb = make_callbacks(tmp_path, str(tmp_path / "no-such-model"), models["clip_model"], models["clip_pretrained"])
    s = cb.session(None)
    with pytest.raises(gr.Error) as info:
        cb.run(str(EXAMPLE_CLIP), rows_for_classes(["Diving"], None), True, s.sid)
    message = str(info.value)
    assert "no-such-model" in message and "--lvlm" in message and len(message) < 400  # one short message
    assert s.result is None


def test_videos_longer_than_the_limit_are_refused(tmp_path):
    cb = Callbacks(pipeline=None, store=SessionStore(tmp_path), limits=AppLimits(max_duration_min=0.1))
    s = cb.session(None)
    with pytest.raises(gr.Error, match="longer than this app's limit of 0.1 min.*--max-duration-min"):
        cb.open_video(str(EXAMPLE_CLIP), s.sid)
    assert s.video is None


def test_export_before_any_result_says_what_to_do(tmp_path):
    cb = Callbacks(pipeline=None, store=SessionStore(tmp_path))
    with pytest.raises(gr.Error, match="run the analysis first"):
        cb.export(["csv"], "accepted only", None, None)


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


def test_the_llm_key_is_used_but_never_echoed(tmp_path, caplog):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BadLLM)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    key = "sk-test-SECRET-4242"
    cb = Callbacks(pipeline=None, store=SessionStore(tmp_path / "sessions"))
    try:
        with caplog.at_level(logging.DEBUG), pytest.raises(gr.Error) as info:
            cb.generate_with_llm([["Diving", "", "", ""]], f"http://127.0.0.1:{server.server_port}/v1", "m", key)
    finally:
        server.shutdown()
    assert any(key in k for k in _BadLLM.seen_keys)  # the key did reach the server
    assert key not in str(info.value) and key not in caplog.text
    assert not any(key in p.read_text(errors="ignore") for p in tmp_path.rglob("*") if p.is_file())


# --- ground truth ------------------------------------------------------------------------------

def test_ground_truth_csv_and_activitynet(tmp_path):
    csv_file = tmp_path / "gt.csv"
    csv_file.write_text("video-id,t-start,t-end,label\nclip,1.0,2.5,A\nother,3,4,A\nclip,5,6,B\n")
    assert read_ground_truth(csv_file, "clip") == {"A": [(1.0, 2.5)], "B": [(5.0, 6.0)]}
    js = tmp_path / "gt.json"
    js.write_text(json.dumps({"database": {"whatever": {"annotations": [{"segment": [1, 2], "label": "A"}]}}}))
    assert read_ground_truth(js, "clip") == {"A": [(1.0, 2.0)]}  # one video in the file: used as is
    with pytest.raises(ZealError, match="no segments for video 'nope'"):
        read_ground_truth(csv_file, "nope")
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ZealError, match="header lacks column"):
        read_ground_truth(tmp_path / "bad.csv", "clip")
