"""ClipScorer on a tiny real open_clip model (random weights, saved to a checkpoint and loaded back
through from_pretrained, as a user's local weights are). Expected values are computed here
independently with open_clip and torch."""

import json
import os

import numpy as np
import pytest
import torch

from tiny_models import TINY_CLIP_CONFIG
from zeal.errors import ModelError
from zeal.scorers.clip import ClipScorer, class_text
from zeal.scorers.device import resolve_device

NAMES = ["BaseballPitch", "CliffDiving", "Diving", "LongJump", "HighJump", "PoleVault", "Billiards"]


@pytest.fixture(scope="module")
def clip_files(tiny):
    """(open_clip name, checkpoint path) of the session's tiny CLIP."""
    return tiny.clip_model, tiny.clip_ckpt


@pytest.fixture(scope="module")
def scorer(clip_files):
    return ClipScorer.from_pretrained(*clip_files, device="cpu", batch_size=4)


@pytest.fixture(scope="module")
def reference(clip_files):
    """The same weights loaded with plain open_clip: the independent oracle."""
    import open_clip

    name, ckpt = clip_files
    model = open_clip.create_model(name)
    model.load_state_dict(torch.load(ckpt, weights_only=True))
    model.eval()
    _, _, preprocess = open_clip.create_model_and_transforms(name)
    return model, preprocess, open_clip.get_tokenizer(name)


def ref_images(reference, images):
    from PIL import Image

    model, preprocess, _ = reference
    with torch.no_grad():
        x = torch.stack([preprocess(Image.fromarray(im)) for im in images])
        f = model.encode_image(x)
    return (f / f.norm(dim=-1, keepdim=True)).numpy()


def ref_texts(reference, texts):
    model, _, tokenizer = reference
    with torch.no_grad():
        f = model.encode_text(tokenizer(texts))
    return (f / f.norm(dim=-1, keepdim=True)).numpy()


def frames(n, seed=0, shape=(48, 64)):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (*shape, 3), dtype=np.uint8) for _ in range(n)]


def test_image_embeddings_are_normalised_and_match_open_clip(scorer, reference):
    images = frames(7) + [np.zeros((20, 90, 3), np.uint8)]  # odd aspect too; 8 images, 2 batches of 4
    embs = scorer.embed_images(images)
    d = TINY_CLIP_CONFIG["embed_dim"]
    assert embs.shape == (8, d) and embs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embs, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(embs, ref_images(reference, images), atol=1e-5)
    assert np.abs(embs[0] - embs[1]).max() > 1e-3  # different frames, different features


def test_text_embeddings(scorer, reference):
    texts = ["a person dives into a pool", "Cliff Diving", "", "a person dives into a pool"]
    embs = scorer.embed_texts(texts)
    assert embs.shape == (4, TINY_CLIP_CONFIG["embed_dim"]) and embs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embs, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(embs, ref_texts(reference, texts), atol=1e-5)
    np.testing.assert_array_equal(embs[0], embs[3])
    assert scorer.embed_texts([]).shape == (0, TINY_CLIP_CONFIG["embed_dim"])
    assert scorer.embed_images([]).shape == (0, TINY_CLIP_CONFIG["embed_dim"])


def test_text_cache_bound_keeps_results_right(scorer, reference, monkeypatch):
    import zeal.scorers.clip as mod

    monkeypatch.setattr(mod, "TEXT_CACHE_SIZE", 3)
    texts = [f"text number {i}" for i in range(9)]
    np.testing.assert_allclose(scorer.embed_texts(texts), ref_texts(reference, texts), atol=1e-5)
    assert len(scorer._text_cache) <= 3


def test_class_text():
    assert class_text("CliffDiving") == "Cliff Diving"
    assert class_text("long_jump") == "long jump"
    assert class_text("HTMLParser") == "HTML Parser"
    assert class_text("Pole-Vault 2") == "Pole Vault 2"


def test_rank_and_filter_match_independent_computation(scorer, reference):
    images = frames(8, seed=3)
    embs = scorer.embed_images(images)
    img = ref_images(reference, images)
    mean = img.mean(axis=0)
    mean /= np.linalg.norm(mean)
    cos = ref_texts(reference, [class_text(n) for n in NAMES]) @ mean
    expected = [NAMES[i] for i in np.argsort(-cos, kind="stable")]
    assert expected != NAMES  # the ranking really reorders: the test can tell sorted from unsorted

    ranked = scorer.rank_classes(embs, NAMES)
    assert [n for n, _ in ranked] == expected
    np.testing.assert_allclose([s for _, s in ranked], np.sort(cos)[::-1], atol=1e-5)
    assert scorer.filter_classes(embs, NAMES, k=3) == expected[:3]
    assert scorer.filter_classes(embs, NAMES, k=1) == expected[:1]
    assert scorer.filter_classes(embs, NAMES, k=50) == expected
    with pytest.raises(ValueError):
        scorer.filter_classes(embs, NAMES, k=0)


def test_filter_finds_the_class_the_frames_look_like(scorer):
    # Frames whose features sit next to one class's text feature must rank that class first.
    target = scorer.embed_texts([class_text("PoleVault")])[0]
    rng = np.random.default_rng(0)
    embs = target + 0.05 * rng.standard_normal((8, target.size)).astype(np.float32)
    embs /= np.linalg.norm(embs, axis=1, keepdims=True)
    assert scorer.filter_classes(embs, NAMES, k=1) == ["PoleVault"]


def test_actionness_is_cosine(scorer, reference):
    images = frames(5, seed=9)
    embs = scorer.embed_images(images)
    desc = "An athlete uses a bending pole to vault over a high crossbar."
    act = scorer.actionness(embs, desc)
    assert act.shape == (5,) and act.dtype == np.float32
    expected = ref_images(reference, images) @ ref_texts(reference, [desc])[0]
    np.testing.assert_allclose(act, expected, atol=1e-5)
    assert np.all(np.abs(act) <= 1.0 + 1e-6)


def test_batch_size_does_not_change_results(clip_files):
    images = frames(5, seed=4)
    a = ClipScorer.from_pretrained(*clip_files, device="cpu", batch_size=1).embed_images(images)
    b = ClipScorer.from_pretrained(*clip_files, device="cpu", batch_size=32).embed_images(images)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_loading_twice_is_identical_and_model_id_tracks_the_file(clip_files, scorer):
    name, ckpt = clip_files
    again = ClipScorer.from_pretrained(name, ckpt, device="cpu")
    images = frames(3, seed=5)
    np.testing.assert_array_equal(again.embed_images(images), scorer.embed_images(images))
    assert again.model_id == scorer.model_id
    assert again.model_id.startswith(f"{name}/") and os.path.basename(ckpt) in again.model_id
    st = os.stat(ckpt)
    os.utime(ckpt, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    try:
        assert ClipScorer.from_pretrained(name, ckpt, device="cpu").model_id != scorer.model_id
    finally:
        os.utime(ckpt, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_bad_images(scorer):
    with pytest.raises(ValueError, match="image 1"):
        scorer.embed_images([frames(1)[0], np.zeros((8, 8), np.uint8)])
    with pytest.raises(ValueError, match="uint8"):
        scorer.embed_images([np.zeros((8, 8, 3), np.float32)])


def test_unknown_model_says_how_to_list(clip_files):
    with pytest.raises(ModelError) as info:
        ClipScorer.from_pretrained("ViT-B-61", clip_files[1], device="cpu")
    msg = str(info.value)
    assert "ViT-B-61" in msg and "open_clip.list_models()" in msg and "ViT-B-16" in msg


def test_missing_checkpoint_path(clip_files, tmp_path):
    missing = tmp_path / "no such dir" / "weights.pt"
    with pytest.raises(ModelError, match="not found") as info:
        ClipScorer.from_pretrained(clip_files[0], str(missing), device="cpu")
    assert str(missing) in str(info.value)


def test_unknown_tag_lists_tags(clip_files):
    with pytest.raises(ModelError) as info:
        ClipScorer.from_pretrained("ViT-B-16", "no_such_tag", device="cpu")
    msg = str(info.value)
    assert "no_such_tag" in msg and "laion2b_s34b_b88k" in msg and "checkpoint" in msg


def test_weights_not_on_this_machine(tmp_path, monkeypatch):
    import huggingface_hub.constants

    # No hub access: a known model and tag whose weights are not cached must fail with the fix.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelError) as info:
        ClipScorer.from_pretrained("ViT-B-16", "laion2b_s34b_b88k", device="cpu", cache_dir=str(tmp_path))
    msg = str(info.value)
    assert "ViT-B-16" in msg and "laion2b_s34b_b88k" in msg
    assert "HF_HOME" in msg and "HF_HUB_OFFLINE" in msg and "checkpoint" in msg


def test_checkpoint_of_another_architecture(clip_files, tmp_path):
    import open_clip

    wider = json.loads(json.dumps(TINY_CLIP_CONFIG))
    wider["vision_cfg"]["width"] = 48
    path = tmp_path / "zeal-tiny-ViT-wide.json"
    path.write_text(json.dumps(wider))
    open_clip.add_model_config(path)
    with pytest.raises(ModelError, match="zeal-tiny-ViT-wide") as info:
        ClipScorer.from_pretrained("zeal-tiny-ViT-wide", clip_files[1], device="cpu")
    assert "architecture" in str(info.value)


def test_device_resolution():
    if torch.cuda.is_available():
        assert resolve_device("auto") == "cuda"
    else:
        assert resolve_device("auto") in ("mps", "cpu")
        with pytest.raises(ModelError, match="CUDA is not available"):
            resolve_device("cuda")
    with pytest.raises(ModelError, match="unknown device"):
        resolve_device("tpu")
