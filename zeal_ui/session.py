"""One browser's work: its video, its result, its review log, and the files that keep them.

The browser keeps only the session id (localStorage); everything else lives on the server in a
`Session` held by the `SessionStore` (never in a module global). Gradio handlers and the
workspace's server functions get the same live object from the store and change it under its lock,
so a run finishing while the annotator edits never loses an edit.

On disk, root/<sid>/ holds three files, each written atomically:
- session.json: the video, ground truth and proposal settings (small);
- result.json: the analysis (curves and settings) without its intervals, written per run;
- review.json: the intervals and the review log (deleted ids, versions, undo history), written
  after every batch of edits.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zeal.atomic import write_atomic
from zeal.config import ProposalParams
from zeal.errors import EvaluationError
from zeal.evaluate import load_ground_truth
from zeal.types import Interval, Result
from zeal_ui.workspace.edits import ReviewLog

log = logging.getLogger(__name__)

_SID_RE = re.compile(r"^[0-9a-f]{32}$")
SESSION_FILE, RESULT_FILE, REVIEW_FILE = "session.json", "result.json", "review.json"
SESSION_FORMAT = 2


def valid_sid(sid: object) -> bool:
    """Session ids come back from the browser: only 32 hex digits may name a folder."""
    return isinstance(sid, str) and bool(_SID_RE.match(sid))


@dataclass
class Session:
    """What one browser works on. `lock` guards every change; `cancel` is set by the Cancel button
    and read by the run."""

    sid: str = field(default_factory=lambda: uuid.uuid4().hex)
    video: str | None = None
    result: Result | None = None
    review: ReviewLog = field(default_factory=ReviewLog)
    ground_truth: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    params: ProposalParams = field(default_factory=ProposalParams)
    unsaved: bool = False  # edits applied in memory whose save failed (retried on the next edit)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    def meta(self) -> dict[str, Any]:
        return {"format": SESSION_FORMAT, "sid": self.sid, "video": self.video,
                "ground_truth": {k: [list(p) for p in v] for k, v in self.ground_truth.items()},
                "params": vars(self.params).copy()}


def _analysis_dict(result: Result) -> dict[str, Any]:
    """result.to_dict() without the intervals (they live in review.json)."""
    data = result.to_dict()
    for cls in data["classes"].values():
        cls["intervals"] = []
    return data


class SessionStore:
    """Live sessions by id, loaded from root/<sid>/ on first use and saved there after changes."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._live: dict[str, Session] = {}
        self._lock = threading.Lock()

    def folder(self, sid: str) -> Path:
        if not valid_sid(sid):
            raise ValueError(f"invalid session id {sid!r}")
        path = self.root / sid
        path.mkdir(parents=True, exist_ok=True)
        return path

    def get(self, sid: object) -> Session:
        """The live session of this id (loaded from disk the first time), or a new one when the id
        is invalid or unknown."""
        with self._lock:
            if isinstance(sid, str) and sid in self._live:
                return self._live[sid]
            session = self._load(sid) if valid_sid(sid) else None
            session = session or Session()
            self._live[session.sid] = session
            return session

    def find(self, sid: object) -> Session | None:
        """The session of this id if it exists (live or on disk); never creates one."""
        with self._lock:
            if isinstance(sid, str) and sid in self._live:
                return self._live[sid]
            session = self._load(sid) if valid_sid(sid) else None
            if session is not None:
                self._live[session.sid] = session
            return session

    # --- files -------------------------------------------------------------------------------
    def save(self, s: Session, result: bool = False, review: bool = True) -> None:
        """Write session.json, and result.json / review.json when asked. OSError (a full disk, a
        read-only folder) is logged and raised: the caller tells the page that nothing was saved,
        and the work stays in memory for the next try."""
        folder = self.folder(s.sid)
        try:
            with s.lock:
                if result and s.result is not None:
                    write_atomic(folder / RESULT_FILE, json.dumps(_analysis_dict(s.result)), mode=0o600)
                if review:
                    intervals = [iv.to_dict() for iv in s.result.intervals] if s.result is not None else []
                    write_atomic(folder / REVIEW_FILE, json.dumps(s.review.to_dict(intervals)), mode=0o600)
                write_atomic(folder / SESSION_FILE, json.dumps(s.meta()), mode=0o600)
        except OSError as exc:
            log.warning("could not save session %s: %s", s.sid, exc)
            raise

    def _load(self, sid: str) -> Session | None:
        folder = self.root / sid
        try:
            meta = json.loads((folder / SESSION_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        s = Session(sid=sid)
        try:
            s.video = meta.get("video")
            s.ground_truth = {k: [tuple(map(float, p)) for p in v] for k, v in (meta.get("ground_truth") or {}).items()}
            s.params = ProposalParams(**meta.get("params") or {})
        except (TypeError, ValueError) as exc:
            log.warning("session %s: ignoring unreadable settings (%s)", sid, exc)
        if s.video and not Path(s.video).is_file():
            s.video = None  # the upload was cleaned away; the result is still worth having
        try:
            s.result = Result.from_dict(json.loads((folder / RESULT_FILE).read_text(encoding="utf-8")))
        except FileNotFoundError:
            return s
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("session %s: the saved result is unreadable (%s)", sid, exc)
            return s
        try:
            data = json.loads((folder / REVIEW_FILE).read_text(encoding="utf-8"))
            s.review = ReviewLog.from_dict(data)
            intervals = [Interval.from_dict(d) for d in data.get("intervals", [])]
        except FileNotFoundError:
            return s
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("session %s: the saved review is unreadable (%s)", sid, exc)
            return s
        for cls in s.result.classes.values():
            cls.intervals = sorted((iv for iv in intervals if iv.label == cls.label), key=lambda i: i.start_s)
        return s


# --- ground truth --------------------------------------------------------------------------------

def read_ground_truth(path: str | os.PathLike, video_id: str) -> dict[str, list[tuple[float, float]]]:
    """Ground-truth segments of one video, per class, in seconds, from any file
    `zeal.evaluate.load_ground_truth` reads (ActivityNet JSON, or a CSV naming video-id, t-start,
    t-end and label). A file holding one video only is used whatever its id; otherwise rows must
    match `video_id` (the file stem)."""
    gt = load_ground_truth(path)
    videos = {video for segments in gt.values() for video, _, _ in segments}
    if len(videos) > 1 and video_id not in videos:
        raise EvaluationError(f"ground truth {Path(path).name} has no segments for video {video_id!r}; "
                              f"its videos include {', '.join(sorted(videos)[:5])}")
    out: dict[str, list[tuple[float, float]]] = {}
    for label, segments in gt.items():
        for video, s, e in segments:
            if len(videos) == 1 or video == video_id:
                out.setdefault(label, []).append((s, e))
    return out
