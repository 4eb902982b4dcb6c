"""How many image tokens a local LVLM spends on a frame (`LVLMConfig.image_budget`), set through each
processor's own options.

A frame's image tokens are most of its prompt, and the prompt's length is what a frame costs: LLaVA-
OneVision's anyres tiling turns a 426x240 frame into ~2,100 prompt tokens, one 384 px crop into ~1,200.
The budget is one of
  "full"  the model's own defaults (nothing is changed);
  "base"  one crop, no tiling or splitting: LLaVA-OneVision keeps only its 384x384 grid point (its
          base view plus one tile), Idefics3/SmolVLM stop splitting (one 512 px view for SmolVLM),
          dynamic-resolution models (Qwen2-VL, Qwen2.5-VL, Pixtral), which have no crop, get
          BASE_PIXELS pixels' worth of the frame;
  N       at most N pixels of input resolution: LLaVA-OneVision keeps the grid points of at most N
          pixels, Qwen2-VL's `max_pixels` becomes N, Idefics3/SmolVLM tile up to the largest square
          grid of tiles within N pixels, Pixtral's longest edge at most sqrt(N).
A budget only ever lowers what the model does by default, never raises it. A model whose processor has
no such option (one fixed-size crop, e.g. LLaVA-1.5) is left as it is.

`apply_image_budget` returns a processor whose image processor is a changed copy (the given one stays
as it was); for LLaVA-OneVision it also sets the model's own `image_grid_pinpoints` (under any budget,
"full" included), which the model reads to undo the tiling, so that the two agree.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
from typing import Any, Callable

from zeal.config import parse_image_budget

log = logging.getLogger(__name__)

# "base" for a model without crops: as many pixels as one 384x384 crop of LLaVA-OneVision or SigLIP.
BASE_PIXELS = 384 * 384


def apply_image_budget(model: Any, processor: Any, budget: str | int) -> Any:
    """The processor to use under `budget` ("full", "base" or a pixel count); see the module doc."""
    budget = parse_image_budget(budget)
    image_processor = getattr(processor, "image_processor", None)
    if budget == "full":
        if getattr(image_processor, "image_grid_pinpoints", None):  # a model an earlier budget changed
            _share_grid(model, image_processor.image_grid_pinpoints)
        return processor
    rule = _rule(model, image_processor)
    if rule is None:
        log.info("image_budget=%s has no effect on %s: its processor has no image size option",
                 budget, type(model).__name__)
        return processor
    out = copy.copy(processor)
    out.image_processor = copy.deepcopy(image_processor)
    rule(model, out.image_processor, budget)
    return out


def _rule(model: Any, image_processor: Any) -> Callable[[Any, Any, str | int], None] | None:
    """Which processor option carries the budget, from what the image processor has."""
    if image_processor is None:
        return None
    if getattr(image_processor, "image_grid_pinpoints", None):  # LLaVA-OneVision, LLaVA-NeXT
        return _grid_points
    if hasattr(image_processor, "do_image_splitting"):  # Idefics3, SmolVLM
        return _splitting
    size = getattr(image_processor, "size", None)
    if _get(size, "shortest_edge") and _get(size, "longest_edge") and hasattr(image_processor, "merge_size"):
        return _max_pixels  # Qwen2-VL, Qwen2.5-VL: sizes in pixels
    if _get(size, "longest_edge") and hasattr(image_processor, "patch_size"):
        return _longest_edge  # Pixtral
    return None


def _grid_points(model: Any, image_processor: Any, budget: str | int) -> None:
    crop = [int(_get(image_processor.size, "height")), int(_get(image_processor.size, "width"))]
    limit = crop[0] * crop[1] if budget == "base" else int(budget)
    points = [list(p) for p in image_processor.image_grid_pinpoints if p[0] * p[1] <= limit] or [crop]
    image_processor.image_grid_pinpoints = points
    _share_grid(model, points)


def _share_grid(model: Any, points: list) -> None:
    """The model undoes the processor's tiling with its own copy of the grid: the two must agree."""
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "image_grid_pinpoints"):
        config.image_grid_pinpoints = [list(p) for p in points]


def _splitting(model: Any, image_processor: Any, budget: str | int) -> None:
    tile = int(_get(image_processor.max_image_size, "longest_edge"))
    per_side = 0 if budget == "base" else math.isqrt(int(budget)) // tile
    if per_side <= 1:
        image_processor.do_image_splitting = False  # one view of the frame at the tile size
        return
    longest = min(int(_get(image_processor.size, "longest_edge")), per_side * tile)
    image_processor.size = _set(image_processor.size, longest_edge=longest)


def _max_pixels(model: Any, image_processor: Any, budget: str | int) -> None:
    limit = BASE_PIXELS if budget == "base" else int(budget)
    size = image_processor.size
    longest = min(int(_get(size, "longest_edge")), limit)
    image_processor.size = _set(size, longest_edge=longest, shortest_edge=min(int(_get(size, "shortest_edge")), longest))
    for name, value in (("max_pixels", longest), ("min_pixels", _get(image_processor.size, "shortest_edge"))):
        if getattr(image_processor, name, None) is not None:  # older processors keep a copy of each
            setattr(image_processor, name, value)


def _longest_edge(model: Any, image_processor: Any, budget: str | int) -> None:
    limit = BASE_PIXELS if budget == "base" else int(budget)
    patch = _get(image_processor.patch_size, "height") or image_processor.patch_size
    edge = max(int(patch), math.isqrt(limit) // int(patch) * int(patch))
    image_processor.size = _set(image_processor.size, longest_edge=min(int(_get(image_processor.size, "longest_edge")), edge))


def _get(size: Any, key: str) -> Any:
    if size is None or isinstance(size, int):
        return None
    return size.get(key) if isinstance(size, dict) else getattr(size, key, None)


def _set(size: Any, **changes: int) -> Any:
    if isinstance(size, dict):
        return {**size, **changes}
    return dataclasses.replace(size, **changes)
