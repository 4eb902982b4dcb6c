"""The review workspace: one client-side component (player, timeline, lanes, list, undo:
workspace.js) and the server functions it calls (load a video's result, apply edits, re-propose,
list the project's videos). The view itself (zoom, selection, filters) stays in the browser.

The component is a `gr.HTML` whose value is only a signal, `{"video": id, "n": nonce}`: when it
changes, the page opens that video. Everything else goes through the server functions, which answer
plain JSON and never wait in Gradio's queue.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from typing import Any, Callable

from zeal.config import ProposalParams
from zeal.errors import ZealError
from zeal_ui.app_state import AppState
from zeal_ui.videos import project_functions, video_list
from zeal.edits import EditError
from zeal_ui.workspace.payload import payload, wire_intervals

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


def signal(video: str | None) -> str:
    """The component's value: tells the page which video to open (None: the one it had open) and to
    look at the list of videos again."""
    return json.dumps({"video": video, "n": uuid.uuid4().hex[:8]})


def _not_saved(exc: OSError) -> dict[str, Any]:
    reason = exc.strerror or type(exc).__name__
    return {"error": f"the server could not save ({reason}); your edits are kept in this page and sent "
                     "again until they are saved", "retry": True}


def server_functions(state: AppState) -> list[Callable]:
    """The functions the page calls (`server.load(...)` etc.); each takes one dict."""
    project, pipeline = state.project, state.pipeline

    def _video(data: Any) -> str | None:
        vid = (data or {}).get("video") if isinstance(data, dict) else None
        return vid if isinstance(vid, str) and vid in project.videos else None

    def load(data: dict) -> dict:
        # A browser with no video open (a new one, or its video left the project) gets the one
        # last opened in this project, else the first waiting for review.
        vid = _video(data) or project.first_to_open()
        if vid is None:
            return {"video": None, "result": None, "videos": video_list(state)}
        rec = project.record(vid)
        with rec.lock:
            params = project.settings.proposals
            if rec.result is not None and (rec.result.settings.get("proposals") or {}) != vars(params):
                # proposals follow the project's settings (changed while this video was closed)
                rec.result = pipeline.repropose(rec.result, params, suppressed=rec.review.deleted)
            out = payload(vid, project.videos[vid], rec, state.media_url(vid), project.ground_truth(vid), params)
        if rec.result is not None:
            project.opened(vid)
        out["videos"] = video_list(state)
        return out

    def edit(data: dict) -> dict:
        data = data or {}
        vid = _video(data)
        if vid is None or project.record(vid).result is None:
            return {"error": "this video has no result on the server (removed, or not scored yet); reload the page",
                    "resync": True}
        client = data.get("client")
        try:
            applied = project.apply_edits(vid, client, data.get("edits"))
        except EditError as exc:
            return {"error": str(exc), "resync": True}
        except OSError as exc:
            return _not_saved(exc)
        if applied.applied and project.videos[vid].status == "scored":
            project.set_status(vid, "in review")
        return {"rev": applied.rev, "applied": applied.applied, "conflicts": list(applied.conflicts),
                "last_seq": project.record(vid).review.seqs.get(client, 0)}

    def _save_reproposal(vid: str) -> None:
        try:
            project.save_record(vid)
            project.save()  # last: once the settings are on disk, so is what they made
        except (OSError, ZealError) as exc:
            log.warning("re-proposal of %s not saved: %s", vid, exc)

    def repropose(data: dict) -> dict:
        data = data or {}
        vid = _video(data)
        rec = project.record(vid) if vid else None
        if rec is None or rec.result is None:
            return {"error": "no result to re-propose: score the video first"}
        raw = data.get("params") if isinstance(data.get("params"), dict) else {}
        try:
            current = vars(project.settings.proposals)
            params = ProposalParams(**{**current, **{k: float(raw[k]) for k in PARAM_FIELDS if k in raw}})
        except (ZealError, TypeError, ValueError) as exc:
            return {"error": str(exc)}
        with rec.lock:
            rec.result, report = pipeline.reproposal(rec.result, params, suppressed=rec.review.deleted)
            rec.review.rev += 1
            project.settings.proposals = params
            # Written after the answer: a re-proposal is made again from the settings at will, and
            # the reviewed intervals it keeps are on disk already.
            threading.Thread(target=_save_reproposal, args=(vid,), daemon=True).start()
            return {"rev": rec.review.rev, "intervals": wire_intervals(rec.result, rec.review.versions),
                    "message": f"Re-proposed: {report.sentence()}."}

    return [load, edit, repropose, *project_functions(state)]


def create_workspace(state: AppState):
    """The workspace component (inside a gr.Blocks context)."""
    import gradio as gr

    return gr.HTML(signal(None), html_template=TEMPLATE, js_on_load=script(), apply_default_css=False,
                   elem_id="zeal-workspace", server_functions=server_functions(state), padding=False)
