"""Which models are on this machine (zeal.scorers.availability), read from a real Hugging Face cache
layout, and a model that is neither here nor downloadable failing in seconds with one short message."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from zeal.config import get_preset, with_overrides
from zeal.errors import ModelError
from zeal.scorers.availability import clip_status, lvlm_status, model_availability, require_obtainable
from zeal.scorers.identity import fingerprint

# The limit for a model that cannot be had (it took ~50 s of hub retries before).
FAIL_WITHIN_S = 10.0
REVISION = "0123456789abcdef0123456789abcdef01234567"


def cache_entry(hub: Path, repo: str, files: list[str]) -> Path:
    """A repo in the Hugging Face cache layout (what `hf download` leaves): refs/main names the snapshot."""
    folder = hub / f"models--{repo.replace('/', '--')}"
    snapshot = folder / "snapshots" / REVISION
    snapshot.mkdir(parents=True)
    for name in files:
        (snapshot / name).write_text("{}")
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(REVISION)
    return snapshot


@pytest.fixture
def hub(tmp_path, monkeypatch) -> Path:
    """An empty hub cache of this test only, and a hub endpoint that refuses connections."""
    folder = tmp_path / "hub"
    folder.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(folder))
    with socket.socket() as s:  # a port nobody listens on: connections are refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    return folder


def test_presence_comes_from_local_folders_and_the_hub_cache(hub, tmp_path, tiny):
    paper = get_preset("paper")
    lvlm, clip = model_availability(paper)
    assert (lvlm.role, lvlm.present, clip.present) == ("lvlm", False, False)
    assert "hf download llava-hf/llava-onevision-qwen2-7b-ov-hf" in lvlm.fix and "--lvlm" in lvlm.fix
    assert "--clip-pretrained" in clip.fix

    cache_entry(hub, "llava-hf/llava-onevision-qwen2-7b-ov-hf", ["config.json"])
    cache_entry(hub, "timm/eva02_enormous_patch14_plus_clip_224.laion2b_s9b_b144k", ["open_clip_pytorch_model.bin"])
    lvlm, clip = model_availability(paper)
    assert (lvlm.present, lvlm.where, lvlm.fix) == (True, "Hugging Face cache", "")
    assert (clip.present, clip.where) == (True, "Hugging Face cache")
    # the model id pins the cached snapshot: what loads is what the cache key names
    llava = "llava-hf/llava-onevision-qwen2-7b-ov-hf"
    assert fingerprint(llava) == f"{llava}@{REVISION}"

    local = with_overrides(paper, lvlm={"model": tiny.lvlm()},
                           clip={"model": tiny.clip_model, "pretrained": tiny.clip_ckpt})
    assert [(s.present, s.where) for s in model_availability(local)] == [(True, "local folder"), (True, "local file")]
    gone = lvlm_status(str(tmp_path / "no-model-here"))
    assert not gone.present and "no folder" in gone.fix
    assert lvlm_status("openai:m@http://gpu:8000/v1").where == "server"
    assert not clip_status("ViT-B-16", str(tmp_path / "missing.pt")).present


@pytest.mark.parametrize("offline", [True, False])
def test_a_model_that_cannot_be_had_fails_in_seconds_with_one_short_message(hub, monkeypatch, offline):
    from zeal.scorers.local import LVLMScorer

    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.monotonic()
    with pytest.raises(ModelError) as info:
        LVLMScorer.from_pretrained("llava-hf/llava-onevision-qwen2-7b-ov-hf", device="cpu")
    elapsed = time.monotonic() - t0
    message = str(info.value)
    assert elapsed < FAIL_WITHIN_S, f"took {elapsed:.1f} s"
    assert "llava-hf/llava-onevision-qwen2-7b-ov-hf" in message and "hf download" in message and "--lvlm" in message
    assert ("HF_HUB_OFFLINE" in message) is offline and ("cannot be reached" in message) is not offline
    assert len(message) < 400 and "\n" not in message


def test_the_clip_check_runs_before_open_clip_tries_the_hub(hub, monkeypatch):
    from zeal.scorers.clip import ClipScorer

    t0 = time.monotonic()
    with pytest.raises(ModelError, match=r"EVA02-L-14 / merged2b_s4b_b131k is not on this machine.*hf download timm/"):
        ClipScorer.from_pretrained("EVA02-L-14", "merged2b_s4b_b131k", device="cpu")
    assert time.monotonic() - t0 < FAIL_WITHIN_S


def test_an_obtainable_model_passes_the_check(hub, monkeypatch):
    cache_entry(hub, "org/cached-model", ["config.json"])
    require_obtainable(lvlm_status("org/cached-model"))  # here: no network needed
    with socket.socket() as listener:  # a reachable hub: the download may proceed
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{listener.getsockname()[1]}")
        require_obtainable(lvlm_status("org/not-yet-downloaded"))


def test_the_app_lists_what_is_present_and_how_to_get_the_rest(hub, tiny, tmp_path):
    from zeal.pipeline import ZealPipeline
    from zeal_ui.callbacks import models_markdown

    text = models_markdown(ZealPipeline.from_config(get_preset("light")))
    assert "**missing**" in text and "LVLM missing" in text
    assert "hf download llava-hf/llava-onevision-qwen2-0.5b-ov-hf" in text
    from tiny_models import tiny_config

    ready = models_markdown(ZealPipeline.from_config(tiny_config(tiny, tmp_path / "cache")))
    assert "LVLM missing" not in ready and "CLIP missing" not in ready and "local folder" in ready
