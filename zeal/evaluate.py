"""Temporal action detection mAP with the ActivityNet semantics, the ground-truth readers, and the
`zeal eval` command (numpy only).

Matching, per class and per tIoU threshold:
- predictions are taken in descending score (a stable sort: equal scores keep their file order);
- a prediction in a video with no ground truth of its class is a false positive;
- otherwise the video's ground-truth segments are tried in descending tIoU (equal tIoU: the one
  listed first); a tIoU below the threshold makes a false positive (equal counts as a match); an
  already matched segment passes to the next best; else the prediction is a true positive and the
  segment is locked;
- tIoU = intersection / (len1 + len2 - intersection), in seconds;
- AP is the all-point interpolated area under the precision/recall curve (VOC 2011 style);
- a class with ground truth but no prediction has AP 0; each class stands alone (no credit
  between related classes such as CliffDiving and Diving).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from zeal.errors import EvaluationError
from zeal import jsonio
from zeal.types import MAX_SCORE, MAX_TIME_S, PREDICTION_COLUMNS

__all__ = [
    "DEFAULT_TIOUS", "EvalReport", "GroundTruth", "Predictions", "average_precision", "eval_main",
    "evaluate", "interpolated_ap", "load_ground_truth", "load_predictions", "segment_tiou",
    "split_protocol",
]

# class name -> [(video, start_s, end_s)]
GroundTruth = dict[str, list[tuple[str, float, float]]]
# class name -> [(video, start_s, end_s, score)]
Predictions = dict[str, list[tuple[str, float, float, float]]]

DEFAULT_TIOUS = (0.3, 0.4, 0.5, 0.6, 0.7)
# THUMOS14 marks unclear stretches with this pseudo-class; they are not actions to detect.
AMBIGUOUS = "Ambiguous"
# Official THUMOS14 per-class file endings for each subset.
TXT_SUFFIX = {"test": "_test.txt", "validation": "_val.txt"}
# Spellings of the subset field in ActivityNet / ActionFormer JSON files.
SUBSET_ALIASES = {"test": "test", "testing": "test", "validation": "validation", "val": "validation",
                  "training": "training", "train": "training"}


# --- matching and AP -------------------------------------------------------------------------------
def segment_tiou(segment: Sequence[float], segments: np.ndarray) -> np.ndarray:
    """Temporal IoU of one [2] segment (start, end) with each of [K, 2] segments; [K] float64."""
    segments = np.asarray(segments, dtype=np.float64).reshape(-1, 2)
    s, e = float(segment[0]), float(segment[1])
    inter = np.clip(np.minimum(e, segments[:, 1]) - np.maximum(s, segments[:, 0]), 0.0, None)
    union = (e - s) + (segments[:, 1] - segments[:, 0]) - inter
    return inter / union


def interpolated_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """All-point interpolated AP (VOC 2011) from [P] precision and recall, in prediction order."""
    mprec = np.concatenate([[0.0], precision, [0.0]])
    mrec = np.concatenate([[0.0], recall, [1.0]])
    # Precision at recall r becomes the best precision at any recall >= r.
    mprec = np.maximum.accumulate(mprec[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[steps] - mrec[steps - 1]) * mprec[steps]))


def average_precision(ground_truth: list[tuple[str, float, float]],
                      predictions: list[tuple[str, float, float, float]],
                      tious: Sequence[float] = DEFAULT_TIOUS) -> np.ndarray:
    """AP of one class at each threshold. ground_truth: [(video, start_s, end_s)];
    predictions: [(video, start_s, end_s, score)]. Returns [T] float64."""
    n_t = len(tious)
    if not ground_truth:
        raise EvaluationError("a class has no ground-truth segment, so its AP is undefined;"
                              " leave it out of the evaluated classes")
    if not predictions:
        return np.zeros(n_t)
    by_video: dict[str, list[int]] = {}
    for i, (video, _, _) in enumerate(ground_truth):
        by_video.setdefault(video, []).append(i)
    gt_segments = {v: np.array([ground_truth[i][1:3] for i in idx], dtype=np.float64) for v, idx in by_video.items()}
    gt_index = {v: np.array(idx) for v, idx in by_video.items()}

    scores = np.array([p[3] for p in predictions], dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    thresholds = np.asarray(tious, dtype=np.float64)
    tp = np.zeros((n_t, len(predictions)))
    locked = np.zeros((n_t, len(ground_truth)), dtype=bool)
    for rank, p in enumerate(order.tolist()):
        video, start, end, _ = predictions[p]
        if video not in gt_segments:
            continue                                     # false positive at every threshold
        tiou = segment_tiou((start, end), gt_segments[video])
        tried = np.argsort(-tiou, kind="stable")
        for t, thr in enumerate(thresholds):
            for j in tried:
                if tiou[j] < thr:
                    break                                # false positive
                g = gt_index[video][j]
                if locked[t, g]:
                    continue                             # taken: try the next best
                locked[t, g] = True
                tp[t, rank] = 1.0
                break
    tp_cum = np.cumsum(tp, axis=1)
    fp_cum = np.cumsum(1.0 - tp, axis=1)
    recall = tp_cum / len(ground_truth)
    precision = tp_cum / (tp_cum + fp_cum)
    return np.array([interpolated_ap(precision[t], recall[t]) for t in range(n_t)])


# --- report ----------------------------------------------------------------------------------------
@dataclass
class EvalReport:
    """mAP per tIoU threshold. tiou: [T]; mAP: [T] in 0..1; average: mean of mAP;
    per_class: class -> [T] AP; name and setting label the row of `to_table`."""

    tiou: list[float]
    mAP: list[float]
    average: float
    per_class: dict[str, list[float]] = field(default_factory=dict)
    name: str = "predictions"
    setting: str = ""

    def to_dict(self) -> dict:
        """{"tiou": [...], "mAP": [...], "average": x, "per_class": {name: [AP per tIoU]}}."""
        return {"tiou": list(self.tiou), "mAP": list(self.mAP), "average": self.average,
                "per_class": {k: list(v) for k, v in self.per_class.items()}}

    def to_json(self, indent: int | None = 2) -> str:
        """`to_dict()` as JSON text."""
        return json.dumps(self.to_dict(), indent=indent)

    def to_table(self, per_class: bool = False) -> str:
        """The paper's table shape: one row per method/setting, mAP (%) at each tIoU, then Avg."""
        label = f"{self.name} ({self.setting})" if self.setting else self.name
        rows = [(label, self.mAP, self.average)]
        if per_class:
            rows += [(f"  {c}", ap, float(np.mean(ap))) for c, ap in self.per_class.items()]
        width = max(len("Method / setting"), *(len(r[0]) for r in rows))
        head = f"{'Method / setting':<{width}}" + "".join(f"{t:>7.1f}" for t in self.tiou) + f"{'Avg':>7}"
        lines = [head, "-" * len(head)]
        for name, values, avg in rows:
            lines.append(f"{name:<{width}}" + "".join(f"{100 * v:>7.1f}" for v in values) + f"{100 * avg:>7.1f}")
        return "\n".join(lines)


def _check_tious(tious: Sequence[float]) -> list[float]:
    out = [float(t) for t in tious]
    if not out or any(not (0.0 < t <= 1.0) for t in out):
        raise EvaluationError(f"tIoU thresholds must lie in (0, 1], got {list(tious)}")
    return out


def _per_class_ap(gt: GroundTruth, preds: Predictions, tious: list[float], classes: Iterable[str]) -> dict[str, list[float]]:
    unknown = sorted(set(preds) - set(gt))
    if unknown:
        raise EvaluationError(f"predictions name class(es) absent from the ground truth: {unknown};"
                              f" known classes: {sorted(gt)}")
    return {c: average_precision(gt[c], preds.get(c, []), tious).tolist() for c in classes}


def evaluate(gt: GroundTruth, preds: Predictions, tious: Sequence[float] = DEFAULT_TIOUS,
             classes: Iterable[str] | None = None) -> EvalReport:
    """mAP over `classes` (default: every ground-truth class) at each tIoU threshold."""
    tious = _check_tious(tious)
    names = sorted(gt) if classes is None else list(classes)
    missing = sorted(set(names) - set(gt))
    if missing:
        raise EvaluationError(f"class(es) {missing} have no ground truth; known classes: {sorted(gt)}")
    if not names:
        raise EvaluationError("nothing to evaluate: the ground truth holds no class")
    per_class = _per_class_ap(gt, preds, tious, names)
    m_ap = np.mean([per_class[c] for c in names], axis=0)
    return EvalReport(tious, m_ap.tolist(), float(m_ap.mean()), per_class, setting=f"{len(names)} classes")


def split_protocol(gt: GroundTruth, preds: Predictions, fraction: float = 0.5, draws: int = 10, seed: int = 0,
                   tious: Sequence[float] = DEFAULT_TIOUS) -> EvalReport:
    """The paper's zero-shot protocol: mAP over a random `fraction` of the classes (the unseen
    ones), averaged over `draws` seeded draws. per_class holds every class drawn at least once."""
    tious = _check_tious(tious)
    if not 0.0 < fraction <= 1.0 or draws < 1:
        raise EvaluationError(f"split needs 0 < fraction <= 1 and draws >= 1, got fraction={fraction}, draws={draws}")
    names = sorted(gt)
    if not names:
        raise EvaluationError("nothing to evaluate: the ground truth holds no class")
    n_drawn = max(1, round(fraction * len(names)))
    rng = np.random.default_rng(seed)
    drawn_sets = [sorted(rng.choice(names, size=n_drawn, replace=False).tolist()) for _ in range(draws)]
    used = sorted(set().union(*drawn_sets))
    # A class's AP does not depend on which other classes are drawn: compute each once.
    per_class = _per_class_ap(gt, preds, tious, used)
    m_ap = np.mean([np.mean([per_class[c] for c in d], axis=0) for d in drawn_sets], axis=0)
    setting = f"{fraction:.0%} of {len(names)} classes, mean of {draws} draws, seed {seed}"
    return EvalReport(tious, m_ap.tolist(), float(m_ap.mean()), per_class, setting=setting)


# --- readers ---------------------------------------------------------------------------------------
def _number(text: object, what: str, where: str, limit: float = MAX_TIME_S) -> float:
    """A time (or score) of a file: a finite number of at most `limit` in size."""
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise EvaluationError(f"{where}: {what} {text!r} is not a number")
    try:
        value = float(text)
    except ValueError:
        raise EvaluationError(f"{where}: {what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise EvaluationError(f"{where}: {what} {text!r} is not a finite number")
    if abs(value) > limit:
        raise EvaluationError(f"{where}: {what} {text!r} is out of range (at most {limit:g} in size)")
    return value


def _subset_name(subset: str | None) -> str | None:
    if subset is None:
        return None
    key = SUBSET_ALIASES.get(subset.strip().lower())
    if key is None:
        raise EvaluationError(f"unknown subset {subset!r}; use one of: test, validation, training")
    return key


def _txt_files(folder: Path, subset: str | None) -> tuple[list[Path], str]:
    """The per-class files of one subset in folder (or in its direct subfolders)."""
    found: dict[str, list[Path]] = {}
    for name, suffix in TXT_SUFFIX.items():
        files = sorted(folder.glob(f"*{suffix}")) or sorted(folder.glob(f"*/*{suffix}"))
        if files:
            found[name] = files
    if not found:
        raise EvaluationError(f"{folder}: no THUMOS14 annotation files (<Class>_test.txt or <Class>_val.txt)"
                              " here or one folder down; pass the annotation folder or an ActivityNet JSON file")
    if subset is None:
        if len(found) > 1:
            raise EvaluationError(f"{folder}: holds both test and validation annotations; choose with"
                                  " --subset test or --subset validation")
        subset = next(iter(found))
    if subset not in found:
        raise EvaluationError(f"{folder}: no {subset} annotations (*{TXT_SUFFIX.get(subset, '')}) found;"
                              f" available: {', '.join(found)}")
    return found[subset], TXT_SUFFIX[subset]


def _read_thumos_folder(folder: Path, subset: str | None) -> GroundTruth:
    files, suffix = _txt_files(folder, subset)
    gt: GroundTruth = {}
    for path in files:
        label = path.name[: -len(suffix)]
        if label == AMBIGUOUS:
            continue
        rows = []
        try:
            lines = path.read_text(encoding="utf-8-sig").splitlines()
        except UnicodeDecodeError:
            raise EvaluationError(f"{path}: not UTF-8 text; expected lines 'video start end'") from None
        for line_no, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}, line {line_no}"
            parts = line.split()
            if len(parts) != 3:
                raise EvaluationError(f"{where}: expected 'video start end', got {line.strip()!r}")
            start, end = _number(parts[1], "start", where), _number(parts[2], "end", where)
            if start > end:
                raise EvaluationError(f"{where}: start {start} is after end {end}")
            rows.append((parts[0], start, end))
        if rows:
            gt[label] = rows
    return gt


def _read_activitynet_json(path: Path, subset: str | None) -> GroundTruth:
    try:
        data = jsonio.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EvaluationError(f"{path}: not valid JSON ({exc})") from None
    except jsonio.JSONLimitError as exc:
        raise EvaluationError(f"{path}: {exc}; expected ActivityNet ground truth") from None
    if not isinstance(data, dict) or not isinstance(data.get("database"), dict):
        raise EvaluationError(f"{path}: expected the ActivityNet layout {{\"database\": {{video: {{\"annotations\": [...]}}}}}}")
    gt: GroundTruth = {}
    for video, entry in data["database"].items():
        where = f"{path}, video {video!r}"
        if not isinstance(entry, dict):
            raise EvaluationError(f"{where}: expected an object with \"annotations\"")
        # Videos without a subset field cannot be told apart, so they are always kept.
        if subset is not None and "subset" in entry and _subset_name(str(entry["subset"])) != subset:
            continue
        annotations = entry.get("annotations", [])
        if not isinstance(annotations, list):
            raise EvaluationError(f"{where}: \"annotations\" must be a list")
        for k, ann in enumerate(annotations):
            here = f"{where}, annotation {k}"
            if not isinstance(ann, dict) or "label" not in ann or "segment" not in ann:
                raise EvaluationError(f"{here}: expected {{\"label\": ..., \"segment\": [start, end]}}")
            seg = ann["segment"]
            if not isinstance(seg, (list, tuple)) or len(seg) != 2:
                raise EvaluationError(f"{here}: segment must be [start, end], got {seg!r}")
            start, end = _number(seg[0], "start", here), _number(seg[1], "end", here)
            if start > end:
                raise EvaluationError(f"{here}: start {start} is after end {end}")
            label = ann["label"]
            if not isinstance(label, str) or not label.strip():
                raise EvaluationError(f"{here}: label {label!r} is not a class name (a non-empty string)")
            if label == AMBIGUOUS:
                continue
            gt.setdefault(label, []).append((str(video), start, end))
    return dict(sorted(gt.items()))


def _read_ground_truth_csv(path: Path) -> GroundTruth:
    gt: GroundTruth = {}
    for video, label, start, end, _ in _read_segment_csv(path, PREDICTION_COLUMNS[:4], "ground truth"):
        if label != AMBIGUOUS:
            gt.setdefault(label, []).append((video, start, end))
    return gt


def load_ground_truth(path: str | Path, subset: str | None = None) -> GroundTruth:
    """Ground truth per class: {class: [(video, start_s, end_s)]}.

    path: the official THUMOS14 folder of per-class files (`<Class>_test.txt` / `<Class>_val.txt`,
    lines `video start end`, Ambiguous skipped), an ActivityNet/ActionFormer JSON file, or a CSV
    with the columns video-id,t-start,t-end,label (seconds).
    subset: "test" or "validation" to pick one subset (files by suffix, JSON videos by "subset").
    """
    path = Path(path)
    subset = _subset_name(subset)
    if not path.exists():
        raise EvaluationError(f"{path}: ground truth not found; pass a THUMOS14 annotation folder or an ActivityNet JSON file")
    if path.is_dir():
        gt = _read_thumos_folder(path, subset)
    elif path.suffix.lower() == ".csv":
        gt = _read_ground_truth_csv(path)
    else:
        gt = _read_activitynet_json(path, subset)
    if not gt:
        raise EvaluationError(f"{path}: no action instance found" + (f" in subset {subset!r}" if subset else ""))
    return dict(sorted(gt.items()))


def _read_segment_csv(path: Path, columns: Sequence[str], what: str) -> list[tuple]:
    """Rows of a CSV naming `columns` (video-id, t-start, t-end, label[, score]) as tuples
    (video, label, start, end[, score]); bad rows are errors naming the file and row."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise EvaluationError(f"{path}: {what} file not found") from None
    except UnicodeDecodeError:
        raise EvaluationError(f"{path}: not a UTF-8 text CSV file") from None
    # io.StringIO splits lines at \n and \r only: a U+2028 or U+2029 inside a field stays in it.
    from zeal.export import csv_cell_value  # our own CSVs guard formula-like cells with an apostrophe

    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise EvaluationError(f"{path}: empty file; expected the header {','.join(columns)}")
    header = [h.strip() for h in header]
    missing = [c for c in columns if c not in header]
    if missing:
        raise EvaluationError(f"{path}: header lacks column(s) {missing}; expected {','.join(columns)}")
    col = {c: header.index(c) for c in columns}
    rows = []
    for row_no, row in enumerate(reader, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        where = f"{path}, row {row_no}"
        if len(row) != len(header):
            raise EvaluationError(f"{where}: {len(row)} field(s) where the header has {len(header)}")
        video, label = csv_cell_value(row[col["video-id"]].strip()), csv_cell_value(row[col["label"]].strip())
        if not video or not label:
            raise EvaluationError(f"{where}: empty video-id or label")
        start = _number(row[col["t-start"]], "t-start", where)
        end = _number(row[col["t-end"]], "t-end", where)
        if start >= end:
            raise EvaluationError(f"{where}: t-start {start} is not before t-end {end}")
        extra = tuple(_number(row[col[c]], c, where, MAX_SCORE) for c in columns[4:])
        rows.append((video, label, start, end, *extra, where))
    return rows


def load_predictions(csv_path: str | Path, classes: Iterable[str] | None = None) -> Predictions:
    """Predictions per class: {class: [(video, start_s, end_s, score)]} from a CSV with header
    `video-id,t-start,t-end,label,score` (label = class name; other columns ignored).
    classes: when given, a label outside it is an error naming the row."""
    known = None if classes is None else set(classes)
    preds: Predictions = {}
    for video, label, start, end, score, where in _read_segment_csv(Path(csv_path), PREDICTION_COLUMNS, "predictions"):
        if known is not None and label not in known:
            raise EvaluationError(f"{where}: unknown class {label!r}; the ground truth has: {', '.join(sorted(known))}")
        preds.setdefault(label, []).append((video, start, end, score))
    return preds


# --- command ---------------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag as an EvaluationError (one line in the CLI), not an exit."""

    def error(self, message: str):  # type: ignore[override]
        raise EvaluationError(f"zeal eval: {message} (see `zeal eval --help`)")


def _whole(lo: int, hi: int):
    """An argparse type: a whole number from lo to hi."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number from {lo} to {hi}, got {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{text} is out of range: give a whole number from {lo} to {hi}")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="zeal eval", description="mAP of temporal detections with the ActivityNet semantics.")
    p.add_argument("--ground-truth", required=True, help="THUMOS14 annotation folder or ActivityNet JSON file")
    p.add_argument("--predictions", required=True, help="CSV with header video-id,t-start,t-end,label,score")
    p.add_argument("--format", choices=["json", "table"], default="table")
    p.add_argument("--split", type=float, choices=[0.5, 0.25], default=None,
                   help="zero-shot protocol: evaluate a random 50%% or 25%% of the classes, averaged over --draws")
    p.add_argument("--draws", type=_whole(1, 10_000), default=10,
                   help="number of random class draws for --split (default 10)")
    p.add_argument("--seed", type=_whole(0, 2**32 - 1), default=0, help="seed of the class draws (default 0)")
    p.add_argument("--subset", choices=["test", "validation"], default=None,
                   help="which subset of the ground truth (needed when the path holds both)")
    return p


def eval_main(argv: list[str] | None = None) -> int:
    """`zeal eval`: print the report (JSON or table) and return 0. Raises EvaluationError on bad input."""
    args = _parser().parse_args(argv)
    gt = load_ground_truth(args.ground_truth, subset=args.subset)
    preds = load_predictions(args.predictions, classes=gt.keys())
    if args.split is None:
        report = evaluate(gt, preds)
    else:
        report = split_protocol(gt, preds, fraction=args.split, draws=args.draws, seed=args.seed)
    report.name = Path(args.predictions).name
    print(report.to_json() if args.format == "json" else report.to_table())
    return 0
