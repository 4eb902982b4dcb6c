"""The `zeal` command (also `python -m zeal`): localize, queries, batch, eval, export, presets.

Every error caused by the user's input (a ZealError, an unreadable file, a bad flag) is printed as one
line `zeal: error: <message>` on stderr with exit code 2; `--debug` (anywhere on the line) shows the
traceback instead. `zeal batch` exits 1 when any video failed. Heavy libraries load only inside the
commands that need them, so `zeal --help` and `zeal queries --list` are instant.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import threading
import time
import traceback
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from zeal.errors import ConfigError, ExportWarning, QueryError, ZealError
from zeal.atomic import write_atomic
from zeal.review import NOT_REJECTED, PROPOSAL_SETS, select
from zeal.types import REVIEW_STATES, Result

PROG = "zeal"
EXIT_OK = 0
EXIT_FAILED = 1  # the command ran but some work failed (batch) or an unexpected bug
EXIT_USAGE = 2  # the user's input cannot be used; same code argparse uses
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts")
DEFAULT_FORMATS = ("csv", "json")
DEFAULT_OUT_ROOT = "zeal_out"
RESULT_FILE = "result.json"
PREDICTIONS_FILE = "predictions.csv"
SUMMARY_FILE = "summary.json"
# Settings that change how fast a run goes but not a single score: left out of the resume key.
_SPEED_ONLY = {"video": ("chunk",), "clip": ("device", "batch_size"),
               "lvlm": ("device", "dtype", "frames_per_batch", "max_in_flight", "request_timeout_s", "max_retries")}


class UsageError(ZealError):
    """A command line argparse cannot parse (unknown flag, missing argument, bad value)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a parse error raises UsageError (printed as one line) instead of printing the
    usage block and exiting, so every user error looks the same."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"{message} (see `{self.prog} --help`)")


# --- small helpers -------------------------------------------------------------------------------
def _split_list(text: str | None) -> list[str]:
    """'A, B,,C' -> ['A', 'B', 'C']."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]



def _folder_name(video: Path) -> str:
    """The name of a video's own output folder: its stem made safe (a video named `...mp4` has the
    stem `..`, which would put its files outside the output folder)."""
    from zeal.export import safe_stem

    return safe_stem(video.stem)


def _existing_file(path: str, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise ConfigError(f"{what} {str(p)!r} does not exist; check the path")
    if not p.is_file():
        raise ConfigError(f"{what} {str(p)!r} is not a file")
    return p


def _check_formats(text: str) -> list[str]:
    """Validate a comma list of export formats against zeal.export.FORMATS."""
    from zeal.export import FORMATS

    formats = _split_list(text)
    if not formats:
        raise ConfigError(f"no export format given; choose from: {', '.join(FORMATS)}")
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ConfigError(f"unknown export format(s) {', '.join(unknown)}; choose from: {', '.join(FORMATS)}")
    return list(dict.fromkeys(formats))


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, got {text}")
    return value


# --- models and queries from the flags -----------------------------------------------------------
def _register_clip_config(path: str) -> str:
    """Make a custom open_clip architecture known under the file's stem; returns that name."""
    from zeal.clip_scorer import register_model_config

    return register_model_config(str(_existing_file(path, "CLIP model config")))


def _build_config(args: argparse.Namespace):
    """ZealConfig from preset, ZEAL_* environment variables and the model flags."""
    from zeal.config import build_config

    clip_model = args.clip_model
    if args.clip_config:
        registered = _register_clip_config(args.clip_config)
        clip_model = clip_model or registered
    return build_config(preset=args.preset, lvlm=args.lvlm, clip_model=clip_model,
                        clip_pretrained=args.clip_pretrained, fps=args.fps, cache_dir=args.cache_dir,
                        device=args.device, max_in_flight=args.max_in_flight)


def _load_queries(args: argparse.Namespace):
    """(QuerySet, class names or None) from --queries FILE and/or --classes A,B; checked before any
    model loads so a typo costs nothing."""
    from zeal.queries import QuerySet, lookup

    classes = _split_list(args.classes)
    if args.queries:
        queries = QuerySet.load(_existing_file(args.queries, "query file"))
        if classes:
            queries = queries.subset(classes)
        return queries
    if not classes:
        raise ConfigError("no classes given: pass --classes A,B (built-in library) or --queries FILE")
    return lookup(classes)


def _run_key(config, queries, known_classes: bool, video_hash: str) -> str:
    """What a finished result depends on: the video's content, the settings that change scores or
    intervals, the models (local ones by file fingerprint), the questions. Resume skips a video only
    when its saved result carries the same key."""
    from zeal.cache import model_fingerprint

    settings = config.to_dict()
    settings.pop("cache_dir", None)
    settings.pop("llm", None)
    for section, names in _SPEED_ONLY.items():
        for name in names:
            settings[section].pop(name, None)
    lvlm = settings["lvlm"]["model"]
    models = {"clip": model_fingerprint(settings["clip"]["pretrained"]),
              "lvlm": lvlm if lvlm.startswith("openai:") else model_fingerprint(lvlm)}
    blob = json.dumps([video_hash, settings, models, queries.to_dict(), bool(known_classes)],
                      sort_keys=True, default=str)
    return hashlib.blake2b(blob.encode(), digest_size=16).hexdigest()


# --- progress bars --------------------------------------------------------------------------------
class _StageBar:
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


def _summary_lines(result) -> list[str]:
    lines = []
    for label, cls in result.classes.items():
        shown = select(Result(result.video, result.times_s, {label: cls}), proposals="review")
        spans = ", ".join(f"{i.start_s:.1f}-{i.end_s:.1f}s ({i.score:.2f})" for i in shown[:5])
        more = f", ... {len(shown) - 5} more" if len(shown) > 5 else ""
        lines.append(f"  {label}: {len(shown)} interval(s){': ' + spans + more if shown else ''}")
    return lines


def _export_all(result, formats: Sequence[str], out_dir: Path, states: Sequence[str] = NOT_REJECTED,
                proposals: str = "review", media_url: str | None = None) -> list[Path]:
    from zeal.export import default_video_id, export, safe_stem

    if "json" in formats and safe_stem(default_video_id(result.video)) == Path(RESULT_FILE).stem:
        # the JSON export of a video called "result" would be overwritten by result.json
        raise ConfigError(f"the video {result.video.path!r} is named like {RESULT_FILE}, so its JSON export"
                          f" would be overwritten; rename the video or leave json out of --format")
    written: list[Path] = []
    for fmt in formats:
        written.extend(Path(p) for p in export(result, fmt, out_dir, states=states, proposals=proposals,
                                               media_url=media_url))
    return written


def _save_result(result, out_dir: Path) -> Path:
    path = out_dir / RESULT_FILE
    write_atomic(path, json.dumps(result.to_dict(), ensure_ascii=False))
    return path


def _load_result(path: Path):
    from zeal.types import Result

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Result.from_dict(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{str(path)!r} is not a JSON file ({exc}); give a result.json written by zeal") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{str(path)!r} is not a zeal result ({type(exc).__name__}: {exc});"
                          " give a result.json written by `zeal localize` or `zeal batch`") from None


# --- commands -------------------------------------------------------------------------------------
def cmd_localize(args: argparse.Namespace) -> int:
    """One video -> result.json + the chosen formats in --out."""
    from zeal.pipeline import ZealPipeline

    video = _existing_file(args.video, "video").resolve()  # result.json must find it from anywhere
    formats = _check_formats(args.format)
    queries = _load_queries(args)
    config = _build_config(args)
    out_dir = Path(args.out).expanduser() if args.out else Path(DEFAULT_OUT_ROOT) / _folder_name(video)
    pipeline = ZealPipeline(config)
    bar = _StageBar(video.name, 0, not args.quiet)
    try:
        result = pipeline.run(str(video), queries=queries, known_classes=args.known_classes, progress=bar)
    finally:
        bar.close()
    result.settings["run_key"] = _run_key(config, queries, args.known_classes, result.settings["video_hash"])
    out_dir.mkdir(parents=True, exist_ok=True)
    written = _export_all(result, formats, out_dir, proposals=args.proposals, media_url=args.media_url)
    _save_result(result, out_dir)
    print(f"{video.name}: {len(result.times_s)} frames analysed, {len(result.classes)} class(es)")
    for line in _summary_lines(result):
        print(line)
    print(f"wrote {out_dir / RESULT_FILE}" + "".join(f", {p.name}" for p in written))
    return EXIT_OK


def cmd_queries(args: argparse.Namespace) -> int:
    """Write, check or list query sets."""
    from zeal.queries import QuerySet, list_libraries, load_library, lookup

    if args.list:
        for name in list_libraries():
            lib = load_library(name)
            print(f"{name} ({len(lib)} classes): {', '.join(lib.names)}")
        return EXIT_OK
    if args.check:
        qs = QuerySet.load(_existing_file(args.check, "query file"))
        print(f"{args.check}: OK, {len(qs)} class(es): {', '.join(qs.names)}")
        return EXIT_OK
    classes = _split_list(args.classes)
    if not classes:
        raise ConfigError("--classes is empty; give class names like --classes CliffDiving,Diving")
    if args.llm_base_url or args.llm_model:
        if not (args.llm_base_url and args.llm_model):
            raise ConfigError("an LLM needs both --llm-base-url URL and --llm-model NAME")
        from zeal.config import LLMConfig
        from zeal.llm import generate_queries

        settings = LLMConfig(base_url=args.llm_base_url, model=args.llm_model, api_key_env=args.llm_api_key_env)
        # The key is read from the environment only: a key typed as a flag would land in shell history.
        qs = generate_queries(classes, settings, api_key=os.environ.get(args.llm_api_key_env))
    else:
        try:
            qs = lookup(classes)
        except QueryError as exc:
            raise QueryError(f"{exc} (--llm-base-url URL --llm-model NAME), or write the query file by hand"
                             " (see `zeal queries --list` for the built-in classes)") from None
    if args.out:
        path = qs.save(Path(args.out).expanduser())
        print(f"wrote {len(qs)} class(es) to {path}")
    else:
        print(qs.to_json())
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """A saved result.json -> other formats."""
    path = _existing_file(args.result, "result file")
    formats = _check_formats(args.to)
    result = _load_result(path)
    out_dir = Path(args.out).expanduser() if args.out else path.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    states = REVIEW_STATES if args.all else NOT_REJECTED
    for p in _export_all(result, formats, out_dir, states=states, proposals=args.proposals,
                         media_url=args.media_url):
        print(f"wrote {p}")
    return EXIT_OK


def cmd_presets(args: argparse.Namespace) -> int:
    """The presets, their models and download sizes, and the environment variables."""
    from zeal.config import ENV_SETTINGS, list_presets, preset_info

    for name in list_presets():
        info = preset_info(name)
        cfg = info.config
        print(f"{name:<9} ~{info.approx_size_gb:g} GB  {info.description}")
        print(f"{'':<9} CLIP {cfg.clip.model} ({cfg.clip.pretrained}), LVLM {cfg.lvlm.model}")
    print("\nEnvironment (flags override them):")
    for var, what in ENV_SETTINGS.items():
        print(f"  {var:<21} {what}")
    return EXIT_OK


# --- batch ------------------------------------------------------------------------------------------
def _list_videos(source: str) -> list[Path]:
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
        for n, line in enumerate(lines, 1):
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
        name = _folder_name(v)
        if name in stems and stems[name] != v:
            raise ConfigError(f"two videos share the name {name!r} ({stems[name]} and {v}); each video's"
                              " results go to OUT/<name>/, so rename one of them")
        stems[name] = v
    return list(dict.fromkeys(videos))


@dataclass
class _Item:
    """One video of a batch and what became of it."""

    video: Path
    status: str = "pending"  # pending | done | skipped | failed
    error: str | None = None
    seconds: float = 0.0
    intervals: int = 0
    result: Any = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"video": str(self.video), "video_id": self.video.stem, "status": self.status,
                "error": self.error, "seconds": round(self.seconds, 3), "intervals": self.intervals}


class _Batch:
    """State of a running batch; the combined CSV and the summary are rewritten (atomically) after
    every video, so a killed batch leaves consistent files behind."""

    def __init__(self, args: argparse.Namespace, items: list[_Item], out: Path, config, queries,
                 formats: list[str]):
        from zeal.pipeline import ZealPipeline

        self.args, self.items, self.out, self.config = args, items, out, config
        self.queries, self.formats = queries, formats
        self.pipeline = ZealPipeline(config)
        self.keys: dict[Path, str] = {}
        self.lock = threading.Lock()
        self.slots = list(range(args.workers))

    def check_finished(self, item: _Item) -> None:
        """Mark the item skipped when OUT/<name>/result.json was made with the same settings,
        queries and video content; a video that cannot even be hashed is marked failed."""
        from zeal import video as video_io

        try:
            key = _run_key(self.config, self.queries, self.args.known_classes, video_io.video_hash(str(item.video)))
        except (ZealError, OSError) as exc:
            item.status, item.error = "failed", str(exc) or type(exc).__name__
            return
        self.keys[item.video] = key
        path = self.out / _folder_name(item.video) / RESULT_FILE
        if not path.exists():
            return
        try:
            result = _load_result(path)
        except ZealError:
            return  # unreadable: compute it again
        if result.settings.get("run_key") == key:
            item.result, item.status = result, "skipped"
            item.intervals = len(result.intervals)

    def load_models(self) -> None:
        """Load both models before the first video, so a bad model path is one error, not one
        failure per video."""
        # The properties load the models on first access.
        _ = self.pipeline.clip
        _ = self.pipeline.lvlm

    def process(self, item: _Item) -> None:
        """Run one video; its errors are recorded, never raised (the batch goes on)."""
        with self.lock:
            slot = self.slots.pop(0)
        bar = _StageBar(item.video.name, slot + 1, not self.args.quiet)
        t0 = time.monotonic()
        try:
            result = self.pipeline.run(str(item.video), queries=self.queries,
                                       known_classes=self.args.known_classes, progress=bar)
            result.settings["run_key"] = self.keys[item.video]
            out_dir = self.out / _folder_name(item.video)
            out_dir.mkdir(parents=True, exist_ok=True)
            _export_all(result, self.formats, out_dir, proposals=self.args.proposals,
                        media_url=self.args.media_url)
            _save_result(result, out_dir)  # written last: it marks the video finished
            item.result, item.status = result, "done"
            item.intervals = len(result.intervals)
        except (ZealError, OSError) as exc:
            item.status, item.error = "failed", str(exc) or type(exc).__name__
        except Exception as exc:  # a bug on one video must not lose the rest of the night's work
            item.status, item.error = "failed", f"unexpected {type(exc).__name__}: {exc}"
            if self.args.debug:
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
        summary = {"out": str(self.out), "counts": self.counts(),
                   "videos": [i.to_dict() for i in self.items],
                   "settings": {"queries": self.queries.names, "known_classes": self.args.known_classes,
                                "formats": self.formats, "config": self.config.to_dict()}}
        write_atomic(self.out / SUMMARY_FILE, json.dumps(summary, indent=2, ensure_ascii=False))

    def counts(self) -> dict[str, int]:
        return {s: sum(1 for i in self.items if i.status == s) for s in ("done", "skipped", "failed", "pending")}


def cmd_batch_project(args: argparse.Namespace) -> int:
    """Many videos into a project folder (the app's format): each is added in place and scored,
    with every interval a person reviewed in the app kept. Resumable: a video whose result was made
    with the same settings, questions and content is skipped."""
    from zeal import video as video_io
    from zeal.pipeline import ZealPipeline
    from zeal.project import Project
    from zeal.queries import QuerySet
    from zeal.review import carry_over

    videos = _list_videos(args.source)
    project = Project.open(Path(args.project).expanduser())
    st = project.settings
    if args.classes or args.queries:  # the questions given here become the project's
        queries = _load_queries(args)
        st.classes = queries.names
        st.queries.update({q.name: {"start": q.start, "end": q.end, "description": q.description} for q in queries})
        st.known_classes = bool(args.known_classes)
        project.save()
    elif not st.classes:
        raise ConfigError(f"the project {project.root} has no classes yet: pass --classes A,B or --queries FILE")
    queries = QuerySet.from_dict({c: st.queries[c] for c in st.classes})
    config = _build_config(args)
    pipeline = ZealPipeline(config)
    failed = done = skipped = 0
    for video in videos:
        try:
            entry, _ = project.add_video(video, copy=False)
            key = _run_key(config, queries, st.known_classes, entry.id)
            rec = project.record(entry.id)
            if rec.result is not None and rec.result.settings.get("run_key") == key:
                skipped += 1
                continue
            project.set_status(entry.id, "scoring", 0.0, "")
            bar = _StageBar(video.name, 0, not args.quiet)
            try:
                fresh = pipeline.run(str(video), queries=queries, known_classes=st.known_classes, progress=bar)
            finally:
                bar.close()
            fresh = pipeline.repropose(fresh, st.proposals)
            fresh.settings["run_key"] = key
            with rec.lock:
                rec.result, _ = carry_over(rec.result, fresh, suppressed=rec.review.deleted)
                rec.review.rev += 1
                project.save_record(entry.id, result=True)
            reviewed = any(iv.reviewed for iv in rec.result.intervals)
            project.set_status(entry.id, "in review" if reviewed else "scored", 1.0, "scored by zeal batch")
            done += 1
        except (ZealError, OSError) as exc:
            failed += 1
            print(f"  FAILED {video}: {exc}", file=sys.stderr)
            vid = video_io.video_hash(video) if video.is_file() else None
            if vid in project.videos:
                project.set_status(vid, "failed", 0.0, str(exc))
    print(f"{len(videos)} video(s) into project {project.root}: {done} scored, {skipped} already done (skipped), "
          f"{failed} failed; open it with `python app.py --project {project.root}`")
    return EXIT_FAILED if failed else EXIT_OK


def cmd_batch(args: argparse.Namespace) -> int:
    """Many videos -> OUT/<stem>/result.json + formats, OUT/predictions.csv, OUT/summary.json."""
    if args.project:
        return cmd_batch_project(args)
    if not args.out:
        raise ConfigError("give --out OUT (a results folder) or --project DIR (a project the app opens)")
    videos = _list_videos(args.source)
    formats = _check_formats(args.format)
    queries = _load_queries(args)
    config = _build_config(args)
    out = Path(args.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    items = [_Item(v) for v in videos]
    batch = _Batch(args, items, out, config, queries, formats)
    for item in items:
        batch.check_finished(item)
    pending = [i for i in items if i.status == "pending"]
    overall = None
    try:
        if pending:
            batch.load_models()
        if not args.quiet:
            from tqdm import tqdm

            overall = tqdm(total=len(items), initial=len(items) - len(pending), position=0, desc="videos",
                           unit="video", file=sys.stderr, dynamic_ncols=True)

        def run_one(item: _Item) -> None:
            batch.process(item)
            if overall is not None:
                overall.update(1)

        if args.workers == 1:
            for item in pending:
                run_one(item)
        else:
            # Threads share one pipeline, so the models load once; on one GPU the gain is mostly
            # decoding one video while another is being scored.
            with ThreadPoolExecutor(max_workers=args.workers, thread_name_prefix="zeal-batch") as pool:
                list(pool.map(run_one, pending))
    finally:
        if overall is not None:
            overall.close()
        with batch.lock:
            batch.write_outputs()
    counts = batch.counts()
    print(f"{len(items)} video(s): {counts['done']} analysed, {counts['skipped']} already done (skipped),"
          f" {counts['failed']} failed")
    for item in items:
        if item.status == "failed":
            print(f"  FAILED {item.video}: {item.error}")
    print(f"wrote {out / PREDICTIONS_FILE} and {out / SUMMARY_FILE}")
    return EXIT_FAILED if counts["failed"] else EXIT_OK


def cmd_eval(argv: list[str]) -> int:
    from zeal.evaluate import eval_main

    return int(eval_main(argv) or 0)


# --- parser ---------------------------------------------------------------------------------------
def _model_flags() -> argparse.ArgumentParser:
    p = _Parser(add_help=False)
    g = p.add_argument_group("models and sampling (flags override ZEAL_* environment variables)")
    g.add_argument("--preset", help="paper, balanced or light (see `zeal presets`); default: $ZEAL_PRESET or balanced")
    g.add_argument("--lvlm", help="LVLM: Hugging Face id, local folder, or openai:MODEL@BASE_URL")
    g.add_argument("--clip-model", help="open_clip model name, e.g. EVA02-L-14")
    g.add_argument("--clip-pretrained", help="open_clip pretrained tag or local checkpoint file")
    g.add_argument("--clip-config", metavar="FILE.json",
                   help="register a custom open_clip architecture (model config JSON) named after the file")
    g.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: auto)")
    g.add_argument("--fps", type=_positive_float, help="frames sampled per second (default 1)")
    g.add_argument("--cache-dir", help="score cache folder (default: $ZEAL_CACHE_DIR or ~/.cache/zeal)")
    g.add_argument("--max-in-flight", type=_positive_int, metavar="N",
                   help="with --lvlm openai:...: requests in flight over all server URLs (default 16;"
                        " about 48 per GPU keeps a vLLM server busy)")
    return p


def _query_flags() -> argparse.ArgumentParser:
    p = _Parser(add_help=False)
    g = p.add_argument_group("classes")
    g.add_argument("--classes", help="comma-separated class names (built-in library, or a subset of --queries)")
    g.add_argument("--queries", metavar="FILE", help="query JSON {Class: {start, end, description}}")
    g.add_argument("--known-classes", action="store_true",
                   help="the classes are known to occur: skip CLIP class filtering")
    g.add_argument("--format", default=",".join(DEFAULT_FORMATS),
                   help="comma-separated export formats (default csv,json)")
    _proposals_flag(g)
    _media_url_flag(g)
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    return p


def _proposals_flag(group) -> None:
    group.add_argument("--proposals", choices=PROPOSAL_SETS, default="review",
                       help="which model proposals the exports hold: review = one candidate per action "
                            "(no two overlapping per class; default), all = the paper's full set "
                            "(what mAP evaluation wants; batch's predictions.csv always has it)")


def _media_url_flag(group) -> None:
    group.add_argument("--media-url", metavar="PREFIX",
                       help="where Label Studio (and VIA) fetch the video: PREFIX + the URL-encoded file name, "
                            "e.g. /data/local-files/?d=videos/ or https://media.example.org/clips/ (without it "
                            "the tasks hold the local path, which Label Studio cannot open)")


def cmd_serve_ls(args: argparse.Namespace) -> int:
    """ZEAL as a Label Studio ML backend (see zeal.labelstudio)."""
    from zeal.labelstudio.command import serve_ls

    return serve_ls(args, _build_config(args))


def _serve_ls_parser(sub, models) -> None:
    from zeal.labelstudio.backend import DEFAULT_WAIT_S
    from zeal.labelstudio.command import DEFAULT_HOST, DEFAULT_PORT

    p = sub.add_parser("serve-ls", parents=[models], help="run ZEAL as a Label Studio ML backend",
                       description="Serve zero-shot pre-annotations to Label Studio (Settings > Model > Connect"
                                   " Model, URL http://HOST:PORT). Videos are fetched from $LABEL_STUDIO_URL with"
                                   " $LABEL_STUDIO_API_KEY (a personal access token).")
    p.add_argument("--queries", metavar="FILE", help="query JSON for the project's labels (before the built-in library)")
    p.add_argument("--known-classes", action="store_true",
                   help="score every label of the project (skip CLIP class filtering)")
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    p.add_argument("--port", type=_positive_int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--wait", type=_seconds, default=DEFAULT_WAIT_S, metavar="SECONDS",
                   help=f"longest a prediction request waits for scoring (default {DEFAULT_WAIT_S:g}; Label Studio"
                        " gives up after 100); a task not done by then is answered later")
    p.add_argument("--state-dir", metavar="DIR",
                   help="downloaded videos and per-project questions (default: CACHE_DIR/label-studio)")
    p.add_argument("--llm-base-url", help="OpenAI-compatible endpoint that writes questions for unknown labels")
    p.add_argument("--llm-model", help="model name at that endpoint")
    p.add_argument("--llm-api-key-env", default="OPENAI_API_KEY", metavar="NAME",
                   help="environment variable holding the LLM's API key (default OPENAI_API_KEY)")
    p.set_defaults(func=cmd_serve_ls)


def build_parser() -> argparse.ArgumentParser:
    """The `zeal` argument parser (parse errors raise UsageError)."""
    parser = _Parser(prog=PROG, description="Zero-shot temporal action localization (ZEAL) from the command line.",
                     epilog="--debug anywhere on the line shows tracebacks instead of one-line errors.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    models, classes = _model_flags(), _query_flags()

    p = sub.add_parser("localize", parents=[models, classes], help="localize actions in one video",
                       description="Localize actions in one video; writes result.json and the chosen formats.")
    p.add_argument("video", help="video file")
    p.add_argument("--out", help=f"output folder (default ./{DEFAULT_OUT_ROOT}/<video name>/)")
    p.set_defaults(func=cmd_localize)

    p = sub.add_parser("batch", parents=[models, classes], help="localize actions in many videos (resumable)",
                       description="Every video of a folder (or listed in a text file) -> OUT/<name>/result.json"
                                   " + formats, OUT/predictions.csv, OUT/summary.json. Finished videos are"
                                   " skipped when started again; scores already computed come from the cache.")
    p.add_argument("source", metavar="FOLDER_OR_LIST", help="folder of videos, or a text file with one path a line")
    p.add_argument("--out", help="output folder")
    p.add_argument("--project", metavar="DIR", help="score into this project folder instead (created if needed;"
                                                    " `python app.py --project DIR` opens it)")
    p.add_argument("--workers", type=_positive_int, default=1,
                   help="videos in parallel (threads sharing one pipeline, models load once; on one GPU"
                        " this mainly overlaps decoding with scoring)")
    p.set_defaults(func=cmd_batch)

    p = sub.add_parser("queries", help="write, check or list query sets",
                       description="Write questions for classes (built-in library, or an LLM), check a query"
                                   " file, or list the built-in libraries.")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--classes", help="comma-separated class names to write questions for")
    what.add_argument("--check", metavar="FILE", help="validate a query file and print its classes")
    what.add_argument("--list", action="store_true", help="list the built-in libraries and their classes")
    p.add_argument("--out", metavar="FILE", help="where to write the query JSON (default: print it)")
    p.add_argument("--llm-base-url", help="OpenAI-compatible endpoint that writes the questions")
    p.add_argument("--llm-model", help="model name at that endpoint")
    p.add_argument("--llm-api-key-env", default="OPENAI_API_KEY", metavar="NAME",
                   help="environment variable holding the API key (default OPENAI_API_KEY)")
    p.set_defaults(func=cmd_queries)

    p = sub.add_parser("export", help="convert a saved result.json to other formats")
    p.add_argument("result", metavar="RESULT_JSON", help="result.json written by localize or batch")
    p.add_argument("--to", required=True, metavar="FORMAT[,FORMAT]", help="export format(s)")
    p.add_argument("--out", help="output folder (default: the result's folder)")
    p.add_argument("--all", action="store_true", help="include rejected intervals too")
    _proposals_flag(p)
    _media_url_flag(p)
    p.set_defaults(func=cmd_export)

    _serve_ls_parser(sub, models)

    p = sub.add_parser("presets", help="list the model presets and their download sizes")
    p.set_defaults(func=cmd_presets)

    sub.add_parser("eval", add_help=False,
                   help="mAP of predictions against ground truth (see `zeal eval --help`)")
    return parser


def _strip_debug(argv: list[str]) -> tuple[list[str], bool]:
    """--debug is global and may appear anywhere (before a `--`)."""
    if "--" in argv:
        cut = argv.index("--")
        head, tail = argv[:cut], argv[cut:]
    else:
        head, tail = argv, []
    return [a for a in head if a != "--debug"] + tail, "--debug" in head


def _fail(message: str, code: int) -> int:
    # One line: a message spanning lines (a wrapped library error) is joined.
    print(f"{PROG}: error: {' '.join(message.split())}", file=sys.stderr)
    return code


def _show_warnings(default):
    """warnings.showwarning that prints an ExportWarning as one `zeal: warning: ...` line."""

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, ExportWarning):
            print(f"{PROG}: warning: {' '.join(str(message).split())}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    return show


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `zeal` / `python -m zeal`; returns the exit code."""
    with warnings.catch_warnings():
        warnings.simplefilter("once", ExportWarning)  # a batch of 500 videos warns once
        warnings.showwarning = _show_warnings(warnings.showwarning)
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    argv, debug = _strip_debug(list(sys.argv[1:] if argv is None else argv))
    try:
        if argv and argv[0] == "eval":
            return cmd_eval(argv[1:])
        args = build_parser().parse_args(argv)
        args.debug = debug
        if args.command is None:
            build_parser().print_help()
            return EXIT_USAGE
        return args.func(args)
    except SystemExit as exc:  # --help, or a sub-tool that exits
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else _fail(str(exc.code), EXIT_USAGE))
    except KeyboardInterrupt:
        if debug:
            raise
        return _fail("interrupted; scores computed so far are cached and will be reused", EXIT_INTERRUPTED)
    except (ZealError, OSError) as exc:
        if debug:
            raise
        return _fail(str(exc) or type(exc).__name__, EXIT_USAGE)
    except Exception as exc:
        if debug:
            raise
        return _fail(f"unexpected {type(exc).__name__}: {exc} (this is a bug; rerun with --debug and report"
                     " the traceback)", EXIT_FAILED)


if __name__ == "__main__":
    sys.exit(main())
