"""The Label Studio ML backend without Label Studio (that one is tests/test_labelstudio.py): the
labeling-config reader, the questions per label (library, query file, an LLM over real HTTP,
written once per project), the video fetcher's rules, and the protocol itself over real HTTP
(uvicorn on 127.0.0.1) with tiny real-architecture models on a real clip served by a web server."""

from __future__ import annotations

import base64
import urllib.error
import urllib.parse
import http.server
import json
import threading
import time
import urllib.request
from functools import partial

import pytest

from cli_support import DATA, FPS, one_torch_thread
from tiny_models import tiny_config
from llm_server import ScriptedServer
from zeal.config import LLMConfig
from zeal.errors import LabelStudioError
from zeal.export import labelstudio_config, seconds_to_ls_frames
from zeal.labelstudio.backend import ZealBackend
from zeal.labelstudio.client import LabelStudioClient
from zeal.labelstudio.config import DEFAULT_FRAME_RATE, parse_labeling_config
from zeal.labelstudio.questions import QuestionBook
from zeal.pipeline import ZealPipeline
from zeal.queries import QuerySet, load_library
from zeal.review import select

CLIP = DATA / "tests_data_test.mp4"  # 10 s at 30 fps
CONFIG = labelstudio_config(["Cliff diving", "Diving"], 30.0)  # a label spelled as a person would


def test_config_reader_finds_the_video_and_its_timeline():
    cfg = parse_labeling_config(CONFIG)
    assert (cfg.video_name, cfg.video_key, cfg.from_name, cfg.to_name) == ("video", "video", "videoLabels", "video")
    assert cfg.labels == ("Cliff diving", "Diving") and cfg.fps({}) == 30.0
    per_task = parse_labeling_config('<View><Video name="v" value="$clip" frameRate="$fps"/>'
                                     '<TimelineLabels name="t" toName="v"><Label value="A"/></TimelineLabels></View>')
    assert per_task.video_key == "clip" and per_task.fps({"fps": "12.5"}) == 12.5
    plain = parse_labeling_config('<View><Video name="v" value="$video"/>'
                                  '<TimelineLabels name="t" toName="v"><Label value="A"/></TimelineLabels></View>')
    assert plain.fps({}) == DEFAULT_FRAME_RATE == 24.0  # Label Studio's player default


@pytest.mark.parametrize("xml, message", [
    ("<View><Image name='i' value='$image'/></View>", "no <Video"),
    ("<View><Video name='v' value='$video'/><Labels name='l' toName='v'/></View>", "no <TimelineLabels"),
    ("<View><Video", "not valid XML"),
])
def test_config_reader_says_what_is_missing(xml, message):
    with pytest.raises(LabelStudioError, match=message):
        parse_labeling_config(xml)


def test_questions_come_from_the_file_then_the_library_then_the_llm_once(tmp_path):
    own = QuerySet.from_dict({"Diving": {"start": "Is a diver on the board?", "end": "Is the diver under water?",
                                         "description": "A dive."}})
    llm = ScriptedServer()
    try:
        answer = {"Tea pouring": {"start": "Is a person holding a teapot above a cup?",
                                  "end": "Is the teapot set down beside a full cup?", "description": "Tea is poured."}}
        llm.script = [("ok", json.dumps(answer))]
        book = QuestionBook(tmp_path, own, LLMConfig(base_url=llm.url, model="m"), llm_key="k")
        found, missing = book.known(["Cliff diving", "Diving", "Tea pouring"], "7.1700000000")
        assert found.names == ["Cliff diving", "Diving"] and missing == ["Tea pouring"]
        assert found["Cliff diving"].start == load_library("thumos14")["CliffDiving"].start  # library, own name
        assert found["Diving"].start == "Is a diver on the board?"  # the file wins over the library
        qs = book.resolve(["Cliff diving", "Diving", "Tea pouring"], "7.1700000000")
        assert qs.names == ["Cliff diving", "Diving", "Tea pouring"] and len(llm.requests) == 1
        assert book.resolve(["Tea pouring"], "7.1700000000").names == ["Tea pouring"]
        assert len(llm.requests) == 1  # written once, then read from the project's file
        assert (tmp_path / "projects" / "7.1700000000" / "queries.json").exists()
        assert book.known(["Tea pouring"], "8.1700000000")[1] == ["Tea pouring"]  # another project: not shared
    finally:
        llm.close()
    with pytest.raises(LabelStudioError, match="--queries FILE, or with --llm-base-url"):
        QuestionBook(tmp_path / "none").resolve(["Unheard of"], "1.1")


def test_client_resolves_references_and_tells_token_kinds_apart(tmp_path):
    pat = LabelStudioClient("http://ls:8080/", "aaa.bbb.ccc")
    assert pat.personal_token and not LabelStudioClient("http://ls:8080", "0123abcd").personal_token
    assert pat.media_url("/data/upload/3/x.mp4") == "http://ls:8080/data/upload/3/x.mp4"
    assert pat.media_url("https://cdn.example.org/v.mp4") == "https://cdn.example.org/v.mp4"
    resolved = pat.media_url("s3://bucket/clip 1.mp4", task_id=9)
    token = resolved.split("fileuri=")[1]
    assert resolved.startswith("http://ls:8080/tasks/9/resolve/?fileuri=")
    assert base64.urlsafe_b64decode(urllib.parse.unquote(token)).decode() == "s3://bucket/clip 1.mp4"
    with pytest.raises(LabelStudioError, match="LABEL_STUDIO_URL is not set"):
        LabelStudioClient("", "").media_url("/data/upload/3/x.mp4")
    with pytest.raises(LabelStudioError, match="neither a URL nor a Label Studio path"):
        pat.media_url("videos/x.mp4")


class _MediaHost:
    """A plain web server on 127.0.0.1 serving tests/data, recording each request's headers."""

    def __init__(self):
        self.headers = []
        owner = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                owner.headers.append(dict(self.headers))
                super().do_GET()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(DATA)))
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def served_backend(tmp_path_factory, tiny):
    """ZealBackend on uvicorn (127.0.0.1) with tiny models; Label Studio's URL points elsewhere, so
    the key must never reach the media host."""
    import uvicorn

    from zeal.labelstudio.server import create_app

    work = tmp_path_factory.mktemp("ls_backend")
    with one_torch_thread():
        cfg = tiny_config(tiny, work / "cache", video={"fps": float(FPS)})
        pipeline = ZealPipeline(cfg)
        backend = ZealBackend(pipeline, LabelStudioClient("http://127.0.0.1:9", "secret-legacy-key"),
                              QuestionBook(work / "state"), work / "state", known_classes=True, wait_s=0.0)
        server = uvicorn.Server(uvicorn.Config(create_app(backend), host="127.0.0.1", port=0, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        media = _MediaHost()
        try:
            yield f"http://127.0.0.1:{port}", backend, media
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            media.close()
            backend.close()


def _post(url: str, body) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_protocol_health_setup_and_a_pending_then_answered_prediction(served_backend):
    url, backend, media = served_backend
    with urllib.request.urlopen(f"{url}/health", timeout=5) as r:
        assert json.loads(r.read())["status"] == "UP"
    config = CONFIG.replace('frameRate="30.0"', 'frameRate="$fps"')  # per-task frame rate
    status, setup = _post(f"{url}/setup", {"project": "3.1700000000", "schema": config})
    assert status == 200 and setup["model_version"].startswith("zeal-")
    task = {"id": 41, "data": {"video": f"{media.url}/{CLIP.name}", "fps": 10}}
    request = {"tasks": [task], "project": "3.1700000000", "label_config": config}
    status, first = _post(f"{url}/predict", request)
    assert status == 200 and first == {"results": [[]]}  # still scoring: no prediction, Label Studio asks again
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        status, answer = _post(f"{url}/predict", request)
        if answer["results"][0]:
            break
        time.sleep(0.5)
    (prediction,) = answer["results"]
    assert prediction["model_version"] == setup["model_version"]
    with one_torch_thread():
        result = backend.pipeline.run(str(CLIP), queries=backend.questions.resolve(["Cliff diving", "Diving"], "p"),
                                      known_classes=True)  # the cache makes this instant
    want = select(result)
    assert want and [r["value"]["timelinelabels"] for r in prediction["result"]] == [[iv.label] for iv in want]
    for region, iv in zip(prediction["result"], want):  # frames at the task's frameRate, not the video's
        (rng,) = region["value"]["ranges"]
        assert (rng["start"], rng["end"]) == seconds_to_ls_frames(iv.start_s, iv.end_s, 10.0)
    assert media.headers and all("Authorization" not in h for h in media.headers)  # the key stays home


def test_protocol_errors_are_json_with_the_reason(served_backend):
    url, _, _ = served_backend
    status, body = _post(f"{url}/setup", {"project": "1.1", "schema": "<View><Image name='i' value='$i'/></View>"})
    assert status == 400 and "no <Video" in body["error"]
    no_questions = labelstudio_config(["Nobody knows this"], 25.0)
    status, body = _post(f"{url}/setup", {"project": "1.1", "schema": no_questions})
    assert status == 400 and "--queries FILE" in body["error"]
    status, body = _post(f"{url}/predict", {"tasks": [{"id": 1, "data": {}}], "project": "1.1", "label_config": CONFIG})
    assert status == 200 and body == {"results": [[]]}  # a task without a video gets no prediction, others go on
