"""The whole engine on a real clip with tiny real-architecture models: run, cache, re-propose, cancel.

Scores recomputed in a different batch (one question alone, a chunk started midway) differ from the
first computation by about 1e-6 in float32, hence the 1e-5 tolerance where that happens."""

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from tiny_models import single_thread, tiny_config
from zeal.cache import ScoreCache
from zeal.config import ProposalParams, ZealConfig, with_overrides
from zeal.pipeline import Cancelled, ZealPipeline
from zeal.queries import lookup

CLIP_FILE = "tests_data_test.mp4"  # 10 s, 30 fps, 340x256: pool cleaning
CLASSES = ["CliffDiving", "Diving"]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with single_thread():
        yield


def make_config(tiny, arch, cache_dir) -> ZealConfig:
    return tiny_config(tiny, cache_dir, arch, lvlm={"frames_per_batch": 2},
                       video={"fps": 2.0, "max_side": 128, "chunk": 4})


def questions(result) -> tuple[int, int]:
    """(questions scored by the model, questions reused from the cache) of a run."""
    return result.run.stats["questions_scored"], result.run.stats["questions_cached"]


@pytest.fixture
def video(data_dir):
    return str(data_dir / CLIP_FILE)


@pytest.mark.parametrize("arch", ["qwen2_vl", "llava_onevision"])
def test_full_run_on_a_real_clip(tiny, arch, video, tmp_path):
    pipe = ZealPipeline.from_config(make_config(tiny, arch, tmp_path / "cache"))
    stages = []
    result = pipe.run(video, classes=CLASSES, known_classes=True,
                      progress=lambda stage, done, total: stages.append((stage, done, total)))
    assert set(result.classes) == set(CLASSES)
    n = len(result.times_s)
    assert 19 <= n <= 21  # 10 s at 2 fps
    assert np.all(np.diff(result.times_s) > 0) and result.times_s[-1] <= result.video.duration_s
    for cls in result.classes.values():
        c = cls.curves
        for curve in (c.start_raw, c.end_raw, c.actionness, c.start_norm, c.end_norm):
            assert curve.shape == (n,) and np.all(np.isfinite(curve))
        assert np.all((c.start_raw > 0) & (c.start_raw < 1))
        assert not np.allclose(c.start_raw, c.end_raw)  # two different questions, two curves
        for iv in cls.intervals:
            assert 0 <= iv.start_s < iv.end_s <= result.video.duration_s and iv.label == cls.label
    frames_done = [d for s, d, t in stages if s == "scoring frames"]
    assert frames_done == sorted(frames_done) and frames_done[-1] == n
    assert questions(result) == (4, 0)
    assert result.run.stats["lvlm"]["pairs"] == 4 * n  # the scorer's own counters during the run
    from zeal.video import video_hash

    assert result.run.video_hash == video_hash(video)


def test_second_run_costs_no_model_and_one_edit_rescores_one_question(tiny, video, tmp_path):
    cfg = make_config(tiny, "qwen2_vl", tmp_path / "cache")
    first = ZealPipeline.from_config(cfg).run(video, classes=CLASSES, known_classes=True)

    again = ZealPipeline.from_config(cfg)
    second = again.run(video, classes=CLASSES, known_classes=True)
    assert again.models_loaded() == {"clip": False, "lvlm": False}
    assert questions(second) == (0, 4)
    np.testing.assert_array_equal(second.times_s, first.times_s)
    for name in CLASSES:
        np.testing.assert_array_equal(second.classes[name].curves.start_raw, first.classes[name].curves.start_raw)
        assert second.classes[name].intervals == first.classes[name].intervals

    edited = lookup(CLASSES)
    q = edited["Diving"]
    edited = edited.replace(type(q)(q.name, "Is the diver in the air above the pool?", q.end, q.description))
    third = ZealPipeline.from_config(cfg).run(video, queries=edited, known_classes=True)
    assert questions(third) == (1, 3)
    np.testing.assert_array_equal(third.classes["Diving"].curves.end_raw, first.classes["Diving"].curves.end_raw)
    assert not np.array_equal(third.classes["Diving"].curves.start_raw, first.classes["Diving"].curves.start_raw)


def test_repropose_needs_no_model_and_keeps_human_intervals(tiny, video, tmp_path):
    cfg = make_config(tiny, "qwen2_vl", tmp_path / "cache")
    result = ZealPipeline.from_config(cfg).run(video, classes=CLASSES, known_classes=True)
    offline = ZealPipeline.from_config(with_overrides(cfg, lvlm={"model": str(tmp_path / "no-such-model")}))
    from zeal.types import Interval

    human = Interval(1.0, 2.0, "Diving", 1.0, source="human")
    result.classes["Diving"].intervals.append(human)
    loose = offline.repropose(result, ProposalParams(top_p=0.6, min_score=0.0))
    strict = offline.repropose(result, ProposalParams(top_p=0.1))
    assert offline.models_loaded() == {"clip": False, "lvlm": False}
    assert human in loose.classes["Diving"].intervals and human in strict.classes["Diving"].intervals
    count = lambda r: sum(len(c.intervals) for c in r.classes.values())
    assert count(loose) > count(strict)
    assert loose.settings["proposals"]["top_p"] == 0.6


def test_cancel_keeps_partial_scores_and_the_rerun_resumes(tiny, video, tmp_path):
    cfg = make_config(tiny, "qwen2_vl", tmp_path / "cache")
    scored = {"frames": 0}

    def progress(stage, done, total):
        if stage == "scoring frames":
            scored["frames"] = done

    def cancel_after_two_chunks():  # asked before each chunk and while waiting for the decoder
        return scored["frames"] >= 8

    with pytest.raises(Cancelled):
        ZealPipeline.from_config(cfg).run(video, classes=CLASSES, known_classes=True, progress=progress,
                                          cancel=cancel_after_two_chunks)
    entries = list(Path(cfg.cache_dir).rglob("*.npz"))
    assert entries, "a cancelled run must leave its partial scores in the cache"
    partial = [ScoreCache(cfg.cache_dir).get(p.stem) for p in entries]
    assert any(e is not None and not e.complete and len(e) == 8 for e in partial)  # 2 chunks of 4 frames

    resumed = ZealPipeline.from_config(cfg).run(video, classes=CLASSES, known_classes=True)
    fresh = ZealPipeline.from_config(make_config(tiny, "qwen2_vl", tmp_path / "fresh")).run(
        video, classes=CLASSES, known_classes=True)
    for name in CLASSES:
        np.testing.assert_allclose(resumed.classes[name].curves.start_raw, fresh.classes[name].curves.start_raw,
                                   atol=1e-5)
        assert resumed.classes[name].intervals == fresh.classes[name].intervals


def test_corrupt_cache_entry_is_recomputed_with_a_warning(tiny, video, tmp_path, caplog):
    cfg = make_config(tiny, "qwen2_vl", tmp_path / "cache")
    first = ZealPipeline.from_config(cfg).run(video, classes=CLASSES, known_classes=True)
    for victim in Path(cfg.cache_dir).rglob("*.npz"):  # every entry: curves, actionness, CLIP embeddings
        victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    with caplog.at_level(logging.WARNING, logger="zeal.cache"):
        second = ZealPipeline.from_config(cfg).run(video, classes=CLASSES, known_classes=True)
    assert any("recomputed" in r.message for r in caplog.records)
    for name in CLASSES:
        np.testing.assert_allclose(second.classes[name].curves.start_raw, first.classes[name].curves.start_raw,
                                   atol=1e-5)


def test_clip_keeps_the_top_k_classes_when_they_are_not_known(tiny, video, tmp_path):
    cfg = with_overrides(make_config(tiny, "qwen2_vl", tmp_path / "cache"), clip={"top_k": 2})
    names = ["CliffDiving", "Diving", "Billiards", "GolfSwing"]
    pipe = ZealPipeline.from_config(cfg)
    ranking = pipe.rank_classes(video, names)
    assert sorted(n for n, _ in ranking) == sorted(names)
    assert [s for _, s in ranking] == sorted((s for _, s in ranking), reverse=True)
    result = pipe.run(video, classes=names)
    assert list(result.classes) == [n for n, _ in ranking[:2]]
    assert result.run.ranking == ranking


def test_a_copied_video_hits_the_same_cache(tiny, video, tmp_path):
    cfg = make_config(tiny, "qwen2_vl", tmp_path / "cache")
    ZealPipeline.from_config(cfg).run(video, classes=CLASSES, known_classes=True)
    copy = tmp_path / "renamed copy é.mp4"
    shutil.copy(video, copy)
    again = ZealPipeline.from_config(cfg)
    result = again.run(str(copy), classes=CLASSES, known_classes=True)
    assert result.run.stats["questions_scored"] == 0 and not any(again.models_loaded().values())


def test_a_new_description_needs_clip_only_and_no_decoding(tiny, video, tmp_path, monkeypatch):
    cfg = make_config(tiny, "qwen2_vl", tmp_path / "cache")
    first = ZealPipeline.from_config(cfg).run(video, classes=CLASSES, known_classes=True)
    import zeal.video

    def no_decoding(*args, **kwargs):
        raise AssertionError("the video was decoded although every frame's scores were cached")

    monkeypatch.setattr(zeal.video, "sample", no_decoding)
    edited = lookup(CLASSES)
    q = edited["Diving"]
    edited = edited.replace(type(q)(q.name, q.start, q.end, "Someone dives head first into a swimming pool."))
    pipe = ZealPipeline.from_config(cfg)
    second = pipe.run(video, queries=edited, known_classes=True)
    assert pipe.models_loaded() == {"clip": True, "lvlm": False}
    assert second.run.stats["questions_scored"] == 0
    np.testing.assert_array_equal(second.classes["CliffDiving"].curves.actionness,
                                  first.classes["CliffDiving"].curves.actionness)
    assert not np.allclose(second.classes["Diving"].curves.actionness, first.classes["Diving"].curves.actionness)


def test_the_cache_is_keyed_on_the_injected_scorers_own_model_id(tiny, video, tmp_path):
    """Two scorers passed in with the same configuration and cache: each gets its own scores."""
    from zeal.scorers.local import LVLMScorer

    cfg = make_config(tiny, "qwen2_vl", tmp_path / "cache")
    qwen = LVLMScorer.from_pretrained(tiny.lvlm("qwen2_vl"), device="cpu")
    llava = LVLMScorer.from_pretrained(tiny.lvlm("llava_onevision"), device="cpu")
    first = ZealPipeline(cfg, lvlm=LVLMScorer(qwen.model, qwen.processor, "model A")).run(
        video, classes=CLASSES, known_classes=True)
    other = ZealPipeline(cfg, lvlm=LVLMScorer(llava.model, llava.processor, "model B")).run(
        video, classes=CLASSES, known_classes=True)
    assert questions(other) == (4, 0) and other.run.models["lvlm"] == "model B|answers=all"
    assert not np.allclose(other.classes["Diving"].curves.start_raw, first.classes["Diving"].curves.start_raw)
    again = ZealPipeline(cfg, lvlm=LVLMScorer(qwen.model, qwen.processor, "model A")).run(
        video, classes=CLASSES, known_classes=True)
    assert questions(again) == (0, 4)
    np.testing.assert_array_equal(again.classes["Diving"].curves.start_raw, first.classes["Diving"].curves.start_raw)


def test_paper_preset_is_the_published_setting():
    import textwrap

    from zeal.config import PROMPT_TEMPLATE, get_preset, list_presets
    from zeal.queries import prompt_text

    paper = get_preset("paper")
    label, question = "CliffDiving", "Is the person standing on the edge of a cliff above water?"
    # the published stage 4 sends a dedented triple-quoted f-string
    published = textwrap.dedent(f"""
            This is a frame from a video of {label}.
            {question} Only answer yes or no.
        """)
    assert prompt_text(label, question, paper.lvlm.prompt_template) == published
    assert paper.lvlm.prompt_template == "\nThis is a frame from a video of {label}.\n{question} Only answer yes or no.\n"
    assert paper.lvlm.answer_spellings == "exact" and paper.lvlm.model == "llava-hf/llava-onevision-qwen2-7b-ov-hf"
    assert (paper.clip.model, paper.clip.pretrained) == ("EVA02-E-14-plus", "laion2b_s9b_b144k")
    assert (paper.clip.filter_text, paper.clip.top_k, paper.clip.n_filter_frames) == ("description", 3, 8)
    assert paper.video.fps == 1.0 and paper.video.max_side is None  # full-size frames, as decord gives them
    for name in set(list_presets()) - {"paper"}:  # the others keep our choices
        other = get_preset(name)
        assert (other.lvlm.prompt_template, other.lvlm.answer_spellings, other.clip.filter_text) == \
            (PROMPT_TEMPLATE, "all", "name")


@pytest.mark.parametrize("filter_text", ["description", "name"])
def test_class_filtering_ranks_the_mean_of_8_frames_against_names_or_descriptions(tiny, video, tmp_path, filter_text):
    """The published stage 3: the frames at indices linspace(0, N-1, 8) truncated, their mean CLIP
    feature, dot the classes' description features (or, by default, their names' features)."""
    from zeal.scorers.clip import ClipScorer, class_text
    from zeal.video import expected_samples, frames_at, probe

    cfg = tiny_config(tiny, tmp_path / "cache", clip={"filter_text": filter_text, "top_k": 2},
                      video={"fps": 2.0, "max_side": 128})
    names = ["CliffDiving", "Diving", "Billiards", "GolfSwing", "LongJump"]
    queries = lookup(names)
    result = ZealPipeline.from_config(cfg).run(video, queries=queries)
    n = expected_samples(probe(video), 2.0)  # 10 s at 2 fps: 21 frames
    idx = [int(i) for i in np.linspace(0, n - 1, 8)]
    assert idx == [0, 2, 5, 8, 11, 14, 17, 20]  # truncated, not rounded (rounding gives 3, 6, 9, ...)
    clip = ClipScorer.from_pretrained(tiny.clip_model, tiny.clip_ckpt, device="cpu")
    feats = clip.embed_images(list(frames_at(video, np.array(idx) / 2.0, max_side=128).images))
    texts = [queries[c].description if filter_text == "description" else class_text(c) for c in names]
    dots = clip.embed_texts(texts) @ feats.mean(axis=0)
    want = [names[i] for i in np.argsort(-dots, kind="stable")]
    assert [name for name, _ in result.run.ranking] == want
    assert list(result.classes) == want[:2]
    scale = np.linalg.norm(feats.mean(axis=0))  # the ranking scores are cosines: the dot over |mean|
    np.testing.assert_allclose([s for _, s in result.run.ranking], np.sort(dots)[::-1] / scale, atol=1e-5)
