"""Shared helpers of the CLI and batch tests: the model flags that point the `zeal` command at the
session's tiny models (the `tiny` fixture), and a subprocess runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tiny_models import TinyModels, single_thread

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
SHORT_CLIP = DATA / "tests_data_rawvideo_dataset_part_0.mp4"  # 1.07 s, 32 frames, 340x256
MKV_CLIP = DATA / "examples_flipping_a_pancake.mkv"  # 10.4 s; the container reports 0 frames
AVI_CLIP = DATA / "tests_data_test.avi"  # 6.6 s MPEG-4 part 2 in AVI
CORRUPTED_CLIP = DATA / "tests_test_data_corrupted.mp4"  # a full decode fails
CLASSES = "CliffDiving,Diving"
FPS = "2"
# A subprocess that fails before any model loads must still finish quickly; one that runs the
# tiny models needs the interpreter start plus torch/transformers imports on a busy 2-core machine.
FAST_TIMEOUT_S = 60
RUN_TIMEOUT_S = 240


# In-process model code runs on one thread, as the subprocesses do.
one_torch_thread = single_thread


def model_flags(models: TinyModels, cache_dir: Path, fps: str = FPS) -> list[str]:
    """The flags a user with local weights passes: custom CLIP config + checkpoint, LVLM folder."""
    return ["--clip-config", models.clip_config, "--clip-pretrained", models.clip_ckpt,
            "--lvlm", models.lvlm(), "--device", "cpu", "--fps", fps, "--cache-dir", str(cache_dir)]


def clean_env() -> dict[str, str]:
    """The environment of a user who set no ZEAL_* variable and has no network."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZEAL_")}
    # One torch thread: the tiny models gain nothing from more, and the test machine's cores are shared.
    env.update(HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    return env


def zeal_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "zeal", *args]


def run_zeal(*args: str, cwd: Path, timeout: float = RUN_TIMEOUT_S) -> subprocess.CompletedProcess:
    """`python -m zeal ARGS` as a user runs it; text output captured."""
    return subprocess.run(zeal_cmd(*args), cwd=cwd, env=clean_env(), capture_output=True, text=True,
                          timeout=timeout)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("zeal: error:")]


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))
