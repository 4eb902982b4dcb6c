"""A real Label Studio (the PyPI package, in its own venv: `make integration` builds .venv-ls) on
127.0.0.1, driven through its REST API as an annotator's browser would: a project made from our
exported config, `zeal serve-ls` connected as its ML backend, a real clip uploaded as a task,
predictions asked for and read back from the task; and our exported tasks file, with --media-url
in Label Studio's local-files form, imported and its video URL fetched. Nothing leaves the machine:
Label Studio's telemetry and version check are off, and the ML backend is on 127.0.0.1 too.

Skipped (with the reason) when .venv-ls has no Label Studio."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from cli_support import CLASSES, FPS, ROOT, clean_env, model_flags, one_torch_thread, run_zeal
from tiny_models import tiny_config

from zeal.export import export, ls_frames_to_seconds, seconds_to_ls_frames
from zeal.pipeline import ZealPipeline
from zeal.queries import lookup
from zeal.review import select

LS_BIN = ROOT / ".venv-ls" / "bin" / "label-studio"
CLIP = ROOT / "assets" / "examples" / "basketball.mp4"  # 10 s at 29.97 fps: a non-integer frame rate
USER, PASSWORD, TOKEN = "annotator@zeal.test", "zeal-test-password", "zeal-legacy-token-0123456789"
START_TIMEOUT_S = 240  # first start migrates a fresh database: ~30 s on a quiet 2-core machine
PREDICTION_TIMEOUT_S = 180

pytestmark = pytest.mark.skipif(not LS_BIN.exists(), reason="Label Studio is not installed in .venv-ls "
                                                            "(`make integration` builds it)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, timeout_s: float, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{url} exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    raise AssertionError(f"{url} did not answer within {timeout_s} s:\n{log.read_text()[-4000:]}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # its own process group: Label Studio starts children
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class LabelStudio:
    """A running Label Studio and a small REST client with the legacy token of its user."""

    def __init__(self, url: str, media_root: Path):
        self.url, self.media_root = url, media_root
        self._personal: str | None = None

    @property
    def personal_token(self) -> str:
        """The user's personal access token (what Account & Settings shows; one per user)."""
        if self._personal is None:
            self._personal = self.ok("POST", "/api/token/", {})["token"]
        return self._personal

    def request(self, method: str, path: str, body=None, headers=None, raw: bytes | None = None,
                auth: str | None = None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", auth or f"Token {TOKEN}")
        if body is not None:
            req.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                payload = r.read()
                return r.status, (json.loads(payload) if payload and r.headers.get_content_type() ==
                                  "application/json" else payload)
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")

    def ok(self, method: str, path: str, body=None, **kw):
        status, payload = self.request(method, path, body, **kw)
        assert 200 <= status < 300, (method, path, status, payload)
        return payload

    def upload(self, project: int, path: Path) -> list[int]:
        """Import a media file as a task (the "Upload Files" button); returns the new task ids."""
        boundary = uuid.uuid4().hex
        raw = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{path.name}\"\r\n"
               "Content-Type: video/mp4\r\n\r\n").encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        out = self.ok("POST", f"/api/projects/{project}/import?return_task_ids=true", raw=raw,
                      headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        return out["task_ids"]

    def export_with_predictions(self, project: int) -> list[dict]:
        """Label Studio's JSON export, as "Export" with predictions included writes it."""
        snap = self.ok("POST", f"/api/projects/{project}/exports/",
                       {"serialization_options": {"predictions": {"only_id": False}}})
        deadline = time.monotonic() + 60
        while snap.get("status") != "completed" and time.monotonic() < deadline:
            time.sleep(0.5)
            snap = self.ok("GET", f"/api/projects/{project}/exports/{snap['id']}")
        payload = self.ok("GET", f"/api/projects/{project}/exports/{snap['id']}/download?exportType=JSON")
        return json.loads(payload) if isinstance(payload, bytes) else payload

    def bearer(self) -> str:
        """An access token from the personal token, as Label Studio's SDK and our backend get one."""
        access = self.ok("POST", "/api/token/refresh/", {"refresh": self.personal_token}, auth="none")["access"]
        return f"Bearer {access}"


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory):
    """Label Studio 1.23 on 127.0.0.1 with a user and a token from the environment, local-files
    serving rooted at a temporary folder, an ML backend on 127.0.0.1 allowed (ML_BLOCK_LOCAL_IP and,
    for the webhook Label Studio adds with it, SSRF_PROTECTION_ENABLED); no telemetry."""
    work = tmp_path_factory.mktemp("label_studio")
    media_root = work / "media"
    (media_root / "clips").mkdir(parents=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABEL_STUDIO", "DJANGO"))}
    env.update(LABEL_STUDIO_USERNAME=USER, LABEL_STUDIO_PASSWORD=PASSWORD, LABEL_STUDIO_USER_TOKEN=TOKEN,
               LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN="true", ML_BLOCK_LOCAL_IP="false", SSRF_PROTECTION_ENABLED="false",
               LOCAL_FILES_SERVING_ENABLED="true", LOCAL_FILES_DOCUMENT_ROOT=str(media_root),
               COLLECT_ANALYTICS="false", LATEST_VERSION_CHECK="false", CONVERTER_DOWNLOAD_RESOURCES="false",
               SENTRY_DSN="", FRONTEND_SENTRY_DSN="", PYTHONUNBUFFERED="1")
    log = work / "label_studio.log"
    t0 = time.monotonic()
    with open(log, "w") as fh:
        proc = subprocess.Popen([str(LS_BIN), "start", "--no-browser", "--internal-host", "127.0.0.1",
                                 "--port", str(port), "--host", url, "--data-dir", str(work / "data"),
                                 "--log-level", "WARNING"], env=env, cwd=work, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        _wait_http(f"{url}/health", proc, START_TIMEOUT_S, log)
        print(f"Label Studio up in {time.monotonic() - t0:.1f} s")
        yield LabelStudio(url, media_root)
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def models(tiny):
    return tiny


@pytest.fixture(scope="module")
def expected(models, tmp_path_factory):
    """The clip analysed in-process with the backend's models and score cache: (result, cache dir)."""
    cache = tmp_path_factory.mktemp("shared_cache")
    cfg = tiny_config(models, cache, video={"fps": float(FPS)})
    with one_torch_thread():
        result = ZealPipeline(cfg).run(str(CLIP), queries=lookup(CLASSES.split(",")), known_classes=True)
    assert select(result), "the tiny models must propose something on this clip for the test to mean anything"
    return result, cache


def _create_project(ls: LabelStudio, result, tmp: Path, title: str) -> int:
    """A project whose labeling config is the one `zeal export --to labelstudio` writes."""
    _, config = export(result, "labelstudio", tmp, media_url="/unused/")
    project = ls.ok("POST", "/api/projects", {"title": title, "label_config": config.read_text()})
    return project["id"]


def test_ml_backend_predictions_land_on_the_task_at_the_right_frames(label_studio, models, expected, tmp_path):
    ls = label_studio
    result, cache = expected
    project = _create_project(ls, result, tmp_path, "ZEAL backend")

    port = _free_port()
    log = tmp_path / "serve-ls.log"
    env = {**clean_env(), "LABEL_STUDIO_URL": ls.url, "LABEL_STUDIO_API_KEY": ls.personal_token}
    with open(log, "w") as fh:
        # --wait 0: answer at once, so the first request finds the task still being analysed;
        # --preset light: the settings `expected` scored with (not the cpu preset's budget and bfloat16)
        backend = subprocess.Popen([sys.executable, "-m", "zeal", "serve-ls", *model_flags(models, cache),
                                    "--preset", "light", "--known-classes", "--port", str(port),
                                    "--wait", "0", "--state-dir", str(tmp_path / "state")],
                                   env=env, cwd=tmp_path, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_http(f"http://127.0.0.1:{port}/health", backend, 180, log)
        ml = ls.ok("POST", "/api/ml", {"url": f"http://127.0.0.1:{port}", "project": project, "title": "ZEAL"})
        assert ml["state"] == "CO", ml  # connected: /health and /setup answered
        (task_id,) = ls.upload(project, CLIP)

        # Ask for predictions as the Data Manager's "Retrieve Predictions" does.
        ls.ok("POST", f"/api/dm/actions?id=retrieve_tasks_predictions&project={project}",
              {"selectedItems": {"all": False, "included": [task_id]}})
        # Still scoring: the backend answered [] and Label Studio stored nothing, so opening the
        # task asks again until the analysis is done.
        deadline = time.monotonic() + PREDICTION_TIMEOUT_S
        task = ls.ok("GET", f"/api/tasks/{task_id}")
        while not task["predictions"] and time.monotonic() < deadline:
            time.sleep(1)
            task = ls.ok("GET", f"/api/tasks/{task_id}")  # opening the task asks the backend again
        assert task["predictions"], log.read_text()[-4000:]
        assert "still scoring; answered without a prediction" in log.read_text()
    finally:
        _stop(backend)
    text = log.read_text()
    assert "0 question(s) scored" in text  # the curves came from the shared score cache

    (prediction,) = task["predictions"]
    assert prediction["model_version"].startswith("zeal-")
    fps = result.video.fps
    want = select(result)  # the review set
    regions = prediction["result"]
    assert [r["id"] for r in regions] == [iv.id for iv in want]
    for region, iv in zip(regions, want):
        assert (region["from_name"], region["to_name"], region["type"]) == ("videoLabels", "video", "timelinelabels")
        assert region["value"]["timelinelabels"] == [iv.label]
        (rng,) = region["value"]["ranges"]
        assert (rng["start"], rng["end"]) == seconds_to_ls_frames(iv.start_s, iv.end_s, fps)
        s, e = ls_frames_to_seconds(rng["start"], rng["end"], fps)
        assert abs(s - iv.start_s) <= 0.5 / fps and abs(e - iv.end_s) <= 0.5 / fps  # within 17 ms at 29.97
    # The task's video is Label Studio's own upload, which the backend fetched with the token.
    assert task["data"]["video"].startswith("/data/upload/")
    # Label Studio's own export (a snapshot with full predictions) gives the regions back unchanged.
    (exported,) = ls.export_with_predictions(project)
    assert [r["value"] for r in exported["predictions"][0]["result"]] == [r["value"] for r in regions]


def test_exported_tasks_with_media_url_open_in_label_studio(label_studio, expected, tmp_path):
    ls = label_studio
    result, _ = expected
    shutil.copy(CLIP, ls.media_root / "clips" / CLIP.name)
    project = _create_project(ls, result, tmp_path, "ZEAL import")
    ls.ok("POST", "/api/storages/localfiles", {"project": project, "title": "clips", "use_blob_urls": True,
                                                "path": str(ls.media_root / "clips")})
    result_json = tmp_path / "result.json"
    result_json.write_text(json.dumps(result.to_dict()))
    out = tmp_path / "out"
    proc = run_zeal("export", str(result_json), "--to", "labelstudio", "--out", str(out),
                    "--media-url", "/data/local-files/?d=clips/", cwd=tmp_path, timeout=60)
    assert proc.returncode == 0 and "warning" not in proc.stderr, proc.stderr
    tasks = json.loads((out / f"{CLIP.stem}.labelstudio.json").read_text())
    imported = ls.ok("POST", f"/api/projects/{project}/import?return_task_ids=true", tasks)
    (task_id,) = imported["task_ids"]
    task = ls.ok("GET", f"/api/tasks/{task_id}")
    assert task["data"]["video"] == f"/data/local-files/?d=clips/{CLIP.name}"
    assert len(task["predictions"]) == 1 and len(task["predictions"][0]["result"]) == len(select(result))

    # The player fetches the video with the user's login (a personal access token here): 200, the file.
    status, body = ls.request("GET", task["data"]["video"], auth=ls.bearer())
    assert status == 200 and body == CLIP.read_bytes()
    # What the export wrote before the fix, the local path, gives Label Studio's 404.
    status, _ = ls.request("GET", str(CLIP.resolve()), auth=ls.bearer())
    assert status == 404


def test_a_project_export_of_videos_with_different_frame_rates_imports(label_studio, expected, tmp_path):
    """The project export's config (frameRate="$fps") is accepted, and each imported task carries
    the fps its frames were counted at."""
    from dataclasses import replace

    from zeal.export import export_collection

    ls = label_studio
    result, _ = expected
    slower = replace(result, video=replace(result.video, fps=10.0, path=str(tmp_path / "other.mp4")))
    tasks_path, config_path = export_collection([("a", result), ("b", slower)], "labelstudio", tmp_path / "out",
                                                "project", media_url="/data/local-files/?d=clips/")
    assert 'frameRate="$fps"' in config_path.read_text()
    project = ls.ok("POST", "/api/projects", {"title": "ZEAL project export", "label_config": config_path.read_text()})
    imported = ls.ok("POST", f"/api/projects/{project['id']}/import?return_task_ids=true",
                     json.loads(tasks_path.read_text()))
    fps = [ls.ok("GET", f"/api/tasks/{t}")["data"]["fps"] for t in imported["task_ids"]]
    assert sorted(fps) == sorted([result.video.fps, 10.0])
