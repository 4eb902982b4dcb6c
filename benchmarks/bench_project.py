"""Projects at size: a project of 200 videos with their results opens in the app, and switching
videos shows the workspace, for a 1-hour video (issue 12's targets: at most 1 s each).

The project is built once into benchmarks/out/project_200: one real 1-hour clip scored by the real
pipeline (tiny random-weight models, 1 fps, 5 classes), then 199 more small real clips, each given
a copy of that 1-hour record (results of that size, so the project is as heavy as 200 analysed
hours). Measured in a real headless Chromium against the real app (`app.py --project`):
- open: from navigating to the page to the list of 200 videos drawn (medians of several loads), and
  the server's share of it (Project.open + the list);
- switch: from picking another video in the workspace to its 1-hour result painted.

    python -m benchmarks.bench_project [--repeats 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time

from benchmarks import common
from benchmarks.common import OUT_DIR, make_long_clip, machine_line, markdown_table
from tests.app_server import start_app
from tests.browser_support import launch_browser, skip_reason, ws
from tests.media_factory import write_clip

VIDEOS = 200
CLASSES = ["BasketballDunk", "Diving", "LongJump", "PoleVault", "HighJump"]
TARGET_S = 1.0


def build_project():
    """The 200-video project (made once; its first video scored by the real pipeline)."""
    from zeal.pipeline import ZealPipeline
    from zeal.project import RESULT_FILE, REVIEW_FILE, Project
    from zeal.queries import lookup
    from zeal_ui.scoring import ScoringQueue
    from tests.tiny_models import tiny_config

    root = OUT_DIR / "project_200"
    if (root / "project.json").exists() and len(Project.open(root).videos) == VIDEOS:
        return root
    shutil.rmtree(root, ignore_errors=True)
    project = Project.open(root)
    qs = lookup(CLASSES)
    project.settings.classes = qs.names
    project.settings.queries = {q.name: q.to_dict() for q in qs}
    project.save()
    hour, _ = project.add_video(make_long_clip(3600), copy=False)
    project.set_status(hour.id, "queued")
    pipeline = ZealPipeline.from_config(tiny_config(common.tiny(), OUT_DIR / "project_cache", video={"fps": 1.0}))
    print("scoring the 1-hour clip (once) ...", file=sys.stderr, flush=True)
    ScoringQueue(project, pipeline).score(hour.id)
    assert project.videos[hour.id].status == "scored", project.videos[hour.id].message
    clips = OUT_DIR / "project_clips"
    clips.mkdir(parents=True, exist_ok=True)
    for k in range(VIDEOS - 1):
        clip = write_clip(clips / f"match_{k:03d}.mp4", 2 + k, size=(32, 24), rate=2)  # distinct content each
        entry, _ = project.add_video(clip, copy=False)
        for name in (RESULT_FILE, REVIEW_FILE):
            shutil.copyfile(project.folder(hour.id) / name, project.folder(entry.id) / name)
        project.set_status(entry.id, "scored")
        entry.counts = dict(project.videos[hour.id].counts)
        project.save_entry(entry)
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    reason = skip_reason()
    if reason:
        raise SystemExit(f"bench_project needs a browser: {reason}")
    from zeal.project import Project
    from zeal_ui.app_state import AppState
    from zeal_ui.videos import video_list

    root = build_project()
    server = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        project = Project.open(root)
        video_list(AppState(project=project, pipeline=None))
        server.append(time.perf_counter() - t0)
    tmp = OUT_DIR / "project_app"
    tmp.mkdir(parents=True, exist_ok=True)
    app = start_app(tmp, common.tiny().app_flags(), fps=1.0, extra=["--project", str(root)])
    from playwright.sync_api import sync_playwright

    opens, switches = [], []
    try:
        with sync_playwright() as p:
            browser = launch_browser(p)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                page.goto(app.url)
                page.wait_for_function("(n) => document.querySelectorAll('#zeal-videos .zv-row').length >= n",
                                       arg=VIDEOS, timeout=60_000)
                opens.append(time.perf_counter() - t0)
            ids = [e.id for e in Project.open(root).entries()]
            page.locator("#zeal-videos .zv-name").first.click()
            page.wait_for_function("() => window.zealWorkspace && window.zealWorkspace.ready()", timeout=60_000)
            for k in range(args.repeats):
                target = ids[1 + k]
                t0 = time.perf_counter()
                page.evaluate("(id) => window.zealWorkspace.open(id)", target)
                page.wait_for_function("(id) => window.zealWorkspace.video() === id && window.zealWorkspace.ready()",
                                       arg=target, timeout=60_000)
                page.evaluate("() => new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)))")  # painted
                switches.append(time.perf_counter() - t0)
            frames = ws(page, "view()")["times"]
            browser.close()
    finally:
        app.stop()
    rows = [["open the project (page to 200 rows drawn)", f"{statistics.median(opens):.2f} s", f"<= {TARGET_S:g} s",
             "met" if statistics.median(opens) <= TARGET_S else "MISSED"],
            ["  of it on the server (Project.open + the list)", f"{statistics.median(server):.3f} s", "", ""],
            [f"switch to another video ({frames} frames, 1 h at 1 fps)", f"{statistics.median(switches):.2f} s",
             f"<= {TARGET_S:g} s", "met" if statistics.median(switches) <= TARGET_S else "MISSED"]]
    print(f"machine: {machine_line()}")
    print(f"project: {VIDEOS} videos with results ({root}); runs {args.repeats}; opens "
          f"{['%.2f' % x for x in opens]} s; switches {['%.2f' % x for x in switches]} s")
    print(markdown_table(["figure", "median", "target", ""], rows))
    print(f"project open_s={statistics.median(opens):.2f} switch_s={statistics.median(switches):.2f} "
          f"server_open_s={statistics.median(server):.3f} videos={VIDEOS} frames={frames}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
