"""A session's result as the data the workspace page draws from, sent once per run.

Curves are the bulk (5 classes x 3 curves x 14,401 frames for 4 hours at 1 fps), so each goes as
little-endian uint16 in base64: 2 bytes a sample, 1/65,534 of its range (far below a pixel), with
65,535 marking a missing sample (a frame that could not be decoded). Times go as float64 so that
edits snap to the frames' exact times. Intervals go as short arrays; see `INTERVAL_FIELDS`.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from zeal.palette import class_colors
from zeal.types import HUMAN, REVIEW_STATES, Interval, Result

MISSING_CODE = 65535
_LEVELS = 65534  # codes 0..65534 carry values; 65535 is "missing"
# The order of the fields of one interval on the page (see workspace.js: fromWire).
INTERVAL_FIELDS = ("id", "class", "start_s", "end_s", "score", "human", "state", "in_review_set", "version")


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def encode_curve(values: np.ndarray, lo: float | None = None, hi: float | None = None) -> dict[str, Any]:
    """[N] float curve -> {"lo", "hi", "data": base64 uint16}; NaN becomes MISSING_CODE."""
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    if lo is None or hi is None:
        lo = float(v[finite].min()) if finite.any() else 0.0
        hi = float(v[finite].max()) if finite.any() else 1.0
    span = hi - lo if hi > lo else 1.0
    codes = np.full(v.shape, MISSING_CODE, dtype="<u2")
    codes[finite] = np.clip(np.rint((v[finite] - lo) / span * _LEVELS), 0, _LEVELS).astype("<u2")
    return {"lo": lo, "hi": hi, "data": _b64(codes)}


def decode_curve(curve: dict[str, Any]) -> np.ndarray:
    """The inverse of encode_curve (for tests and tools): [N] float64, NaN where missing."""
    codes = np.frombuffer(base64.b64decode(curve["data"]), dtype="<u2")
    span = curve["hi"] - curve["lo"] if curve["hi"] > curve["lo"] else 1.0
    out = curve["lo"] + codes.astype(np.float64) / _LEVELS * span
    out[codes == MISSING_CODE] = np.nan
    return out


def wire_interval(iv: Interval, class_index: dict[str, int], version: int) -> list:
    return [iv.id, class_index[iv.label], iv.start_s, iv.end_s, round(float(iv.score), 6),
            int(iv.source == HUMAN), REVIEW_STATES.index(iv.state), int(iv.in_review_set), version]


def wire_intervals(result: Result, versions: dict[str, int]) -> list[list]:
    index = {label: k for k, label in enumerate(result.classes)}
    return [wire_interval(iv, index, versions.get(iv.id, 0)) for iv in result.intervals]


def payload(vid: str, entry, rec, media_url: str | None, ground_truth: dict, params) -> dict[str, Any]:
    """Everything the workspace needs to draw a video's result ("result": None before its first run)."""
    r: Result | None = rec.result
    if r is None:
        return {"video": vid, "name": entry.name, "status": entry.status, "result": None}
    colors = class_colors(r.classes)
    classes = []
    for label, cls in r.classes.items():
        c = cls.curves
        classes.append({"name": label, "color": colors[label], "query": dict(cls.query),
                        "start": encode_curve(c.start_raw, 0.0, 1.0), "end": encode_curve(c.end_raw, 0.0, 1.0),
                        "actionness": encode_curve(c.actionness)})
    v = r.video
    gt = [[k, float(s), float(e)] for k, label in enumerate(r.classes) for s, e in ground_truth.get(label, [])]
    ranking = (r.run.ranking if r.run is not None else None) or []
    dropped = [[name, float(score)] for name, score in ranking if name not in r.classes]
    return {
        "video": vid, "name": entry.name, "status": entry.status,
        "result": {
            "video": {"url": media_url, "name": entry.name, "fps": float(v.fps), "duration": float(v.duration_s),
                      "frames": int(v.n_frames), "width": v.width, "height": v.height},
            "times": _b64(np.asarray(r.times_s, dtype="<f8")),
            "classes": classes,
            "intervals": wire_intervals(r, rec.review.versions),
            "fields": list(INTERVAL_FIELDS),
            "ground_truth": gt,
            "dropped": dropped,
        },
        "review": {"rev": rec.review.rev, "seqs": rec.review.seqs, **rec.review.history()},
        "params": vars(params).copy(),
    }
