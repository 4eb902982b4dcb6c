"""The `cpu` preset, and the default preset: `balanced` with a GPU, `cpu` without one unless the user
chose a preset (--preset, ZEAL_PRESET), said on the console and on the app's settings tab."""

import pytest

from cli_support import SHORT_CLIP, model_flags, one_torch_thread
from zeal.cli import main
from zeal.config import build_config, choose_preset, get_preset
from zeal.scorers.device import gpu_present

NO_GPU = lambda: False  # noqa: E731
A_GPU = lambda: True  # noqa: E731


@pytest.fixture(autouse=True)
def _no_preset_in_the_environment(monkeypatch):
    monkeypatch.delenv("ZEAL_PRESET", raising=False)
    monkeypatch.delenv("ZEAL_IMAGE_BUDGET", raising=False)


def test_the_cpu_preset_is_a_small_lvlm_with_one_crop_and_a_small_clip():
    cpu = get_preset("cpu")
    assert cpu.lvlm.model == "HuggingFaceTB/SmolVLM-500M-Instruct" and cpu.lvlm.image_budget == "base"
    assert (cpu.clip.model, cpu.clip.pretrained) == ("ViT-B-32", "datacomp_xl_s13b_b90k")


def test_without_a_gpu_the_default_is_cpu_and_it_says_so():
    choice = choose_preset(None, gpu_present=NO_GPU)
    assert choice.name == "cpu"
    said = choice.notice(build_config(choice.name))
    assert "no GPU found" in said and "--preset" in said and "SmolVLM-500M" in said
    # the sentence names the models the run really uses: a model flag replaces the preset's
    said = choice.notice(build_config(choice.name, lvlm="/models/my-lvlm"))
    assert "/models/my-lvlm" in said and "SmolVLM" not in said and "ViT-B-32" in said
    assert choose_preset(None, gpu_present=A_GPU) == choose_preset("balanced")  # balanced, nothing to say
    assert choose_preset(None, device="cpu", gpu_present=A_GPU).name == "cpu"  # the user asked for the CPU
    assert choose_preset(None, device="cuda:1", gpu_present=A_GPU).name == "balanced"


def test_a_preset_the_user_chose_is_kept_without_a_word(monkeypatch):
    assert choose_preset("light", gpu_present=NO_GPU).reason == "" and choose_preset("light").name == "light"
    monkeypatch.setenv("ZEAL_PRESET", "paper")
    assert choose_preset(None, gpu_present=NO_GPU).name == "paper"
    assert build_config().lvlm.model == get_preset("paper").lvlm.model


def test_this_machine_starts_with_the_preset_its_hardware_calls_for():
    config = build_config()
    want = get_preset("balanced" if gpu_present() else "cpu")
    assert (config.lvlm.model, config.clip.model, config.lvlm.image_budget) == \
        (want.lvlm.model, want.clip.model, want.lvlm.image_budget)


@pytest.mark.skipif(gpu_present(), reason="the notice is for machines without a GPU")
def test_the_cli_says_which_preset_it_chose(tiny, tmp_path, capsys):
    flags = [f for f in model_flags(tiny, tmp_path / "cache") if f != "--device"]
    flags.remove("cpu")  # no --device: the machine decides
    with one_torch_thread():
        assert main(["localize", str(SHORT_CLIP), "--classes", "Diving", "--known-classes", "-q",
                     "--out", str(tmp_path / "out"), *flags]) == 0
    err = capsys.readouterr().err
    assert "zeal: no GPU found: starting with the `cpu` preset" in err
    with one_torch_thread():
        assert main(["localize", str(SHORT_CLIP), "--classes", "Diving", "--known-classes", "-q", "--preset",
                     "light", "--out", str(tmp_path / "out2"), *flags]) == 0
    assert "preset" not in capsys.readouterr().err


def test_zeal_presets_lists_the_budgets_and_the_default_here(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "cpu " in out and "SmolVLM-500M-Instruct, image budget base" in out
    assert "image budget full" in out and "ZEAL_IMAGE_BUDGET" in out
    assert f"Default here: {'balanced' if gpu_present() else 'cpu (no GPU found'}" in out


def test_the_settings_tab_shows_budgets_and_the_device(tiny, tmp_path):
    from zeal.pipeline import ZealPipeline
    from zeal_ui.callbacks import models_markdown

    text = models_markdown(ZealPipeline.from_config(get_preset("cpu")))
    assert "| **cpu** | HuggingFaceTB/SmolVLM-500M-Instruct + ViT-B-32 (datacomp_xl_s13b_b90k) | base |" in text
    assert "image budget base" in text
    assert ("a GPU" if gpu_present() else "no GPU found, the CPU") in text


def test_dtype_fast_is_bfloat16_only_on_a_cpu_that_computes_it(monkeypatch):
    import torch

    import zeal.scorers.local as local

    assert get_preset("cpu").lvlm.dtype == "fast"
    cpu = torch.device("cpu")
    monkeypatch.setattr(local, "native_bf16_cpu", lambda: True)
    assert local._pick_dtype("fast", cpu) == torch.bfloat16
    monkeypatch.setattr(local, "native_bf16_cpu", lambda: False)  # emulated bf16 would be slower
    assert local._pick_dtype("fast", cpu) == torch.float32
    assert local._pick_dtype("auto", cpu) == torch.float32


def test_the_benchmarks_dimensions_add_up_to_the_published_sizes():
    """benchmarks/bench_presets.py builds models of these dimensions: a typo there would make every
    figure of the presets table wrong. Their parameter counts must match the checkpoints' names."""
    import sys

    from conftest import ROOT

    sys.path.insert(0, str(ROOT))
    from benchmarks.bench_presets import DIMS, CANDIDATES, approx_params

    qwen2_vocab, smol_vocab = 151_648, 49_280
    expect = {"llava-hf/llava-onevision-qwen2-7b-ov-hf": (qwen2_vocab, 7.6e9, 8.4e9),
              "llava-hf/llava-onevision-qwen2-0.5b-ov-hf": (qwen2_vocab, 0.8e9, 0.95e9),  # 0.5B LM + 0.4B tower
              "HuggingFaceTB/SmolVLM-256M-Instruct": (smol_vocab, 0.22e9, 0.29e9),
              "HuggingFaceTB/SmolVLM-500M-Instruct": (smol_vocab, 0.44e9, 0.54e9)}
    for key, dims in {**DIMS, **CANDIDATES}.items():
        vocab, low, high = expect[key]
        assert low <= approx_params(dims, vocab) <= high, key
