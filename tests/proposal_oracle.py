"""The proposal rules of DESIGN.md step 5 written as plain loops, one rule at a time.

This is the reference `zeal.proposals.propose` must match bit for bit (tests/test_proposals.py)
and the baseline it is timed against (benchmarks/bench_proposals.py). Kept deliberately naive:
no numpy tricks, Python floats throughout. Two choices shared with the fast version so both give
the same bits: the interval sum uses `math.fsum` (correctly rounded, so the summation order does
not matter), and exp() is numpy's (libm's exp can differ from it in the last bit).
"""

from __future__ import annotations

import math

import numpy as np

from zeal.config import ProposalParams


def oracle_normalize(x: list[float], eps: float) -> list[float]:
    lo, hi = min(x), max(x)
    if hi - lo == 0.0:
        return [eps for _ in x]
    return [(v - lo) / (hi - lo) * (1.0 - 2.0 * eps) + eps for v in x]


def oracle_candidates(norm: list[float], k: int, gap: int) -> list[int]:
    kth = sorted(norm, reverse=True)[k - 1]
    cand = [f for f, v in enumerate(norm) if v >= kth]
    cand.sort(key=lambda f: -norm[f])          # stable: ties keep the earlier frame first
    kept: list[int] = []
    for c in cand:
        if all(abs(c - other) >= gap for other in kept):
            kept.append(c)
    return sorted(kept)


def oracle_pairs(starts: list[int], ends: list[int], n: int, max_len_frac: float) -> list[tuple[int, int]]:
    pairs = []
    for i, s in enumerate(starts):
        stop = False
        for e in ends:
            if stop:
                break
            if s < e and e - s <= max_len_frac * n:
                pairs.append((s, e))
            if i + 1 < len(starts) and e > starts[i + 1]:
                stop = True
    return pairs


def oracle_iou_frames(a: tuple[int, int], b: tuple[int, int]) -> float:
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]) + 1)
    return inter / ((a[1] - a[0] + 1) + (b[1] - b[0] + 1) - inter)


def oracle_propose(start_scores, end_scores, actionness, params: ProposalParams = ProposalParams()) -> np.ndarray:
    """Same contract as zeal.proposals.propose (inputs assumed finite and of equal length)."""
    start = [float(v) for v in start_scores]
    end = [float(v) for v in end_scores]
    act = [float(v) for v in actionness]
    n = len(start)
    if n < 2:
        return np.zeros((0, 3))
    ns = oracle_normalize(start, params.minmax_eps)
    ne = oracle_normalize(end, params.minmax_eps)
    k = int(params.top_p * n)
    if k < 1:
        pairs = [(0, n - 1)]
    else:
        starts = oracle_candidates(ns, k, params.candidate_gap)
        ends = oracle_candidates(ne, k, params.candidate_gap)
        pairs = oracle_pairs(starts, ends, n, params.max_len_frac)
    if not pairs:
        return np.zeros((0, 3))

    lam = params.lam
    scores = []
    for s, e in pairs:
        mean = math.fsum(act[s:e + 1]) / (e - s + 1)
        scores.append(lam * (ns[s] + ne[e]) + (1.0 - lam) * mean)

    order = sorted(range(len(pairs)), key=lambda i: -scores[i])   # stable
    cur = list(scores)
    kept = []
    for pos, i in enumerate(order):
        if cur[i] < params.min_score:
            continue
        kept.append(i)
        for j in order[pos + 1:]:
            iou = oracle_iou_frames(pairs[i], pairs[j])
            cur[j] *= float(np.exp(-(iou * iou) / params.nms_sigma))

    survivors = sorted(kept, key=lambda i: pairs[i])
    merged: list[list[float]] = []
    for i in survivors:
        s, e = float(pairs[i][0]), float(pairs[i][1])
        if merged:
            ps, pe, psc = merged[-1]
            inter = max(0.0, min(pe, e) - max(ps, s))
            union = (pe - ps) + (e - s) - inter
            if inter / union > params.merge_iou:
                merged[-1] = [min(ps, s), max(pe, e), (psc + cur[i]) / 2.0]
                continue
        merged.append([s, e, cur[i]])
    return np.asarray(merged, dtype=np.float64).reshape(-1, 3)
