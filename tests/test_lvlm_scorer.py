"""LVLMScorer on tiny random-weight models of every supported architecture, loaded from disk through
`from_pretrained` exactly as a user's model is, with the real tokenizers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")
import torch  # noqa: E402

import tiny_models  # noqa: E402
from zeal.errors import ModelError  # noqa: E402
from zeal.scorers.answers import resolve_answer_ids  # noqa: E402
from zeal.scorers.identity import fingerprint  # noqa: E402
from zeal.scorers.local import LVLMScorer, _pack_suffixes  # noqa: E402

ARCHS = list(tiny_models.BUILDERS)
TOLERANCE = 1e-4
# Texts of different token lengths sharing a long head (like the real 2k questions of one frame), one
# that shares nothing, and one that is a prefix of another in characters.
TEXTS = [
    "This is a frame from a video of Diving. Is the person standing on the board? Only answer yes or no.",
    "This is a frame from a video of Diving. Is the person under water? Only answer yes or no.",
    "This is a frame from a video of Long Jump. Is the athlete sprinting down the runway towards the sand "
    "pit with both arms pumping? Only answer yes or no.",
    "This is a frame from a video of Long Jump. Is the athlete in the sand? Only answer yes or no.",
    "Is it?",
    "Is it",
]


def _images(shape: tuple[int, int, int] = (40, 60, 3), n: int = 3, seed: int = 7) -> list[np.ndarray]:
    """n random frames of one size, like the frames of one video (so they can share a batch)."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(n)]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with tiny_models.single_thread():
        yield


@pytest.fixture(scope="session")
def model_dirs(tiny) -> dict[str, Path]:
    return {arch: Path(tiny.lvlm(arch)) for arch in ARCHS}


@pytest.fixture(scope="session")
def scorers(model_dirs) -> dict[str, LVLMScorer]:
    with tiny_models.single_thread():
        return {arch: LVLMScorer.from_pretrained(str(path), device="cpu") for arch, path in model_dirs.items()}


@pytest.fixture(scope="session")
def references(scorers) -> dict[str, np.ndarray]:
    with tiny_models.single_thread():
        return {arch: scorer.p_yes_reference(_images(), TEXTS) for arch, scorer in scorers.items()}


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("frames_per_batch,texts_per_batch", [(1, None), (3, None), (2, 4)])
def test_cached_p_yes_equals_plain_forward(arch, frames_per_batch, texts_per_batch, scorers, references):
    scorer = scorers[arch]
    scorer.frames_per_batch, scorer.texts_per_batch = frames_per_batch, texts_per_batch
    got = scorer.p_yes(_images(), TEXTS)
    ref = references[arch]
    assert got.shape == (3, len(TEXTS)) and got.dtype == np.float64
    assert np.all((got > 0) & (got < 1))
    np.testing.assert_allclose(got, ref, atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize("arch", ARCHS)
def test_tiny_models_give_spread_scores(arch, references):
    # otherwise the equality test above would pass for a scorer that ignores images or texts
    ref = references[arch]
    assert ref.std(axis=0).max() > 1e-2, "P(yes) does not depend on the image"
    assert ref.std(axis=1).max() > 1e-2, "P(yes) does not depend on the text"


@pytest.mark.parametrize("arch", ARCHS)
def test_equality_check_catches_wrong_suffix_positions(arch, scorers, references):
    class OffByOne(LVLMScorer):
        def _suffix_start(self, prefix_length, frames):
            start, mrope = super()._suffix_start(prefix_length, frames)
            return start + 1, mrope

    loaded = scorers[arch]
    wrong = OffByOne(loaded.model, loaded.processor, loaded.model_id).p_yes(_images(), TEXTS)
    assert np.abs(wrong - references[arch]).max() > 100 * TOLERANCE


@pytest.mark.parametrize("arch", ARCHS)
def test_frames_of_different_sizes(arch, scorers):
    # other aspect ratios make the anyres / dynamic-resolution / splitting processors pick other grids,
    # hence other prefix lengths; such frames are scored in separate groups
    images = [_images((64, 40, 3), 1, seed=1)[0], _images((50, 50, 3), 1, seed=2)[0], _images()[0]]
    scorer = scorers[arch]
    scorer.frames_per_batch, scorer.texts_per_batch = 3, None
    np.testing.assert_allclose(scorer.p_yes(images, TEXTS[1:4]), scorer.p_yes_reference(images, TEXTS[1:4]),
                               atol=TOLERANCE, rtol=0)


class CountingProcessor:
    """A scorer's processor, counting its calls; `alter` changes the pixels of calls with several images
    (as a processor whose batched output differed from its single-image one would)."""

    def __init__(self, real, alter=False):
        self._real, self.alter, self.calls = real, alter, []

    def __getattr__(self, name):
        return getattr(self._real, name)

    def __call__(self, *args, **kwargs):
        self.calls.append(len(kwargs["images"]))
        out = self._real(*args, **kwargs)
        if self.alter and len(kwargs["images"]) > 1:
            out["pixel_values"] = out["pixel_values"] + 1
        return out


@pytest.mark.parametrize("arch", ARCHS)
def test_frames_of_one_size_go_through_the_processor_at_once(arch, scorers, references):
    loaded = scorers[arch]
    scorer = LVLMScorer(loaded.model, loaded.processor, loaded.model_id, frames_per_batch=2)
    counting = scorer.processor = CountingProcessor(loaded.processor)
    first = scorer.p_yes(_images(), TEXTS)
    assert counting.calls == [3, 1]  # the three frames at once, then one alone: the check, once
    again = scorer.p_yes(_images(), TEXTS)
    assert counting.calls[2:] == [3]
    for got in (first, again):
        np.testing.assert_allclose(got, references[arch], atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize("arch", ["llava_onevision", "qwen2_vl"])
def test_a_processor_whose_batch_differs_is_called_per_frame(arch, scorers, references):
    loaded = scorers[arch]
    scorer = LVLMScorer(loaded.model, loaded.processor, loaded.model_id, frames_per_batch=2)
    counting = scorer.processor = CountingProcessor(loaded.processor, alter=True)
    np.testing.assert_allclose(scorer.p_yes(_images(), TEXTS), references[arch], atol=TOLERANCE, rtol=0)
    scorer.p_yes(_images(), TEXTS)
    assert counting.calls == [3, 1, 1, 1, 1] + [1, 1, 1]  # checked once, found different: per frame since


@pytest.mark.parametrize("arch", ["llava_onevision", "qwen2_vl"])
def test_uncached_fallback_equals_plain_forward(arch, scorers, references):
    class NoCache(LVLMScorer):
        def _prefix_inputs(self, image, plan):
            return None  # as if the processor's tokens could not be split into prefix + suffix

    loaded = scorers[arch]
    scorer = NoCache(loaded.model, loaded.processor, loaded.model_id, texts_per_batch=4)
    np.testing.assert_allclose(scorer.p_yes(_images(), TEXTS), references[arch], atol=TOLERANCE, rtol=0)


def test_suffix_tree_shares_common_tokens_once():
    # two suffixes share [5, 6], one is a prefix of another, one shares nothing
    tree = _pack_suffixes([[5, 6, 7], [5, 6, 8, 9], [5, 6], [4]])
    assert tree.tokens == [5, 6, 7, 8, 9, 4]
    assert tree.depths == [0, 1, 2, 2, 3, 0]
    assert tree.answer_rows == [2, 4, 1, 5]
    ancestors = {0: {0}, 1: {0, 1}, 2: {0, 1, 2}, 3: {0, 1, 3}, 4: {0, 1, 3, 4}, 5: {5}}
    for node, seen in ancestors.items():
        assert set(np.flatnonzero(tree.visible[node])) == seen


@pytest.mark.parametrize("arch", ARCHS)
def test_packed_suffixes_and_answer_head_are_used(arch, scorers, references):
    # the exactness tests above then cover the packed prefix-tree path with the yes/no-only head
    scorer = scorers[arch]
    scorer.frames_per_batch, scorer.texts_per_batch = 3, None
    scorer.p_yes(_images(), TEXTS)
    assert scorer._packing_possible() and scorer._small_head is True


@pytest.mark.parametrize("arch", ARCHS)
def test_batched_fallback_equals_plain_forward(arch, scorers, references):
    class Unpacked(LVLMScorer):  # as for an attention kernel that takes no custom mask
        def _packing_possible(self):
            return False

    loaded = scorers[arch]
    scorer = Unpacked(loaded.model, loaded.processor, loaded.model_id, frames_per_batch=2, texts_per_batch=4)
    np.testing.assert_allclose(scorer.p_yes(_images(), TEXTS), references[arch], atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize("arch", ["llava_onevision", "qwen2_vl"])
def test_packed_suffixes_with_eager_attention(arch, model_dirs):
    # eager attention adds the 4-D mask to the scores itself (sdpa hands it to the kernel)
    with tiny_models.single_thread():
        scorer = LVLMScorer.from_pretrained(str(model_dirs[arch]), device="cpu", frames_per_batch=2)
        scorer.model.set_attn_implementation("eager")
        assert scorer._packing_possible()
        np.testing.assert_allclose(scorer.p_yes(_images(), TEXTS), scorer.p_yes_reference(_images(), TEXTS),
                                   atol=TOLERANCE, rtol=0)


def test_answer_head_check_keeps_the_full_head_for_rescaled_logits(model_dirs):
    # Some architectures scale or soft-cap the logits after the output head (Cohere's logit_scale,
    # Gemma's final soft-capping); the yes/no-only head must then not be used.
    from transformers import AutoProcessor, LlavaOnevisionForConditionalGeneration

    class ScaledLogits(LlavaOnevisionForConditionalGeneration):
        def forward(self, *args, **kwargs):
            out = super().forward(*args, **kwargs)
            out.logits = out.logits * 0.5
            return out

    folder = str(model_dirs["llava_onevision"])
    with tiny_models.single_thread():
        scorer = LVLMScorer(ScaledLogits.from_pretrained(folder), AutoProcessor.from_pretrained(folder), "scaled")
        got = scorer.p_yes(_images(), TEXTS)
        assert scorer._small_head is False
        np.testing.assert_allclose(scorer.p_yes(_images(), TEXTS), got, atol=1e-12, rtol=0)
        np.testing.assert_allclose(got, scorer.p_yes_reference(_images(), TEXTS), atol=TOLERANCE, rtol=0)


def test_duplicate_and_reordered_texts(scorers, references):
    order = [3, 0, 3, 5]
    got = scorers["qwen2_vl"].p_yes(_images(), [TEXTS[i] for i in order])
    np.testing.assert_allclose(got, references["qwen2_vl"][:, order], atol=TOLERANCE, rtol=0)


def test_pil_images_and_empty_inputs(scorers, references):
    from PIL import Image

    scorer = scorers["llava_onevision"]
    got = scorer.p_yes([Image.fromarray(image) for image in _images()[:1]], TEXTS[:2])
    np.testing.assert_allclose(got, references["llava_onevision"][:1, :2], atol=TOLERANCE, rtol=0)
    assert scorer.p_yes([], TEXTS).shape == (0, len(TEXTS))
    with pytest.raises(ModelError, match="HxWx3 uint8"):
        scorer.p_yes([np.zeros((8, 8), dtype=np.uint8)], TEXTS[:1])


def test_qwen2_vl_prompt_layout(scorers):
    # the instruct layout of shared/data/tokenizers/README.md, image first
    expected = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                "<|vision_start|><|image_pad|><|vision_end|>Is the person jumping? Only answer yes or no."
                "<|im_end|>\n<|im_start|>assistant\n")
    assert scorers["qwen2_vl"].render("Is the person jumping? Only answer yes or no.") == expected


def test_smolvlm_and_pixtral_prompt_layouts(scorers):
    question = "Is the person jumping? Only answer yes or no."
    assert scorers["idefics3"].render(question) == (
        "<|im_start|>User:<image>Is the person jumping? Only answer yes or no.<end_of_utterance>\nAssistant:")
    pixtral = scorers["pixtral"]
    assert pixtral.render(question) == "<s>[INST][IMG]Is the person jumping? Only answer yes or no.[/INST]"
    enc = pixtral._encode([pixtral.render(question)], _images(n=1))
    ids = enc["input_ids"][0].tolist()
    tok = pixtral.tokenizer
    # one BOS (the template's, not a second one from the tokenizer), then [INST], then the image rows
    assert ids[:3] == [tok.bos_token_id, tok.convert_tokens_to_ids("[INST]"), tok.convert_tokens_to_ids("[IMG]")]
    assert ids.count(tok.bos_token_id) == 1 and tok.convert_tokens_to_ids("[IMG_END]") in ids


# -------------------------------------------------------------- yes/no variants on real vocabularies
def _qwen2_tokenizer():
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(str(tiny_models.DATA / "qwen2"))


def _smollm2_tokenizer():
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(str(tiny_models.DATA / "smolvlm-256m"))


# ids from shared/data/tokenizers/README.md: yes, Yes, " yes", " Yes" / no, No, " no", " No"
README_IDS = {
    "qwen2": (_qwen2_tokenizer, {9693, 9454, 9834, 7414}, {2152, 2753, 902, 2308}),
    "smollm2": (_smollm2_tokenizer, {10407, 10539, 9805, 9230}, {4607, 5230, 787, 2838}),
    "tekken": (tiny_models.tekken_tokenizer, {13059, 16860, 14842, 13830}, {2649, 4753, 1836, 3501}),
}


@pytest.mark.parametrize("name", list(README_IDS))
def test_answer_variants_on_real_vocabularies(name):
    load, yes, no = README_IDS[name]
    tokenizer = load()
    ids = resolve_answer_ids(tokenizer, name)
    assert yes <= set(ids.yes) and no <= set(ids.no)
    assert not set(ids.yes) & set(ids.no)
    for token_id in ids.yes:  # every id found really is a spelling of yes
        assert tokenizer.decode([token_id]).strip().lower() == "yes"
    for token_id in ids.no:
        assert tokenizer.decode([token_id]).strip().lower() == "no"


def test_tokenizer_without_single_token_yes_is_an_error():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "no": 1, "ye": 2, "s": 3, "maybe": 4}
    word_level = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    word_level.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=word_level, unk_token="[UNK]")
    with pytest.raises(ModelError, match=r"toy-model.*single token for 'yes'"):
        resolve_answer_ids(tokenizer, "toy-model")


# -------------------------------------------------------------- loading errors and model ids
def test_missing_model_folder_names_it_and_gives_advice(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelError) as info:
        LVLMScorer.from_pretrained(str(missing), device="cpu")
    message = str(info.value)
    assert str(missing) in message and "--lvlm" in message and "config.json" in message and len(message) < 300


def test_local_model_id_changes_with_the_weights(model_dirs, scorers, tmp_path):
    assert scorers["qwen2_vl"].model_id == f"{fingerprint(str(model_dirs['qwen2_vl']))}|answers=all"
    assert scorers["qwen2_vl"].model_id.startswith(str(model_dirs["qwen2_vl"].resolve()) + "@")
    (tmp_path / "config.json").write_text('{"a": 1}')
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"0" * 10)
    first = fingerprint(str(tmp_path))
    assert fingerprint(str(tmp_path)) == first
    os.utime(weights, ns=(0, 10**18))
    assert fingerprint(str(tmp_path)) != first
    (tmp_path / "chat_template.jinja").write_text("{{ messages }}")  # a new template changes the scores too
    assert len({first, fingerprint(str(tmp_path))}) == 2


# -------------------------------------------------------------- out-of-memory back-off
class _SmallGpu(LVLMScorer):
    """Runs the real model, but fails like a GPU out of memory when a batch is larger than allowed."""

    max_frames = 1
    max_texts = 2
    calls: list[tuple[int, int]]

    def _score_frames(self, prefixes, plan, texts_n):
        self.calls.append((len(prefixes), texts_n))
        if len(prefixes) > self.max_frames or texts_n > self.max_texts:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return super()._score_frames(prefixes, plan, texts_n)


def _small_gpu(scorers, frames_per_batch: int) -> _SmallGpu:
    loaded = scorers["llava_onevision"]
    return _SmallGpu(loaded.model, loaded.processor, loaded.weights_id, frames_per_batch=frames_per_batch)


def test_out_of_memory_halves_frames_then_texts(scorers, references):
    scorer = _small_gpu(scorers, 4)
    scorer.calls = []
    got = scorer.p_yes(_images(), TEXTS)
    np.testing.assert_allclose(got, references["llava_onevision"], atol=TOLERANCE, rtol=0)
    # 3 frames at 4 per batch -> 2 -> 1 frame; then 6 texts -> 3 -> 1 (halving 3 gives 1)
    assert [c for c in scorer.calls if c[0] > 1 or c[1] > 2] == [(3, 6), (2, 6), (1, 6), (1, 3)]
    assert (scorer.frames_per_batch, scorer.texts_per_batch) == (1, 1)
    scorer.calls = []
    scorer.p_yes(_images()[:1], TEXTS[:2])  # the smaller sizes are remembered
    assert scorer.calls == [(1, 1)]


def test_out_of_memory_at_one_frame_and_one_text_is_a_model_error(scorers):
    scorer = _small_gpu(scorers, 2)
    scorer.calls, scorer.max_frames, scorer.max_texts = [], 0, 0
    with pytest.raises(ModelError, match="out of memory.*frames_per_batch"):
        scorer.p_yes(_images()[:2], TEXTS[:2])
    assert scorer.calls[-1] == (1, 1)
