"""How many intervals an annotator faces: the paper's proposal set against the review set (one
candidate per action), on curves synthesised from the real THUMOS14 test ground truth.

For every (video, class) pair with ground truth, 1 fps curves are made the way a good LVLM would
answer: the start question peaks at each true start and the end question at each true end
(a Gaussian bump of 1.5 frames plus uniform noise), actionness is higher inside the true segments.
The real step 5 (`zeal.proposals`) turns them into the paper's set, `zeal.review.mark_review_set`
picks the review set. Reported per setting: intervals per class and video (mean, median, max),
recall of the ground truth at tIoU 0.5 (an instance counts when some interval overlaps it by at
least 0.5), and mAP at 0.5 (ActivityNet rules, `zeal.evaluate`).

    python -m benchmarks.bench_review_set [--thumos ../shared/data/thumos14] [--noise 0.25]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, machine_line, markdown_table

from zeal.config import ProposalParams
from zeal.evaluate import evaluate, load_ground_truth, segment_tiou
from zeal.proposals import propose
from zeal.review import mark_review_set
from zeal.types import Interval

PEAK_SIGMA_FRAMES = 1.5
PEAK_HEIGHT = 0.9
TIOU = 0.5


def synth_curves(segments: list[tuple[float, float]], n: int, rng, noise: float) -> tuple[np.ndarray, ...]:
    """1 fps start / end P(yes) and actionness for one class of one video."""
    t = np.arange(n, dtype=np.float64)
    start = rng.uniform(0, noise, n)
    end = rng.uniform(0, noise, n)
    act = 0.18 + rng.normal(0, 0.01, n)
    for s, e in segments:
        start = np.maximum(start, PEAK_HEIGHT * np.exp(-0.5 * ((t - s) / PEAK_SIGMA_FRAMES) ** 2))
        end = np.maximum(end, PEAK_HEIGHT * np.exp(-0.5 * ((t - e) / PEAK_SIGMA_FRAMES) ** 2))
        act[int(max(0, np.floor(s))): int(min(n, np.ceil(e) + 1))] += 0.06
    return np.clip(start, 1e-4, 1 - 1e-4), np.clip(end, 1e-4, 1 - 1e-4), act


def recall(gt: list[tuple[float, float]], found: list[Interval]) -> tuple[int, int]:
    if not found:
        return 0, len(gt)
    segs = np.array([[iv.start_s, iv.end_s] for iv in found])
    hit = sum(1 for s, e in gt if segment_tiou((s, e), segs).max() >= TIOU)
    return hit, len(gt)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--thumos", default=str(ROOT.parent / "shared" / "data" / "thumos14"))
    parser.add_argument("--noise", type=float, default=0.25, help="uniform noise under the peaks (0..1)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    folder = Path(args.thumos)
    if not (folder / "official_txt" / "annotations_test").is_dir():
        raise SystemExit(f"no THUMOS14 annotations under {folder}; pass --thumos DIR")
    gt = load_ground_truth(folder / "official_txt" / "annotations_test", subset="test")
    info = json.loads((folder / "TH14_video_info.json").read_text())
    rng = np.random.default_rng(args.seed)
    params = ProposalParams()
    per_pair = {"all": [], "review": []}
    hits = {"all": [0, 0], "review": [0, 0]}
    preds = {"all": {}, "review": {}}
    per_class_counts: dict[str, dict[str, list[int]]] = {}
    by_video: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for label, segs in gt.items():
        for video, s, e in segs:
            by_video.setdefault((video, label), []).append((s, e))
    for (video, label), segs in sorted(by_video.items()):
        duration = float(info[video]["duration"])
        n = int(np.floor(duration)) + 1
        start, end, act = synth_curves(segs, n, rng, args.noise)
        times = np.arange(n, dtype=np.float64)
        rows = propose(start, end, act, params)
        paper = [Interval(float(times[int(a)]), float(times[int(b)]), label, float(sc)) for a, b, sc in rows]
        review = [iv for iv in mark_review_set(paper) if iv.in_review_set]
        for name, ivs in (("all", paper), ("review", review)):
            per_pair[name].append(len(ivs))
            h, t = recall(segs, ivs)
            hits[name][0] += h
            hits[name][1] += t
            preds[name].setdefault(label, []).extend((video, iv.start_s, iv.end_s, iv.score) for iv in ivs)
            per_class_counts.setdefault(label, {"all": [], "review": [], "gt": []})[name].append(len(ivs))
        per_class_counts[label]["gt"].append(len(segs))
    print(f"machine: {machine_line()}")
    print(f"THUMOS14 test: {len(by_video)} (video, class) pairs, {sum(len(v) for v in by_video.values())} "
          f"instances; noise {args.noise}, peaks of {PEAK_SIGMA_FRAMES} frames, proposal settings of the paper")
    rows = []
    for name in ("all", "review"):
        counts = per_pair[name]
        mean_ap = evaluate(gt, preds[name], tious=[TIOU]).average
        rows.append(["all proposals (as in the paper)" if name == "all" else "review set (default)",
                     f"{statistics.mean(counts):.1f}", f"{statistics.median(counts):.0f}", max(counts),
                     f"{hits[name][0] / hits[name][1]:.3f}", mean_ap])
    gt_counts = [len(v) for v in by_video.values()]
    print(markdown_table(["set", "intervals per class and video (mean)", "median", "max",
                          f"recall @ tIoU {TIOU}", f"mAP @ {TIOU}"], rows))
    print(f"(ground truth: {statistics.mean(gt_counts):.1f} instances per class and video, median "
          f"{statistics.median(gt_counts):.0f}, max {max(gt_counts)})")
    print(markdown_table(["class", "GT / pair", "all / pair", "review / pair"],
                         [[label, f"{statistics.mean(c['gt']):.1f}", f"{statistics.mean(c['all']):.1f}",
                           f"{statistics.mean(c['review']):.1f}"] for label, c in sorted(per_class_counts.items())]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
