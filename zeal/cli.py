"""The `zeal` command (also `python -m zeal`): localize, queries, batch, eval, export, reproduce, presets.

Every error caused by the user's input (a ZealError, an unreadable file, a bad flag) is printed as one
line `zeal: error: <message>` on stderr with exit code 2; `--debug` (anywhere on the line) shows the
traceback instead. `zeal batch` exits 1 when any video failed. Heavy libraries load only inside the
commands that need them, so `zeal --help` and `zeal queries --list` are instant.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path
from typing import Sequence

from zeal.batch import (RESULT_FILE, StageBar, check_output_folder, export_all, folder_name, load_result,
                        output_names, write_run_outputs)
from zeal.config import FPS_RANGE, MAX_IN_FLIGHT_RANGE, Range
from zeal.errors import ConfigError, ExportWarning, QueryError, ZealError
from zeal.review import NOT_REJECTED, PROPOSAL_SETS, select
from zeal.types import REVIEW_STATES, Result

PROG = "zeal"
EXIT_OK = 0
EXIT_FAILED = 1  # the command ran but some work failed (batch) or an unexpected bug
EXIT_USAGE = 2  # the user's input cannot be used; same code argparse uses
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT

DEFAULT_FORMATS = ("csv", "json")
DEFAULT_OUT_ROOT = "zeal_out"


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


def ranged(allowed: Range, unit: str = ""):
    """An argparse type: a number within `allowed`, else an error naming the allowed range."""

    def parse(text: str) -> float | int:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {allowed.describe()}, got {text!r}") from None
        if not allowed.holds(value):
            raise argparse.ArgumentTypeError(f"{text} is out of range: give {allowed.describe()}{unit}")
        return int(value) if allowed.whole else value

    return parse


WORKERS_RANGE = Range(1, 64, whole=True)
PORT_RANGE = Range(1, 65535, whole=True)
WAIT_RANGE = Range(0, 3600)


# --- models and queries from the flags -----------------------------------------------------------
def _register_clip_config(path: str) -> str:
    """Make a custom open_clip architecture known under the file's stem; returns that name."""
    from zeal.scorers.clip import register_model_config

    return register_model_config(str(_existing_file(path, "CLIP model config")))


def _build_config(args: argparse.Namespace, default_preset: str | None = None):
    """ZealConfig from preset (--preset, else default_preset, else $ZEAL_PRESET, else balanced with a
    GPU and cpu without, which is said on stderr), ZEAL_* environment variables and the model flags."""
    from zeal.config import build_config, choose_preset

    clip_model = args.clip_model
    if args.clip_config:
        registered = _register_clip_config(args.clip_config)
        clip_model = clip_model or registered
    choice = choose_preset(args.preset or default_preset, device=args.device)
    config = build_config(preset=choice.name, lvlm=args.lvlm, clip_model=clip_model,
                          clip_pretrained=args.clip_pretrained, fps=args.fps, cache_dir=args.cache_dir,
                          device=args.device, max_in_flight=args.max_in_flight,
                          image_budget=getattr(args, "image_budget", None))
    if choice.reason:
        print(f"zeal: {choice.notice(config)}", file=sys.stderr)
    return config


def _load_queries(args: argparse.Namespace, default_library: str | None = None):
    """The QuerySet of --queries FILE and/or --classes A,B (else the built-in default_library, when
    given); checked before any model loads so a typo costs nothing."""
    from zeal.queries import QuerySet, load_library, lookup

    classes = _split_list(args.classes)
    if args.queries:
        queries = QuerySet.load(_existing_file(args.queries, "query file"))
        if classes:
            queries = queries.subset(classes)
        return queries
    if not classes and default_library:
        return load_library(default_library)
    if not classes:
        raise ConfigError("no classes given: pass --classes A,B (built-in library) or --queries FILE")
    return lookup(classes)


def _warn(name: str, warnings) -> None:
    """What a run worked around, one `zeal: warning:` line each on stderr."""
    for w in warnings:
        print(f"{PROG}: warning: {name}: {' '.join(str(w).split())}", file=sys.stderr)


def _summary_lines(result) -> list[str]:
    lines = []
    for label, cls in result.classes.items():
        shown = select(Result(result.video, result.times_s, {label: cls}), proposals="review")
        spans = ", ".join(f"{i.start_s:.1f}-{i.end_s:.1f}s ({i.score:.2f})" for i in shown[:5])
        more = f", ... {len(shown) - 5} more" if len(shown) > 5 else ""
        lines.append(f"  {label}: {len(shown)} interval(s){': ' + spans + more if shown else ''}")
    return lines


# --- commands -------------------------------------------------------------------------------------
def cmd_localize(args: argparse.Namespace) -> int:
    """One video -> result.json + the chosen formats in --out."""
    from zeal.pipeline import ZealPipeline

    video = _existing_file(args.video, "video").resolve()  # result.json must find it from anywhere
    formats = _check_formats(args.format)
    queries = _load_queries(args)
    out_dir = Path(args.out).expanduser() if args.out else Path(DEFAULT_OUT_ROOT) / folder_name(video)
    check_output_folder(out_dir, output_names(video, formats), video)  # before any model loads
    config = _build_config(args)
    pipeline = ZealPipeline(config)
    bar = StageBar(video.name, 0, not args.quiet)
    try:
        result = pipeline.run(str(video), queries=queries, known_classes=args.known_classes, progress=bar)
    finally:
        bar.close()
    _warn(video.name, result.run.warnings)
    written = write_run_outputs(result, formats, out_dir, proposals=args.proposals, media_url=args.media_url)
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
    result = load_result(path)
    out_dir = Path(args.out).expanduser() if args.out else path.parent
    check_output_folder(out_dir)
    states = REVIEW_STATES if args.all else NOT_REJECTED
    for p in export_all(result, formats, out_dir, states=states, proposals=args.proposals,
                        media_url=args.media_url):
        print(f"wrote {p}")
    return EXIT_OK


def cmd_presets(args: argparse.Namespace) -> int:
    """The presets, their models and download sizes, the default on this machine, and the environment
    variables."""
    from zeal.config import ENV_SETTINGS, choose_preset, list_presets, preset_info

    for name in list_presets():
        info = preset_info(name)
        cfg = info.config
        print(f"{name:<9} ~{info.approx_size_gb:g} GB  {info.description}")
        print(f"{'':<9} CLIP {cfg.clip.model} ({cfg.clip.pretrained}), LVLM {cfg.lvlm.model}, "
              f"image budget {cfg.lvlm.image_budget}")
    choice = choose_preset()
    why = choice.reason or ("ZEAL_PRESET" if os.environ.get("ZEAL_PRESET") else "a GPU is here")
    print(f"\nDefault here: {choice.name} ({why}; --preset chooses another)")
    print("\nEnvironment (flags override them):")
    for var, what in ENV_SETTINGS.items():
        print(f"  {var:<21} {what}")
    return EXIT_OK


# --- batch ------------------------------------------------------------------------------------------
def cmd_batch(args: argparse.Namespace) -> int:
    """Many videos -> OUT/<stem>/result.json + formats, OUT/predictions.csv, OUT/summary.json; or,
    with --project DIR, into a project folder the app opens."""
    from zeal.batch import Batch, BatchItem, list_videos
    from zeal.pipeline import ZealPipeline

    if args.project:
        return cmd_batch_project(args)
    if not args.out:
        raise ConfigError("give --out OUT (a results folder) or --project DIR (a project the app opens)")
    videos = list_videos(args.source)
    formats = _check_formats(args.format)
    queries = _load_queries(args)
    config = _build_config(args)
    out = Path(args.out).expanduser()
    items = [BatchItem(v, queries, args.known_classes) for v in videos]
    batch = Batch(ZealPipeline(config), items, out, formats,
                  {"queries": queries.names, "known_classes": args.known_classes},
                  workers=args.workers, quiet=args.quiet, debug=args.debug, proposals=args.proposals,
                  media_url=args.media_url)
    counts = batch.run()
    _print_counts(items, counts, out)
    return EXIT_FAILED if counts["failed"] else EXIT_OK


def cmd_batch_project(args: argparse.Namespace) -> int:
    """Many videos into a project folder (the app's format): each is added in place and scored,
    with every interval a person reviewed in the app kept. Resumable: a video whose result was made
    with the same settings, questions and content is skipped."""
    from zeal.batch import StageBar, list_videos
    from zeal.pipeline import ZealPipeline
    from zeal.project import Project
    from zeal.queries import QuerySet
    from zeal.review import carry_over

    videos = list_videos(args.source)
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
    pipeline = ZealPipeline(_build_config(args))
    failed = done = skipped = 0
    for video in videos:
        entry = None
        try:
            entry, _ = project.add_video(video, copy=False)
            key = pipeline.run_key(entry.id, queries, st.known_classes)
            rec = project.record(entry.id)
            if rec.result is not None and rec.result.run is not None and rec.result.run.run_key == key:
                skipped += 1
                continue
            project.set_status(entry.id, "scoring", 0.0, "")
            bar = StageBar(video.name, 0, not args.quiet)
            try:
                fresh = pipeline.run(str(video), queries=queries, known_classes=st.known_classes, progress=bar,
                                     video_hash=entry.id)
            finally:
                bar.close()
            _warn(video.name, fresh.run.warnings)
            fresh = pipeline.repropose(fresh, st.proposals)
            with rec.lock:
                rec.result, _ = carry_over(rec.result, fresh, suppressed=rec.review.deleted)
                rec.review.rev += 1
                project.save_record(entry.id, result=True)
            reviewed = any(iv.reviewed for iv in rec.result.intervals)
            note = "; ".join(["scored by zeal batch", *fresh.run.warnings])
            project.set_status(entry.id, "in review" if reviewed else "scored", 1.0, note)
            done += 1
        except (ZealError, OSError) as exc:
            failed += 1
            print(f"  FAILED {video}: {exc}", file=sys.stderr)
            if entry is not None:
                project.set_status(entry.id, "failed", 0.0, str(exc))
    print(f"{len(videos)} video(s) into project {project.root}: {done} scored, {skipped} already done (skipped), "
          f"{failed} failed; open it with `python app.py --project {project.root}`")
    return EXIT_FAILED if failed else EXIT_OK


def _print_counts(items, counts: dict[str, int], out: Path) -> None:
    from zeal.batch import PREDICTIONS_FILE, SUMMARY_FILE

    print(f"{len(items)} video(s): {counts['done']} analysed, {counts['skipped']} already done (skipped),"
          f" {counts['failed']} failed")
    for item in items:
        if item.status == "failed":
            print(f"  FAILED {item.video}: {item.error}")
        elif item.status == "done":
            _warn(item.video.name, item.warnings)
    print(f"wrote {out / PREDICTIONS_FILE} and {out / SUMMARY_FILE}")


def cmd_reproduce(args: argparse.Namespace) -> int:
    """The paper's THUMOS14 table: batch with the paper preset, evaluate, print beside the paper."""
    from zeal.reproduce import reproduce_thumos14

    config = _build_config(args, default_preset="paper")
    queries = _load_queries(args, default_library="thumos14")
    report = reproduce_thumos14(config, queries, videos=Path(args.videos).expanduser(),
                                out=Path(args.out).expanduser(), known_classes=args.known_classes,
                                ground_truth=args.ground_truth, workers=args.workers, quiet=args.quiet,
                                debug=args.debug)
    _print_counts(report.items, report.counts, report.out)
    print()
    print(report.table)
    print(f"\nwrote {report.out / 'table.txt'} and {report.out / 'report.json'}")
    return EXIT_FAILED if report.counts["failed"] else EXIT_OK


def cmd_eval(argv: list[str]) -> int:
    from zeal.evaluate import eval_main

    return int(eval_main(argv) or 0)


# --- parser ---------------------------------------------------------------------------------------
def _model_flags() -> argparse.ArgumentParser:
    p = _Parser(add_help=False)
    g = p.add_argument_group("models and sampling (flags override ZEAL_* environment variables)")
    g.add_argument("--preset", help="paper, balanced, light or cpu (see `zeal presets`); default: $ZEAL_PRESET, "
                                    "else balanced with a GPU and cpu without")
    g.add_argument("--lvlm", help="LVLM: Hugging Face id, local folder, or openai:MODEL@BASE_URL")
    g.add_argument("--image-budget", metavar="full|base|PIXELS",
                   help="image tokens per frame: full (the model's own), base (one crop, no tiling: about half "
                        "the tokens of LLaVA-OneVision's full), or at most PIXELS pixels (default: the preset's)")
    g.add_argument("--clip-model", help="open_clip model name, e.g. EVA02-L-14")
    g.add_argument("--clip-pretrained", help="open_clip pretrained tag or local checkpoint file")
    g.add_argument("--clip-config", metavar="FILE.json",
                   help="register a custom open_clip architecture (model config JSON) named after the file")
    g.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: auto)")
    g.add_argument("--fps", type=ranged(FPS_RANGE, " frames per second"),
                   help="frames sampled per second (default 1; at most the video's own frame rate)")
    g.add_argument("--cache-dir", help="score cache folder (default: $ZEAL_CACHE_DIR or ~/.cache/zeal)")
    g.add_argument("--max-in-flight", type=ranged(MAX_IN_FLIGHT_RANGE), metavar="N",
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

    if args.queries:  # bad input is one error line, before anything else is said
        _existing_file(args.queries, "query file")
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
    p.add_argument("--port", type=ranged(PORT_RANGE), default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--wait", type=ranged(WAIT_RANGE, " seconds"), default=DEFAULT_WAIT_S, metavar="SECONDS",
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
    p.add_argument("--workers", type=ranged(WORKERS_RANGE), default=1,
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

    p = sub.add_parser("reproduce", parents=[models], help="reproduce the paper's THUMOS14 table (Table 1)",
                       description="Run the THUMOS14 test videos found in --videos (those with ground truth)"
                                   " with the paper preset, evaluate them with the paper's protocol (all classes;"
                                   " mean of 10 seeded draws of 50%% and of 25%% of the classes) and print the"
                                   " table beside the paper's figures. Resumable: run it again to continue.")
    p.add_argument("benchmark", choices=["thumos14"], help="the benchmark (thumos14)")
    p.add_argument("--videos", required=True, metavar="DIR", help="folder holding the THUMOS14 test videos")
    p.add_argument("--out", required=True, metavar="RUNS", help="output folder (one subfolder per setting)")
    p.add_argument("--known-classes", action="store_true",
                   help="each video's classes are known (the paper's ✛ rows): no CLIP filtering")
    p.add_argument("--ground-truth", metavar="PATH",
                   help="THUMOS14 test annotations: the official per-class folder (<Class>_test.txt), an"
                        " ActivityNet JSON or a CSV (default: searched in and next to --videos)")
    p.add_argument("--queries", metavar="FILE", help="query JSON (default: the built-in thumos14 library)")
    p.add_argument("--classes", help=argparse.SUPPRESS)
    p.add_argument("--workers", type=ranged(WORKERS_RANGE), default=1, help="videos in parallel (default 1)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_reproduce)

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
