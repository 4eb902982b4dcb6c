"""Plain data passed between the engine's parts. No heavy imports here."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class VideoInfo:
    """What `zeal.video.probe` learns about a file without decoding it all.

    duration_s: seconds; fps: average frames per second; width/height: pixels after rotation;
    rotation: degrees clockwise the frames are turned to display upright; vfr: variable frame rate.
    """

    path: str
    duration_s: float
    n_frames: int
    fps: float
    width: int
    height: int
    rotation: int = 0
    vfr: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


@dataclass(frozen=True)
class Interval:
    """One action instance in seconds. source is "model" (proposed) or "human" (edited or added)."""

    start_s: float
    end_s: float
    label: str
    score: float
    source: str = "model"
    accepted: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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

    def to_dict(self) -> dict[str, list[float]]:
        return {k: np.asarray(v, dtype=float).round(6).tolist() for k, v in vars(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, list[float]]) -> "Curves":
        return cls(**{k: np.asarray(data[k], dtype=np.float64) for k in
                      ("start_raw", "end_raw", "actionness", "start_norm", "end_norm")})


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
        return cls(label=data["label"], query=dict(data["query"]),
                   curves=Curves.from_dict(data["curves"]),
                   intervals=[Interval(**i) for i in data.get("intervals", [])])


RESULT_FORMAT_VERSION = 1


@dataclass
class Result:
    """One analysed video: its info, the sampled times, one ClassResult per class, the settings.

    times_s: [N] float64 presentation time of every sampled frame (seconds).
    settings: the configuration the run used (plain JSON data), for reproducing it.
    """

    video: VideoInfo
    times_s: np.ndarray
    classes: dict[str, ClassResult]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def intervals(self) -> list[Interval]:
        """Every interval of every class, sorted by start time."""
        out = [i for c in self.classes.values() for i in c.intervals]
        return sorted(out, key=lambda i: (i.start_s, i.end_s, i.label))

    def to_dict(self) -> dict[str, Any]:
        return {"format_version": RESULT_FORMAT_VERSION, "video": self.video.to_dict(),
                "times_s": np.asarray(self.times_s, dtype=float).round(6).tolist(),
                "classes": {k: c.to_dict() for k, c in self.classes.items()},
                "settings": self.settings}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Result":
        return cls(video=VideoInfo(**data["video"]),
                   times_s=np.asarray(data["times_s"], dtype=np.float64),
                   classes={k: ClassResult.from_dict(c) for k, c in data["classes"].items()},
                   settings=dict(data.get("settings", {})))
