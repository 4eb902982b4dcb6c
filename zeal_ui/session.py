"""One browser session's state, its file on disk, and the edits an annotator makes to a Result.

A `Session` lives in a `gr.State` (never in a module global). After every change the callbacks save
it with `SessionStore.save`, so a page reload (the browser keeps only the session id) brings the last
result back. Edits are pure functions Result -> new Result: a failed edit leaves the old one intact.
"""

from __future__ import annotations

import json
import os
import re
import threading
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from zeal.atomic import write_atomic
from zeal.errors import EvaluationError, ZealError
from zeal.evaluate import load_ground_truth
from zeal.types import ClassResult, Interval, Result
from zeal_ui.plots import flat_intervals

_SID_RE = re.compile(r"^[0-9a-f]{32}$")
SESSION_FILE = "session.json"
SESSION_FORMAT = 1
# Length of an interval added by hand at the play head before the annotator adjusts it, seconds.
DEFAULT_NEW_INTERVAL_S = 2.0


class EditError(ZealError, ValueError):
    """An interval edit the result cannot take (unknown class, end before start, ...)."""


@dataclass
class Session:
    """What one browser tab works on. `cancel` is set by the Cancel button and read by the run."""

    sid: str = field(default_factory=lambda: uuid.uuid4().hex)
    video: str | None = None
    result: Result | None = None
    ground_truth: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    selected: int | None = None
    shown_class: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    def __deepcopy__(self, memo: dict) -> "Session":
        # threading.Event cannot be deep-copied; a copy is a new session object with its own event.
        import copy

        return Session(self.sid, self.video, copy.deepcopy(self.result, memo),
                       copy.deepcopy(self.ground_truth, memo), self.selected, self.shown_class)

    def to_dict(self) -> dict[str, Any]:
        return {"format": SESSION_FORMAT, "sid": self.sid, "video": self.video,
                "result": self.result.to_dict() if self.result is not None else None,
                "ground_truth": {k: [list(p) for p in v] for k, v in self.ground_truth.items()},
                "selected": self.selected, "shown_class": self.shown_class}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Session":
        result = Result.from_dict(data["result"]) if data.get("result") else None
        return cls(sid=data["sid"], video=data.get("video"), result=result,
                   ground_truth={k: [tuple(map(float, p)) for p in v]
                                 for k, v in (data.get("ground_truth") or {}).items()},
                   selected=data.get("selected"), shown_class=data.get("shown_class"))


def valid_sid(sid: object) -> bool:
    """Session ids come back from the browser: only 32 hex digits may name a folder."""
    return isinstance(sid, str) and bool(_SID_RE.match(sid))


class SessionStore:
    """Sessions saved as root/<sid>/session.json (atomic replace), exports under root/<sid>/exports."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def folder(self, sid: str) -> Path:
        if not valid_sid(sid):
            raise ValueError(f"invalid session id {sid!r}")
        path = self.root / sid
        path.mkdir(parents=True, exist_ok=True)
        return path

    def save(self, session: Session) -> Path:
        """Write the session file atomically; returns its path."""
        folder = self.folder(session.sid)
        target = folder / SESSION_FILE
        return write_atomic(target, json.dumps(session.to_dict()), mode=0o600)  # one annotator's own work

    def load(self, sid: object) -> Session | None:
        """The saved session, or None if the id is invalid, unknown or its file unreadable."""
        if not valid_sid(sid):
            return None
        path = self.root / str(sid) / SESSION_FILE
        try:
            session = Session.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if session.video and not Path(session.video).is_file():
            session.video = None  # the upload was cleaned away; the result is still worth having
        return session


# --- edits ---------------------------------------------------------------------------------------

def sampling_step(result: Result) -> float:
    """Seconds between two sampled frames (median, so one VFR gap does not matter)."""
    t = np.asarray(result.times_s, dtype=np.float64)
    if len(t) < 2:
        return 1.0
    return float(np.median(np.diff(t)))


def _with_intervals(result: Result, label: str, intervals: list[Interval]) -> Result:
    classes = dict(result.classes)
    old = classes[label]
    classes[label] = ClassResult(old.label, old.query, old.curves, sorted(intervals, key=lambda i: i.start_s))
    return Result(result.video, result.times_s, classes, result.settings)


def _check(iv: Interval, result: Result) -> Interval:
    if iv.label not in result.classes:
        raise EditError(f"class {iv.label!r} is not in this result; use one of: {', '.join(result.classes)}")
    duration = float(result.video.duration_s)
    start, end = max(0.0, float(iv.start_s)), min(duration, float(iv.end_s))
    if not (np.isfinite(start) and np.isfinite(end)) or end <= start:
        raise EditError(f"interval {iv.label} {iv.start_s:.2f}-{iv.end_s:.2f} s: the end must be after the "
                        f"start, both within 0-{duration:.2f} s")
    return replace(iv, start_s=start, end_s=end)


def index_of(result: Result, iv: Interval) -> int | None:
    """Row of an interval (by value) in flat_intervals(result), or None."""
    for row, (_, _, other) in enumerate(flat_intervals(result)):
        if other == iv:
            return row
    return None


def replace_interval(result: Result, row: int, new: Interval) -> tuple[Result, int]:
    """Result with the interval at `row` of flat_intervals replaced; returns (result, its new row).
    A change of time or label makes it human-made; a change of the decision alone does not."""
    flat = flat_intervals(result)
    if not 0 <= row < len(flat):
        raise EditError(f"no interval number {row}; the table has {len(flat)}")
    label, idx, old = flat[row]
    if (new.start_s, new.end_s, new.label) != (old.start_s, old.end_s, old.label):
        new = replace(new, source="human")
    new = _check(new, result)
    kept = [iv for i, iv in enumerate(result.classes[label].intervals) if i != idx]
    out = _with_intervals(result, label, kept)
    out = _with_intervals(out, new.label, list(out.classes[new.label].intervals) + [new])
    return out, index_of(out, new)


def add_interval(result: Result, label: str, start_s: float, end_s: float) -> tuple[Result, int]:
    """Result with one more human-made, accepted interval; returns (result, its row)."""
    new = _check(Interval(float(start_s), float(end_s), label, 1.0, "human"), result)
    out = _with_intervals(result, label, list(result.classes[label].intervals) + [new])
    return out, index_of(out, new)


def nudge(result: Result, row: int, edge: str, delta_s: float) -> tuple[Result, int]:
    """Move the start or end ("start"/"end") of the interval at `row` by delta_s seconds."""
    _, _, iv = flat_intervals(result)[row]
    moved = replace(iv, start_s=iv.start_s + delta_s) if edge == "start" else replace(iv, end_s=iv.end_s + delta_s)
    return replace_interval(result, row, moved)


TABLE_HEADERS = ["#", "accept", "start (s)", "end (s)", "class", "score", "source"]


def table_rows(result: Result | None) -> list[list[Any]]:
    """The intervals table: one row per interval of flat_intervals (the '#' column is its row)."""
    if result is None:
        return []
    return [[row, iv.accepted, round(iv.start_s, 3), round(iv.end_s, 3), iv.label, round(iv.score, 3), iv.source]
            for row, (_, _, iv) in enumerate(flat_intervals(result))]


def _cell_float(value: Any, what: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise EditError(f"{what} {value!r} is not a number of seconds") from None
    if not np.isfinite(out):
        raise EditError(f"{what} {value!r} is not a number of seconds")
    return out


def _cell_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes", "y", "✓", "x"}
    return bool(value)


def apply_table(result: Result, rows: Sequence[Sequence[Any]]) -> Result:
    """The result after the annotator's edits in the intervals table.

    A row with a known '#' updates that interval (time/label change -> source human); a row whose
    '#' is empty is a new human interval; an interval whose '#' no longer appears is deleted; blank
    rows are ignored. Any bad cell raises EditError naming the row, and nothing changes."""
    flat = flat_intervals(result)
    seen: set[int] = set()
    per_class: dict[str, list[Interval]] = {label: [] for label in result.classes}
    for n, row in enumerate(rows, start=1):
        cells = list(row) + [None] * (len(TABLE_HEADERS) - len(row))
        ref, accepted, start, end, label = cells[:5]
        if all(c in (None, "") or (isinstance(c, float) and np.isnan(c)) for c in (start, end, label)):
            continue
        where = f"row {n}"
        label = str(label or "").strip()
        start_s, end_s = _cell_float(start, f"{where}: start"), _cell_float(end, f"{where}: end")
        has_ref = ref not in (None, "") and not (isinstance(ref, float) and np.isnan(ref))
        if has_ref:
            try:
                i = int(float(ref))
            except (TypeError, ValueError):
                raise EditError(f"{where}: '#' must be the interval's number; leave it empty for a new one") from None
            if not 0 <= i < len(flat) or i in seen:
                raise EditError(f"{where}: '#' {ref} is not one of this table's intervals")
            seen.add(i)
            old = flat[i][2]
            new = replace(old, state="accepted" if _cell_bool(accepted) else "rejected" if old.accepted or not _cell_bool(accepted) else old.state, start_s=start_s, end_s=end_s, label=label)
            if (round(new.start_s, 3), round(new.end_s, 3), new.label) != \
                    (round(old.start_s, 3), round(old.end_s, 3), old.label):
                new = replace(new, source="human")
            else:  # the table shows 3 decimals: an untouched row keeps its exact times
                new = replace(new, start_s=old.start_s, end_s=old.end_s)
        else:
            new = Interval(start_s, end_s, label, 1.0, "human", "rejected" if accepted is not None and not _cell_bool(accepted) else "accepted")
        new = _check(new, result) if new.source == "human" else new
        if new.label not in per_class:
            raise EditError(f"{where}: class {label!r} is not in this result; use one of: {', '.join(result.classes)}")
        per_class[new.label].append(new)
    out = result
    for label, intervals in per_class.items():
        out = _with_intervals(out, label, intervals)
    return out


def keep_decisions(old: Result, new: Result) -> Result:
    """After re-proposing: a model interval that is still proposed keeps the annotator's reject."""
    rejected = {(iv.label, round(iv.start_s, 6), round(iv.end_s, 6)) for iv in old.intervals
                if iv.source == "model" and not iv.accepted}
    if not rejected:
        return new
    out = new
    for label, cls in new.classes.items():
        ivs = [replace(iv, state="rejected") if iv.source == "model" and
               (iv.label, round(iv.start_s, 6), round(iv.end_s, 6)) in rejected else iv for iv in cls.intervals]
        out = _with_intervals(out, label, ivs)
    return out


# --- ground truth --------------------------------------------------------------------------------

def read_ground_truth(path: str | os.PathLike, video_id: str) -> dict[str, list[tuple[float, float]]]:
    """Ground-truth segments of one video, per class, in seconds, from any file
    `zeal.evaluate.load_ground_truth` reads (ActivityNet JSON, or a CSV naming video-id, t-start,
    t-end and label). A file holding one video only is used whatever its id; otherwise rows must
    match `video_id` (the file stem)."""
    gt = load_ground_truth(path)
    videos = {video for segments in gt.values() for video, _, _ in segments}
    if len(videos) > 1 and video_id not in videos:
        raise EvaluationError(f"ground truth {Path(path).name} has no segments for video {video_id!r}; "
                              f"its videos include {', '.join(sorted(videos)[:5])}")
    out: dict[str, list[tuple[float, float]]] = {}
    for label, segments in gt.items():
        for video, s, e in segments:
            if len(videos) == 1 or video == video_id:
                out.setdefault(label, []).append((s, e))
    return out
