"""The project's list of videos on the page: a client-side component (videos.js) showing each video's
status, scoring progress, duration and review counts, and the server functions that change the
list: queue, reorder, remove, mark done, bring back a class CLIP left out, locate a moved file.
Removing asks first in the page and moves the video's folder aside (DIR/removed/), nothing is deleted.
"""

from __future__ import annotations

from typing import Any, Callable

from zeal.errors import ZealError
from zeal_ui.app_state import AppState

ACTIONS = ("queue", "remove", "done", "reopen", "up", "down", "bring_back", "locate", "cancel")


def video_list(state: AppState) -> list[dict[str, Any]]:
    """The project's videos in queue order, as the page lists them."""
    project = state.project
    out = []
    for e in project.entries():
        rec = project._records.get(e.id)  # only what is in memory: listing never reads results
        out.append({"id": e.id, "name": e.name, "status": e.status, "progress": round(e.progress, 3),
                    "message": e.message, "duration": e.duration_s, "counts": e.counts,
                    "missing": project.video_path(e.id) is None, "rev": rec.review.rev if rec else 0,
                    "scored_at": e.scored_at})
    return out


def act(state: AppState, data: Any) -> dict[str, Any]:
    """One change to the list: {"action": one of ACTIONS, "video": id, ...}."""
    project, queue = state.project, state.queue
    data = data if isinstance(data, dict) else {}
    action, vid = data.get("action"), data.get("video")
    if action not in ACTIONS:
        return {"error": f"unknown action {action!r}"}
    if action == "cancel":
        stopped = queue.cancel() if queue else None
        return {"ok": True, "message": "Stopping the video being scored." if stopped else "Nothing is being scored."}
    if vid not in project.videos:
        return {"error": "that video is no longer in the project; the list is refreshed"}
    entry = project.videos[vid]
    try:
        if action == "queue":
            queue.enqueue([vid], front=bool(data.get("front")))
            message = f"{entry.name} is queued."
        elif action == "remove":
            if queue and queue.current == vid:
                queue.cancel()
            project.remove_video(vid)
            message = f"{entry.name} left the project (its folder is kept under removed/)."
        elif action in ("done", "reopen"):
            if action == "done":
                project.set_status(vid, "done")
            else:
                rec = project.record(vid)
                project.set_status(vid, "in review" if rec.result is not None else "new")
            message = f"{entry.name}: {project.videos[vid].status}."
        elif action in ("up", "down"):
            order = project.order[:]
            k = order.index(vid)
            j = max(0, min(len(order) - 1, k + (-1 if action == "up" else 1)))
            order[k], order[j] = order[j], order[k]
            project.reorder(order)
            message = ""
        elif action == "bring_back":
            label = str(data.get("class") or "")
            rec = project.record(vid)
            kept = list(rec.result.classes) if rec.result is not None else []
            if label not in project.settings.queries:
                return {"error": f"class {label!r} has no questions in this project"}
            entry.classes = list(dict.fromkeys([*kept, label]))
            project.save_entry(entry)
            queue.enqueue([vid], front=True)
            message = f"{label} is brought back: {entry.name} is scored again with it (your work stays)."
        else:  # locate
            found = project.locate(vid, [data["folder"]] if data.get("folder") else [])
            if found is None:
                return {"error": f"{entry.name} was not found there (same name, size and content)"}
            message = f"Found {entry.name} again."
    except (ZealError, OSError) as exc:
        return {"error": str(exc)}
    return {"ok": True, "message": message, "videos": video_list(state)}


def project_functions(state: AppState) -> list[Callable]:
    def videos(data: dict) -> dict:
        return {"videos": video_list(state), "scoring": state.queue.current if state.queue else None}

    def video_action(data: dict) -> dict:
        return act(state, data)

    return [videos, video_action]


def create_videos_panel(state: AppState):
    from importlib.resources import files

    import gradio as gr

    return gr.HTML('{"n": 0}', html_template='<div class="zv"></div>', apply_default_css=False,
                   js_on_load=files("zeal_ui").joinpath("videos.js").read_text(encoding="utf-8"), elem_id="zeal-videos",
                   server_functions=project_functions(state), padding=False)
