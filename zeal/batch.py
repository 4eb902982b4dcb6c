"""Many videos through one pipeline, resumable: what `zeal batch` and `zeal reproduce` run.

Each video's result goes to OUT/<name>/result.json (plus the chosen export formats), written last, so
it marks the video finished; OUT/predictions.csv (every finished video, evaluation shape) and
OUT/summary.json are rewritten atomically after every video, so a killed batch leaves consistent
files. Started again, a video whose saved result carries the same run key (same video content,
settings, models and questions: `ZealPipeline.run_key`) is skipped; every score computed before
comes from the cache. Each video is hashed once. A failing video is recorded and the batch goes on.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from zeal.atomic import write_atomic
from zeal.errors import ConfigError, ExportError, ZealError

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts")
RESULT_FILE = "result.json"
PREDICTIONS_FILE = "predictions.csv"
SUMMARY_FILE = "summary.json"
STATUSES = ("done", "skipped", "failed", "pending")


def folder_name(video: Path) -> str:
    """The name of a video's own output folder: its stem made safe (a video named `...mp4` has the
    stem `..`, which would put its files outside the output folder)."""
    from zeal.export import safe_stem

    return safe_stem(video.stem)


class StageBar:
    """One tqdm bar following the pipeline's progress(stage, done, total) calls: a new stage resets
    the bar's description and total, so a user sees the stage, frames done and the ETA."""

    def __init__(self, label: str, position: int, enabled: bool):
        self.label, self.position, self.enabled = label, position, enabled
        self.bar = None
        self.stage = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=total, position=self.position, leave=False, file=sys.stderr,
                            unit="frame", dynamic_ncols=True)
        if stage != self.stage:
            self.stage = stage
            self.bar.set_description(f"{self.label}: {stage}" if self.label else stage, refresh=False)
            self.bar.reset(total=max(total, 1))
        self.bar.n = min(done, self.bar.total or done)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def output_names(video: str | Path, formats: Sequence[str]) -> list[str]:
    """The files one video's run writes into its output folder: every export, then result.json."""
    from zeal.export import FORMAT_SUFFIXES, safe_stem

    stem = safe_stem(Path(str(video).replace("\\", "/")).stem or "video")
    return [f"{stem}{suffix}" for fmt in formats for suffix in FORMAT_SUFFIXES[fmt]] + [RESULT_FILE]


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def check_output_names(names: Sequence[str], video: str | Path) -> None:
    """ConfigError when one output of a video would overwrite another (`output_names` order)."""
    if RESULT_FILE in names[:-1]:
        # the JSON export of a video called "result" would be overwritten by result.json
        raise ConfigError(f"the video {str(video)!r} is named like {RESULT_FILE}, so its JSON export would be"
                          f" overwritten; rename the video or leave json out of --format (nothing was analysed)")


def check_output_folder(out_dir: Path, names: Sequence[str] = (), video: str | Path | None = None) -> None:
    """Make sure a run can write its outputs before anything is analysed: no output is in the way
    of another (a video named like result.json), the folder exists (or is made), a file can be
    written there (a write probe: read-only and full disks fail here) and no output file's place
    is taken by a folder. ConfigError otherwise, saying that nothing was analysed."""
    if names:
        check_output_names(names, video or "")
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"the output folder {out_dir} is a file; give a folder with --out (nothing was analysed)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".zeal-write-test-{os.getpid()}-{threading.get_ident()}"
        with open(probe, "wb") as f:
            f.write(b"zeal" * 256)
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"cannot write to the output folder {out_dir} ({_why(exc)}); choose another --out or "
                          "free some space (nothing was analysed)") from None
    blocked = [n for n in names if (out_dir / n).is_dir()]
    if blocked:
        raise ConfigError(f"{out_dir / blocked[0]} is a folder where an output file goes; move it away or choose "
                          "another --out (nothing was analysed)")


def export_all(result, formats: Sequence[str], out_dir: Path, states: Sequence[str] | None = None,
               proposals: str = "review", media_url: str | None = None, then: Sequence[str] = ()) -> list[Path]:
    """Write `result` in every format into out_dir (the intervals in `states`, default all but the
    rejected ones, of the proposal set `proposals`, see zeal.review; media_url: where web tools
    fetch the video, see zeal.export); returns the files. A failure is an ExportError that names the
    file and says which of the outputs were written and which are missing (no file is half-written);
    `then`: the files the caller would have written next (missing too, after a failure)."""
    from zeal.export import export
    from zeal.review import NOT_REJECTED

    check_output_folder(out_dir, output_names(result.video.path, formats), result.video.path)
    written: list[Path] = []
    for k, fmt in enumerate(formats):
        try:
            written.extend(Path(p) for p in export(result, fmt, out_dir, states=states or NOT_REJECTED,
                                                   proposals=proposals, media_url=media_url))
        except ExportError as exc:
            raise _partly_written(exc, written, [*output_names(result.video.path, formats[k:])[:-1], *then]) from None
    return written


def _partly_written(exc: Exception, written: Sequence[Path], missing: Sequence[str]) -> ExportError:
    done = ", ".join(p.name for p in written) or "none"
    return ExportError(f"{exc} (written: {done}; missing: {', '.join(dict.fromkeys(missing))})")


def save_result(result, out_dir: Path) -> Path:
    path = out_dir / RESULT_FILE
    try:
        write_atomic(path, json.dumps(result.to_dict(), ensure_ascii=False))
    except OSError as exc:
        raise ExportError(f"cannot write {path} ({_why(exc)}); free some space and run again (the scores are "
                          "cached: nothing is computed twice)") from None
    return path


def write_run_outputs(result, formats: Sequence[str], out_dir: Path, proposals: str = "review",
                  media_url: str | None = None) -> list[Path]:
    """Every export, then result.json (written last: it marks the video finished). An error says
    which files were written and which are missing."""
    written = export_all(result, formats, out_dir, proposals=proposals, media_url=media_url, then=[RESULT_FILE])
    try:
        save_result(result, out_dir)
    except ExportError as exc:
        raise _partly_written(exc, written, [RESULT_FILE]) from None
    return written


def load_result(path: Path):
    """A saved result.json; ConfigError saying what is wrong with the file."""
    from zeal import jsonio
    from zeal.types import Result

    try:
        data = jsonio.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, jsonio.JSONLimitError) as exc:
        raise ConfigError(f"{str(path)!r} is not a JSON file ({exc}); give a result.json written by zeal") from None
    try:
        return Result.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        what = f"{type(exc).__name__}: {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ConfigError(f"{str(path)!r} is not a zeal result ({what});"
                          " give a result.json written by `zeal localize` or `zeal batch`") from None


def list_videos(source: str | Path) -> list[Path]:
    """A folder's videos (by extension, not recursive) or the paths listed in a text file (one per
    line; blank lines and # comments skipped; relative paths are relative to the list file)."""
    src = Path(source).expanduser()
    if src.is_dir():
        videos = [p.resolve() for p in src.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS]
        if not videos:
            raise ConfigError(f"no videos in folder {str(src)!r} (looked for {', '.join(VIDEO_EXTENSIONS)})")
        videos = sorted(videos)
    elif src.is_file():
        try:
            lines = src.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise ConfigError(f"{str(src)!r} is neither a folder nor a text file listing videos") from None
        videos = []
        for line in lines:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            p = Path(line).expanduser()
            videos.append((p if p.is_absolute() else src.parent / p).resolve())
        if not videos:
            raise ConfigError(f"list file {str(src)!r} names no videos (one path per line)")
    else:
        raise ConfigError(f"{str(src)!r} does not exist; give a folder of videos or a text file listing them")
    stems: dict[str, Path] = {}
    for v in videos:
        name = folder_name(v)
        if name in stems and stems[name] != v:
            raise ConfigError(f"two videos share the name {name!r} ({stems[name]} and {v}); each video's"
                              " results go to OUT/<name>/, so rename one of them")
        stems[name] = v
    return list(dict.fromkeys(videos))


@dataclass
class BatchItem:
    """One video of a batch, the questions it is asked, and what became of it."""

    video: Path
    queries: Any  # QuerySet
    known_classes: bool = False
    status: str = "pending"  # pending | done | skipped | failed
    error: str | None = None
    seconds: float = 0.0
    intervals: int = 0
    warnings: list[str] = field(default_factory=list)  # what its run worked around (zeal.types.RunInfo)
    result: Any = field(default=None, repr=False)
    video_hash: str | None = field(default=None, repr=False)
    run_key: str | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"video": str(self.video), "video_id": self.video.stem, "status": self.status,
                "error": self.error, "warnings": self.warnings, "seconds": round(self.seconds, 3),
                "intervals": self.intervals}


class Batch:
    """A running batch over `items` with one shared pipeline; `run()` does everything.

    settings: what summary.json records about the batch (queries, formats, ...); workers: videos in
    parallel (threads sharing the pipeline); quiet: no progress bars; debug: print tracebacks of
    unexpected errors; proposals: the proposal set of the exports (predictions.csv always has all);
    media_url: where web tools fetch the videos (see zeal.export).
    """

    def __init__(self, pipeline, items: list[BatchItem], out: Path, formats: Sequence[str],
                 settings: dict[str, Any], workers: int = 1, quiet: bool = False, debug: bool = False,
                 proposals: str = "review", media_url: str | None = None):
        self.pipeline, self.items, self.out, self.formats = pipeline, items, Path(out), list(formats)
        self.settings, self.workers, self.quiet, self.debug = settings, workers, quiet, debug
        self.proposals, self.media_url = proposals, media_url
        self.lock = threading.Lock()
        self.slots = list(range(workers))

    def check_finished(self, item: BatchItem) -> None:
        """Mark the item skipped when OUT/<name>/result.json carries this run's key; a video that
        cannot even be hashed is marked failed."""
        from zeal import video as video_io

        try:
            item.video_hash = video_io.video_hash(str(item.video))
            item.run_key = self.pipeline.run_key(item.video_hash, item.queries, item.known_classes)
        except (ZealError, OSError) as exc:
            item.status, item.error = "failed", str(exc) or type(exc).__name__
            return
        path = self.out / folder_name(item.video) / RESULT_FILE
        if not path.exists():
            return
        try:
            result = load_result(path)
        except ZealError:
            return  # unreadable: compute it again
        if result.run is not None and result.run.run_key == item.run_key:
            item.result, item.status = result, "skipped"
            item.intervals = len(result.intervals)
            item.warnings = list(result.run.warnings)

    def load_models(self) -> None:
        """Load both models before the first video, so a bad model path is one error, not one
        failure per video (the properties load the models on first access)."""
        _ = self.pipeline.clip
        _ = self.pipeline.lvlm

    def process(self, item: BatchItem) -> None:
        """Run one video; its errors are recorded, never raised (the batch goes on)."""
        with self.lock:
            slot = self.slots.pop(0)
        bar = StageBar(item.video.name, slot + 1, not self.quiet)
        t0 = time.monotonic()
        try:
            out_dir = self.out / folder_name(item.video)
            check_output_folder(out_dir, output_names(item.video, self.formats), item.video)  # before the analysis
            result = self.pipeline.run(str(item.video), queries=item.queries, known_classes=item.known_classes,
                                       progress=bar, video_hash=item.video_hash)
            item.warnings = list(result.run.warnings)
            write_run_outputs(result, self.formats, out_dir, proposals=self.proposals, media_url=self.media_url)
            item.result, item.status = result, "done"
            item.intervals = len(result.intervals)
        except (ZealError, OSError) as exc:
            item.status, item.error = "failed", str(exc) or type(exc).__name__
        except Exception as exc:  # a bug on one video must not lose the rest of the night's work
            item.status, item.error = "failed", f"unexpected {type(exc).__name__}: {exc}"
            if self.debug:
                traceback.print_exc()
        finally:
            bar.close()
            item.seconds = time.monotonic() - t0
            with self.lock:
                self.slots.append(slot)
                self.slots.sort()
                self.write_outputs()

    def write_outputs(self) -> None:
        """predictions.csv (evaluation shape, every finished video in list order) and summary.json."""
        from zeal.export import predictions_rows, write_predictions_csv

        rows = []
        for item in self.items:
            if item.result is not None:
                rows.extend(predictions_rows(item.result, item.video.stem))
        write_predictions_csv(rows, self.out / PREDICTIONS_FILE)
        summary = {"out": str(self.out), "counts": self.counts(), "videos": [i.to_dict() for i in self.items],
                   "settings": {**self.settings, "formats": self.formats,
                                "config": self.pipeline.config.to_dict()}}
        write_atomic(self.out / SUMMARY_FILE, json.dumps(summary, indent=2, ensure_ascii=False))

    def counts(self) -> dict[str, int]:
        return {s: sum(1 for i in self.items if i.status == s) for s in STATUSES}

    def run(self) -> dict[str, int]:
        """Skip what is finished, run the rest, write the outputs; returns the status counts."""
        check_output_folder(self.out)  # a folder that takes no file fails here, before any model loads
        for item in self.items:
            self.check_finished(item)
        for item in self.items:
            if item.status == "pending":
                try:
                    check_output_names(output_names(item.video, self.formats), item.video)
                except ConfigError as exc:
                    item.status, item.error = "failed", str(exc)
        pending = [i for i in self.items if i.status == "pending"]
        overall = None
        try:
            if pending:
                self.load_models()
            if not self.quiet:
                from tqdm import tqdm

                overall = tqdm(total=len(self.items), initial=len(self.items) - len(pending), position=0,
                               desc="videos", unit="video", file=sys.stderr, dynamic_ncols=True)

            def run_one(item: BatchItem) -> None:
                self.process(item)
                if overall is not None:
                    overall.update(1)

            if self.workers == 1:
                for item in pending:
                    run_one(item)
            else:
                # Threads share one pipeline, so the models load once; on one GPU the gain is mostly
                # decoding one video while another is being scored.
                with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="zeal-batch") as pool:
                    list(pool.map(run_one, pending))
        finally:
            if overall is not None:
                overall.close()
            with self.lock:
                self.write_outputs()
        return self.counts()
