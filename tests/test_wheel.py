"""The package as a user installs it: `pip install` of the built wheel (not editable) into a fresh venv
that sees our pinned dependencies but not the source tree. What the packages read at run time (the query
libraries, the page script) must be inside the wheel.

Lean for CI: the fresh venv reaches the project venv's site-packages through a .pth line (a plain path
entry: the project's editable install is not activated there), and only our wheel is installed, with
--no-deps from a local file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import pytest

from app_server import free_port

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("zeal", "zeal_ui")
APP_START_TIMEOUT_S = 120
pytestmark = pytest.mark.timeout(600)


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """Build the wheel from a copy of the sources and install it into a fresh venv: {python, bin, env, work}."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    src.mkdir()
    shutil.copy(ROOT / "pyproject.toml", src)
    for package in PACKAGES:  # what pyproject.toml packages; the build must not need anything else
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME") and not k.startswith("ZEAL_")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", HF_HUB_OFFLINE="1")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", str(work / "dist"), str(src)], cwd=work, env=env)
    wheel = next((work / "dist").glob("zeal-*.whl"))
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=work, env=env)
    python = venv / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=work, env=env).stdout.strip())
    (site / "_zeal_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed", "-q", str(wheel)],
         cwd=work, env=env)
    shutil.rmtree(src)  # nothing of the sources is left to be found by accident
    return {"python": str(python), "bin": venv / "bin", "env": env, "work": work, "site": site}


def test_the_wheel_holds_the_runtime_data_and_runs_from_its_own_copy(installed):
    code = ("import zeal, zeal_ui; from zeal import load_library, lookup; "
            "lib = load_library('thumos14'); print(zeal.__file__); print(zeal_ui.__file__); "
            "print(len(lib), lookup(['CliffDiving']).names)")
    out = _run([installed["python"], "-c", code], cwd=installed["work"], env=installed["env"]).stdout.splitlines()
    for path in out[:2]:  # the installed copy, not the source tree
        assert path.startswith(str(installed["site"])) and not path.startswith(str(ROOT)), path
    assert out[2] == "20 ['CliffDiving']"
    presets = _run([str(installed["bin"] / "zeal"), "presets"], cwd=installed["work"], env=installed["env"]).stdout
    assert "paper" in presets and "EVA02-E-14-plus" in presets


def test_the_installed_app_serves_its_page(installed, tiny, tmp_path):
    port = free_port()
    script = _run([installed["python"], "-c", "from zeal_ui.demo import page_assets; print(page_assets()['js'][:60])"],
                  cwd=installed["work"], env=installed["env"]).stdout.strip()
    assert script  # the page script is package data of the installed zeal_ui
    flags = tiny.app_flags()
    log = (tmp_path / "app.log").open("w")
    proc = subprocess.Popen([str(installed["bin"] / "zeal-app"), "--port", str(port), "--no-browser", "--device", "cpu",
                             "--lvlm", flags["lvlm"], "--clip-model", flags["clip_model"],
                             "--clip-pretrained", flags["clip_pretrained"], "--clip-config", flags["clip_config"],
                             "--work-dir", str(tmp_path / "work"), "--cache-dir", str(tmp_path / "cache")],
                            cwd=installed["work"], env={**installed["env"], "GRADIO_ANALYTICS_ENABLED": "False"},
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline, page = time.monotonic() + APP_START_TIMEOUT_S, None
        while time.monotonic() < deadline and page is None:
            assert proc.poll() is None, (tmp_path / "app.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                    page = r.read().decode("utf-8", "replace")
            except OSError:
                time.sleep(0.5)
        assert page is not None, (tmp_path / "app.log").read_text()[-3000:]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=10) as r:
            config = r.read().decode("utf-8", "replace")
        assert "ZEAL annotation assistant" in page + config
        assert script.splitlines()[0] in config  # the page script reached the page
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
