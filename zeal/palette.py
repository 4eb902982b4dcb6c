"""One colour per class, the same everywhere: the app's lanes and list, and the exports whose format
has colours (Label Studio labels, CVAT labels)."""

from __future__ import annotations

from typing import Iterable

# Ten well-separated hues (Tableau 10), then darker variants for classes 11-20.
BASE_COLORS = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
               "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")


def _darker(hex_color: str, factor: float = 0.65) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return "#" + "".join(f"{round(c * factor):02x}" for c in (r, g, b))


def color_at(index: int) -> str:
    """The colour of the class at this position (0-based) of a result or project."""
    n = len(BASE_COLORS)
    color = BASE_COLORS[index % n]
    for _ in range(index // n % 3):
        color = _darker(color)
    return color


def class_colors(labels: Iterable[str]) -> dict[str, str]:
    """{label: "#rrggbb"} by the labels' order, so adding a class never recolours the others."""
    return {label: color_at(k) for k, label in enumerate(dict.fromkeys(labels))}
