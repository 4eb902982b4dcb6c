"""A person's edits of a result, as the review workspace sends them (the server's half of its edit
protocol; `zeal.project` keeps every applied batch in a journal).

The page changes intervals at once, under the annotator's hand, and tells the server afterwards,
in order. Each edit names one page (its client id) and carries

    {"seq": n, "kind": "do" | "undo" | "redo", "gid": group id, "label": "accept",
     "ops": [{"id": interval id, "v": version after the op, "before": {...} | None,
              "after": {...} | None}]}

where before/after are whole intervals (None: the interval does not exist). An op replaces the
interval with that id by `after`, so applying it twice changes nothing; an edit whose seq the
server already applied for that page is skipped, so a page re-sends whatever it has not seen
acknowledged (after a lost connection or a reload) without doubling anything. A batch is checked
whole before anything changes: one bad op refuses the batch and the result stays as it was.

The undo and redo stacks are kept here too, moved by the same edits in the same order as on the
page, so a reload hands the page its history back.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from zeal.errors import ZealError
from zeal.review import ReviewLog
from zeal.types import REVIEW_STATES, SOURCES, ClassResult, Interval, Result

MAX_HISTORY_GROUPS = 200  # undo steps kept (the page promises at least 100)
MAX_HISTORY_OPS = 50_000  # and at most this many interval changes in all (a bulk accept is many)
MAX_CLIENTS = 64  # pages remembered per session for de-duplication
MAX_BATCH_OPS = 20_000
_ID_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")
KINDS = ("do", "undo", "redo")


class EditError(ZealError, ValueError):
    """An edit the result cannot take (unknown class, end before start, malformed message)."""


@dataclass(frozen=True)
class Applied:
    """What a batch did: how many edits were new, the ids whose version did not follow on from
    what the server had (something else changed them in between), and the new rev."""

    applied: int
    conflicts: tuple[str, ...]
    rev: int


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise EditError(f"{what} must be a finite number of seconds, got {value!r}")
    return float(value)


def interval_from_page(data: Any, result: Result) -> Interval:
    """An interval sent by the page, checked against the result (class, times within the video)."""
    if not isinstance(data, dict):
        raise EditError(f"an interval must be an object, got {type(data).__name__}")
    iid, label = data.get("id"), data.get("label")
    if not isinstance(iid, str) or not _ID_RE.match(iid):
        raise EditError(f"interval id {iid!r} is not an id (letters, digits, '-'; at most 64)")
    if not isinstance(label, str) or label not in result.classes:
        raise EditError(f"class {label!r} is not in this result; use one of: {', '.join(result.classes)}")
    start, end = _number(data.get("start_s"), "start"), _number(data.get("end_s"), "end")
    score = _number(data.get("score", 1.0), "score")
    duration = float(result.video.duration_s)
    if not 0.0 <= start < end <= duration + 1e-6:
        raise EditError(f"interval {label} {start:.3f}-{end:.3f} s: the end must be after the start, both "
                        f"within 0-{duration:.3f} s")
    source, state = data.get("source", "human"), data.get("state", "accepted")
    if source not in SOURCES or state not in REVIEW_STATES:
        raise EditError(f"interval {iid}: source must be one of {SOURCES}, state one of {REVIEW_STATES}")
    return Interval(start, min(end, duration), label, score, source, state, iid,
                    bool(data.get("in_review_set", True)))


def _checked(edits: Any, result: Result) -> list[tuple[dict, list[tuple[str, int, Interval | None]]]]:
    if not isinstance(edits, list):
        raise EditError("edits must be a list")
    out, total = [], 0
    for e in edits:
        if not isinstance(e, dict) or not isinstance(e.get("seq"), int) or e.get("kind") not in KINDS:
            raise EditError(f"malformed edit {str(e)[:80]!r}: needs an integer seq and a kind in {KINDS}")
        ops = e.get("ops")
        if not isinstance(ops, list):
            raise EditError(f"edit {e['seq']}: ops must be a list")
        total += len(ops)
        if total > MAX_BATCH_OPS:
            raise EditError(f"more than {MAX_BATCH_OPS} interval changes in one batch")
        checked = []
        for op in ops:
            if not isinstance(op, dict) or not isinstance(op.get("id"), str) or not _ID_RE.match(op["id"]):
                raise EditError(f"edit {e['seq']}: every op needs an interval id")
            after = None if op.get("after") is None else interval_from_page(op["after"], result)
            if after is not None and after.id != op["id"]:
                raise EditError(f"edit {e['seq']}: op for {op['id']} carries interval {after.id}")
            version = op.get("v")
            checked.append((op["id"], version if isinstance(version, int) else 0, after))
        out.append((e, checked))
    return out


def _stack_move(log: ReviewLog, edit: dict) -> None:
    """Move the edit's group between the undo and redo stacks as the page did."""
    gid = edit.get("gid")
    if edit["kind"] == "do":
        group = {"gid": gid, "label": str(edit.get("label", ""))[:80], "ops": edit["ops"]}
        log.undo.append(group)
        log.redo.clear()
    else:
        source, target = (log.undo, log.redo) if edit["kind"] == "undo" else (log.redo, log.undo)
        for k in range(len(source) - 1, -1, -1):
            if source[k].get("gid") == gid:
                target.append(source.pop(k))
                break
    while len(log.undo) > MAX_HISTORY_GROUPS or (
            len(log.undo) > 1 and sum(len(g["ops"]) for g in log.undo) > MAX_HISTORY_OPS):
        log.undo.pop(0)
    del log.redo[:-MAX_HISTORY_GROUPS]


def apply_edits(result: Result, log: ReviewLog, client: str, edits: Any) -> Applied:
    """Apply a page's batch of edits to `result` (in place) and `log`. EditError, before any
    change, when anything in the batch is malformed or does not fit the result. Only the classes
    an edit touches are rebuilt, so an edit costs little however many intervals the result has."""
    if not isinstance(client, str) or not _ID_RE.match(client):
        raise EditError(f"client id {client!r} is not an id")
    batch = _checked(edits, result)
    last = log.seqs.get(client, 0)
    fresh = [(e, ops) for e, ops in batch if e["seq"] > last]
    if not fresh:
        return Applied(0, (), log.rev)
    where = {iv.id: label for label, cls in result.classes.items() for iv in cls.intervals}
    changed: dict[str, dict[str, Interval | None]] = {}  # class -> id -> new value (None: gone)
    conflicts: list[str] = []
    for e, ops in sorted(fresh, key=lambda item: item[0]["seq"]):
        for iid, version, after in ops:
            current = log.versions.get(iid, 0)
            if version != current + 1:
                conflicts.append(iid)
            log.versions[iid] = max(current + 1, version)
            old = where.pop(iid, None)
            if old is not None:
                changed.setdefault(old, {})[iid] = None
            if after is None:
                log.deleted.add(iid)
            else:
                where[iid] = after.label
                changed.setdefault(after.label, {})[iid] = after
                log.deleted.discard(iid)
        _stack_move(log, e)
        log.seqs.pop(client, None)  # re-inserted: the dict's order is the order pages were heard from
        log.seqs[client] = e["seq"]
    for label, updates in changed.items():
        cls = result.classes[label]
        kept = [iv for iv in cls.intervals if iv.id not in updates]
        kept += [iv for iv in updates.values() if iv is not None]
        result.classes[label] = ClassResult(cls.label, cls.query, cls.curves,
                                            sorted(kept, key=lambda i: (i.start_s, i.end_s, i.id)))
    if len(log.seqs) > MAX_CLIENTS:  # forget the pages not heard from for the longest
        for old in list(log.seqs)[:-MAX_CLIENTS]:
            del log.seqs[old]
    log.rev += 1
    return Applied(len(fresh), tuple(dict.fromkeys(conflicts)), log.rev)
