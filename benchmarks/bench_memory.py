"""Peak resident memory of a whole pipeline run over videos of increasing length: it must stay flat.

    python -m benchmarks.bench_memory [--minutes 10 60 240] [--arch qwen2_vl]

Each run is a fresh child process (so its peak is its own) that loads the tiny models
(tests/tiny_models.py), then runs `ZealPipeline.run` on the video with 3 known
classes at 1 fps with an empty score cache. The parent records the child's peak RSS (polled from
/proc and checked against the kernel's maximum); the child also reports its RSS after loading the
models, before the video is touched, so the table separates the fixed cost (interpreter, torch,
models) from what the run itself adds.

Why the videos are 320x180 at 5 fps (testsrc2, H.264): a 4-hour 720p30 clip takes far longer to
encode and decode than this 2-core machine allows. What this benchmark checks is whether memory
grows with the number of frames (it should not: frames stream through in chunks of 16; only the
per-frame curves and CLIP embeddings are kept, a few bytes to a few kB per sampled second), and the
number of sampled frames, 14,400 for 4 hours at 1 fps, is the same at any resolution. Per-frame
memory at 720p is bench_video.py's subject.

Baseline: the shortest video. Target: the peak of the longest run within 10% of it (flat).
`main(argv)` returns one dict per video length.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time


from benchmarks import common  # noqa: E402

CLIP_SIZE = (320, 180)
CLIP_RATE = 5
FPS = 1.0
FLAT_TOLERANCE = 1.10  # target: longest run's peak at most 10% above the shortest run's
CHILD_TIMEOUT_S = 3600


def _child(minutes: float, arch: str, threads: int) -> None:
    """Inside the child: load models, record RSS, run the pipeline, print a JSON line."""
    import numpy as np
    import torch

    from benchmarks.bench_pipeline import CLASSES, make_config
    from zeal.pipeline import ZealPipeline

    torch.set_num_threads(threads)
    video = common.make_clip(minutes * 60, *CLIP_SIZE, rate=CLIP_RATE)
    cache_dir = common.OUT_DIR / f"memory_cache_{int(minutes)}min"
    shutil.rmtree(cache_dir, ignore_errors=True)
    pipe = ZealPipeline.from_config(make_config(arch, cache_dir, FPS))
    # load both models and run each once on one frame, so their lazy allocations count as fixed cost
    frame = np.zeros((CLIP_SIZE[1], CLIP_SIZE[0], 3), np.uint8)
    pipe.clip.embed_images([frame])
    pipe.lvlm.p_yes([frame], ["Is this a test? Only answer yes or no."])
    rss_loaded, _ = common.self_rss_mb()
    t0 = time.perf_counter()
    result = pipe.run(str(video), classes=CLASSES, known_classes=True)
    seconds = time.perf_counter() - t0
    _, hwm = common.self_rss_mb()
    shutil.rmtree(cache_dir, ignore_errors=True)
    print(json.dumps({"frames": len(result.times_s), "rss_loaded_mb": rss_loaded, "hwm_mb": hwm,
                      "run_seconds": seconds}))


def main(argv: list[str] | None = None) -> list[dict]:
    """Run the benchmark, print the table, return its rows."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, nargs="+", default=[10, 60, 240], help="video lengths")
    ap.add_argument("--arch", default="qwen2_vl", choices=["qwen2_vl", "llava_onevision"])
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads in the child")
    ap.add_argument("--quick", action="store_true", help="videos of 1 and 5 minutes")
    ap.add_argument("--child", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child is not None:
        _child(args.child, args.arch, args.threads)
        return []
    if args.quick:
        args.minutes = [1, 5]
    # build the models and clips here, so that no child pays (or measures) their generation
    common.tiny().lvlm(args.arch)
    for minutes in args.minutes:
        common.make_clip(minutes * 60, *CLIP_SIZE, rate=CLIP_RATE)

    rows = []
    for minutes in sorted(args.minutes):
        cmd = [sys.executable, "-m", __spec__.name, "--child", str(minutes), "--arch", args.arch,
               "--threads", str(args.threads)]
        wall, peak_mb, out = common.run_child(cmd, timeout_s=CHILD_TIMEOUT_S)
        child = json.loads(out.strip().splitlines()[-1])
        rows.append({"video_minutes": minutes, "frames": child["frames"], "peak_rss_mb": peak_mb,
                     "rss_after_model_load_mb": child["rss_loaded_mb"],
                     "added_by_run_mb": peak_mb - child["rss_loaded_mb"], "run_seconds": child["run_seconds"],
                     "child_wall_s": wall})
        print(f"  {minutes:g} min: {child['frames']} frames, peak {peak_mb:.0f} MB, "
              f"run {child['run_seconds']:.0f} s", file=sys.stderr, flush=True)
    base = rows[0]
    for r in rows:
        r["ratio_vs_baseline"] = r["peak_rss_mb"] / base["peak_rss_mb"]
        r["baseline_minutes"] = base["video_minutes"]
    flat = rows[-1]["ratio_vs_baseline"] <= FLAT_TOLERANCE

    print(f"\nPeak resident memory of a pipeline run ({CLIP_SIZE[0]}x{CLIP_SIZE[1]} H.264 at {CLIP_RATE} fps, "
          f"sampled at {FPS:g} fps, 3 known classes, tiny {args.arch} + tiny CLIP, one child process each)")
    common.print_table(["video", "frames sampled", "peak RSS MB", "after model load MB", "added by run MB",
                        "run s", f"vs {base['video_minutes']:g} min"],
                       [[f"{r['video_minutes']:g} min", r["frames"], r["peak_rss_mb"], r["rss_after_model_load_mb"],
                         r["added_by_run_mb"], r["run_seconds"], f"{r['ratio_vs_baseline']:.3f}x"] for r in rows])
    print(f"target: peak of the longest run within {FLAT_TOLERANCE:.2f}x of the shortest: "
          f"{'met' if flat else 'MISSED'}")
    for r in rows:
        r["flat_target_met"] = flat
    return rows


if __name__ == "__main__":
    main()
