"""Run every benchmark in sequence and summarise them: figure, baseline, ratio, target, met or not.

    python -m benchmarks.run_all [--quick] [--only clip pipeline] [--set video="--minutes 10 --repeats 2"]

Each benchmark runs in its own child process (`main(argv)` of benchmarks/bench_NAME.py), so one
benchmark's threads, memory and registered models cannot colour the next one's figures, and a
failing benchmark is reported without stopping the others. Each prints its own table as it goes;
at the end this script prints the summary tables and writes them, with the machine description,
the load average around each benchmark and the exact arguments used, to benchmarks/out/latest.md
(ready to paste into benchmarks/README.md) and the raw rows to benchmarks/out/latest.json.

Default sizes are the issue's (e.g. a 1-hour clip for video sampling, a 4-hour video for memory);
`--quick` uses small ones for a fast check that everything runs; `--set NAME="ARGS"` overrides
one benchmark's arguments.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable


from benchmarks import common  # noqa: E402
from benchmarks.common import fmt  # noqa: E402

ORDER = ["proposals", "video", "scoring", "clip", "pipeline", "handoff", "memory", "presets"]
FULL_ARGS: dict[str, list[str]] = {
    "proposals": [], "video": ["--minutes", "60"], "scoring": [], "clip": [], "pipeline": [], "handoff": [],
    "memory": [], "presets": []}
QUICK_ARGS: dict[str, list[str]] = {
    "proposals": ["--frames", "3600", "--repeats", "3"],
    "video": ["--minutes", "1", "--repeats", "1"],
    "scoring": ["--ks", "3", "--repeats", "1"],
    "clip": ["--quick"], "pipeline": ["--quick"], "handoff": ["--chunks", "8", "--repeats", "1"],
    "memory": ["--quick"], "presets": ["--quick"]}

# Targets of issue 7, as used in the summary
PROPOSALS_MAX_S = 0.2
VIDEO_MAX_RATIO, VIDEO_MAX_RSS_MB = 1.25, 300
SCORING_K, SCORING_VS_FORWARD, SCORING_VS_FLOOR = 3, 5.0, 1.3


def _child(name: str, rows_path: str, argv: list[str]) -> None:
    module = importlib.import_module(f"benchmarks.bench_{name}")
    rows = module.main(argv)
    Path(rows_path).write_text(json.dumps(rows, default=str))


def run_one(name: str, argv: list[str], tmp: Path) -> tuple[list[dict] | None, str, float]:
    """Run one benchmark in a child; returns (rows or None on failure, error text, seconds)."""
    rows_path = tmp / f"{name}.json"
    rows_path.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", __spec__.name, "--child", name, str(rows_path), "--", *argv]
    print(f"\n=== bench_{name} {' '.join(argv)}  (load {common.load_average()})", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=common.ROOT)  # `-m benchmarks.run_all` needs the repository root
    seconds = time.perf_counter() - t0
    if proc.returncode != 0 or not rows_path.exists():
        return None, f"exit code {proc.returncode}", seconds
    return json.loads(rows_path.read_text()), "", seconds


# ------------------------------------------------------------------------------------------------
# One summary table per benchmark: (title, headers, rows)

Summary = tuple[str, list[str], list[list[Any]]]


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def sum_proposals(rows: list[dict]) -> Summary:
    out = [[r.get("N"), r.get("curves"), r.get("intervals"), r.get("loop_s"), r.get("vectorised_s"),
            f"{r.get('speedup', 0):.0f}x", r.get("identical"),
            _met(r.get("vectorised_s", 1e9) < PROPOSALS_MAX_S and bool(r.get("identical")))] for r in rows]
    return ("Proposals per class (baseline: plain-loop oracle)",
            ["frames", "curves", "intervals", "loop s (baseline)", "vectorised s", "ratio", "identical",
             f"target < {PROPOSALS_MAX_S} s, identical"], out)


def sum_video(rows: list[dict]) -> Summary:
    out = []
    for r in rows:
        base = r.get("method") == "ffmpeg"
        ratio = r.get("ratio")
        target = "baseline" if base else (
            _met(ratio is not None and ratio <= VIDEO_MAX_RATIO and r.get("peak_rss_mb", 1e9) < VIDEO_MAX_RSS_MB))
        out.append([r.get("backend", r.get("method")), r.get("samples"), r.get("seconds"),
                    f"{ratio:.2f}x" if ratio is not None else "-", r.get("peak_rss_mb"), target])
    return ("Video sampling at 1 fps (baseline: ffmpeg -vf fps=1 -f null)",
            ["method", "samples", "seconds", "vs ffmpeg", "peak RSS MB",
             f"target <= {VIDEO_MAX_RATIO}x and < {VIDEO_MAX_RSS_MB} MB"], out)


def sum_scoring(rows: list[dict]) -> Summary:
    out = []
    for r in rows:
        target = "-"
        if r.get("k") == SCORING_K:
            target = (f"vs (a) {_met(r.get('speedup_vs_forward', 0) >= SCORING_VS_FORWARD)}, "
                      f"vs floor {_met(r.get('ours_vs_floor', 1e9) <= SCORING_VS_FLOOR)}")
        out.append([r.get("device"), r.get("k"), r.get("questions"), r.get("ours_s"), r.get("forward_s"),
                    r.get("generate_s"), r.get("floor_s"), f"{r.get('speedup_vs_forward', 0):.1f}x",
                    f"{r.get('speedup_vs_generate', 0):.1f}x", f"{r.get('ours_vs_floor', 0):.2f}x", target])
    return ("LVLM scoring, seconds per frame (baselines: (a) one forward per question, (b) generate per question)",
            ["device", "k", "2k", "ours s", "(a) s", "(b) s", "floor s", "(a)/ours", "(b)/ours", "ours/floor",
             f"target k={SCORING_K}: (a)/ours >= {SCORING_VS_FORWARD:.0f}x, ours/floor <= {SCORING_VS_FLOOR}x"], out)


def sum_clip(rows: list[dict]) -> Summary:
    out = [[r.get("device"), r.get("batch_size"), r.get("frames"), r.get("frames_per_s"),
            f"{r.get('ratio_vs_baseline', 0):.2f}x", f"{100 * r.get('preprocess_share', 0):.0f}%"] for r in rows]
    model = rows[0].get("model", "?") if rows else "?"
    return (f"CLIP {model} embed_images throughput (baseline: batch size 1; the issue sets no number)",
            ["device", "batch", "frames", "frames/s", "vs batch 1", "preprocessing share"], out)


def sum_handoff(rows: list[dict]) -> Summary:
    out = [[r["handoff"], r["wall_s"], r["consumer_cpu_s"], r["child_cpu_s"], f"{r['consumer_vs_shared']:.1f}x",
            f"{r['child_vs_shared']:.1f}x"] for r in rows]
    mb = rows[0].get("mb", 0) if rows else 0
    return (f"Chunks from the decoding child to the run, {mb:.0f} MB (baseline: shared memory; the issue sets no number)",
            ["handoff", "wall s", "consumer CPU s", "child CPU s", "consumer vs shared", "child vs shared"], out)


def sum_pipeline(rows: list[dict]) -> Summary:
    out = []
    for r in rows:
        if r.get("stage") == "overlap":
            out.append([f"overlapped vs slowest stage alone ({r['slowest_stage_s']:.2f} s)", r["wall_s"], "-", "-",
                        f"{r['vs_slowest']:.2f}x (target <= 1.25x), {r['speedup']:.2f}x faster than sequential "
                        f"(target >= 1.3x): {_met(r['targets_met'])}"])
            continue
        note = "slowest stage" if r.get("slowest") else ""
        if "model_calls" in r:
            note = f"model calls {r['model_calls']}"
            if "speedup_vs_first" in r:
                note += f", {r['speedup_vs_first']:.0f}x faster than the first run"
        out.append([r.get("stage"), r.get("seconds"), f"{100 * r.get('share', 0):.0f}%", r.get("ms_per_frame"), note])
    head = rows[0] if rows else {}
    return (f"Pipeline, {fmt(head.get('video_minutes'))}-minute 640x360 video, {head.get('frames')} frames at 1 fps, "
            f"{head.get('classes')} known classes, tiny {head.get('arch')} + tiny CLIP (the issue sets no number)",
            ["stage", "seconds", "share of first run", "ms per frame", "note"], out)


def sum_memory(rows: list[dict]) -> Summary:
    out = [[f"{fmt(r.get('video_minutes'))} min", r.get("frames"), r.get("peak_rss_mb"),
            r.get("rss_after_model_load_mb"), r.get("added_by_run_mb"), r.get("run_seconds"),
            f"{r.get('ratio_vs_baseline', 0):.3f}x"] for r in rows]
    met = bool(rows and rows[-1].get("flat_target_met"))
    return (f"Peak RSS of a pipeline run by video length (baseline: the shortest); target flat: {_met(met)}",
            ["video", "frames sampled", "peak RSS MB", "after model load MB", "added by run MB", "run s",
             "vs shortest"], out)


def sum_presets(rows: list[dict]) -> Summary:
    from benchmarks.bench_presets import summary

    return ("Seconds per frame by preset and image budget (real dimensions, random weights, 6 questions)",
            ["preset", "budget", "device", "tokens", "LVLM s/frame", "CLIP s/frame", "s/frame",
             "h per video-h at 1 fps", "LM layers built"], summary(rows))


SUMMARIES: dict[str, Callable[[list[dict]], Summary]] = {
    "proposals": sum_proposals, "video": sum_video, "scoring": sum_scoring,
    "clip": sum_clip, "pipeline": sum_pipeline, "handoff": sum_handoff, "memory": sum_memory, "presets": sum_presets}


def main(argv: list[str] | None = None) -> list[dict]:
    """Run the selected benchmarks, print the summary, write latest.md/json. Returns one dict per
    benchmark: name, argv, seconds, rows (None when it failed), error, load before/after."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: a fast check that all benchmarks run")
    ap.add_argument("--only", nargs="+", choices=ORDER, help="run only these benchmarks")
    ap.add_argument("--set", action="append", default=[], metavar='NAME="ARGS"',
                    help="override one benchmark's arguments, e.g. --set video=\"--minutes 10\"")
    ap.add_argument("--out", type=Path, default=common.OUT_DIR / "latest.md")
    ap.add_argument("--child", nargs=2, metavar=("NAME", "ROWS_JSON"), help=argparse.SUPPRESS)
    ap.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _child(args.child[0], args.child[1], args.rest)
        return []

    bench_args = dict(QUICK_ARGS if args.quick else FULL_ARGS)
    for item in args.set:
        name, _, value = item.partition("=")
        if name not in ORDER:
            raise SystemExit(f"--set {item!r}: unknown benchmark {name!r}; choose from {ORDER}")
        bench_args[name] = shlex.split(value)
    names = args.only or ORDER
    started = datetime.datetime.now().astimezone()
    info = common.machine()
    print(f"Machine: {common.machine_line(info)}", flush=True)
    common.OUT_DIR.mkdir(parents=True, exist_ok=True)
    results = []
    for name in names:
        load_before = common.load_average()
        rows, error, seconds = run_one(name, bench_args[name], common.OUT_DIR)
        results.append({"name": name, "argv": bench_args[name], "seconds": seconds, "rows": rows, "error": error,
                        "load_before": load_before, "load_after": common.load_average()})

    md = [f"Run {started:%Y-%m-%d %H:%M %Z}{' (--quick)' if args.quick else ''} on {common.machine_line(info)}.", ""]
    print("\n\n========== SUMMARY ==========")
    print(f"Machine: {common.machine_line(info)}")
    for res in results:
        head = f"bench_{res['name']}.py {' '.join(res['argv'])}".strip()
        loads = f"load average before {res['load_before']}, after {res['load_after']}; {res['seconds']:.0f} s"
        if res["rows"] is None:
            print(f"\n{head}: FAILED ({res['error']})")
            md += [f"### {head}", "", f"FAILED ({res['error']}); {loads}", ""]
            continue
        title, headers, table = SUMMARIES[res["name"]](res["rows"])
        print(f"\n{title}\n  ({head}; {loads})")
        common.print_table(headers, table)
        md += [f"### {title}", "", f"`{head}`; {loads}.", "", common.markdown_table(headers, table), ""]
    args.out.write_text("\n".join(md))
    args.out.with_suffix(".json").write_text(json.dumps({"machine": info, "quick": args.quick, "results": results},
                                                        default=str, indent=1))
    print(f"\nwrote {args.out} and {args.out.with_suffix('.json')}")
    return results


if __name__ == "__main__":
    main()
