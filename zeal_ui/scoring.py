"""Scoring in the background: one worker thread takes the project's queued videos in queue order and
analyses them, one at a time (one model, one analysis), while the annotator reviews another video.

Each finished analysis is merged into the video's record with `zeal.review.carry_over`, under the
record's lock: every interval a person made, edited, accepted or rejected stays, only unreviewed
proposals are replaced. Progress goes into the video's entry (status "scoring", progress 0..1),
where the page's list of videos reads it. An interrupted run (Cancel, a crash, SIGKILL) leaves its
scores in the cache: queued again, the video resumes from there.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from zeal.errors import ZealError
from zeal.project import Project
from zeal.queries import QuerySet
from zeal.review import carry_over
from zeal_ui.heap import freeze_heap

log = logging.getLogger(__name__)

PROGRESS_SAVE_S = 2.0  # how often a video's progress is written to its video.json while scoring


class ScoringQueue:
    """The background worker of one app. `enqueue` marks videos queued and wakes the worker;
    `cancel` stops the video being scored (it stays queued for later only when asked)."""

    def __init__(self, project: Project, pipeline, on_done: Callable[[str], None] | None = None):
        self.project = project
        self.pipeline = pipeline
        self.on_done = on_done
        self.current: str | None = None
        self._wake = threading.Event()
        self._cancel = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._first: list[str] = []  # asked for first ("score the open video again"), before the list's order

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="zeal-scoring", daemon=True)
                self._thread.start()
        self._wake.set()

    def stop(self) -> None:
        self._stop = True
        self._cancel.set()
        self._wake.set()

    def enqueue(self, ids: list[str], front: bool = False) -> list[str]:
        """Queue these videos (a video being scored is left alone); `front` scores them before the
        others, without moving them in the project's list. Returns the ids queued."""
        queued = []
        with self.project.lock:
            for vid in ids:
                if vid in self.project.videos and vid != self.current:
                    self.project.set_status(vid, "queued", 0.0, "")
                    queued.append(vid)
            if front and queued:
                self._first = queued + [v for v in self._first if v not in queued]
        self._wake.set()  # the worker, once started, takes them in order
        return queued

    def cancel(self) -> str | None:
        """Stop the video being scored; returns its id (None when idle)."""
        if self.current is not None:
            self._cancel.set()
        return self.current

    # --- the worker ---------------------------------------------------------------------------
    def _next(self) -> str | None:
        with self.project.lock:
            waiting = [e.id for e in self.project.entries() if e.status == "queued"]
            self._first = [v for v in self._first if v in waiting]
            return (self._first or waiting or [None])[0]

    def _loop(self) -> None:
        while not self._stop:
            vid = self._next()
            if vid is None:
                self._wake.wait(timeout=2.0)
                self._wake.clear()
                continue
            self.score(vid)

    def score(self, vid: str) -> None:
        """Analyse one video now (the worker's step; tests call it directly)."""
        self._cancel.clear()
        self.current = vid
        try:
            self._score(vid)
        except Exception:  # a bug on one video must not stop the queue
            log.exception("scoring %s failed", vid)
            self.project.set_status(vid, "failed", message="unexpected error while scoring; see the app's log")
        finally:
            self.current = None
        if self.on_done:
            self.on_done(vid)

    def _score(self, vid: str) -> None:
        from zeal.pipeline import Cancelled

        project = self.project
        entry = project.videos.get(vid)
        if entry is None:
            return
        path = project.video_path(vid)
        if path is None:
            project.set_status(vid, "failed", message=f"{entry.name} is missing: locate it (Project tab) or add it again")
            return
        settings = project.settings
        try:
            queries = QuerySet.from_dict({c: settings.queries[c] for c in settings.classes})
        except (KeyError, ZealError) as exc:
            missing = [c for c in settings.classes if c not in settings.queries]
            reason = f"class(es) {', '.join(missing)} have no questions" if missing else str(exc)
            project.set_status(vid, "failed", message=f"{reason}: fill the questions table first")
            return
        known = settings.known_classes
        if entry.classes:  # CLIP's picks for this video and the classes brought back by hand
            wanted = [c for c in entry.classes if c in queries.names]
            if wanted:
                queries, known = queries.subset(wanted), True
        project.set_status(vid, "scoring", 0.0, "")
        last = [0.0]

        def progress(stage: str, done: int, total: int) -> None:
            if stage == "scoring frames" and total > 0 and time.monotonic() - last[0] > PROGRESS_SAVE_S:
                last[0] = time.monotonic()
                project.set_status(vid, "scoring", done / total, f"scoring frames {done}/{total}")
            elif stage != "scoring frames":
                project.set_status(vid, "scoring", message=stage, save=False)

        models_were_loaded = all(self.pipeline.models_loaded().values())
        try:
            fresh = self.pipeline.run(str(path), queries=queries, known_classes=known, progress=progress,
                                      cancel=self._cancel.is_set)
        except Cancelled:
            project.set_status(vid, self._settled(vid), 0.0, "cancelled; the frames scored so far are cached and reused")
            return
        except ZealError as exc:  # a model that cannot load says which and how to get it
            project.set_status(vid, "failed", 0.0, self._shown(str(exc), path, entry.name))
            return
        if not models_were_loaded and all(self.pipeline.models_loaded().values()):
            freeze_heap()  # the models just loaded are never garbage: no later collection walks them
        rec = project.record(vid)
        with rec.lock:
            fresh = self.pipeline.repropose(fresh, settings.proposals)
            merged, report = carry_over(rec.result, fresh, suppressed=rec.review.deleted)
            first = rec.result is None
            rec.result = merged
            rec.review.rev += 1
            try:
                project.save_record(vid, result=True)
            except OSError as exc:
                log.warning("result of %s not saved: %s", vid, exc)
        note = "scored" if first else f"re-scored: {report.sentence()}"
        # What the run worked around (skipped stretches, a timestamp jump, an unusable score cache)
        # is part of the outcome the list of videos shows.
        note = self._shown("; ".join([note, *fresh.run.warnings]), path, entry.name)
        entry.scored_at = time.time()
        project.set_status(vid, self._settled(vid), 1.0, note)

    def _shown(self, message: str, path, name: str) -> str:
        """A message for the page: the video by its name, no folder of the project's media."""
        from zeal_ui.notices import plain

        return plain(message.replace(str(path), name), [self.project.root / "media"])

    def _settled(self, vid: str) -> str:
        """The status of a video that is not being scored: from what its record holds."""
        rec = self.project.record(vid)
        if rec.result is None:
            return "new"
        return "in review" if any(iv.reviewed for iv in rec.result.intervals) else "scored"
