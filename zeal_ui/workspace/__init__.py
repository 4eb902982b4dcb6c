"""The review workspace: one client-side component (player, timeline, lanes, list, undo:
workspace.js) and the server functions it calls (load, apply edits, re-propose). The view itself
(zoom, selection, filters) stays in the browser.

The component is a `gr.HTML` whose value is only a signal, `{"sid": ..., "n": nonce}`: when it
changes, the page loads that session's result through `load`. Everything else the page asks for
goes through the server functions, which answer plain JSON and never wait in Gradio's queue.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any, Callable

from zeal.config import ProposalParams
from zeal.errors import ZealError
from zeal.review import counts
from zeal_ui.workspace.edits import EditError, apply_edits
from zeal_ui.workspace.payload import payload, wire_intervals

if TYPE_CHECKING:  # the store imports the edit log from this package
    from zeal_ui.session import SessionStore

log = logging.getLogger(__name__)

TEMPLATE = '<div class="zw"></div>'  # static: Gradio never re-renders what workspace.js builds
PARAM_FIELDS = ("lam", "top_p", "nms_sigma", "merge_iou", "min_score")


def _asset(name: str) -> str:
    """A file of this package (package data, so an installed copy has it too)."""
    from importlib.resources import files

    return files(__name__).joinpath(name).read_text(encoding="utf-8")


def script() -> str:
    return _asset("workspace.js")


def stylesheet() -> str:
    return _asset("workspace.css")


def signal(sid: str | None) -> str:
    """The component's value: tells the page which session to (re)load, and when (the server's
    clock, for the first-paint benchmark)."""
    return json.dumps({"sid": sid, "n": uuid.uuid4().hex[:8], "at": time.time()})


def _not_saved(exc: OSError) -> dict[str, Any]:
    reason = exc.strerror or type(exc).__name__
    return {"error": f"the server could not save ({reason}); your edits are kept in this page and sent "
                     "again until they are saved", "retry": True}


def server_functions(store: "SessionStore", pipeline) -> list[Callable]:
    """The functions the page calls (`server.load(...)` etc.); each takes one dict."""

    def load(data: dict) -> dict:
        s = store.find((data or {}).get("sid"))
        if s is None:
            return {"sid": None, "result": None}
        with s.lock:
            return payload(s)

    def edit(data: dict) -> dict:
        data = data or {}
        s = store.find(data.get("sid"))
        if s is None or s.result is None:
            return {"error": "this page's session has no result on the server; reload the page", "resync": True}
        with s.lock:
            try:
                applied = apply_edits(s.result, s.review, data.get("client"), data.get("edits"))
            except EditError as exc:
                return {"error": str(exc), "resync": True}
            if applied.applied or s.unsaved:
                try:
                    store.save(s, review=True)
                    s.unsaved = False
                except OSError as exc:
                    s.unsaved = True
                    return _not_saved(exc)
            return {"rev": applied.rev, "applied": applied.applied, "conflicts": list(applied.conflicts),
                    "last_seq": s.review.seqs.get(data.get("client"), 0)}

    def repropose(data: dict) -> dict:
        data = data or {}
        s = store.find(data.get("sid"))
        if s is None or s.result is None:
            return {"error": "no result to re-propose: run the analysis first"}
        raw = data.get("params") if isinstance(data.get("params"), dict) else {}
        try:
            params = ProposalParams(**{**vars(s.params), **{k: float(raw[k]) for k in PARAM_FIELDS if k in raw}})
        except (ZealError, TypeError, ValueError) as exc:
            return {"error": str(exc)}
        with s.lock:
            before = counts(s.result.intervals)
            reviewed = sum(1 for iv in s.result.intervals if iv.reviewed)
            s.result = pipeline.repropose(s.result, params, suppressed=s.review.deleted)
            s.params = params
            s.review.rev += 1
            fresh = sum(1 for iv in s.result.intervals if not iv.reviewed)
            try:
                store.save(s, review=True)
            except OSError as exc:
                log.warning("re-proposal of session %s not saved: %s", s.sid, exc)
            message = (f"Re-proposed: kept {reviewed} reviewed interval(s), replaced {before['unreviewed']} "
                       f"unreviewed proposal(s) with {fresh}.")
            return {"rev": s.review.rev, "intervals": wire_intervals(s.result, s.review.versions),
                    "message": message}

    return [load, edit, repropose]


def create_workspace(store: "SessionStore", pipeline):
    """The workspace component (inside a gr.Blocks context)."""
    import gradio as gr

    return gr.HTML(signal(None), html_template=TEMPLATE, js_on_load=script(), apply_default_css=False,
                   elem_id="zeal-workspace", server_functions=server_functions(store, pipeline), padding=False)
