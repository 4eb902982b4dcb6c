"""A project: one labelling job on disk. The app (`python app.py --project DIR`) and the CLI
(`zeal batch SOURCE --project DIR`) read and write the same folder:

    DIR/project.json          {"format": 1, "name", "classes": [...], "queries": {class: {start, end,
                              description}}, "known_classes", "top_k", "proposals": {ProposalParams},
                              "export": {the app's last export choices},
                              "videos": [video id, ...] (the queue, in order), "last_opened": id}
    DIR/videos/<id>/video.json   {"id", "name", "file", "in_place", "size", "info": VideoInfo,
                              "status", "progress", "message", "added"}
    DIR/videos/<id>/result.json  the analysis (zeal's Result without its intervals)
    DIR/videos/<id>/review.json  the intervals and the review log (zeal.review.ReviewLog)
    DIR/videos/<id>/review.log   a person's edits since review.json was written: one JSON line per
                              batch, {"client", "edits"} as zeal.edits applies them (see `apply_edits`)
    DIR/media/<id>/<name>        videos uploaded into the project (in-place videos stay where they are)

A video's id is its content hash (`zeal.video.video_hash`), never its path: the same file uploaded
twice, or converted by the browser's upload, is one video, and its result follows it. `file` is
relative to DIR for an uploaded video and absolute for one read in place; a project copied to another
machine finds a moved in-place video again by name, size and hash (`locate`), or reports it missing.
Every file is written atomically (zeal.atomic), so a crash leaves the old version or the new one.
An edit is durable once its line is in review.log (appended and flushed to disk before the edit is
acknowledged); reading a record replays the log over review.json, and applying an edit twice changes
nothing, so a line that is also in review.json does no harm. Every COMPACT_AFTER lines the whole
review is written again and the log starts over: an edit costs a line, not the whole review.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from zeal.atomic import write_atomic
from zeal.config import ProposalParams
from zeal.errors import ZealError
from zeal.edits import Applied, EditError, apply_edits
from zeal.review import ReviewLog, counts
from zeal.types import Interval, Result

PROJECT_FILE, VIDEO_FILE, RESULT_FILE, REVIEW_FILE = "project.json", "video.json", "result.json", "review.json"
GROUND_TRUTH_FILE = "ground_truth.json"  # {video id: {class: [[start_s, end_s], ...]}}, optional
JOURNAL_FILE = "review.log"
COMPACT_AFTER = 200  # edit batches in review.log before review.json is written again
PROJECT_FORMAT = 1
STATUSES = ("new", "queued", "scoring", "scored", "in review", "done", "failed")
_LOCATE_MAX_FILES = 20_000  # files looked at when re-finding a moved video under a folder


class ProjectError(ZealError):
    """A project folder that cannot be read or written, or a video it cannot find."""


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProjectError(f"{path} is unreadable ({exc}); restore it from a backup or remove it") from None


def _write_json(path: Path, data: Any) -> None:
    try:
        write_atomic(path, json.dumps(data, ensure_ascii=False, indent=1 if path.name == PROJECT_FILE else None))
    except OSError as exc:
        raise ProjectError(f"cannot write {path}: {exc.strerror or exc}; free some disk space or choose a "
                           "project folder you can write to") from None


@dataclass
class VideoEntry:
    """One video of a project. status: one of STATUSES; progress: 0..1 while scoring."""

    id: str
    name: str
    file: str
    in_place: bool
    size: int
    info: dict[str, Any]
    status: str = "new"
    progress: float = 0.0
    message: str = ""
    added: float = field(default_factory=time.time)
    counts: dict[str, int] = field(default_factory=dict)  # review states of its review set
    scored_at: float = 0.0  # when its last analysis ended (the server's clock)
    classes: list[str] = field(default_factory=list)  # chosen for this video (CLIP's picks + brought back)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "VideoEntry":
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        entry = cls(**known)
        if entry.status not in STATUSES:
            entry.status = "new"
        return entry

    @property
    def duration_s(self) -> float:
        return float(self.info.get("duration_s", 0.0))


@dataclass
class VideoRecord:
    """The analysis and the review of one video: the result (None before its first run), with its
    intervals, and the review log. `lock` guards every change."""

    result: Result | None = None
    review: ReviewLog = field(default_factory=ReviewLog)
    journal: int = 0  # lines in review.log since review.json was written
    unsaved: list[str] = field(default_factory=list)  # journal lines not on disk yet (a full disk)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)


@dataclass
class ProjectSettings:
    """What a project asks of every analysis: the classes (in order), their questions, whether the
    classes are known to occur (no CLIP filtering), CLIP's top-k, and the proposal settings."""

    classes: list[str] = field(default_factory=list)
    queries: dict[str, dict[str, str]] = field(default_factory=dict)
    known_classes: bool = True
    top_k: int = 3
    proposals: ProposalParams = field(default_factory=ProposalParams)
    # the app's export choices as last made (scope, include, proposals, formats, media_url)
    export: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"classes": list(self.classes), "queries": self.queries, "known_classes": self.known_classes,
                "top_k": self.top_k, "proposals": vars(self.proposals).copy(), "export": dict(self.export)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ProjectSettings":
        return cls(classes=[str(c) for c in data.get("classes", [])],
                   queries={str(k): {f: str(v.get(f, "")) for f in ("start", "end", "description")}
                            for k, v in (data.get("queries") or {}).items() if isinstance(v, dict)},
                   known_classes=bool(data.get("known_classes", True)), top_k=max(1, int(data.get("top_k", 3))),
                   proposals=ProposalParams(**(data.get("proposals") or {})),
                   export=_export_choices(data.get("export")))


def _export_choices(data: Any) -> dict[str, Any]:
    """Only well-formed entries: strings, and a list of strings for the formats."""
    if not isinstance(data, dict):
        return {}
    out: dict[str, Any] = {k: v for k, v in data.items() if k in ("scope", "include", "proposals", "media_url")
                           and isinstance(v, str) and len(v) <= 2000}
    if isinstance(data.get("formats"), list):
        out["formats"] = [f for f in data["formats"] if isinstance(f, str)]
    return out


class Project:
    """A project folder, opened (or created) with `Project.open(root)`. Methods that change it
    write it at once; `lock` guards the video list and settings (each record has its own lock)."""

    def __init__(self, root: Path, name: str, settings: ProjectSettings, order: list[str],
                 videos: dict[str, VideoEntry]):
        self.root = root
        self.name = name
        self.settings = settings
        self.order = order
        self.videos = videos
        self.lock = threading.RLock()
        self._records: dict[str, VideoRecord] = {}
        self._ground_truth: dict[str, dict[str, list[tuple[float, float]]]] = {}
        self.last_opened: str | None = None  # the video last opened for review (any browser)

    # --- opening and saving ---------------------------------------------------------------------
    @classmethod
    def open(cls, root: str | os.PathLike, create: bool = True) -> "Project":
        """The project in `root`; a new, empty one when the folder has none (and create is set)."""
        root = Path(root).expanduser().resolve()
        if root.exists() and not root.is_dir():
            raise ProjectError(f"{root} is a file; a project is a folder")
        try:
            data = _read_json(root / PROJECT_FILE)
        except FileNotFoundError:
            if not create:
                raise ProjectError(f"{root} holds no project ({PROJECT_FILE} is missing)") from None
            project = cls(root, root.name, ProjectSettings(), [], {})
            project.save()
            return project
        if not isinstance(data, dict) or data.get("format") != PROJECT_FORMAT:
            raise ProjectError(f"{root / PROJECT_FILE} is not a project file of format {PROJECT_FORMAT}")
        try:
            settings = ProjectSettings.from_dict(data)
        except (TypeError, ValueError, ZealError) as exc:
            raise ProjectError(f"{root / PROJECT_FILE}: unreadable settings ({exc})") from None
        videos: dict[str, VideoEntry] = {}
        for vid in data.get("videos", []):
            try:
                entry = VideoEntry.from_dict(_read_json(root / "videos" / str(vid) / VIDEO_FILE))
            except (FileNotFoundError, ProjectError, TypeError):
                continue  # a video whose folder is gone or damaged leaves the queue, not the project
            if entry.status == "scoring":  # interrupted: the cache has what was scored, queue it again
                entry.status, entry.progress = "queued", 0.0
            videos[entry.id] = entry
        project = cls(root, str(data.get("name") or root.name), settings, [v for v in videos], videos)
        project.last_opened = data.get("last_opened") if data.get("last_opened") in videos else None
        try:
            gt = _read_json(root / GROUND_TRUTH_FILE)
            project._ground_truth = {str(v): {str(c): [tuple(map(float, p)) for p in spans] for c, spans in by.items()}
                                     for v, by in gt.items()}
        except (FileNotFoundError, ProjectError, AttributeError, TypeError, ValueError):
            pass  # ground truth is optional: without a readable file there is none
        return project

    def save(self) -> None:
        """Write project.json (settings and queue order)."""
        with self.lock:
            data = {"format": PROJECT_FORMAT, "name": self.name, **self.settings.to_dict(), "videos": list(self.order),
                    "last_opened": self.last_opened}
            _write_json(self.root / PROJECT_FILE, data)

    def save_entry(self, entry: VideoEntry) -> None:
        _write_json(self.folder(entry.id) / VIDEO_FILE, entry.to_dict())

    def folder(self, vid: str) -> Path:
        if vid not in self.videos and not _valid_id(vid):
            raise ProjectError(f"no video {vid!r} in this project")
        return self.root / "videos" / vid

    # --- videos ----------------------------------------------------------------------------------
    def entries(self) -> list[VideoEntry]:
        with self.lock:
            return [self.videos[v] for v in self.order]

    def add_video(self, path: str | os.PathLike, copy: bool) -> tuple[VideoEntry, bool]:
        """Add a video file: copied into DIR/media (an upload) or read in place. Returns (its entry,
        whether it is new to the queue). A file whose content is already in the project is that same
        video; one removed earlier comes back with its review (its entry's status is not "new")."""
        from zeal import video as video_io

        src = Path(path)
        info = video_io.probe(src)
        vid = video_io.video_hash(src)
        with self.lock:
            if vid in self.videos:
                return self.videos[vid], False
        if copy:
            target = self.root / "media" / vid / _safe_name(src.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                tmp = target.with_name(f".{target.name}.part")
                shutil.copyfile(src, tmp)
                os.replace(tmp, target)
            except OSError as exc:
                raise ProjectError(f"cannot copy {src.name} into the project ({exc.strerror or exc}); free "
                                   "some disk space") from None
            file = target.relative_to(self.root).as_posix()
        else:
            file = str(src.resolve())
        entry = VideoEntry(vid, src.name, file, not copy, src.stat().st_size, info.to_dict())
        with self.lock:
            entry = self._bring_back(entry) or entry
            self.save_entry(entry)
            self.videos[vid] = entry
            self.order.append(vid)
            self.save()
        return entry, True

    def _bring_back(self, fresh: VideoEntry) -> VideoEntry | None:
        """A video removed earlier and added again gets its folder back from DIR/removed/ (the newest
        one): its result, edits and review state return with it; the file is the one given now."""
        def removed_at(folder: Path) -> int:
            tail = folder.name.rsplit("-", 1)[-1]
            return int(tail) if tail.isdigit() else 0

        for folder in sorted((self.root / "removed").glob(f"{fresh.id}-*"), key=removed_at, reverse=True):
            try:
                old = VideoEntry.from_dict(_read_json(folder / VIDEO_FILE))
                target = self.root / "videos" / fresh.id
                if target.exists():
                    return None
                os.replace(folder, target)
            except (FileNotFoundError, ProjectError, TypeError, OSError):
                continue  # damaged or not movable: the next older one, else a new review
            old.name, old.file, old.in_place, old.size = fresh.name, fresh.file, fresh.in_place, fresh.size
            if old.status in ("queued", "scoring"):
                old.status, old.progress = "new", 0.0  # it left the queue with it: queued again by the caller
            return old
        return None

    def remove_video(self, vid: str) -> None:
        """Take a video out of the queue; its folder moves to DIR/removed/ (nothing is deleted)."""
        with self.lock:
            if vid not in self.videos:
                return
            self.order.remove(vid)
            del self.videos[vid]
            self._records.pop(vid, None)
            self.save()
            src = self.root / "videos" / vid
            if src.exists():
                target = self.root / "removed" / f"{vid}-{int(time.time())}"
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, target)

    def opened(self, vid: str) -> None:
        """A video was opened for review: the one a new browser opens first."""
        with self.lock:
            if vid in self.videos and vid != self.last_opened:
                self.last_opened = vid
                self.save()

    def first_to_open(self) -> str | None:
        """For a browser that has no video open: the one last opened, else the first in review, else
        the first scored."""
        with self.lock:
            if self.last_opened in self.videos:
                return self.last_opened
            for status in ("in review", "scored"):
                found = next((v for v in self.order if self.videos[v].status == status), None)
                if found:
                    return found
        return None

    def reorder(self, ids: Iterable[str]) -> None:
        """Set the queue order; ids not given keep their place after the given ones."""
        with self.lock:
            given = [v for v in dict.fromkeys(ids) if v in self.videos]
            self.order = given + [v for v in self.order if v not in given]
            self.save()

    def set_status(self, vid: str, status: str, progress: float | None = None, message: str | None = None,
                   save: bool = True) -> VideoEntry:
        if status not in STATUSES:
            raise ValueError(f"status {status!r}: use one of {STATUSES}")
        with self.lock:
            entry = self.videos[vid]
            entry.status = status
            if progress is not None:
                entry.progress = float(progress)
            if message is not None:
                entry.message = message
            if save:
                self.save_entry(entry)
            return entry

    def video_path(self, vid: str) -> Path | None:
        """Where the video's file is now, or None when it cannot be found (see `locate`)."""
        entry = self.videos[vid]
        path = Path(entry.file) if entry.in_place else self.root / entry.file
        return path if path.is_file() else None

    def locate(self, vid: str, folders: Iterable[str | os.PathLike] = ()) -> Path | None:
        """Find a moved in-place video again: files of the same name and size under `folders`, the
        project folder and the video's old folder, confirmed by content hash. Updates the entry."""
        from zeal.video import video_hash

        entry = self.videos[vid]
        if self.video_path(vid) is not None:
            return self.video_path(vid)
        places = [Path(f) for f in folders] + [self.root, Path(entry.file).parent]
        for candidate in _same_name_and_size(places, entry.name, entry.size):
            try:
                if video_hash(candidate) == vid:
                    with self.lock:
                        entry.file, entry.in_place = str(candidate.resolve()), True
                        self.save_entry(entry)
                    return candidate
            except ZealError:
                continue
        return None

    # --- ground truth ----------------------------------------------------------------------------
    def ground_truth(self, vid: str) -> dict[str, list[tuple[float, float]]]:
        """The ground-truth segments of one video, per class, in seconds ({} when none)."""
        with self.lock:
            return dict(self._ground_truth.get(vid, {}))

    def set_ground_truth(self, segments: dict[str, list[tuple[str, float, float]]]) -> dict[str, int]:
        """Ground truth as zeal.evaluate reads it ({class: [(video, start, end)]}), matched to the
        project's videos by file name (without extension); returns segments per matched video name."""
        by_stem = {Path(e.name).stem: e.id for e in self.entries()}
        gt: dict[str, dict[str, list[tuple[float, float]]]] = {}
        for label, rows in segments.items():
            for video, start, end in rows:
                if str(video) in by_stem:
                    gt.setdefault(by_stem[str(video)], {}).setdefault(label, []).append((float(start), float(end)))
        if not gt:
            named = sorted({str(r[0]) for rows in segments.values() for r in rows})[:5]
            raise ProjectError(f"the ground truth names none of this project's videos (it has {', '.join(named)}...; "
                               f"the videos are {', '.join(sorted(by_stem)[:5])}...): rows are matched by file name "
                               "without extension")
        with self.lock:
            self._ground_truth = gt
            _write_json(self.root / GROUND_TRUTH_FILE, {v: {c: [list(p) for p in s] for c, s in by.items()}
                                                        for v, by in gt.items()})
        return {self.videos[v].name: sum(len(s) for s in by.values()) for v, by in gt.items()}

    # --- records ---------------------------------------------------------------------------------
    def record(self, vid: str) -> VideoRecord:
        """The video's live record (read from disk on first use)."""
        with self.lock:
            if vid not in self.videos:
                raise ProjectError(f"no video {vid!r} in this project")
            rec = self._records.get(vid)
            if rec is None:
                rec = self._records[vid] = load_record(self.folder(vid))
            return rec

    def save_record(self, vid: str, result: bool = False) -> None:
        """Write review.json (and result.json when the analysis changed) of a video, and its counts
        per review state into video.json; review.log starts over. Raises OSError when the disk
        refuses: the caller says so and keeps the work in memory."""
        rec = self.record(vid)
        with rec.lock:
            save_record(self.folder(vid), rec, result=result)
        self._save_counts(vid, rec)

    def apply_edits(self, vid: str, client: str, edits: Any) -> Applied:
        """A page's batch of edits to a video's intervals (zeal.edits.apply_edits), made durable
        before it returns: its line is appended to review.log and flushed. EditError (nothing
        changed) for a malformed batch; OSError when the disk refuses, with the edits kept in memory
        and written with the next batch."""
        rec = self.record(vid)
        with rec.lock:
            if rec.result is None:
                raise EditError("this video has no result to edit yet; score it first")
            applied = apply_edits(rec.result, rec.review, client, edits)
            if applied.applied:
                rec.unsaved.append(json.dumps({"client": client, "edits": edits}, ensure_ascii=False))
            if rec.unsaved:
                folder = self.folder(vid)
                with open(folder / JOURNAL_FILE, "a", encoding="utf-8") as f:
                    f.write("".join(line + "\n" for line in rec.unsaved))
                    f.flush()
                    os.fsync(f.fileno())
                rec.journal += len(rec.unsaved)
                rec.unsaved.clear()
                if rec.journal >= COMPACT_AFTER:
                    save_record(folder, rec)
        if applied.applied:
            self._save_counts(vid, rec)
        return applied

    def _save_counts(self, vid: str, rec: VideoRecord) -> None:
        with rec.lock:
            shown = [iv for iv in rec.result.intervals if iv.reviewed or iv.in_review_set] if rec.result else []
            n = counts(shown)
        with self.lock:
            entry = self.videos.get(vid)
            if entry is not None and entry.counts != n:
                entry.counts = n
                self.save_entry(entry)


def _valid_id(vid: object) -> bool:
    return isinstance(vid, str) and 8 <= len(vid) <= 64 and all(c in "0123456789abcdef" for c in vid)


def _safe_name(name: str) -> str:
    from zeal.export import safe_stem

    stem, dot, ext = name.rpartition(".")
    return f"{safe_stem(stem)}.{safe_stem(ext)}" if dot and stem else safe_stem(name)


def _same_name_and_size(places: list[Path], name: str, size: int) -> Iterator[Path]:
    seen = 0
    for place in places:
        if not place.is_dir():
            continue
        for dirpath, _, files in os.walk(place):
            for f in files:
                seen += 1
                if seen > _LOCATE_MAX_FILES:
                    return
                if f == name:
                    p = Path(dirpath) / f
                    try:
                        if p.stat().st_size == size:
                            yield p
                    except OSError:
                        continue


def _analysis_dict(result: Result) -> dict[str, Any]:
    """result.to_dict() without the intervals (they live in review.json)."""
    data = result.to_dict()
    for cls in data["classes"].values():
        cls["intervals"] = []
    return data


def save_record(folder: Path, rec: VideoRecord, result: bool = False) -> None:
    """result.json (when asked) and review.json of one record, atomically; then review.log starts
    over (what it held is in review.json now). OSError propagates."""
    if result and rec.result is not None:
        write_atomic(folder / RESULT_FILE, json.dumps(_analysis_dict(rec.result)), mode=0o600)
    intervals = [iv.to_dict() for iv in rec.result.intervals] if rec.result is not None else []
    write_atomic(folder / REVIEW_FILE, json.dumps(rec.review.to_dict(intervals)), mode=0o600)
    (folder / JOURNAL_FILE).unlink(missing_ok=True)
    rec.journal = 0


def load_record(folder: Path) -> VideoRecord:
    """A record from its folder; an absent or damaged review leaves the analysis usable."""
    rec = VideoRecord()
    try:
        rec.result = Result.from_dict(json.loads((folder / RESULT_FILE).read_text(encoding="utf-8")))
    except FileNotFoundError:
        return rec
    except (OSError, ValueError, KeyError, TypeError):
        return rec
    try:
        data = json.loads((folder / REVIEW_FILE).read_text(encoding="utf-8"))
        rec.review = ReviewLog.from_dict(data)
        intervals = [Interval.from_dict(d) for d in data.get("intervals", [])]
    except (OSError, ValueError, KeyError, TypeError):
        return rec
    for cls in rec.result.classes.values():
        cls.intervals = sorted((iv for iv in intervals if iv.label == cls.label), key=lambda i: (i.start_s, i.end_s))
    _replay(folder, rec)
    return rec


def _replay(folder: Path, rec: VideoRecord) -> None:
    """Apply the edits of review.log made after review.json was written. A last line cut short by a
    crash was never acknowledged: it is cut off the file, so the next edit starts a clean line."""
    path = folder / JOURNAL_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return
    good = 0  # bytes of whole, readable lines
    for line in raw.splitlines(keepends=True):
        try:
            if not line.endswith(b"\n"):
                raise ValueError("cut short")
            batch = json.loads(line)
            apply_edits(rec.result, rec.review, batch["client"], batch["edits"])
        except (ValueError, KeyError, TypeError):
            break
        good += len(line)
        rec.journal += 1
    if good < len(raw):
        try:
            os.truncate(path, good)
        except OSError:
            pass  # read-only: the fragment stays, and is left out again next time


def export_project(project: Project, out: str | os.PathLike, formats: Iterable[str],
                   states: Iterable[str] | None = None, proposals: str = "review",
                   media_url: str | None = None) -> list[Path]:
    """Every scored video of the project in each format (see `zeal.export.export_collection`): one
    file for all videos in CSV, JSON, Label Studio and ActivityNet, one zip of per-video files for
    ELAN, VIA and WebVTT. Videos are named by their file name (made unique when two share one)."""
    from zeal.export import export_collection
    from zeal.review import NOT_REJECTED

    items: list[tuple[str, Result]] = []
    taken: set[str] = set()
    for entry in project.entries():
        rec = project.record(entry.id)
        if rec.result is None:
            continue
        name = Path(entry.name).stem or entry.id[:8]
        if name in taken:
            name = f"{name}_{entry.id[:6]}"
        taken.add(name)
        with rec.lock:  # a snapshot: edits replace class entries, they never change them in place
            r = rec.result
            items.append((name, Result(r.video, r.times_s, dict(r.classes), r.settings)))
    if not items:
        raise ProjectError("no video of this project is scored yet: nothing to export")
    paths: list[Path] = []
    for fmt in formats:
        paths += export_collection(items, fmt, out, project.name or "project",
                                   tuple(states) if states is not None else NOT_REJECTED, proposals, media_url)
    return paths
