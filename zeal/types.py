"""Plain data passed between the engine's parts. No heavy imports here."""

from __future__ import annotations

import functools
import hashlib
import math
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

# The longest time (seconds) any input may name: 1e6 s is 11.6 days, far beyond any video; a larger
# time is a mistake (1e308 would overflow every conversion to frames or milliseconds).
MAX_TIME_S = 1e6
MAX_FRAMES = 10**9  # frame counts and pixel sizes beyond this are a damaged file
MAX_SCORE = 1e6  # interval scores are about -1..1; beyond this a file was edited wrongly


def checked_number(value: Any, what: str, lo: float, hi: float) -> float:
    """`value` as a float within [lo, hi]; ValueError naming `what` and the allowed range."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{what} must be a number, got {value!r}")
    x = float(value)
    if not (math.isfinite(x) and lo <= x <= hi):
        raise ValueError(f"{what} is {value!r}: it must be a number from {lo:g} to {hi:g}")
    return x


def checked_int(value: Any, what: str, lo: int, hi: int) -> int:
    """`value` as an int within [lo, hi] (a whole float is accepted); ValueError otherwise."""
    x = checked_number(value, what, lo, hi)
    if x != int(x):
        raise ValueError(f"{what} must be a whole number, got {value!r}")
    return int(x)


@dataclass(frozen=True)
class VideoInfo:
    """What `zeal.video.probe` learns about a file without decoding it all.

    duration_s: seconds; fps: average frames per second; width/height: pixels after rotation;
    rotation: degrees clockwise the frames are turned to display upright; vfr: variable frame rate;
    max_fps: the highest frame rate of the stream (0: unknown), the most a sampling rate may be;
    warnings: what the probe found wrong with the file that the analysis works around (a
    timestamp jump), as sentences.
    """

    path: str
    duration_s: float
    n_frames: int
    fps: float
    width: int
    height: int
    rotation: int = 0
    vfr: bool = False
    max_fps: float = 0.0
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "warnings", tuple(self.warnings))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["warnings"] = list(self.warnings)
        return out

    @classmethod
    def from_dict(cls, data: Any) -> "VideoInfo":
        """From `to_dict`'s shape, every field checked (ValueError naming the field)."""
        if not isinstance(data, dict):
            raise ValueError(f"the video entry must be an object, got {type(data).__name__}")
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown video field(s) {unknown}")
        if not isinstance(data.get("path"), str):
            raise ValueError(f"video path must be a string, got {data.get('path')!r}")
        out = dict(data)
        for name in ("duration_s", "fps", "max_fps"):
            if name in data:
                out[name] = checked_number(data[name], f"video {name}", 0.0, MAX_TIME_S)
        for name in ("n_frames", "width", "height", "rotation"):
            if name in data:
                out[name] = checked_int(data[name], f"video {name}", 0, MAX_FRAMES)
        if out.get("rotation", 0) % 90:
            raise ValueError(f"video rotation must be 0, 90, 180 or 270, got {out['rotation']!r}")
        if not isinstance(data.get("vfr", False), bool):
            raise ValueError(f"video vfr must be true or false, got {data['vfr']!r}")
        warnings = data.get("warnings", [])
        if not isinstance(warnings, (list, tuple)) or not all(isinstance(w, str) for w in warnings):
            raise ValueError("video warnings must be a list of strings")
        return cls(**out)


@dataclass
class Frames:
    """A chunk of sampled frames.

    images: [n, H, W, 3] uint8 RGB, upright; times_s: [n] float64 presentation times (seconds);
    indices: [n] int64 positions in the whole sampled sequence (0 = first sampled frame).
    """

    images: np.ndarray
    times_s: np.ndarray
    indices: np.ndarray

    def __len__(self) -> int:
        return len(self.times_s)


# Review states of an interval. Every model proposal starts "unreviewed"; an interval a person made
# or edited is "accepted".
UNREVIEWED, ACCEPTED, REJECTED = "unreviewed", "accepted", "rejected"
REVIEW_STATES = (UNREVIEWED, ACCEPTED, REJECTED)
MODEL, HUMAN = "model", "human"
SOURCES = (MODEL, HUMAN)
_ID_HEX = 12  # hex digits of an interval id: 48 bits, no collision among a project's intervals


@functools.lru_cache(maxsize=1 << 16)  # a slider move proposes mostly the same intervals again
def proposal_id(label: str, start_s: float, end_s: float) -> str:
    """The id of a model proposal: the same class and times (the same sampled frames) give the
    same id, so a proposal keeps its identity when the curves are proposed again."""
    key = f"{label}\0{float(start_s):.6f}\0{float(end_s):.6f}".encode("utf-8")
    return "m" + hashlib.blake2b(key, digest_size=8).hexdigest()[:_ID_HEX]


def new_interval_id() -> str:
    """A fresh id for an interval a person made."""
    return "h" + uuid.uuid4().hex[:_ID_HEX]


@dataclass(frozen=True)
class Interval:
    """One action instance in seconds.

    source: "model" (proposed) or "human" (made or edited by a person); state: "unreviewed",
    "accepted" or "rejected"; id: stable identity that survives re-proposal, edits, saving and
    export round trips (given when empty: derived from class and times for a model proposal,
    random for a person's interval); in_review_set: whether the review set (one candidate per
    action, see zeal.review) shows this proposal. A person's interval is always in it.
    """

    start_s: float
    end_s: float
    label: str
    score: float
    source: str = MODEL
    state: str = UNREVIEWED
    id: str = ""
    in_review_set: bool = True

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"interval source {self.source!r} must be one of {', '.join(SOURCES)}")
        if self.state not in REVIEW_STATES:
            raise ValueError(f"interval state {self.state!r} must be one of {', '.join(REVIEW_STATES)}")
        if self.source == HUMAN and self.state == UNREVIEWED:  # a person's interval is never unreviewed
            object.__setattr__(self, "state", ACCEPTED)
        if self.reviewed and not self.in_review_set:  # what a person touched is always shown
            object.__setattr__(self, "in_review_set", True)
        if not self.id:
            fresh = (proposal_id(self.label, self.start_s, self.end_s) if self.source == MODEL
                     else new_interval_id())
            object.__setattr__(self, "id", fresh)

    @property
    def accepted(self) -> bool:
        return self.state == ACCEPTED

    def with_review_set(self, member: bool) -> "Interval":
        """This interval with only `in_review_set` changed. No other field changes, so none is
        checked again: a slider move re-marks thousands of proposals."""
        if member == self.in_review_set:
            return self
        if self.reviewed and not member:
            raise ValueError(f"interval {self.id}: a reviewed interval is always in the review set")
        twin = object.__new__(Interval)
        twin.__dict__.update(self.__dict__, in_review_set=member)
        return twin

    @property
    def reviewed(self) -> bool:
        """Made, edited, accepted or rejected by a person: a re-run keeps it."""
        return self.source == HUMAN or self.state != UNREVIEWED

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))  # flat fields only: much faster than asdict for thousands of intervals

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Interval":
        """From `to_dict`'s shape (or result format 1's `accepted` flag), every field checked: a
        ValueError names the field, so a hand-edited file is never read the wrong way."""
        if not isinstance(data, dict):
            raise ValueError(f"an interval must be an object, got {type(data).__name__}")
        data = dict(data)
        unknown = sorted(set(data) - set(cls.__dataclass_fields__) - {"accepted"})
        if unknown:
            raise ValueError(f"unknown interval field(s) {unknown}")
        for name in ("label", "source", "state", "id"):
            if name in data and not isinstance(data[name], str):
                raise ValueError(f"interval {name} must be a string, got {data[name]!r}")
        for name in ("accepted", "in_review_set"):
            if name in data and not isinstance(data[name], bool):
                raise ValueError(f"interval {name} must be true or false, got {data[name]!r}")
        where = f"interval of {data.get('label')!r}"
        for name in ("start_s", "end_s"):
            data[name] = checked_number(data.get(name), f"{where}: {name}", 0.0, MAX_TIME_S)
        data["score"] = checked_number(data.get("score"), f"{where}: score", -MAX_SCORE, MAX_SCORE)
        if "accepted" in data:  # result format 1: a bool; model proposals were accepted by default
            accepted = data.pop("accepted")
            source = data.get("source", MODEL)
            data.setdefault("state", REJECTED if not accepted else ACCEPTED if source == HUMAN else UNREVIEWED)
        return cls(**data)


@dataclass
class Curves:
    """The per-frame signals of one class, all [N] over the sampled frames.

    start_raw / end_raw: P(yes) of the start / end question in (0, 1);
    start_norm / end_norm: the same after the modified min-max of step 5;
    actionness: raw CLIP cosine similarity with the class description.
    """

    start_raw: np.ndarray
    end_raw: np.ndarray
    actionness: np.ndarray
    start_norm: np.ndarray
    end_norm: np.ndarray

    def to_dict(self) -> dict[str, list[float | None]]:
        """Lists of floats, None for a missing sample (JSON has no NaN)."""
        out = {}
        for k, v in vars(self).items():
            arr = np.asarray(v, dtype=float).round(6)
            out[k] = [None if x != x else x for x in arr.tolist()]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, list[float | None]]) -> "Curves":
        curves = {}
        for k in ("start_raw", "end_raw", "actionness", "start_norm", "end_norm"):
            values = data[k]
            if not isinstance(values, list) or not all(v is None or (isinstance(v, (int, float)) and not
                                                                     isinstance(v, bool)) for v in values):
                raise ValueError(f"curve {k} must be a list of numbers (null for a missing sample)")
            arr = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
            if np.isinf(arr).any():
                raise ValueError(f"curve {k} holds an infinite value")
            curves[k] = arr
        return cls(**curves)


@dataclass
class ClassResult:
    """Everything the engine produced for one class of one video."""

    label: str
    query: dict[str, str]
    curves: Curves
    intervals: list[Interval] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "query": dict(self.query), "curves": self.curves.to_dict(),
                "intervals": [i.to_dict() for i in self.intervals]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ClassResult":
        if not isinstance(data, dict) or not isinstance(data.get("label"), str):
            raise ValueError("a class entry must be an object with a string label")
        if not isinstance(data.get("query"), dict) or not all(isinstance(v, str) for v in data["query"].values()):
            raise ValueError(f"class {data['label']!r}: query must map start/end/description to strings")
        if not isinstance(data.get("intervals", []), list):
            raise ValueError(f"class {data['label']!r}: intervals must be a list")
        return cls(label=data["label"], query=dict(data["query"]),
                   curves=Curves.from_dict(data["curves"]),
                   intervals=[Interval.from_dict(i) for i in data.get("intervals", [])])


# Columns of a predictions CSV (what `zeal batch` writes and `zeal eval` reads), in order.
PREDICTION_COLUMNS = ("video-id", "t-start", "t-end", "label", "score")

# 2: intervals carry id, state (was: accepted) and in_review_set, and the result its RunInfo ("run");
# format 1 still reads.
RESULT_FORMAT_VERSION = 2


@dataclass
class RunInfo:
    """How a result came about, beyond the settings.

    video_hash: content hash of the video; models: {"clip": model_id, "lvlm": model_id} of the scorers
    that produced every score; known_classes: CLIP filtering was skipped; ranking: CLIP's (class,
    score) ranking, best first, when classes were filtered; stats: questions scored / reused from the
    cache and the LVLM scorer's counters during the run; run_key: hash of everything the result
    depends on (video, settings, models, questions), what a resumed batch compares.
    """

    video_hash: str
    models: dict[str, str]
    known_classes: bool
    run_key: str
    ranking: list[tuple[str, float]] | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    skipped: list[tuple[float, float]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ranking"] = None if self.ranking is None else [[n, float(v)] for n, v in self.ranking]
        out["skipped"] = [[float(a), float(b)] for a, b in self.skipped]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunInfo":
        ranking = data.get("ranking")
        warnings = data.get("warnings") or []
        if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
            raise ValueError("run warnings must be a list of strings")
        skipped = [(checked_number(a, "skipped stretch start", 0.0, MAX_TIME_S),
                    checked_number(b, "skipped stretch end", 0.0, MAX_TIME_S)) for a, b in data.get("skipped") or []]
        return cls(video_hash=str(data["video_hash"]), models=dict(data.get("models") or {}),
                   known_classes=bool(data.get("known_classes", False)), run_key=str(data.get("run_key", "")),
                   ranking=None if ranking is None else [(str(n), float(v)) for n, v in ranking],
                   stats=dict(data.get("stats") or {}), skipped=skipped, warnings=list(warnings))


@dataclass
class Result:
    """One analysed video: its info, the sampled times, one ClassResult per class, the settings.

    times_s: [N] float64 presentation time of every sampled frame (seconds).
    settings: the configuration the run used (plain JSON data, `ZealConfig.to_dict`), for reproducing it.
    run: how the result came about (None for a result assembled by hand).
    """

    video: VideoInfo
    times_s: np.ndarray
    classes: dict[str, ClassResult]
    settings: dict[str, Any] = field(default_factory=dict)
    run: RunInfo | None = None

    @property
    def intervals(self) -> list[Interval]:
        """Every interval of every class, sorted by start time."""
        out = [i for c in self.classes.values() for i in c.intervals]
        return sorted(out, key=lambda i: (i.start_s, i.end_s, i.label))

    def to_dict(self) -> dict[str, Any]:
        return {"format_version": RESULT_FORMAT_VERSION, "video": self.video.to_dict(),
                "times_s": np.asarray(self.times_s, dtype=float).round(6).tolist(),
                "classes": {k: c.to_dict() for k, c in self.classes.items()},
                "settings": self.settings, "run": None if self.run is None else self.run.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Result":
        """From `to_dict`'s shape; ValueError (or KeyError for a missing part) on anything else."""
        if not isinstance(data, dict):
            raise ValueError(f"a result must be an object, got {type(data).__name__}")
        times = data["times_s"]
        if not isinstance(times, list):
            raise ValueError("times_s must be a list of seconds")
        times_s = np.array([checked_number(t, "a sampled time", 0.0, MAX_TIME_S) for t in times], dtype=np.float64)
        if not isinstance(data["classes"], dict):
            raise ValueError("classes must be an object keyed by class name")
        classes = {k: ClassResult.from_dict(c) for k, c in data["classes"].items()}
        for label, cls_result in classes.items():
            if len(cls_result.curves.start_raw) != len(times_s):
                raise ValueError(f"class {label!r} has curves of {len(cls_result.curves.start_raw)} samples for "
                                 f"{len(times_s)} sampled times")
        return cls(video=VideoInfo.from_dict(data["video"]), times_s=times_s, classes=classes,
                   settings=dict(data.get("settings", {})),
                   run=RunInfo.from_dict(data["run"]) if data.get("run") else None)
