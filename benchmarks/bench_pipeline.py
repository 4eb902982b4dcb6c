"""The whole pipeline on a generated video with tiny models: time per stage, decoding and scoring one
after the other (sequential) and at the same time (overlapped), side by side.

    python -m benchmarks.bench_pipeline [--minutes 10] [--arch qwen2_vl] [--fps 1] [--threads 1] [--repeats 3]

The video is a 640x360, 30 fps H.264 clip of ffmpeg's `testsrc2` pattern (generated once into
benchmarks/out/). The models are the tests' tiny real-architecture ones with random weights
(tests/tiny_models.py: Qwen2-VL or LLaVA-OneVision with the real Qwen2 tokenizer, and a tiny CLIP),
so the LVLM and CLIP rows measure the engine's overhead around a model (processor, batching,
prompt building), not a real model's arithmetic: see bench_scoring.py and bench_clip.py for those.
3 classes known to occur (no CLIP filtering), 6 questions per frame, sampling at --fps.

Stages are measured by wrapping the real objects the pipeline calls, never replacing them: a
delegating proxy around each scorer (time inside `clip.embed_images`, `clip.actionness`,
`lvlm.p_yes`), around the score cache (`get`/`put`), around the `zeal.video` module the pipeline
uses (time inside each step of `sample()`'s iteration, i.e. decoding and RGB conversion; `probe`
and `video_hash`), and around `propose`/`normalize`. "other" is the rest of the wall time.

Each repeat runs the same video twice from an empty cache, in turn: sequential
(VideoConfig.decode_ahead = 0: decode a chunk, score it, decode the next) and overlapped (decode_ahead
= 2: a background thread decodes while the models score). The two stages "alone" are the sequential
run's decoding time and the rest of its wall time (models, cache, glue); the slowest of the two is the
floor an overlapped run can reach. Figures are medians over the repeats. Targets: overlapped wall time
<= 1.25x the slowest stage alone and >= 1.3x faster than sequential. The last line printed is
`pipeline overlap wall_s=<x> sequential_s=<x> slowest_stage_s=<x> speedup=<x>`.

A run on the filled cache follows: every curve is cached, so the model calls must be 0.
Torch runs on --threads intra-op threads (default 1: the tiny models do microseconds of work per
op, and on a shared 2-core machine a second thread costs more in synchronisation than it saves).
`main(argv)` returns one dict per stage (sequential and overlapped seconds) plus the "total" rows,
the "cached rerun" row and an "overlap" row with the figures of the last line.
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator


from benchmarks import common  # noqa: E402

CLASSES = ["CliffDiving", "Diving", "LongJump"]
CLIP_SIZE = (640, 360)
CLIP_RATE = 30

# stage name of each wrapped call
STAGE = {"sample": "decode (video.sample)", "probe": "probe + hash", "video_hash": "probe + hash",
         "embed_images": "CLIP embed_images", "actionness": "CLIP actionness", "p_yes": "LVLM p_yes",
         "propose": "proposals", "normalize": "proposals", "get": "cache I/O", "put": "cache I/O"}
MODEL_CALLS = ("embed_images", "actionness", "p_yes", "rank_classes")


class Clock:
    """Seconds and call counts per stage, accumulated by the wrappers."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def timed(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[STAGE[name]] += time.perf_counter() - t0
                self.calls[name] += 1
        return wrapper

    def timed_iter(self, name: str, it: Iterator[Any]) -> Iterator[Any]:
        """Yield from `it`, counting only the time spent inside its __next__ (the consumer's work
        between two items belongs to other stages)."""
        self.calls[name] += 1
        while True:
            t0 = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                self.seconds[STAGE[name]] += time.perf_counter() - t0
                return
            self.seconds[STAGE[name]] += time.perf_counter() - t0
            yield item

    def model_calls(self) -> int:
        return sum(self.calls[n] for n in MODEL_CALLS)


class Timed:
    """Delegating proxy: every attribute is the target's, the named methods are timed."""

    def __init__(self, target: Any, clock: Clock, methods: tuple[str, ...]) -> None:
        self._target, self._clock, self._methods = target, clock, methods

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name in self._methods:
            return self._clock.timed(name, value)
        return value


class TimedVideo(Timed):
    """Proxy of the zeal.video module whose sample() iterator is timed step by step."""

    def sample(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        return self._clock.timed_iter("sample", iter(self._target.sample(*args, **kwargs)))


@contextmanager
def timed_module_functions(clock: Clock) -> Iterator[None]:
    """Route the pipeline's own references to the video module and the proposal functions through
    timing wrappers for the duration of the block, then put the originals back."""
    import zeal.pipeline as pipeline_module

    saved = {n: getattr(pipeline_module, n) for n in ("video_io", "propose", "normalize")}
    pipeline_module.video_io = TimedVideo(saved["video_io"], clock, ("probe", "video_hash"))
    pipeline_module.propose = clock.timed("propose", saved["propose"])
    pipeline_module.normalize = clock.timed("normalize", saved["normalize"])
    try:
        yield
    finally:
        for n, v in saved.items():
            setattr(pipeline_module, n, v)


OVERLAP_VS_SLOWEST = 1.25  # target: overlapped wall time at most this many times the slowest stage alone
OVERLAP_SPEEDUP = 1.3      # target: overlapped at least this many times faster than sequential
DECODE_STAGE = STAGE["sample"]


def make_config(arch: str, cache_dir: Path, fps: float, chunk: int = 16, decode_ahead: int = 2,
                decode_threads: int | None = None):
    """ZealConfig with the tiny CLIP and the tiny LVLM of `arch` on CPU (built on first use)."""
    from tests.tiny_models import tiny_config

    return tiny_config(common.tiny(), cache_dir, arch, video={"fps": fps, "chunk": chunk, "decode_ahead": decode_ahead,
                                                              "decode_threads": decode_threads})


def timed_run(config, video: Path, classes: list[str]) -> tuple[Clock, float, Any]:
    """One pipeline run with every stage timed. Loads the scorers first (not timed: a one-off)."""
    from zeal.cache import ScoreCache
    from zeal.pipeline import ZealPipeline

    loader = ZealPipeline.from_config(config)
    clock = Clock()
    pipe = ZealPipeline(config, clip=Timed(loader.clip, clock, MODEL_CALLS),
                        lvlm=Timed(loader.lvlm, clock, MODEL_CALLS),
                        cache=Timed(ScoreCache(config.cache_dir), clock, ("get", "put")))
    with timed_module_functions(clock):
        t0 = time.perf_counter()
        result = pipe.run(str(video), classes=classes, known_classes=True)
        total = time.perf_counter() - t0
    return clock, total, result


def stage_rows(clock: Clock, total: float, frames: int) -> list[dict]:
    rows = [{"stage": stage, "seconds": s, "share": s / total, "ms_per_frame": 1000 * s / max(frames, 1)}
            for stage, s in sorted(clock.seconds.items(), key=lambda kv: -kv[1])]
    other = total - sum(clock.seconds.values())
    rows.append({"stage": "other (pipeline glue)", "seconds": other, "share": other / total,
                 "ms_per_frame": 1000 * other / max(frames, 1)})
    slowest = max(rows, key=lambda r: r["seconds"])
    for r in rows:
        r["slowest"] = r is slowest
    return rows


def _median_run(runs: list[tuple[Clock, float, Any]]) -> tuple[Clock, float, Any]:
    return sorted(runs, key=lambda run: run[1])[len(runs) // 2]


def overlap_figures(sequential: list[tuple[Clock, float, Any]], overlapped: list[tuple[Clock, float, Any]]) -> dict:
    """The last line's figures: medians of the overlapped and sequential wall times, and of the
    slowest stage alone (decoding, or everything else) in each sequential run."""
    slowest = [max(clock.seconds[DECODE_STAGE], total - clock.seconds[DECODE_STAGE]) for clock, total, _ in sequential]
    wall, seq = common.median([t for _, t, _ in overlapped]), common.median([t for _, t, _ in sequential])
    out = {"wall_s": wall, "sequential_s": seq, "slowest_stage_s": common.median(slowest), "speedup": seq / wall}
    out["vs_slowest"] = wall / out["slowest_stage_s"]
    out["targets_met"] = out["vs_slowest"] <= OVERLAP_VS_SLOWEST and out["speedup"] >= OVERLAP_SPEEDUP
    return out


def main(argv: list[str] | None = None) -> list[dict]:
    """Run the benchmark, print the table and the last line, return its rows."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the generated video")
    ap.add_argument("--arch", default="qwen2_vl", choices=["qwen2_vl", "llava_onevision"])
    ap.add_argument("--fps", type=float, default=1.0, help="sampling rate")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--repeats", type=int, default=3, help="sequential + overlapped pairs (medians)")
    ap.add_argument("--decode-ahead", type=int, default=2, help="chunks decoded ahead in the overlapped run")
    ap.add_argument("--decode-threads", type=int, default=None,
                    help="the overlapped run's decoder threads (default: chosen per run, see VideoConfig)")
    ap.add_argument("--quick", action="store_true", help="a 1-minute video, one repeat")
    args = ap.parse_args(argv)
    if args.quick:
        args.minutes, args.repeats = 1.0, 1
    import torch

    torch.set_num_threads(args.threads)
    video = common.make_clip(args.minutes * 60, *CLIP_SIZE, rate=CLIP_RATE)
    cache_dir = common.OUT_DIR / "pipeline_cache"
    configs = {"sequential": make_config(args.arch, cache_dir, args.fps, decode_ahead=0),
               "overlapped": make_config(args.arch, cache_dir, args.fps, decode_ahead=args.decode_ahead,
                                         decode_threads=args.decode_threads)}
    runs: dict[str, list] = {name: [] for name in configs}
    for _ in range(args.repeats):  # in turn, so a load that comes and goes hits both alike
        for name, config in configs.items():
            shutil.rmtree(cache_dir, ignore_errors=True)
            runs[name].append(timed_run(config, video, CLASSES))
    clock, total, result = _median_run(runs["sequential"])
    o_clock, o_total, o_result = _median_run(runs["overlapped"])
    frames = len(result.times_s)
    assert len(o_result.times_s) == frames
    for name in CLASSES:  # the same scores either way
        assert (o_result.classes[name].curves.start_raw == result.classes[name].curves.start_raw).all()
    rows = stage_rows(clock, total, frames)
    for r in rows:
        r["overlapped_seconds"] = o_clock.seconds.get(r["stage"])
    again, total_again, result_again = timed_run(configs["overlapped"], video, CLASSES)
    assert len(result_again.times_s) == frames
    figures = overlap_figures(runs["sequential"], runs["overlapped"])
    rows.append({"stage": "total (sequential)", "seconds": total, "share": 1.0, "ms_per_frame": 1000 * total / frames,
                 "model_calls": clock.model_calls(), "slowest": False})
    rows.append({"stage": f"total (overlapped, decode ahead {args.decode_ahead})", "seconds": o_total,
                 "share": o_total / total, "ms_per_frame": 1000 * o_total / frames,
                 "model_calls": o_clock.model_calls(), "slowest": False})
    rows.append({"stage": "total (cached rerun)", "seconds": total_again, "share": total_again / total,
                 "ms_per_frame": 1000 * total_again / frames, "model_calls": again.model_calls(),
                 "speedup_vs_first": o_total / total_again, "slowest": False,
                 "questions_cached": result_again.run.stats["questions_cached"]})
    rows.append({"stage": "overlap", **figures, "repeats": args.repeats, "decode_ahead": args.decode_ahead})
    for r in rows:
        r.update(video_minutes=args.minutes, frames=frames, arch=args.arch, classes=len(CLASSES))
    shutil.rmtree(cache_dir, ignore_errors=True)

    print(f"\nPipeline on {video.name} ({args.minutes:g} min, {CLIP_SIZE[0]}x{CLIP_SIZE[1]} H.264), "
          f"{frames} frames at {args.fps:g} fps, {len(CLASSES)} known classes, tiny {args.arch} + tiny CLIP, "
          f"torch {args.threads} thread(s); medians of {args.repeats} run(s) each")
    common.print_table(["stage", "sequential s", "share", "ms/frame", "overlapped s", "note"],
                       [[r["stage"], r["seconds"], f"{100 * r['share']:.0f}%", r["ms_per_frame"],
                         r.get("overlapped_seconds"),
                         "slowest" if r.get("slowest") else
                         (f"model calls {r['model_calls']}" if "model_calls" in r else "")]
                        for r in rows if r["stage"] != "overlap"])
    print(f"cached rerun: {rows[-2]['model_calls']} model calls, {rows[-2]['speedup_vs_first']:.0f}x faster "
          "than the first run")
    print(f"overlapped / slowest stage alone: {figures['vs_slowest']:.2f}x (target <= {OVERLAP_VS_SLOWEST}x); "
          f"speedup over sequential: {figures['speedup']:.2f}x (target >= {OVERLAP_SPEEDUP}x): "
          f"{'met' if figures['targets_met'] else 'MISSED'}")
    print(f"pipeline overlap wall_s={figures['wall_s']:.2f} sequential_s={figures['sequential_s']:.2f} "
          f"slowest_stage_s={figures['slowest_stage_s']:.2f} speedup={figures['speedup']:.2f}")
    return rows


if __name__ == "__main__":
    main()
