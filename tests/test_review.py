"""The review set and carrying a person's work over to new proposals (zeal.review), interval ids,
and the ids in the exports that can hold them."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zeal.config import ProposalParams, ZealConfig
from zeal.export import export, read_intervals
from zeal.pipeline import ZealPipeline
from zeal.review import carry_over, counts, mark_review_set, select, unique_ids
from zeal.types import ClassResult, Curves, Interval, Result, VideoInfo, proposal_id


def _overlap(a: Interval, b: Interval) -> bool:
    return min(a.end_s, b.end_s) > max(a.start_s, b.start_s)


def _oracle(intervals: list[Interval]) -> set[int]:
    """The review set by plain loops: reviewed ones, then proposals greedily by score."""
    keep = {k for k, iv in enumerate(intervals) if iv.reviewed}
    order = sorted((k for k, iv in enumerate(intervals) if not iv.reviewed),
                   key=lambda k: (-intervals[k].score, intervals[k].start_s, intervals[k].end_s))
    for k in order:
        iv = intervals[k]
        if not any(intervals[j].label == iv.label and _overlap(iv, intervals[j]) for j in keep):
            keep.add(k)
    return keep


interval_st = st.builds(
    lambda s, d, label, score, state, human: Interval(
        float(s), float(s + d), label, score, "human" if human else "model",
        "accepted" if human else state),
    st.integers(0, 60), st.integers(1, 15), st.sampled_from(["A", "B"]),
    st.floats(0.0, 1.0), st.sampled_from(["unreviewed", "unreviewed", "accepted", "rejected"]), st.booleans())


@settings(max_examples=300, deadline=None)
@given(st.lists(interval_st, max_size=40))
def test_review_set_equals_the_greedy_oracle(intervals):
    marked = mark_review_set(intervals)
    assert [replace(m, in_review_set=True) for m in marked] == [replace(i, in_review_set=True) for i in intervals]
    assert {k for k, iv in enumerate(marked) if iv.in_review_set} == _oracle(intervals)
    shown = [iv for iv in marked if iv.in_review_set and not iv.reviewed]
    # one candidate per action: no two shown proposals of a class overlap, nor one and a reviewed one
    for a in shown:
        assert not any(b is not a and b.label == a.label and _overlap(a, b)
                       for b in marked if b.in_review_set)


def test_touching_intervals_do_not_overlap_and_reviewed_ones_occupy():
    ivs = [Interval(0, 10, "A", 0.9), Interval(10, 20, "A", 0.5), Interval(5, 15, "A", 0.7),
           Interval(20, 30, "A", 0.1, state="rejected"), Interval(22, 28, "A", 0.99)]
    marked = mark_review_set(ivs)
    assert [iv.in_review_set for iv in marked] == [True, True, False, True, False]


def test_with_review_set_changes_the_flag_only():
    iv = Interval(1.0, 4.0, "A", 0.3)
    out = iv.with_review_set(False)
    assert out is not iv and not out.in_review_set and iv.in_review_set
    assert replace(out, in_review_set=True) == iv and out.id == iv.id
    assert iv.with_review_set(True) is iv  # nothing to change: the same object
    with pytest.raises(ValueError, match="always in the review set"):
        Interval(1.0, 4.0, "A", 0.3, state="accepted").with_review_set(False)


def _result(intervals: list[Interval], n: int = 40) -> Result:
    labels = list(dict.fromkeys(iv.label for iv in intervals)) or ["A"]
    curves = Curves(*(np.linspace(0, 1, n) for _ in range(5)))
    classes = {lab: ClassResult(lab, {"start": "s?", "end": "e?", "description": "d"}, curves,
                                [iv for iv in intervals if iv.label == lab]) for lab in labels}
    video = VideoInfo("/v/clip.mp4", float(n), n * 25, 25.0, 64, 48)
    return Result(video, np.arange(float(n)), classes)


def test_model_ids_come_from_class_and_times_and_person_ids_are_fresh():
    assert Interval(1.0, 2.0, "A", 0.3).id == Interval(1.0, 2.0, "A", 0.9).id == proposal_id("A", 1, 2)
    assert Interval(1.0, 2.0, "A", 0.3).id != Interval(1.0, 2.5, "A", 0.3).id != Interval(1.0, 2.5, "B", 0.3).id
    a, b = Interval(1.0, 2.0, "A", 1.0, "human"), Interval(1.0, 2.0, "A", 1.0, "human")
    assert a.id != b.id and a.id.startswith("h") and a.state == "accepted"
    moved = replace(Interval(1.0, 2.0, "A", 0.3), start_s=1.5, source="human", state="accepted")
    assert moved.id == proposal_id("A", 1, 2)  # an edit keeps the identity
    twins = unique_ids([Interval(1.0, 2.0, "A", 0.3), Interval(1.0, 2.0, "A", 0.2)])
    assert len({iv.id for iv in twins}) == 2
    with pytest.raises(ValueError, match="state"):
        Interval(1.0, 2.0, "A", 0.3, state="maybe")


def test_result_format_1_reads_with_review_states():
    old = {"start_s": 1.0, "end_s": 2.0, "label": "A", "score": 0.5, "source": "model", "accepted": True}
    assert Interval.from_dict(old).state == "unreviewed"
    assert Interval.from_dict({**old, "accepted": False}).state == "rejected"
    assert Interval.from_dict({**old, "source": "human"}).state == "accepted"
    iv = Interval(1.0, 2.0, "A", 0.5, state="rejected", in_review_set=False)
    assert Interval.from_dict(json.loads(json.dumps(iv.to_dict()))) == iv


def test_carry_over_keeps_everything_a_person_touched_and_replaces_the_rest():
    accepted = Interval(1, 5, "A", 0.8, state="accepted")
    rejected = Interval(10, 14, "A", 0.6, state="rejected")
    nudged = replace(Interval(20, 25, "A", 0.7), start_s=21.0, source="human", state="accepted")
    made = Interval(30, 33, "B", 1.0, "human")
    stale = Interval(35, 38, "A", 0.4)
    old = _result([accepted, rejected, nudged, made, stale])
    deleted = Interval(2, 3, "A", 0.2)
    # the new proposals include the originals of the reviewed ones, an overlapping copy, a
    # deleted one, and one new
    new = _result([Interval(1, 5, "A", 0.9), Interval(20, 25, "A", 0.7), Interval(4, 9, "A", 0.99),
                   deleted, Interval(26, 29, "A", 0.3)])
    out, report = carry_over(old, new, suppressed={deleted.id})
    got = out.intervals
    assert {accepted, rejected, nudged, made} <= set(got)  # exactly as they were
    assert stale not in got and deleted.id not in {iv.id for iv in got}
    assert [iv.id for iv in got].count(nudged.id) == 1  # the nudged proposal does not come back beside it
    assert report.kept == 4 and report.replaced == 1 and report.proposed == 2 and report.orphaned == ("B",)
    assert "kept 4 reviewed" in report.sentence()
    fresh_shown = [iv for iv in out.intervals if not iv.reviewed and iv.in_review_set]
    assert report.shown == len(fresh_shown) and f"{len(fresh_shown)} of them in the review set" in report.sentence()
    shown = {(iv.start_s, iv.end_s) for iv in got if iv.in_review_set and not iv.reviewed}
    assert shown == {(26, 29)}  # 4-9 overlaps the accepted 1-5
    # B was not analysed this time: its curves stay while the frames are the same, else are missing
    assert out.classes["B"].curves is old.classes["B"].curves
    other_fps, _ = carry_over(old, _result([Interval(1, 5, "A", 0.9)], n=80))
    assert np.isnan(other_fps.classes["B"].curves.start_raw).all() and made in other_fps.intervals


def test_repropose_keeps_ids_and_reviews(tmp_path):
    rng = np.random.default_rng(3)
    n = 200
    curves = Curves(rng.random(n), rng.random(n), rng.random(n), np.zeros(n), np.zeros(n))
    r = _result([], n)
    r.classes["A"].curves = curves
    pipe = ZealPipeline(ZealConfig(cache_dir=str(tmp_path)), clip=object(), lvlm=object())
    first = pipe.repropose(r, ProposalParams())
    assert first.intervals and all(iv.state == "unreviewed" for iv in first.intervals)
    again = pipe.repropose(first, ProposalParams())
    assert [iv.id for iv in again.intervals] == [iv.id for iv in first.intervals]
    ivs = first.classes["A"].intervals
    target = next(iv for iv in ivs if iv.in_review_set)
    ivs[ivs.index(target)] = nudged = replace(target, end_s=target.end_s + 1, source="human", state="accepted")
    looser = pipe.repropose(first, ProposalParams(top_p=0.5, min_score=0.0))
    assert nudged in looser.intervals and [iv.id for iv in looser.intervals].count(nudged.id) == 1
    assert not any(_overlap(iv, nudged) for iv in looser.intervals if iv.in_review_set and iv is not nudged
                   and iv != nudged)


def test_select_and_counts():
    ivs = mark_review_set([Interval(0, 10, "A", 0.9), Interval(2, 8, "A", 0.5), Interval(20, 30, "A", 0.4,
                           state="rejected"), Interval(40, 42, "A", 1.0, "human")])
    r = _result(ivs)
    assert [iv.start_s for iv in select(r)] == [0, 40]
    assert [iv.start_s for iv in select(r, proposals="all")] == [0, 2, 40]
    assert [iv.start_s for iv in select(r, ("accepted",))] == [40]
    assert counts(r.intervals) == {"unreviewed": 2, "accepted": 1, "rejected": 1}
    with pytest.raises(ValueError, match="state"):
        select(r, ("yes",))


def _ids_in(path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    if path.name.endswith(".labelstudio.json"):
        return [reg["id"] for reg in json.loads(text)[0]["predictions"][0]["result"]]
    if path.name.endswith(".via.json"):
        return [key.split("_", 1)[1] for key in json.loads(text)["metadata"]]
    if path.suffix == ".vtt":
        blocks = text.split("\n\n")[1:]
        return [b.splitlines()[0] for b in blocks if b.strip()]
    return [iv.id for iv in read_intervals(path)]


@pytest.mark.parametrize("fmt", ["csv", "json", "labelstudio", "via", "webvtt"])
def test_exports_keep_interval_ids_and_the_review_set(tmp_path, fmt):
    ivs = mark_review_set([Interval(0, 10, "A", 0.9), Interval(2, 8, "A", 0.5),
                           Interval(12, 14, "A", 1.0, "human"), Interval(20, 30, "A", 0.4, state="rejected")])
    r = _result(ivs)
    hidden = next(iv for iv in ivs if not iv.in_review_set)
    want = [iv.id for iv in r.intervals if iv.in_review_set and iv.state != "rejected"]
    (path, *_) = export(r, fmt, tmp_path / "review")
    assert _ids_in(path) == want and hidden.id not in want
    (path, *_) = export(r, fmt, tmp_path / "all", proposals="all", states=("unreviewed", "accepted", "rejected"))
    assert _ids_in(path) == [iv.id for iv in r.intervals]
