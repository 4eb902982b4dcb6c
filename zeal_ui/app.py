"""The ZEAL annotation assistant: `python app.py` (or `make app`, or `zeal-app` in an installed copy)
serves it on http://127.0.0.1:7860.

Models load on first use, not at start-up. `python app.py --help` lists the flags and the
environment variables that point the app at local weights.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"  # local only: another machine reaches the app only with --host
DEFAULT_PORT = 7860
DEFAULT_MAX_UPLOAD_MB = 2000.0
DEFAULT_MAX_DURATION_MIN = 240.0
DEFAULT_CONCURRENCY = 4  # light UI handlers per event at once; model runs are limited to one in demo.py


# The app's own limits: any positive size or length up to these (minutes, MB).
UPLOAD_MB_RANGE = (0.0, 1e6)
DURATION_MIN_RANGE = (0.0, 1e5)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from zeal.cli import PORT_RANGE, ranged
    from zeal.config import ENV_SETTINGS, FPS_RANGE, Range, list_presets

    env_lines = "\n".join(f"  {name:22s} {text}" for name, text in ENV_SETTINGS.items())
    parser = argparse.ArgumentParser(
        prog="app.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="ZEAL annotation assistant: zero-shot action intervals you can correct and export.",
        epilog=f"environment variables (flags take precedence):\n{env_lines}\n"
               "  GRADIO_TEMP_DIR        where uploads are kept (default: a folder under --work-dir)\n\n"
               "example with local weights:\n"
               "  python app.py --lvlm /models/llava-onevision-qwen2-7b-ov-hf \\\n"
               "                --clip-model EVA02-L-14 --clip-pretrained /models/eva02_l14.bin")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=ranged(PORT_RANGE), default=None,
                        help=f"port (default {DEFAULT_PORT}, or the next free one)")
    parser.add_argument("--share", action="store_true", help="also open a public Gradio share link (off)")
    parser.add_argument("--preset", choices=list_presets(), default=None,
                        help="model preset (default: $ZEAL_PRESET, else balanced with a GPU and cpu without)")
    parser.add_argument("--lvlm", default=None, help="LVLM: Hugging Face id, local folder, or openai:MODEL@URL")
    parser.add_argument("--image-budget", default=None, metavar="full|base|PIXELS",
                        help="image tokens per frame: full (the model's own), base (one crop, no tiling) or at "
                             "most PIXELS pixels (default: the preset's)")
    parser.add_argument("--clip-model", default=None, help="open_clip model name, e.g. EVA02-L-14")
    parser.add_argument("--clip-pretrained", default=None, help="open_clip pretrained tag or local checkpoint")
    parser.add_argument("--clip-config", default=None, metavar="FILE.json",
                        help="register a custom open_clip architecture (model config JSON) before loading; "
                             "--clip-model then names it (the file's stem)")
    parser.add_argument("--fps", type=ranged(FPS_RANGE, " frames per second"), default=None,
                        help="frames sampled per second (default 1; at most a video's own frame rate)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: auto)")
    parser.add_argument("--cache-dir", default=None, help="score cache folder (default: $ZEAL_CACHE_DIR "
                                                          "or ~/.cache/zeal)")
    parser.add_argument("--project", default=None, metavar="DIR",
                        help="the project folder: its videos, classes, questions, results and every edit "
                             "(default: <work dir>/project; `zeal batch SOURCE --project DIR` writes the same)")
    parser.add_argument("--work-dir", default=None,
                        help="the app's own folder for uploads in transit and the default project "
                             "(default: <system temp>/zeal-app)")
    parser.add_argument("--max-upload-mb", type=ranged(Range(*UPLOAD_MB_RANGE, open_lo=True), " MB"),
                        default=DEFAULT_MAX_UPLOAD_MB,
                        help=f"largest accepted upload in MB (default {DEFAULT_MAX_UPLOAD_MB:g})")
    parser.add_argument("--max-duration-min", type=ranged(Range(*DURATION_MIN_RANGE, open_lo=True), " minutes"),
                        default=DEFAULT_MAX_DURATION_MIN,
                        help=f"longest video analysed, minutes (default {DEFAULT_MAX_DURATION_MIN:g})")
    parser.add_argument("--no-browser", action="store_true",
                        help="do not open a browser tab (one opens only when a display exists)")
    return parser.parse_args(argv)


def register_clip_config(path: str) -> str:
    """Make a custom open_clip architecture known; returns its name (the file's stem)."""
    from zeal.scorers.clip import register_model_config

    return register_model_config(path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from zeal.config import build_config, choose_preset
    from zeal.errors import ZealError

    work_dir = Path(args.work_dir or Path(tempfile.gettempdir()) / "zeal-app").expanduser()
    # Uploads land in the app's own folder (Gradio reads this variable when it stores a file).
    os.environ.setdefault("GRADIO_TEMP_DIR", str(work_dir / "uploads"))
    try:
        if args.clip_config:
            name = register_clip_config(args.clip_config)
            args.clip_model = args.clip_model or name
        choice = choose_preset(args.preset, device=args.device)
        config = build_config(choice.name, lvlm=args.lvlm, clip_model=args.clip_model,
                              clip_pretrained=args.clip_pretrained, fps=args.fps, cache_dir=args.cache_dir,
                              device=args.device, image_budget=args.image_budget)
        if choice.reason:
            print(choice.notice(config), flush=True)
    except ZealError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    from zeal.pipeline import ZealPipeline
    from zeal.project import Project
    from zeal_ui.app_state import AppLimits, add_media_route
    from zeal_ui.demo import create_demo, page_assets
    from zeal_ui.heap import freeze_heap

    try:
        project = Project.open(Path(args.project).expanduser() if args.project else work_dir / "project")
    except ZealError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    pipeline = ZealPipeline.from_config(config)
    limits = AppLimits(max_upload_mb=args.max_upload_mb, max_duration_min=args.max_duration_min)
    state, demo = create_demo(pipeline, project, limits=limits)
    demo.queue(default_concurrency_limit=DEFAULT_CONCURRENCY)
    # The project folder is never served: videos go through /zeal/media/<token>, downloads through
    # Gradio's cache (copies under a content hash).
    demo.launch(server_name=args.host, server_port=args.port, share=args.share,
                inbrowser=bool(os.environ.get("DISPLAY")) and not args.no_browser,
                max_file_size=f"{args.max_upload_mb:g}mb", blocked_paths=[str(project.root)],
                footer_links=["api", "settings"], prevent_thread_lock=True, **page_assets())
    add_media_route(demo.app, state)
    freeze_heap()
    print(f"project: {project.root}", flush=True)
    try:
        demo.block_thread()
    finally:
        state.queue.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
