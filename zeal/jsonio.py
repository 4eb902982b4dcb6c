"""Reading JSON that a user or another program wrote: one place for the limits every reader needs.

`loads` is `json.loads` with a UTF-8 byte-order mark removed (as the CSV readers do), the nesting
depth bounded (a file of 100,000 nested brackets would otherwise end in a RecursionError) and
integers bounded in digits (a 5,000-digit integer would end in Python's own conversion limit, and
no field of ours needs more than a 64-bit number). Both limits raise `JSONLimitError`, a
ValueError each reader turns into its own one-line error naming the file.
"""

from __future__ import annotations

import json
from typing import Any, Callable

# Our own files nest at most 8 levels (review.json: undo -> group -> ops -> op -> after -> fields).
MAX_DEPTH = 32
MAX_INT_DIGITS = 20  # a 64-bit integer has at most 19 digits


class JSONLimitError(ValueError):
    """JSON nested too deeply or holding a too-large integer."""


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise JSONLimitError(f"holds an integer of {len(text.lstrip('-'))} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _depth_ok(data: Any) -> bool:
    """Whether no container in data nests deeper than MAX_DEPTH (iterative: no recursion)."""
    stack = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return False
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return True


def loads(text: str, object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None) -> Any:
    """Parse JSON text within the limits above; json.JSONDecodeError for malformed text,
    JSONLimitError for text beyond the limits."""
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        data = json.loads(text, parse_int=_bounded_int, object_pairs_hook=object_pairs_hook)
    except RecursionError:
        data = None
        deep = True
    else:
        deep = not _depth_ok(data)
    if deep:
        raise JSONLimitError(f"is nested deeper than {MAX_DEPTH} levels")
    return data
