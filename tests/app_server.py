"""Start the real app (`python app.py ...`) in a subprocess with tiny models, for the UI and browser
tests. The tiny open_clip architecture is registered in the app process through --clip-config, the
same flag a user with a custom open_clip model uses."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_CLIP = ROOT / "assets" / "examples" / "basketball.mp4"
SECOND_CLIP = ROOT / "assets" / "examples" / "arm_wrestling.mp4"
START_TIMEOUT_S = 90.0
TEST_FPS = 2.0


@dataclass
class AppProcess:
    url: str
    proc: subprocess.Popen
    work_dir: Path
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(tmp: Path, models: dict[str, str], extra: list[str] | None = None,
              env: dict[str, str] | None = None, fps: float = TEST_FPS, port: int | None = None) -> AppProcess:
    """Launch app.py on a free port (or `port`: the same address again after a restart) and wait until
    it answers; the app's output goes to a log file.
    models: the app's model flags (`TinyModels.app_flags()` of the `tiny` fixture)."""
    port = port or free_port()
    work_dir = tmp / "work"
    log_path = tmp / "app.log"
    cmd = [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--no-browser",
           "--lvlm", models["lvlm"], "--clip-model", models["clip_model"],
           "--clip-pretrained", models["clip_pretrained"], "--clip-config", models["clip_config"],
           "--fps", str(fps), "--device", "cpu", "--cache-dir", str(tmp / "cache"),
           "--work-dir", str(work_dir), *(extra or [])]
    full_env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1",
                "GRADIO_TEMP_DIR": str(work_dir / "uploads"), **(env or {})}
    full_env.pop("DISPLAY", None)
    log = log_path.open("w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    app = AppProcess(url, proc, work_dir, log_path)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app exited with {proc.returncode}:\n{app.log()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return app
        except OSError:
            time.sleep(0.5)
    app.stop()
    raise RuntimeError(f"app did not answer on {url} within {START_TIMEOUT_S:.0f} s:\n{app.log()}")


def in_process_app(pipeline, root: Path, limits=None):
    """The app's handlers on a project in `root` (root/project), as `create_demo` builds them, without
    a server: the scoring queue is not started (tests run its step, `queue.score(vid)`, themselves)
    and downloads go to root/downloads. Returns the Callbacks; `.state` holds project and queue."""
    from zeal.project import Project
    from zeal_ui.app_state import AppLimits, AppState
    from zeal_ui.callbacks import Callbacks
    from zeal_ui.scoring import ScoringQueue

    project = Project.open(root / "project")
    state = AppState(project=project, pipeline=pipeline, limits=limits or AppLimits(), downloads=root / "downloads")
    state.queue = ScoringQueue(project, pipeline)
    return Callbacks(state)


class PageServer:
    """The page's server functions over HTTP (Gradio's /component_server route), as the page calls
    them: the workspace's and the list of videos'."""

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

    def wait_scored(self, names: set[str], timeout_s: float = 240) -> dict[str, dict]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            videos = {v["name"]: v for v in self.call("videos", {})["videos"]}
            if names <= set(videos) and all(videos[n]["status"] in ("scored", "in review") for n in names):
                return videos
            failed = [v for v in videos.values() if v["status"] == "failed"]
            assert not failed, failed
            time.sleep(0.5)
        raise AssertionError(f"not scored in {timeout_s} s: {videos}")
