"""Proposal speed: `zeal.proposals.propose` against the plain-loop statement of the same rules
(tests/proposal_oracle.py), on curves as long as a 4-hour video sampled at 1 fps.

Run: python -m benchmarks.bench_proposals [--frames 14400 3600] [--repeats 5]
Prints one row per (length, curve kind): medians of the repeats, the speed-up and whether both
outputs are bit-identical. `main(argv)` returns the rows for benchmarks/run_all.py.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


from tests.proposal_oracle import oracle_propose  # noqa: E402
from zeal.proposals import ProposalParams, propose  # noqa: E402

FOUR_HOURS_AT_1FPS = 14_400
SMOOTHING_FRAMES = 15        # LVLM answers change slowly from one second to the next
N_ACTIONS_PER_HOUR = 20       # bumps in the start/end curves of the "peaks" kind


def make_curves(n: int, kind: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Synthetic [n] start/end P(yes) and actionness curves.

    kind "noise": independent uniform values (the most candidates, the worst case);
    kind "peaks": a smooth low background with start bumps a few seconds before end bumps.
    """
    rng = np.random.default_rng(seed)
    if kind == "noise":
        return rng.random(n), rng.random(n), rng.uniform(0.1, 0.35, n)
    kernel = np.ones(SMOOTHING_FRAMES) / SMOOTHING_FRAMES

    def smooth(scale: float) -> np.ndarray:
        return np.convolve(rng.random(n + SMOOTHING_FRAMES - 1), kernel, mode="valid") * scale

    start, end, act = smooth(0.2), smooth(0.2), smooth(0.1) + 0.15
    n_actions = max(1, n * N_ACTIONS_PER_HOUR // 3600)
    for s in rng.integers(0, max(1, n - 60), n_actions):
        length = int(rng.integers(5, 60))
        start[s] += 0.7
        end[min(n - 1, s + length)] += 0.7
        act[s:s + length + 1] += 0.1
    return np.clip(start, 0, 1), np.clip(end, 0, 1), act


def _median_time(fn, repeats: int) -> tuple[float, np.ndarray]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> list[dict]:
    """Run the benchmark, print the table, return one dict per row."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[FOUR_HOURS_AT_1FPS])
    parser.add_argument("--kinds", nargs="+", default=["peaks", "noise"], choices=["peaks", "noise"])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    params = ProposalParams()
    rows = []
    print(f"{'N':>7} {'curves':>7} {'intervals':>9} {'loop s':>9} {'vectorised s':>12} {'speed-up':>9} identical")
    for n in args.frames:
        for kind in args.kinds:
            start, end, act = make_curves(n, kind)
            t_loop, ref = _median_time(lambda: oracle_propose(start, end, act, params), args.repeats)
            t_vec, out = _median_time(lambda: propose(start, end, act, params), args.repeats)
            same = ref.shape == out.shape and bool(np.array_equal(ref, out))
            row = {"N": n, "curves": kind, "intervals": len(out), "loop_s": t_loop, "vectorised_s": t_vec,
                   "speedup": t_loop / t_vec, "identical": same}
            rows.append(row)
            print(f"{n:>7} {kind:>7} {len(out):>9} {t_loop:>9.3f} {t_vec:>12.4f} {t_loop / t_vec:>8.0f}x"
                  f" {'yes' if same else 'NO'}")
    return rows


if __name__ == "__main__":
    main()
