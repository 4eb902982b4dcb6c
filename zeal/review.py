"""What an annotator reviews: the review set, and a person's work carried over to new proposals.

The paper's proposal set is made for mAP: many overlapping, decayed copies of each action. An
annotator needs one candidate per action, so per class the *review set* holds every reviewed
interval (made, edited, accepted or rejected by a person) and, in descending score, each
unreviewed model proposal that overlaps neither a reviewed interval nor a proposal already in the
set. Membership is decided when proposals are made (`mark_review_set`) and stored on the interval,
so editing one interval never makes a hidden proposal appear under the annotator's hand.

Re-proposing (a slider move) or re-running (an edited question) replaces only unreviewed model
proposals; everything a person touched stays, by id (`carry_over`). Plain Python, no heavy imports.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field, replace
from operator import attrgetter
from typing import Any, Iterable, Sequence

import numpy as np

from zeal.types import ACCEPTED, REVIEW_STATES, UNREVIEWED, ClassResult, Curves, Interval, Result

# Which proposals an export or a view holds: the review set, or the paper's full set.
PROPOSAL_SETS = ("review", "all")
# The intervals exported unless told otherwise: everything not rejected.
NOT_REJECTED = (UNREVIEWED, ACCEPTED)


@dataclass(frozen=True)
class CarryOver:
    """What a re-proposal did: kept = intervals a person touched (kept as they were), replaced =
    unreviewed proposals dropped, proposed = new unreviewed proposals (the paper's full set),
    shown = how many of those the review set shows, orphaned = classes no longer analysed whose
    reviewed intervals were kept (without curves)."""

    kept: int
    replaced: int
    proposed: int
    orphaned: tuple[str, ...] = ()
    shown: int | None = None

    def sentence(self) -> str:
        text = (f"kept {self.kept} reviewed interval(s), replaced {self.replaced} unreviewed proposal(s) "
                f"with {self.proposed} new one(s)")
        if self.shown is not None:
            text += f", {self.shown} of them in the review set"
        if self.orphaned:
            text += f"; kept the reviewed intervals of {', '.join(self.orphaned)} (no longer analysed)"
        return text


class _Spans:
    """Non-overlapping [start, end) spans sorted by start: does a new span overlap any of them?"""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.ends: list[float] = []

    def overlaps(self, start: float, end: float) -> bool:
        i = bisect.bisect_left(self.starts, end)  # spans [0, i) start before `end`
        return i > 0 and self.ends[i - 1] > start

    def add(self, start: float, end: float) -> None:
        i = bisect.bisect_left(self.starts, start)
        self.starts.insert(i, start)
        self.ends.insert(i, end)


def _union(spans: Iterable[tuple[float, float]]) -> _Spans:
    out = _Spans()
    for start, end in sorted(spans):
        if out.starts and start < out.ends[-1]:
            out.ends[-1] = max(out.ends[-1], end)
        else:
            out.starts.append(start)
            out.ends.append(end)
    return out


def mark_review_set(intervals: Sequence[Interval]) -> list[Interval]:
    """The same intervals (in the same order) with `in_review_set` decided, class by class.

    Reviewed intervals are in the set and occupy their span; unreviewed model proposals join in
    descending score (ties: earlier start, then earlier end) when they overlap no occupied span and
    no proposal already kept. Intervals that only touch (one ends where the other starts) do not
    overlap."""
    out = list(intervals)
    by_label: dict[str, tuple[list[int], list[int]]] = {}  # label -> (reviewed rows, unreviewed rows)
    for k, iv in enumerate(out):
        by_label.setdefault(iv.label, ([], []))[0 if iv.reviewed else 1].append(k)
    for reviewed, unreviewed in by_label.values():
        occupied = _union((out[k].start_s, out[k].end_s) for k in reviewed)
        for k in reviewed:
            out[k] = out[k].with_review_set(True)
        kept = _Spans()
        for _, start, end, k in sorted((-out[k].score, out[k].start_s, out[k].end_s, k) for k in unreviewed):
            keep = not occupied.overlaps(start, end) and not kept.overlaps(start, end)
            if keep:
                kept.add(start, end)
            out[k] = out[k].with_review_set(keep)
    return out


def unique_ids(intervals: Sequence[Interval]) -> list[Interval]:
    """Proposals of identical class and times share an id; give each repeat its own (id-2, id-3)."""
    seen: dict[str, int] = {}
    out = []
    for iv in intervals:
        n = seen.get(iv.id, 0) + 1
        seen[iv.id] = n
        out.append(iv if n == 1 else replace(iv, id=f"{iv.id}-{n}"))
    return out


def _missing_curves(n: int) -> Curves:
    nan = np.full(n, np.nan)
    return Curves(nan, nan.copy(), nan.copy(), nan.copy(), nan.copy())


def carry_over(old: Result | None, new: Result, suppressed: Iterable[str] = ()) -> tuple[Result, CarryOver]:
    """`new`'s proposals with a person's work from `old` kept.

    Every reviewed interval of `old` stays exactly as it was (id, times, class, state); a new
    proposal whose id is taken by one of them, or is in `suppressed` (proposals the person
    deleted), is left out; unreviewed proposals of `old` are replaced by those of `new`. A class
    that `new` no longer analyses keeps its reviewed intervals, with missing (NaN) curves when the
    sampled frames differ. The review set is decided again for the whole result."""
    old_intervals = [iv for cls in old.classes.values() for iv in cls.intervals] if old is not None else []
    kept = [iv for iv in old_intervals if iv.reviewed]
    taken = {iv.id for iv in kept} | set(suppressed)
    classes = {}
    proposed = shown = 0
    for label, cls in new.classes.items():
        fresh = [iv for iv in cls.intervals if not iv.reviewed and iv.id not in taken]
        proposed += len(fresh)
        mine = [iv for iv in kept if iv.label == label]
        marked = mark_review_set(mine + fresh)
        shown += sum(1 for iv in marked[len(mine):] if iv.in_review_set)
        classes[label] = ClassResult(cls.label, cls.query, cls.curves, _sorted(marked))
    orphaned = []
    for label in dict.fromkeys(iv.label for iv in kept if iv.label not in new.classes):
        source = old.classes.get(label) if old is not None else None
        same_frames = source is not None and len(source.curves.start_raw) == len(new.times_s)
        curves = source.curves if same_frames else _missing_curves(len(new.times_s))
        query = dict(source.query) if source is not None else {}
        classes[label] = ClassResult(label, query, curves, _sorted([iv for iv in kept if iv.label == label]))
        orphaned.append(label)
    replaced = sum(1 for iv in old_intervals if not iv.reviewed)
    report = CarryOver(kept=len(kept), replaced=replaced, proposed=proposed, orphaned=tuple(orphaned), shown=shown)
    return Result(new.video, new.times_s, classes, new.settings, new.run), report


def _sorted(intervals: list[Interval]) -> list[Interval]:
    return sorted(intervals, key=attrgetter("start_s", "end_s", "id"))


def select(result: Result, states: Sequence[str] = NOT_REJECTED, proposals: str = "review") -> list[Interval]:
    """The intervals a view or an export holds, sorted by start: those in `states`, and of the
    model's unreviewed proposals only the review set when proposals == "review"."""
    bad = [s for s in states if s not in REVIEW_STATES]
    if bad:
        raise ValueError(f"unknown review state(s) {bad}; use {', '.join(REVIEW_STATES)}")
    if proposals not in PROPOSAL_SETS:
        raise ValueError(f"proposals={proposals!r}: use one of {', '.join(PROPOSAL_SETS)}")
    return [iv for iv in result.intervals if iv.state in states
            and (proposals == "all" or iv.reviewed or iv.in_review_set)]


def counts(intervals: Iterable[Interval]) -> dict[str, int]:
    """How many intervals are in each review state."""
    out = dict.fromkeys(REVIEW_STATES, 0)
    for iv in intervals:
        out[iv.state] += 1
    return out


@dataclass
class ReviewLog:
    """What is remembered of a person's edits of one result (review.json beside the intervals).

    rev: counts applied batches and re-proposals (the page notices a change it did not make);
    deleted: ids a person deleted (a re-proposal leaves those proposals out); versions: changes
    per interval id; seqs: the last edit applied per page; undo/redo: the history, oldest first.
    """

    rev: int = 0
    deleted: set[str] = field(default_factory=set)
    versions: dict[str, int] = field(default_factory=dict)
    seqs: dict[str, int] = field(default_factory=dict)
    undo: list[dict] = field(default_factory=list)
    redo: list[dict] = field(default_factory=list)

    def to_dict(self, intervals: Sequence[dict] = ()) -> dict[str, Any]:
        return {"format": 1, "rev": self.rev, "intervals": list(intervals), "deleted": sorted(self.deleted),
                "versions": self.versions, "seqs": self.seqs, "undo": self.undo, "redo": self.redo}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ReviewLog":
        return cls(rev=int(data.get("rev", 0)), deleted=set(data.get("deleted", [])),
                   versions={str(k): int(v) for k, v in (data.get("versions") or {}).items()},
                   seqs={str(k): int(v) for k, v in (data.get("seqs") or {}).items()},
                   undo=list(data.get("undo") or []), redo=list(data.get("redo") or []))

    def history(self) -> dict[str, list[dict]]:
        return {"undo": self.undo, "redo": self.redo}
