"""`zeal reproduce thumos14`: the paper's Table 1 in one command, for a user with the weights and a GPU.

It runs the THUMOS14 test videos found in a folder (those of the 212 with ground truth) through a
resumable batch with the given configuration (the `paper` preset by default), then evaluates with the
paper's protocol: mAP at tIoU 0.3:0.1:0.7 over all classes, and the mean over 10 seeded draws of 50%
("zero-shot 50% seen, 50% unseen") and of 25% ("75% seen, 25% unseen") of the classes, and prints a
table shaped like the paper's Table 1 with the paper's figures beside ours.

Settings: CLIP-filtered (the top-k classes of every video go on) or, with known classes, each video's
ground-truth classes (the paper's ✛ rows). Each setting has its own folder under RUNS, so both can be
run into the same RUNS; the table shows every setting found there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zeal.atomic import write_atomic
from zeal.batch import PREDICTIONS_FILE, SUMMARY_FILE, VIDEO_EXTENSIONS, Batch, BatchItem
from zeal.errors import ConfigError
from zeal.evaluate import (DEFAULT_TIOUS, EvalReport, GroundTruth, evaluate, load_ground_truth, load_predictions,
                           split_protocol)

# THUMOS14 Table 1 of the paper, ZEAL rows: mAP (%) at tIoU 0.3, 0.4, 0.5, 0.6, 0.7 and the average.
# Keys: (fraction of classes evaluated, LVLM, classes known per video).
PAPER_TABLE1: dict[tuple[float, str, bool], tuple[float, ...]] = {
    (0.25, "Pixtral", False): (18.2, 11.9, 7.0, 3.9, 1.4, 8.5),
    (0.25, "Pixtral", True): (27.4, 17.7, 10.5, 5.6, 1.9, 12.6),
    (0.25, "LLaVA-OV", False): (22.1, 16.1, 11.0, 5.7, 3.0, 11.6),
    (0.25, "LLaVA-OV", True): (35.1, 23.8, 15.2, 7.6, 3.5, 17.0),
    (0.5, "Pixtral", False): (17.0, 10.9, 6.3, 3.5, 1.2, 7.8),
    (0.5, "Pixtral", True): (26.6, 16.7, 9.7, 5.1, 1.7, 11.9),
    (0.5, "LLaVA-OV", False): (21.1, 15.0, 9.9, 5.0, 2.6, 10.7),
    (0.5, "LLaVA-OV", True): (33.8, 22.4, 14.0, 6.8, 3.0, 16.0),
}
SPLITS = ((0.25, "Zero-shot 75% seen, 25% unseen"), (0.5, "Zero-shot 50% seen, 50% unseen"))
ALL_CLASSES = "All classes"
DRAWS, SEED = 10, 0
SETTING_DIRS = {False: "filtered", True: "known-classes"}
KNOWN_MARK = "✛"  # the paper's mark for "action classes of each video known"
TABLE_FILE, REPORT_FILE = "table.txt", "report.json"
# Folders next to the videos that commonly hold the THUMOS14 test annotations.
GROUND_TRUTH_HINTS = ("annotations_test", "annotation", "annotations", "TH14_Temporal_annotations_test")


@dataclass
class Reproduction:
    """What `reproduce_thumos14` did: the batch items and counts, the output folder, the evaluations
    per setting ({known: {fraction or 1.0: EvalReport}}) and the printed table."""

    items: list[BatchItem]
    counts: dict[str, int]
    out: Path
    reports: dict[bool, dict[float, EvalReport]]
    table: str


def find_ground_truth(videos: Path) -> Path:
    """The THUMOS14 test annotations in or next to the videos folder; ConfigError when none is found."""
    candidates = [base / hint for base in (videos, videos.parent) for hint in GROUND_TRUTH_HINTS]
    for folder in [*candidates, videos, videos.parent]:
        if folder.is_dir() and (any(folder.glob("*_test.txt")) or any(folder.glob("*/*_test.txt"))):
            return folder
    raise ConfigError(f"no THUMOS14 test annotations (<Class>_test.txt) in or next to {videos}; pass"
                      " --ground-truth with the annotation folder, an ActivityNet JSON or a CSV")


def find_videos(folder: Path, video_ids: set[str]) -> dict[str, Path]:
    """{video id: file} for the ground truth's videos present in `folder` (any video extension)."""
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder; give --videos the folder holding the THUMOS14 test videos")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS and path.stem in video_ids:
            found.setdefault(path.stem, path.resolve())
    if not found:
        example = sorted(video_ids)[0] if video_ids else "video_test_0000004"
        raise ConfigError(f"none of the {len(video_ids)} ground-truth videos is in {folder} (looked for files"
                          f" named like {example}.mp4); give --videos the folder of the THUMOS14 test videos")
    return found


def _classes_of(gt: GroundTruth) -> dict[str, list[str]]:
    """{video: its ground-truth classes, in class order}."""
    out: dict[str, list[str]] = {}
    for label in sorted(gt):
        for video, _, _ in gt[label]:
            if label not in out.setdefault(video, []):
                out[video].append(label)
    return out


def _restricted(gt: GroundTruth, videos: set[str]) -> GroundTruth:
    """The ground truth of these videos only (classes left without an instance are dropped)."""
    out = {label: [row for row in rows if row[0] in videos] for label, rows in gt.items()}
    return {label: rows for label, rows in out.items() if rows}


def evaluate_setting(gt: GroundTruth, predictions_csv: Path) -> dict[float, EvalReport]:
    """All classes (key 1.0) and the two split protocols (keys 0.25, 0.5) of one predictions file.
    Predictions of a class without ground truth in these videos change no class's AP: left out."""
    preds = {c: rows for c, rows in load_predictions(predictions_csv).items() if c in gt}
    reports = {1.0: evaluate(gt, preds)}
    for fraction, _ in SPLITS:
        reports[fraction] = split_protocol(gt, preds, fraction=fraction, draws=DRAWS, seed=SEED)
    return reports


def format_table(reports: dict[bool, dict[float, EvalReport]], lvlm: str, n_videos: int, n_classes: int) -> str:
    """The paper's Table 1 shape: setting, method, mAP (%) per tIoU and the average; the paper's ZEAL
    rows (both LVLMs) beside this run's, per setting found."""
    ours = f"ZEAL, this run ({Path(lvlm).name or lvlm})"
    rows: list[tuple[str, str, list[float]]] = []
    for fraction, title in SPLITS:
        first = True
        for known in sorted(reports):
            mark = KNOWN_MARK if known else ""
            for family in ("Pixtral", "LLaVA-OV"):
                rows.append((title if first else "", f"ZEAL-{family}{mark} (paper)",
                             list(PAPER_TABLE1[(fraction, family, known)])))
                first = False
            report = reports[known][fraction]
            rows.append(("", f"{ours}{mark}", [100 * v for v in report.mAP] + [100 * report.average]))
    first = True
    for known in sorted(reports):
        report = reports[known][1.0]
        rows.append((ALL_CLASSES if first else "", f"{ours}{KNOWN_MARK if known else ''}",
                     [100 * v for v in report.mAP] + [100 * report.average]))
        first = False
    w_set = max(len("Setting"), *(len(r[0]) for r in rows))
    w_met = max(len("Method"), *(len(r[1]) for r in rows))
    head = f"{'Setting':<{w_set}}  {'Method':<{w_met}}" + "".join(f"{t:>7.1f}" for t in DEFAULT_TIOUS) + f"{'Avg':>7}"
    lines = [f"THUMOS14 test, mAP (%) at tIoU; this run: {n_videos} video(s), {n_classes} class(es) with ground truth;"
             f" splits: mean of {DRAWS} seeded draws (seed {SEED}). {KNOWN_MARK}: each video's classes known.",
             head, "-" * len(head)]
    for setting, method, values in rows:
        lines.append(f"{setting:<{w_set}}  {method:<{w_met}}" + "".join(f"{v:>7.1f}" for v in values))
    return "\n".join(lines)


def reproduce_thumos14(config, queries, videos: Path, out: Path, known_classes: bool = False,
                       ground_truth: str | Path | None = None, workers: int = 1, quiet: bool = False,
                       debug: bool = False) -> Reproduction:
    """Run, evaluate and tabulate (see the module doc). config: a ZealConfig (the paper preset for the
    paper's setting); queries: the QuerySet of the classes (the built-in thumos14 library)."""
    from zeal.pipeline import ZealPipeline

    gt_path = Path(ground_truth).expanduser() if ground_truth else find_ground_truth(videos)
    gt = load_ground_truth(gt_path, subset=None if gt_path.suffix.lower() == ".csv" else "test")
    missing_queries = sorted(set(gt) - set(queries.names))
    if missing_queries:
        raise ConfigError(f"the ground truth has class(es) {missing_queries} without questions; give --queries"
                          " with questions for every class")
    per_video = _classes_of(gt)
    found = find_videos(videos, set(per_video))
    setting_out = out / SETTING_DIRS[known_classes]
    items = [BatchItem(path, queries.subset(per_video[vid]) if known_classes else queries, known_classes)
             for vid, path in found.items()]
    batch = Batch(ZealPipeline(config), items, setting_out, ["json"],
                  {"benchmark": "thumos14", "ground_truth": str(gt_path), "queries": queries.names,
                   "known_classes": known_classes, "videos_found": len(found),
                   "videos_with_ground_truth": len(per_video)},
                  workers=workers, quiet=quiet, debug=debug)
    counts = batch.run()
    reports: dict[bool, dict[float, EvalReport]] = {}
    n_videos = n_classes = 0
    for known, sub in SETTING_DIRS.items():
        evaluated = _finished_videos(out / sub, found)
        if not evaluated:
            continue
        gt_here = _restricted(gt, evaluated)
        reports[known] = evaluate_setting(gt_here, out / sub / PREDICTIONS_FILE)
        if known == known_classes:
            n_videos, n_classes = len(evaluated), len(gt_here)
    if known_classes not in reports:
        raise ConfigError(f"no video of {setting_out} finished, so there is nothing to evaluate; see"
                          f" {setting_out / 'summary.json'} for why")
    table = format_table(reports, config.lvlm.model, n_videos, n_classes)
    write_atomic(setting_out / TABLE_FILE, table + "\n")
    write_atomic(setting_out / REPORT_FILE, json.dumps(_report_json(reports, known_classes, gt_path, len(found),
                                                                     len(per_video)), indent=2))
    return Reproduction(items, counts, setting_out, reports, table)


def _finished_videos(folder: Path, found: dict[str, Path]) -> set[str]:
    """The found videos that a setting's batch (its summary.json) finished."""
    try:
        summary = json.loads((folder / SUMMARY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    done = {v.get("video_id") for v in summary.get("videos", []) if v.get("status") in ("done", "skipped")}
    return {vid for vid in found if vid in done}


def _report_json(reports: dict[bool, dict[float, EvalReport]], known: bool, gt_path: Path, found: int,
                 with_gt: int) -> dict[str, Any]:
    return {"ground_truth": str(gt_path), "videos_found": found, "videos_with_ground_truth": with_gt,
            "known_classes": known, "tiou": list(DEFAULT_TIOUS),
            "settings": {SETTING_DIRS[k]: {("all" if f == 1.0 else f"{f:.0%}"): r.to_dict() for f, r in by.items()}
                         for k, by in reports.items()},
            "paper": {f"{f:.0%} {family}{KNOWN_MARK if k else ''}": list(v)
                      for (f, family, k), v in PAPER_TABLE1.items()}}
