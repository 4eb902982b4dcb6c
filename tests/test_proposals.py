"""zeal.proposals: hand-made curves with answers known in advance, and equality with the loop oracle."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proposal_oracle import oracle_propose
from zeal.proposals import ProposalParams, normalize, propose

EPS = 0.05          # default min-max margin: a curve's maximum normalises to 1 - EPS, its minimum to EPS
TOP = 1.0 - EPS


def peak(n: int, center: int, half_width: int, height: float = 1.0) -> np.ndarray:
    """A triangular bump of 2*half_width+1 frames on a zero background."""
    x = np.zeros(n)
    for d in range(-half_width, half_width + 1):
        if 0 <= center + d < n:
            x[center + d] = height * (1.0 - abs(d) / (half_width + 1))
    return x


def box(n: int, ranges: list[tuple[int, int]], value: float) -> np.ndarray:
    """value on frames a..b (inclusive) of each range, 0 elsewhere."""
    x = np.zeros(n)
    for a, b in ranges:
        x[a:b + 1] = value
    return x


def test_normalize_range_and_flat_curve():
    x = np.array([2.0, 4.0, 3.0])
    np.testing.assert_allclose(normalize(x), [EPS, TOP, 0.5])
    flat = normalize(np.full(7, 0.3))
    assert np.all(flat == EPS) and not np.isnan(flat).any()


def test_one_clean_peak_pair():
    # N=20, k=int(0.35*20)=7: each peak has exactly 7 non-zero frames, so those are the candidates;
    # thinning keeps only the summit (all others lie within 3 < 5 frames). One start (5), one end (14).
    n = 20
    start, end = peak(n, 5, 3), peak(n, 14, 3)
    act = box(n, [(5, 14)], 0.3)
    out = propose(start, end, act)
    # score = 0.1 * (0.95 + 0.95) + 0.9 * mean(0.3 over frames 5..14) = 0.19 + 0.27
    expected = 0.1 * (TOP + TOP) + 0.9 * 0.3
    assert out.shape == (1, 3)
    assert out[0, 0] == 5 and out[0, 1] == 14
    assert out[0, 2] == pytest.approx(expected, abs=1e-12)


def test_two_separate_actions():
    # N=100, top_p=0.1 -> k=10: the 5-frame bumps at 10/60 (starts) and 30/80 (ends) are the
    # candidates; thinning keeps the summits. Pairing: start 10 takes end 30 and end 80 (the first
    # end after the next start 60, included); start 60 takes 80.
    n = 100
    start = peak(n, 10, 2) + peak(n, 60, 2)
    end = peak(n, 30, 2) + peak(n, 80, 2)
    act = box(n, [(10, 30), (60, 80)], 0.5)
    # With max_len_frac=0.5 the 70-frame span (10, 80) is too long: exactly the two actions remain,
    # each scoring 0.1 * (0.95 + 0.95) + 0.9 * 0.5, and they do not overlap, so no decay.
    out = propose(start, end, act, ProposalParams(top_p=0.1, max_len_frac=0.5))
    one = 0.1 * 2 * TOP + 0.9 * 0.5
    np.testing.assert_allclose(out, [[10, 30, one], [60, 80, one]], rtol=0, atol=1e-12)

    # With the default length limit the span appears too: mean actionness 42*0.5/71; visited after
    # both actions, it is decayed once by each (inclusive IoU 21/71 with either).
    out = propose(start, end, act, ProposalParams(top_p=0.1))
    span = 0.1 * 2 * TOP + 0.9 * (42 * 0.5 / 71)
    decay = math.exp(-((21 / 71) ** 2) / 1.3)
    np.testing.assert_allclose(out, [[10, 30, one], [10, 80, span * decay * decay], [60, 80, one]],
                               rtol=0, atol=1e-12)


def test_flat_curves_make_no_nan():
    # Everything flat: all frames tie, thinning keeps 0, 5, 10, 15 (earlier first) for both curves.
    n = 20
    out = propose(np.full(n, 0.4), np.full(n, 0.4), np.full(n, 0.2))
    assert np.isfinite(out).all() and len(out) > 0
    # Pairs (0,5) (0,10) (5,10) (5,15) (10,15) all score 0.1 * 2 * EPS + 0.9 * 0.2; the first
    # visited, (0, 5), keeps its score untouched.
    assert out[0].tolist() == pytest.approx([0, 5, 0.1 * 2 * EPS + 0.9 * 0.2])
    assert set(map(tuple, out[:, :2].astype(int).tolist())) <= {(0, 5), (0, 10), (5, 10), (5, 15), (10, 15)}
    assert (out[:, 2] <= 0.1 * 2 * EPS + 0.9 * 0.2 + 1e-12).all()


def test_length_one_gives_nothing():
    # A one-frame video has no interval with start < end.
    out = propose(np.array([0.7]), np.array([0.2]), np.array([0.5]))
    assert out.shape == (0, 3)


def test_length_two_gives_the_whole_video():
    # k = int(0.35 * 2) = 0 < 1: the single interval (0, 1).
    out = propose(np.array([0.9, 0.1]), np.array([0.1, 0.9]), np.array([0.3, 0.5]))
    np.testing.assert_allclose(out, [[0, 1, 0.1 * (TOP + TOP) + 0.9 * 0.4]], rtol=0, atol=1e-12)
    # A score exactly at min_score is kept (only "below" drops).
    at_threshold = ProposalParams(min_score=float(out[0, 2]))
    assert len(propose(np.array([0.9, 0.1]), np.array([0.1, 0.9]), np.array([0.3, 0.5]), at_threshold)) == 1
    # ... unless its score is under min_score (0.1): 0.1 * 1.9 + 0.9 * (-0.5) < 0.1.
    assert propose(np.array([0.9, 0.1]), np.array([0.1, 0.9]), np.array([-0.5, -0.5])).shape == (0, 3)


def test_all_starts_after_all_ends_gives_nothing():
    n = 20
    out = propose(peak(n, 15, 3), peak(n, 5, 3), np.full(n, 0.5))
    assert out.shape == (0, 3)


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_infinite_input_is_a_clear_error(bad):
    act = np.full(10, 0.2)
    act[3] = bad
    with pytest.raises(ValueError, match=r"actionness .* at frame 3"):
        propose(np.linspace(0, 1, 10), np.linspace(1, 0, 10), act)


def test_missing_samples_are_left_out_and_bridged():
    """NaN marks a sample that could not be decoded: the proposals are those of the curves without
    it, with frame indices of the full curves; no boundary lands on a missing sample."""
    n = 40
    start, end, act = peak(n, 8, 2), peak(n, 30, 2), np.full(n, 0.3)
    act[10:30] = 0.8
    gap = [11, 12, 26]
    holed = [c.copy() for c in (start, end, act)]
    for c in holed:
        c[gap] = np.nan
    kept = np.setdiff1d(np.arange(n), gap)
    out = propose(*holed)
    compact = propose(start[kept], end[kept], act[kept])
    assert len(out) and np.array_equal(out[:, 2], compact[:, 2])
    np.testing.assert_array_equal(out[:, :2], kept[compact[:, :2].astype(int)])
    assert not np.isin(out[:, :2], gap).any()
    assert any(s < 11 and e > 12 for s, e, _ in out) and any(s < 26 < e for s, e, _ in out)  # spans a gap
    # a NaN in only one curve also makes the sample missing; the normalised curve keeps it missing
    one = start.copy()
    one[5] = np.nan
    assert not np.isin(propose(one, end, act)[:, :2], [5]).any()
    assert np.isnan(normalize(one)[5]) and np.isfinite(np.delete(normalize(one), 5)).all()


def test_length_mismatch_and_shape_are_clear_errors():
    with pytest.raises(ValueError, match="same length"):
        propose(np.zeros(10), np.zeros(9), np.zeros(10))
    with pytest.raises(ValueError, match="1-D"):
        propose(np.zeros((10, 2)), np.zeros(10), np.zeros(10))


# Values from a small set make many exact ties, which exercise the tie-breaking rules.
_tied = st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.5, 0.9, 1.0])
_free = st.floats(0.0, 1.0, allow_nan=False)
_params = st.builds(
    ProposalParams,
    top_p=st.sampled_from([0.05, 0.2, 0.35, 0.6, 1.0]),
    lam=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
    max_len_frac=st.sampled_from([0.1, 0.5, 0.95, 1.0]),
    merge_iou=st.sampled_from([0.0, 0.3, 0.9, 1.0]),
    nms_sigma=st.sampled_from([0.1, 1.3]),
    min_score=st.sampled_from([0.0, 0.1, 0.3]),
    candidate_gap=st.sampled_from([1, 2, 5]),
)


@st.composite
def curves(draw):
    n = draw(st.integers(0, 300))
    values = st.one_of(_tied, _free) if draw(st.booleans()) else _free
    arr = lambda: np.array(draw(st.lists(values, min_size=n, max_size=n)), dtype=np.float64)  # noqa: E731
    start, end = arr(), arr()
    act = arr() * 2.0 - 1.0          # cosine similarities lie in [-1, 1]
    return start, end, act


@settings(max_examples=150, deadline=None)
@given(curves(), st.one_of(st.just(ProposalParams()), _params))
def test_properties_and_equality_with_oracle(data, params):
    start, end, act = data
    n = len(start)
    out = propose(start, end, act, params)
    assert out.ndim == 2 and out.shape[1] == 3 and out.dtype == np.float64
    assert np.isfinite(out).all()
    assert (out[:, 0] >= 0).all() and (out[:, 1] <= n - 1).all()
    assert (out[:, 0] < out[:, 1]).all()
    assert (np.diff(out[:, 0]) >= 0).all()
    assert (out[:, :2] == np.round(out[:, :2])).all()
    expected = oracle_propose(start, end, act, params)
    assert out.shape == expected.shape
    assert np.array_equal(out, expected)     # bit for bit, not approximately


def test_equality_with_oracle_on_long_smooth_curves():
    # Realistic shape (smooth curves with bumps) at a length where every code path runs many times.
    rng = np.random.default_rng(7)
    n = 2000
    kernel = np.ones(15) / 15
    smooth = lambda: np.convolve(rng.random(n + 14), kernel, mode="valid")  # noqa: E731
    start, end, act = smooth(), smooth(), smooth() * 0.4
    out = propose(start, end, act)
    assert len(out) > 10
    assert np.array_equal(out, oracle_propose(start, end, act))
