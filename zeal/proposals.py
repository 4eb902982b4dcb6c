"""Step 5 of the method: turn the start/end P(yes) curves and the actionness curve of one class
into scored intervals, in frame indices (numpy only).

The rules, exactly (see DESIGN.md step 5; `ProposalParams` holds the numbers):

1. Modified min-max of each boundary curve: (x - min) / (max - min) * (1 - 2 eps) + eps. A flat
   curve (max == min) becomes eps everywhere.
2. Candidates: k = int(top_p * N). Every frame whose normalised score is >= the k-th largest value
   is a candidate. Candidates are thinned greedily in descending score (ties: earlier frame first):
   a candidate is kept unless a kept one lies fewer than `candidate_gap` frames away. The kept
   starts and ends are then sorted by time. If k < 1 (very short curves) the only interval is
   (0, N-1), which needs N >= 2.
3. Pairing: start s_i pairs with every end e_j such that s_i < e_j, e_j - s_i <= max_len_frac * N
   and e_j is not after the first end lying after the next start s_{i+1} (that end itself is
   included; the last start has no such limit). If nothing pairs, there is no interval.
4. Score: lam * (start[s] + end[e]) + (1 - lam) * mean(actionness[s..e]), boundary scores
   normalised, actionness raw, the mean over frames s..e inclusive. The sum inside the mean is
   correctly rounded (as `math.fsum`), so the result does not depend on the summation order.
5. Gaussian soft-NMS: intervals are visited once, in descending order of their initial score
   (ties: earlier start, then earlier end first). One whose decayed score is below `min_score`
   when visited is dropped; a kept one multiplies the score of every later one by
   exp(-IoU^2 / nms_sigma), IoU counting frames inclusively.
6. Merging: sorted by (start, end), an interval whose continuous IoU (no +1) with the last kept
   one is above `merge_iou` is merged into it (earliest start, latest end, mean of the scores).

Missing samples (frames that could not be decoded) are NaN in the curves. They are left out: the
rules above run on the samples that exist, in time order, so no boundary falls on a missing sample
and an interval's mean actionness is over the samples it covers that exist; an interval may span a
gap. The frame indices returned are those of the full curves.

`tests/proposal_oracle.py` states the same rules as plain loops; the tests check that
`propose` gives bit-identical output.
"""

from __future__ import annotations

import math

import numpy as np

from zeal.config import ProposalParams

__all__ = ["ProposalParams", "normalize", "propose", "check_curves"]

# float64 carries 53 significant bits: mantissa * 2**53 is an exact integer.
_MANTISSA_BITS = 53


def check_curves(**curves: np.ndarray) -> int:
    """Validate same-length, 1-D curves of finite values or NaN (a missing sample); returns their
    length N.

    Raises ValueError naming the curve and the first bad index (inf), or the lengths.
    """
    lengths = {}
    for name, curve in curves.items():
        arr = np.asarray(curve)
        if arr.ndim != 1:
            raise ValueError(f"{name} must be a 1-D curve with one value per sampled frame, got shape {arr.shape}")
        bad = np.flatnonzero(np.isinf(arr))
        if bad.size:
            raise ValueError(f"{name} has a non-finite value ({arr[bad[0]]}) at frame {bad[0]}"
                             f" ({bad.size} bad value(s) in all); re-score the video or fix the curve")
        lengths[name] = arr.shape[0]
    if len(set(lengths.values())) > 1:
        raise ValueError(f"curves must have the same length (one value per sampled frame), got {lengths}")
    return next(iter(lengths.values()), 0)


def normalize(x: np.ndarray, eps: float = 0.05) -> np.ndarray:
    """Modified min-max of a [N] curve into [eps, 1 - eps]; a flat curve becomes eps everywhere.

    x: [N] finite values, NaN for missing samples (they stay NaN). Returns [N] float64.
    """
    x = np.asarray(x, dtype=np.float64)
    present = ~np.isnan(x)
    if not present.any():
        return x.copy()
    lo = x[present].min()
    span = x[present].max() - lo
    if span == 0.0:
        return np.where(present, eps, np.nan)
    return (x - lo) / span * (1.0 - 2.0 * eps) + eps


def _candidates(norm: np.ndarray, k: int, gap: int) -> np.ndarray:
    """Frames scoring >= the k-th largest value, thinned greedily in descending score so that no two
    kept ones are fewer than `gap` frames apart; returned sorted by frame. [K] int64."""
    n = norm.shape[0]
    kth = np.partition(norm, n - k)[n - k]
    cand = np.flatnonzero(norm >= kth)
    order = cand[np.argsort(-norm[cand], kind="stable")]
    # A kept frame c blocks every frame f with |f - c| < gap; offset by gap so no clipping is needed.
    blocked = bytearray(n + 2 * gap)
    block = b"\x01" * (2 * gap - 1)
    kept = []
    for c in order.tolist():
        if not blocked[c + gap]:
            kept.append(c)
            blocked[c + 1:c + 2 * gap] = block
    return np.sort(np.asarray(kept, dtype=np.int64))


def _pair(starts: np.ndarray, ends: np.ndarray, n: int, max_len_frac: float) -> tuple[np.ndarray, np.ndarray]:
    """All (start, end) pairs allowed by the pairing rule, ordered by start then end. Two [M] int64."""
    # e - s <= max_len_frac * N with integer e - s is the same as e - s <= floor(max_len_frac * N).
    max_len = math.floor(max_len_frac * n)
    lo = np.searchsorted(ends, starts, side="right")                      # first end after s_i
    hi = np.full(starts.shape, ends.size, dtype=np.int64)
    # Up to and including the first end after the next start.
    hi[:-1] = np.minimum(np.searchsorted(ends, starts[1:], side="right") + 1, ends.size)
    hi = np.minimum(hi, np.searchsorted(ends, starts + max_len, side="right"))
    counts = np.maximum(hi - lo, 0)
    total = int(counts.sum())
    if total == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    first = np.repeat(lo - (np.cumsum(counts) - counts), counts)
    j = first + np.arange(total)
    return np.repeat(starts, counts), ends[j]


def _exact_prefix(x: np.ndarray) -> tuple[np.ndarray, int]:
    """Exact prefix sums of a finite [N] float64 curve as Python integers at a common scale:
    returns (P [N+1] object, scale_exp) with sum(x[a:b]) == (P[b] - P[a]) * 2**scale_exp exactly."""
    mant, expo = np.frexp(x)
    ints = (mant * 2.0 ** _MANTISSA_BITS).astype(np.int64)     # x = ints * 2**(expo - 53), exact
    shift = expo.astype(np.int64) - _MANTISSA_BITS
    nonzero = ints != 0
    base = int(shift[nonzero].min()) if nonzero.any() else 0
    rel = np.where(nonzero, shift - base, 0).astype(object)
    scaled = ints.astype(object) << rel
    prefix = np.empty(x.size + 1, dtype=object)
    prefix[0] = 0
    prefix[1:] = np.cumsum(scaled)
    return prefix, base


def _interval_means(actionness: np.ndarray, s: np.ndarray, e: np.ndarray) -> np.ndarray:
    """mean(actionness[s..e]) per interval, with a correctly rounded sum. [M] float64."""
    prefix, base = _exact_prefix(actionness)
    exact = prefix[e + 1] - prefix[s]
    if base >= 0:
        sums = [float(v << base) for v in exact.tolist()]
    else:
        # int / int true division is correctly rounded in Python.
        scale = 1 << -base
        sums = [v / scale for v in exact.tolist()]
    return np.asarray(sums, dtype=np.float64) / (e - s + 1)


def _overlapping_pairs(s: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every unordered pair of intervals sharing at least one frame, once. s, e: [M] sorted by
    (start, end). Returns index arrays (a, b), a < b."""
    # Two inclusive intervals overlap iff one starts inside the other; with starts sorted, j > i
    # starts inside i iff s_j <= e_i.
    hi = np.searchsorted(s, e, side="right")
    counts = np.maximum(hi - np.arange(s.size) - 1, 0)
    total = int(counts.sum())
    a = np.repeat(np.arange(s.size), counts)
    b = a + 1 + (np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts))
    return a, b


def _soft_nms(s: np.ndarray, e: np.ndarray, score: np.ndarray, sigma: float, min_score: float) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian soft-NMS in visiting order; returns (kept mask [M] bool, decayed scores [M])."""
    m = s.size
    order = np.argsort(-score, kind="stable")
    rank = np.empty(m, dtype=np.int64)
    rank[order] = np.arange(m)
    # Only overlapping pairs decay each other (IoU 0 gives a factor of exactly 1).
    a, b = _overlapping_pairs(s, e)
    inter = (np.minimum(e[a], e[b]) - np.maximum(s[a], s[b]) + 1).astype(np.float64)
    iou = inter / ((e[a] - s[a] + 1) + (e[b] - s[b] + 1) - inter)
    factor = np.exp(-(iou * iou) / sigma)
    # Orient each pair from the earlier visited to the later one, grouped by the earlier one.
    first = np.where(rank[a] < rank[b], a, b)
    later = np.where(rank[a] < rank[b], b, a)
    by_first = np.argsort(rank[first], kind="stable")
    later, factor = later[by_first], factor[by_first]
    bounds = np.searchsorted(rank[first][by_first], np.arange(m + 1))
    cur = score.copy()
    kept = np.zeros(m, dtype=bool)
    for r, i in enumerate(order.tolist()):
        if cur[i] < min_score:
            continue
        kept[i] = True
        lo, hi = bounds[r], bounds[r + 1]
        if hi > lo:
            cur[later[lo:hi]] *= factor[lo:hi]
    return kept, cur


def _merge(s: np.ndarray, e: np.ndarray, score: np.ndarray, merge_iou: float) -> np.ndarray:
    """One pass over intervals sorted by (start, end); merge those whose continuous IoU with the
    last kept one is above merge_iou. Returns [K, 3] float64."""
    out: list[list[float]] = []
    for start, end, sc in zip(s.tolist(), e.tolist(), score.tolist()):
        if out:
            last = out[-1]
            inter = max(0.0, min(last[1], end) - max(last[0], start))
            union = (last[1] - last[0]) + (end - start) - inter
            if inter / union > merge_iou:
                last[0], last[1] = min(last[0], start), max(last[1], end)
                last[2] = (last[2] + sc) / 2.0
                continue
        out.append([float(start), float(end), sc])
    return np.asarray(out, dtype=np.float64).reshape(-1, 3)


def propose(start_scores: np.ndarray, end_scores: np.ndarray, actionness: np.ndarray,
            params: ProposalParams = ProposalParams()) -> np.ndarray:
    """Scored intervals of one class from its curves (see the module docstring for the rules).

    start_scores, end_scores: [N] raw P(yes) of the start/end question per sampled frame;
    actionness: [N] raw CLIP cosine similarity per sampled frame.
    Returns [M, 3] float64 rows (start_frame, end_frame, score), sorted by start, with
    0 <= start < end <= N-1. Empty ([0, 3]) when N < 2 (an interval needs two frames) or when no
    start pairs with an end.
    A sample that is NaN in any curve is missing and left out (see the module docstring).
    Raises ValueError when a curve holds inf (naming the curve and the first bad frame) or the
    lengths differ.
    """
    n = check_curves(start_scores=start_scores, end_scores=end_scores, actionness=actionness)
    curves = [np.asarray(c, dtype=np.float64) for c in (start_scores, end_scores, actionness)]
    present = ~(np.isnan(curves[0]) | np.isnan(curves[1]) | np.isnan(curves[2]))
    if not present.all():
        kept = np.flatnonzero(present)
        rows = propose(*(c[kept] for c in curves), params)
        rows[:, :2] = kept[rows[:, :2].astype(np.int64)]  # back to indices of the full curves
        return rows
    empty = np.zeros((0, 3), dtype=np.float64)
    if n < 2:
        return empty
    ns = normalize(np.asarray(start_scores, dtype=np.float64), params.minmax_eps)
    ne = normalize(np.asarray(end_scores, dtype=np.float64), params.minmax_eps)
    act = np.asarray(actionness, dtype=np.float64)
    k = int(params.top_p * n)
    if k < 1:
        s = np.array([0], dtype=np.int64)
        e = np.array([n - 1], dtype=np.int64)
    else:
        starts = _candidates(ns, k, params.candidate_gap)
        ends = _candidates(ne, k, params.candidate_gap)
        s, e = _pair(starts, ends, n, params.max_len_frac)
        if s.size == 0:
            return empty
    lam = params.lam
    score = lam * (ns[s] + ne[e]) + (1.0 - lam) * _interval_means(act, s, e)
    kept, cur = _soft_nms(s, e, score, params.nms_sigma, params.min_score)
    # Pairs come out ordered by (start, end), so the kept ones already are too.
    return _merge(s[kept], e[kept], cur[kept], params.merge_iou)
