"""Handing decoded chunks from the decoding child to the run: through the pipe (pickled) and through
memory shared with the child (zeal.decode_ahead's slots), CPU time on each side.

    python -m benchmarks.bench_handoff [--chunks 38] [--frames 16] [--size 640x360] [--repeats 3]

The real `DecodeInProcess` runs with a producer that makes no video: each chunk is the same random
frames, copied (as a decoder's np.stack would make a new array), so what differs between the two
rows is the handoff alone. The defaults are the pipeline benchmark's 10-minute clip: 38 chunks of 16
frames at 640x360, 420 MB. CPU seconds of the consumer (this process, RUSAGE_SELF) and of the child
(RUSAGE_CHILDREN after it ended), medians over the repeats, the two modes in turn.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from benchmarks import common  # noqa: E402


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def one_run(shared: bool, chunks: int, frames: int, height: int, width: int) -> dict:
    from zeal.decode_ahead import DecodeInProcess
    from zeal.types import Frames

    images = np.random.default_rng(0).integers(0, 256, (frames, height, width, 3), dtype=np.uint8)

    def produce(skipped):
        for i in range(chunks):
            yield Frames(images=images.copy(), times_s=np.arange(frames) + i * frames * 1.0,
                         indices=np.arange(frames) + i * frames)

    ahead = DecodeInProcess(produce, 2, None, [], "synthetic", (frames, height, width, 3) if shared else None)
    self0, child0, t0 = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN), time.perf_counter()
    received = 0
    with ahead as got:
        for chunk in got:
            received += int(chunk.images[-1, -1, -1, -1] == images[-1, -1, -1, -1])
    wall = time.perf_counter() - t0
    assert received == chunks
    return {"handoff": "shared memory" if shared else "pipe", "wall_s": wall,
            "consumer_cpu_s": _cpu(resource.RUSAGE_SELF) - self0,
            "child_cpu_s": _cpu(resource.RUSAGE_CHILDREN) - child0,
            "mb": chunks * images.nbytes / 1e6}


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=38)
    ap.add_argument("--frames", type=int, default=16, help="frames per chunk")
    ap.add_argument("--size", default="640x360", help="WIDTHxHEIGHT of a frame")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    width, height = (int(x) for x in args.size.lower().split("x"))
    runs: dict[bool, list[dict]] = {False: [], True: []}
    for _ in range(args.repeats):
        for shared in runs:
            runs[shared].append(one_run(shared, args.chunks, args.frames, height, width))
    rows = []
    for shared, done in runs.items():
        row = {k: common.median([r[k] for r in done]) if isinstance(done[0][k], float) else done[0][k]
               for k in done[0]}
        rows.append(row)
    pipe, shm = rows
    for r in rows:
        r["consumer_vs_shared"] = r["consumer_cpu_s"] / shm["consumer_cpu_s"]
        r["child_vs_shared"] = r["child_cpu_s"] / shm["child_cpu_s"]
    print(f"\nHandoff of {args.chunks} chunks of {args.frames} frames at {width}x{height} ({pipe['mb']:.0f} MB) "
          f"from a forked child; medians of {args.repeats}")
    common.print_table(["handoff", "wall s", "consumer CPU s", "child CPU s", "consumer vs shared", "child vs shared"],
                       [[r["handoff"], r["wall_s"], r["consumer_cpu_s"], r["child_cpu_s"],
                         f"{r['consumer_vs_shared']:.1f}x", f"{r['child_vs_shared']:.1f}x"] for r in rows])
    return rows


if __name__ == "__main__":
    main()
