"""Result -> plotly figures. Pure functions: no gradio, no files, no models.

Every clickable mark carries `customdata = [time_s, interval_index]` (interval_index is the row of
the interval in `flat_intervals(result)`, -1 for a curve point), which the page's script reads on a
click to seek the video and to select the interval.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from zeal.types import Interval, Result

# Drawing more points than a chart is pixels wide only slows the browser; long videos (4 h at
# 1 fps = 14 400 samples) are reduced to a min/max envelope of this many buckets for display.
MAX_DRAW_POINTS = 1500
START_COLOR = "#1a9850"
END_COLOR = "#d73027"
ACTIONNESS_COLOR = "#7570b3"
MODEL_COLOR = "#2166ac"
HUMAN_COLOR = "#e08214"
REJECTED_COLOR = "#9e9e9e"
GT_COLOR = "#000000"
SELECTED_LINE = "#111111"
# Band opacity grows with the interval's score so that strong proposals stand out.
MIN_BAND_OPACITY, MAX_BAND_OPACITY = 0.10, 0.35
# The ground-truth strip sits just under the probability axis.
GT_STRIP = (-0.12, -0.04)
CHART_HEIGHT_PX = 340
LANE_HEIGHT_PX = 46
FONT = dict(family="system-ui, -apple-system, Segoe UI, sans-serif", size=12)


def flat_intervals(result: Result) -> list[tuple[str, int, Interval]]:
    """Every interval as (label, index within its class, interval), sorted by (start, end, label).

    The position in this list is the interval's row in the intervals table and its index in plots."""
    rows = [(label, i, iv) for label, cls in result.classes.items() for i, iv in enumerate(cls.intervals)]
    return sorted(rows, key=lambda r: (r[2].start_s, r[2].end_s, r[2].label, r[1]))


def downsample(times: np.ndarray, values: np.ndarray, max_points: int = MAX_DRAW_POINTS
               ) -> tuple[np.ndarray, np.ndarray]:
    """A min/max envelope for drawing only: [N] times and values -> at most max_points of each.

    Keeps each bucket's lowest and highest sample in time order, so peaks stay visible."""
    times, values = np.asarray(times, dtype=np.float64), np.asarray(values, dtype=np.float64)
    n = len(times)
    if n <= max_points:
        return times, values
    buckets = np.array_split(np.arange(n), max(1, max_points // 2))
    keep: list[int] = []
    for b in buckets:
        lo, hi = b[np.argmin(values[b])], b[np.argmax(values[b])]
        keep.extend(sorted({int(lo), int(hi)}))
    idx = np.asarray(keep)
    return times[idx], values[idx]


def _go():
    import plotly.graph_objects as go  # plotly is a UI dependency only; keep module import light

    return go


def _base_layout(height: int, title: str) -> dict:
    return dict(height=height, title=dict(text=title, x=0.01, font=dict(size=14)), font=FONT,
                margin=dict(l=56, r=56, t=56, b=40), hovermode="closest", clickmode="event",
                plot_bgcolor="white", paper_bgcolor="white",
                legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1))


def empty_figure(message: str = "Run the analysis to see the curves"):
    """A blank chart carrying one centred message."""
    go = _go()
    fig = go.Figure()
    fig.update_layout(**_base_layout(160, ""), xaxis=dict(visible=False), yaxis=dict(visible=False))
    fig.add_annotation(text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font=dict(size=14, color="#666"))
    return fig


def _interval_color(iv: Interval) -> str:
    if not iv.accepted:
        return REJECTED_COLOR
    return HUMAN_COLOR if iv.source == "human" else MODEL_COLOR


def _opacity(score: float) -> float:
    return float(MIN_BAND_OPACITY + (MAX_BAND_OPACITY - MIN_BAND_OPACITY) * np.clip(score, 0.0, 1.0))


def _bar_opacity(score: float) -> float:
    # Overlapping intervals of one lane overlay each other: translucent bars keep each one visible.
    return float(0.45 + 0.5 * np.clip(score, 0.0, 1.0))


def class_figure(result: Result, label: str, ground_truth: Sequence[tuple[float, float]] = (),
                 selected: int | None = None, max_points: int = MAX_DRAW_POINTS):
    """The detail chart of one class over time (seconds).

    Start and end P(yes) on the left axis (0..1), CLIP actionness (raw cosine) on the right axis,
    each interval as a shaded band with its score, ground truth as a black strip under the axis,
    the selected interval (index into flat_intervals) outlined."""
    go = _go()
    cls = result.classes[label]
    times = np.asarray(result.times_s, dtype=np.float64)
    fig = go.Figure()
    curves = [("start question P(yes)", cls.curves.start_raw, START_COLOR, "y", "solid"),
              ("end question P(yes)", cls.curves.end_raw, END_COLOR, "y", "solid"),
              ("actionness (CLIP cosine, right axis)", cls.curves.actionness, ACTIONNESS_COLOR, "y2", "dot")]
    for name, values, color, axis, dash in curves:
        t, v = downsample(times, values, max_points)
        fig.add_trace(go.Scatter(
            x=t, y=v, name=name, yaxis=axis, mode="lines", line=dict(color=color, width=2, dash=dash),
            customdata=np.stack([t, np.full(len(t), -1.0)], axis=1),
            hovertemplate="%{x:.2f} s: %{y:.3f}<extra>" + name + "</extra>"))
    flat = flat_intervals(result)
    mark_x, mark_y, mark_text, mark_data, mark_color = [], [], [], [], []
    for row, (lab, _, iv) in enumerate(flat):
        if lab != label:
            continue
        is_sel = selected == row
        fig.add_shape(type="rect", x0=iv.start_s, x1=iv.end_s, y0=0, y1=1, xref="x", yref="y",
                      fillcolor=_interval_color(iv), opacity=_opacity(iv.score), layer="below",
                      line=dict(width=2 if is_sel else 0, color=SELECTED_LINE))
        mark_x.append((iv.start_s + iv.end_s) / 2)
        mark_y.append(1.04)
        status = "" if iv.accepted else " ✗"
        mark_text.append(f"{iv.score:.2f}{status}" if iv.source == "model" else f"human{status}")
        mark_data.append([iv.start_s, row])
        mark_color.append(_interval_color(iv))
    if mark_x:
        fig.add_trace(go.Scatter(
            x=mark_x, y=mark_y, mode="markers+text", text=mark_text, textposition="top center",
            marker=dict(symbol="triangle-down", size=11, color=mark_color), customdata=mark_data,
            name="intervals (click to jump)", cliponaxis=False,
            hovertemplate="interval %{customdata[1]}: starts %{customdata[0]:.2f} s<extra></extra>"))
    if len(ground_truth):
        for s, e in ground_truth:
            fig.add_shape(type="rect", x0=s, x1=e, y0=GT_STRIP[0], y1=GT_STRIP[1], xref="x", yref="y",
                          fillcolor=GT_COLOR, opacity=0.8, line=dict(width=0))
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="ground truth",
                                 marker=dict(symbol="square", color=GT_COLOR)))
    duration = max(float(result.video.duration_s), float(times[-1]) if len(times) else 0.0)
    fig.update_layout(
        **{**_base_layout(CHART_HEIGHT_PX, f"{label}: start / end confidence and actionness"),
           "hovermode": "x"},  # a click anywhere picks the time under the cursor
        xaxis=dict(title="time (s)", range=[0, duration], showgrid=True, gridcolor="#eee", zeroline=False),
        yaxis=dict(title="P(yes)", range=[GT_STRIP[0] - 0.02 if len(ground_truth) else -0.02, 1.16],
                   showgrid=True, gridcolor="#eee", zeroline=False, tickvals=[0, 0.25, 0.5, 0.75, 1]),
        yaxis2=dict(title="actionness", overlaying="y", side="right", showgrid=False, zeroline=False))
    return fig


def overview_figure(result: Result, ground_truth: dict[str, Sequence[tuple[float, float]]] | None = None,
                    selected: int | None = None):
    """Every class as one lane over the whole video (like ELAN tiers); intervals as bars coloured by
    source (model / human) and decision (rejected in grey), ground truth as a thin black bar."""
    go = _go()
    labels = list(result.classes)
    fig = go.Figure()
    flat = flat_intervals(result)
    groups = {"model": [], "human": [], "rejected": []}
    for row, (lab, _, iv) in enumerate(flat):
        key = "rejected" if not iv.accepted else iv.source if iv.source in groups else "model"
        groups[key].append((row, lab, iv))
    colors = {"model": MODEL_COLOR, "human": HUMAN_COLOR, "rejected": REJECTED_COLOR}
    for key, rows in groups.items():
        if not rows:
            continue
        fig.add_trace(go.Bar(
            y=[lab for _, lab, _ in rows], x=[max(iv.end_s - iv.start_s, 1e-3) for _, _, iv in rows],
            base=[iv.start_s for _, _, iv in rows], orientation="h", name=key, width=0.6,
            marker=dict(color=colors[key], opacity=[_bar_opacity(iv.score) for _, _, iv in rows],
                        line=dict(width=[3 if r == selected else 1 for r, _, _ in rows],
                                  color=[SELECTED_LINE if r == selected else "white" for r, _, _ in rows])),
            customdata=[[iv.start_s, r, iv.end_s, iv.score] for r, _, iv in rows],
            hovertemplate="%{y}: %{customdata[0]:.2f}–%{customdata[2]:.2f} s, score %{customdata[3]:.2f}"
                          "<extra>" + key + "</extra>"))
    gt_rows = [(lab, s, e) for lab, spans in (ground_truth or {}).items() if lab in labels for s, e in spans]
    if gt_rows:
        fig.add_trace(go.Bar(
            y=[lab for lab, _, _ in gt_rows], x=[e - s for _, s, e in gt_rows], base=[s for _, s, _ in gt_rows],
            orientation="h", name="ground truth", width=0.15, offset=-0.45, marker=dict(color=GT_COLOR),
            customdata=[[s, -1] for _, s, _ in gt_rows], hovertemplate="ground truth %{base:.2f} s<extra></extra>"))
    duration = float(result.video.duration_s)
    height = max(160, 90 + LANE_HEIGHT_PX * max(1, len(labels)))
    fig.update_layout(**_base_layout(height, "Overview: one lane per class"), barmode="overlay",
                      xaxis=dict(title="time (s)", range=[0, duration], showgrid=True, gridcolor="#eee"),
                      yaxis=dict(categoryorder="array", categoryarray=labels[::-1], type="category",
                                 range=[-0.5, len(labels) - 0.5]))
    return fig
