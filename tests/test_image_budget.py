"""LVLMConfig.image_budget: fewer image tokens per frame through each processor's own options, the
model and its processor still agreeing (P(yes) equals the plain one-prompt forward), and the budget part
of every cache key. Tiny real-architecture models with the real tokenizers (tests/tiny_models.py)."""

import numpy as np
import pytest
from PIL import Image

from tiny_models import single_thread, tiny_config
from zeal.config import LVLMConfig, build_config, parse_image_budget
from zeal.errors import ConfigError
from zeal.pipeline import ZealPipeline
from zeal.queries import prompt_text
from zeal.scorers import build_lvlm, local_lvlm_model_id
from zeal.scorers.local import LVLMScorer

TEXTS = [prompt_text("Diving", "Is the diver in the air above the pool?"),
         prompt_text("Diving", "Is the diver under the water?")]
# wider than every tiny model's tile: LLaVA-OneVision tiles it, Idefics3 splits it, Qwen2-VL resizes it
FRAME = np.random.default_rng(0).integers(0, 256, (112, 200, 3), dtype=np.uint8)
# (architecture, budget that lowers its tokens): each through its own processor option
LOWERING = [("llava_onevision", "base"),  # anyres grid points -> the one 28 px crop
            ("idefics3", "base"),         # image splitting off
            ("qwen2_vl", 28 * 28 * 2),    # max_pixels
            ("pixtral", 28 * 28)]         # longest edge


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with single_thread():
        yield


def prompt_tokens(scorer: LVLMScorer) -> int:
    """Prompt tokens of one frame and one question: the image's tokens are most of them."""
    return int(scorer._encode([scorer.render(TEXTS[0])], [Image.fromarray(FRAME)])["input_ids"].shape[1])


@pytest.mark.parametrize("arch,budget", LOWERING)
def test_a_budget_lowers_the_tokens_and_the_model_still_agrees_with_its_processor(tiny, arch, budget):
    full = LVLMScorer.from_pretrained(tiny.lvlm(arch), device="cpu")
    before = prompt_tokens(full)
    small = LVLMScorer.from_pretrained(tiny.lvlm(arch), device="cpu", image_budget=budget)
    assert prompt_tokens(small) < before
    # the packed prefix-cached path equals the plain forward: processor and model agree on the tiles
    np.testing.assert_allclose(small.p_yes([FRAME], TEXTS), small.p_yes_reference([FRAME], TEXTS), atol=1e-4)
    assert not np.allclose(small.p_yes([FRAME], TEXTS), full.p_yes([FRAME], TEXTS), atol=1e-6)
    assert small.model_id == f"{full.model_id}|image={budget}"


def test_a_budget_never_raises_the_models_own_size_and_leaves_a_given_processor_alone(tiny):
    full = LVLMScorer.from_pretrained(tiny.lvlm("qwen2_vl"), device="cpu")
    base = LVLMScorer(full.model, full.processor, full.weights_id, image_budget="base")  # 384x384 > tiny's 56x56
    assert prompt_tokens(base) == prompt_tokens(full)
    onevision = LVLMScorer.from_pretrained(tiny.lvlm("llava_onevision"), device="cpu")
    points = [list(p) for p in onevision.processor.image_processor.image_grid_pinpoints]
    one_crop = LVLMScorer(onevision.model, onevision.processor, onevision.weights_id, image_budget="base")
    assert one_crop.processor.image_processor.image_grid_pinpoints == [[28, 28]]
    assert onevision.processor.image_processor.image_grid_pinpoints == points  # a copy was changed
    assert onevision.model.config.image_grid_pinpoints == [[28, 28]]  # the model undoes that tiling
    again = LVLMScorer(onevision.model, onevision.processor, onevision.weights_id)  # full: its own grid back
    assert onevision.model.config.image_grid_pinpoints == points
    np.testing.assert_allclose(again.p_yes([FRAME], TEXTS), onevision.p_yes_reference([FRAME], TEXTS), atol=1e-4)


def test_the_budget_is_part_of_the_cache_key(tiny, data_dir, tmp_path):
    video = str(data_dir / "tests_data_test.mp4")
    sections = dict(lvlm={"model": tiny.lvlm("idefics3")}, video={"fps": 1.0, "max_side": 200, "chunk": 4})
    full_cfg = tiny_config(tiny, tmp_path / "cache", "idefics3", **sections)
    base_cfg = tiny_config(tiny, tmp_path / "cache", "idefics3",
                           lvlm={"model": tiny.lvlm("idefics3"), "image_budget": "base"}, video=sections["video"])
    assert ZealPipeline.from_config(base_cfg).model_ids()["lvlm"] == local_lvlm_model_id(base_cfg.lvlm)
    full = ZealPipeline.from_config(full_cfg).run(video, classes=["Diving"], known_classes=True)
    base = ZealPipeline.from_config(base_cfg).run(video, classes=["Diving"], known_classes=True)
    assert base.run.stats["questions_scored"] == 2  # never the scores of another budget
    assert base.run.models["lvlm"].endswith("|image=base") and base.run.run_key != full.run.run_key
    assert not np.allclose(base.classes["Diving"].curves.start_raw, full.classes["Diving"].curves.start_raw)
    again = ZealPipeline.from_config(full_cfg).run(video, classes=["Diving"], known_classes=True)
    assert again.run.stats["questions_scored"] == 0
    assert build_lvlm(base_cfg.lvlm).model_id == base.run.models["lvlm"]


@pytest.mark.parametrize("value,want", [("full", "full"), (" Base ", "base"), (401408, 401408), ("401_408", 401408)])
def test_budget_values(value, want):
    assert parse_image_budget(value) == want and LVLMConfig(image_budget=value).image_budget == want


@pytest.mark.parametrize("value", ["huge", "", 100, -5, True, "12.5"])
def test_a_bad_budget_is_one_message_naming_the_choices(value):
    with pytest.raises(ConfigError, match="'full'.*'base'.*number of pixels"):
        LVLMConfig(image_budget=value)


def test_the_budget_comes_from_a_flag_or_the_environment(monkeypatch):
    monkeypatch.setenv("ZEAL_IMAGE_BUDGET", "base")
    assert build_config("balanced").lvlm.image_budget == "base"
    assert build_config("balanced", image_budget="200704").lvlm.image_budget == 200704
    monkeypatch.delenv("ZEAL_IMAGE_BUDGET")
    assert build_config("balanced").lvlm.image_budget == "full"
    assert build_config("cpu").lvlm.image_budget == "base"
