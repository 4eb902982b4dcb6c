"""The annotation assistant's page: `create_demo(pipeline, project=...)` builds the layout and wires
events to `Callbacks`; no engine logic lives here. Three steps, one tab each, so that setup never
pushes the review workspace off screen: Project (videos, classes, questions, scoring), Review (the
workspace: player, timeline, lanes, list; zeal_ui/workspace), Export. Launch with the settings of
`page_assets()` and serve the media route (see app.py):

    state, demo = create_demo(pipeline, project_dir)
    demo.queue().launch(**page_assets(), prevent_thread_lock=True)
    add_media_route(demo.app, state)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr

from zeal.project import Project
from zeal_ui import workspace
from zeal_ui.app_state import AppLimits, AppState
from zeal_ui.callbacks import (DEFAULT_LIBRARY, EXPORT_CHOICES, EXPORT_DEFAULT, PROPOSAL_CHOICES,
                               QUERY_HEADERS, SCOPE_PROJECT, SCOPE_VIDEO, Callbacks, models_markdown)
from zeal_ui.scoring import ScoringQueue
from zeal_ui.videos import create_videos_panel

ROOT = Path(__file__).resolve().parents[1]
# Example clips of a source checkout (an installed copy has none, and shows no examples).
EXAMPLES_DIR = ROOT / "assets" / "examples"
PAGE_SCRIPT = "page.js"  # package data of zeal_ui, read with importlib.resources
DEFAULT_TOP_K = 3
# Before a Python handler reads the project, the page's unsent edits reach the server.
FLUSH_EDITS_JS = "async (...args) => { if (window.zealWorkspace && window.zealWorkspace.flush) " \
                 "{ await window.zealWorkspace.flush(); } return args; }"

CSS = """
#zeal-header { padding: 0 4px; }
#zeal-header h1 { margin: 0; font-size: 20px; }
#zeal-header p { margin: 0; color: var(--body-text-color-subdued); font-size: 13px; }
.zeal-hidden { display: none !important; }
#zeal-status { min-height: 1.5em; }
"""

HELP = """
**From videos to an export**: 1) **Project**: upload videos (several at once) or add a folder of the
server; pick classes from a library (or type new names, or let CLIP propose some) and read or edit the
questions; videos are scored in the background, one after another. 2) **Review**: open a video (click
its name, or `Shift+N` for the next one to review); every proposal starts *unreviewed*; accept (`a`),
reject (`r`), drag edges, draw missing intervals, undo (`Ctrl+Z`); mark the video done. 3) **Export**
the open video or the whole project.

**The review workspace**: the video and the list of intervals on top, the timeline under them: the
strip of the whole video (drag the window), the start (green) and end (red) P(yes) of the class shown
and its CLIP actionness (dashed purple), then one lane per class (overlapping intervals of a class
stacked in sub-rows; black bars = ground truth). Press `?` there for every key.

**Your work is kept**: each edit is sent to the server as you make it and saved in the project; a page
reload brings everything back, also the undo history. Scoring a video again (after editing a question
or a class) keeps every interval you made, edited, accepted or rejected and replaces only the
unreviewed proposals. The *review set* shows one candidate per action (no two overlapping proposals
of a class); *all proposals* shows the paper's full set, as `zeal eval` uses it.

**Ground truth** (optional, drawn under the lanes): an ActivityNet JSON
(`{"database": {video: {"annotations": [{"segment": [start, end], "label": ...}]}}}`) or a CSV with
the header `video-id,t-start,t-end,label` (seconds); rows are matched to the videos by file name.
"""


def page_assets() -> dict:
    """The launch() settings the page needs: its script and style."""
    from importlib.resources import files

    return {"js": files("zeal_ui").joinpath(PAGE_SCRIPT).read_text(encoding="utf-8"),
            "css": CSS + workspace.stylesheet()}


def example_videos() -> list[str]:
    return [str(p) for p in sorted(EXAMPLES_DIR.glob("*.mp4"))]


def create_demo(pipeline, project: str | Path | Project | None = None, limits: AppLimits = AppLimits(),
                start_queue: bool = True) -> tuple[AppState, gr.Blocks]:
    """The app's page for a (shared) ZealPipeline on one project folder (a new one in a temporary
    folder when none is given). Returns the app's state (for the media route) and the Blocks."""
    from zeal.export import FORMATS
    from zeal.queries import list_libraries

    if not isinstance(project, Project):
        project = Project.open(project or Path(tempfile.mkdtemp(prefix="zeal-project-")))
    state = AppState(project=project, pipeline=pipeline, limits=limits)
    state.queue = ScoringQueue(project, pipeline)
    if start_queue:
        state.queue.start()
    cb = Callbacks(state)
    libraries = list_libraries()
    default_library = DEFAULT_LIBRARY if DEFAULT_LIBRARY in libraries else libraries[0]

    with gr.Blocks(title="ZEAL annotation assistant", fill_width=True) as demo:
        gr.Markdown("# ZEAL annotation assistant\nZero-shot pre-labels for action intervals: add videos, choose "
                    "classes, review, export.", elem_id="zeal-header")
        # The video open in the workspace (workspace.js writes it), for the handlers that need it.
        current = gr.Textbox(visible="hidden", elem_id="zeal-current", elem_classes="zeal-hidden")
        with gr.Tabs(selected="setup", elem_id="zeal-tabs"):
            with gr.Tab("1 · Project", id="setup", elem_id="zeal-tab-setup"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=6):
                        panel = create_videos_panel(state)
                        uploads = gr.File(label="Add videos (upload several at once; they are copied into the project)",
                                          file_count="multiple", file_types=["video"], elem_id="zeal-uploads", height=110)
                        with gr.Row():
                            folder = gr.Textbox(label="…or a folder on the server (read in place)", scale=4,
                                                placeholder="/data/matches/2026-11", elem_id="zeal-folder")
                            folder_btn = gr.Button("Add folder", scale=1, elem_id="zeal-add-folder")
                        if example_videos():
                            examples_btn = gr.Button("Add the two example clips", size="sm", elem_id="zeal-examples")
                        gt_file = gr.UploadButton("Load ground truth… (JSON or CSV)", file_types=[".json", ".csv"],
                                                  elem_id="zeal-gt", size="sm")
                        # HTML of escaped text (Callbacks.status): a class or file name never becomes markup
                        status = gr.HTML(cb.status(), elem_id="zeal-status")
                    with gr.Column(scale=5):
                        with gr.Row():
                            library = gr.Dropdown(libraries, value=default_library, label="Class library", scale=1)
                            classes = gr.Dropdown(cb.library_choices(default_library), value=[], multiselect=True,
                                                  allow_custom_value=True, label="Classes (pick, or type a new name)",
                                                  elem_id="zeal-classes", scale=3)
                        with gr.Row():
                            known = gr.Checkbox(label="These classes are in every video (skip CLIP filtering)",
                                                value=True, scale=3, elem_id="zeal-known")
                            top_k = gr.Number(DEFAULT_TOP_K, label="else keep CLIP's top-k", precision=0, minimum=1,
                                              scale=1, elem_id="zeal-top-k")
                        with gr.Accordion("Propose classes with CLIP", open=False):
                            propose_btn = gr.Button("Rank the library's classes for the open video", size="sm",
                                                    elem_id="zeal-propose", elem_classes="zeal-mouse-only")
                            ranking_text = gr.HTML()
                            ranking = gr.CheckboxGroup([], label="CLIP's ranking (score)", visible=False,
                                                       elem_id="zeal-ranking")
                            add_ranked = gr.Button("Add ticked classes", size="sm", elem_id="zeal-add-ranked")
                        qtable = gr.Dataframe(headers=QUERY_HEADERS, datatype="str", type="array", interactive=True,
                                              label="Questions (editable; saved in the project as you type)",
                                              wrap=True, column_count=4, elem_id="zeal-queries", max_height=260,
                                              column_widths=["16%", "30%", "30%", "24%"])
                        with gr.Accordion("Load / save questions, or write them with an LLM", open=False):
                            with gr.Row():
                                with gr.Column():
                                    qfile = gr.UploadButton("Load a query JSON…", file_types=[".json"], elem_id="zeal-load-queries")
                                    qsave = gr.Button("Save questions as JSON")
                                qdownload = gr.File(label="questions.json", interactive=False, height=100)
                            with gr.Row():
                                base_url = gr.Textbox(label="LLM base URL", value=pipeline.config.llm.base_url,
                                                      placeholder="https://api.openai.com/v1 or http://localhost:8000/v1",
                                                      elem_id="zeal-llm-url")
                                llm_model = gr.Textbox(label="LLM model", value=pipeline.config.llm.model,
                                                       placeholder="gpt-4o", elem_id="zeal-llm-model")
                                api_key = gr.Textbox(label="API key (used once, never stored)", type="password",
                                                     placeholder=f"empty: ${pipeline.config.llm.api_key_env}",
                                                     elem_id="zeal-llm-key")
                            llm_btn = gr.Button("Generate questions with LLM", elem_classes="zeal-mouse-only",
                                                elem_id="zeal-llm")
                        with gr.Row():
                            run_btn = gr.Button("Score the open video again", variant="primary", elem_id="zeal-run",
                                                scale=3, elem_classes="zeal-mouse-only")
                            all_btn = gr.Button("Score all not scored", scale=2, elem_id="zeal-score-all",
                                                elem_classes="zeal-mouse-only")
                            cancel_btn = gr.Button("Stop scoring", variant="stop", elem_id="zeal-cancel", scale=1,
                                                   elem_classes="zeal-mouse-only")
            with gr.Tab("2 · Review", id="review", elem_id="zeal-tab-review"):
                ws = workspace.create_workspace(state)
            with gr.Tab("3 · Export", id="export", elem_id="zeal-tab-export"):
                with gr.Row():
                    scope = gr.Radio([SCOPE_VIDEO, SCOPE_PROJECT], value=SCOPE_VIDEO, label="Export",
                                     elem_id="zeal-scope", scale=2)
                    include = gr.Radio(list(EXPORT_CHOICES), value="accepted only", label="Intervals",
                                       elem_id="zeal-include", scale=2)
                    proposals = gr.Radio(list(PROPOSAL_CHOICES), value=next(iter(PROPOSAL_CHOICES)),
                                         label="Model proposals", elem_id="zeal-proposals", scale=2)
                with gr.Row():
                    formats = gr.CheckboxGroup(list(FORMATS), value=list(EXPORT_DEFAULT), label="Formats",
                                               elem_id="zeal-formats", scale=3)
                    media_url = gr.Textbox(label="Media URL prefix (Label Studio, VIA): where the tool fetches the "
                                                 "videos, e.g. /data/local-files/?d=clips/", elem_id="zeal-media-url",
                                           scale=2)
                export_btn = gr.Button("Export", variant="primary", elem_id="zeal-export",
                                       elem_classes="zeal-mouse-only")
                files = gr.File(label="Downloads", file_count="multiple", interactive=False, elem_id="zeal-files",
                                height=320)
            with gr.Tab("Settings and help", id="help", elem_id="zeal-tab-help"):
                gr.Markdown(HELP)
                gr.Markdown(f"Project folder: `{project.root}`")
                models_md = gr.Markdown(models_markdown(pipeline))
                refresh = gr.Button("Check the models again", size="sm")

        # --- events ------------------------------------------------------------------------------
        # After the queue changes, the workspace looks at the list again (and follows its video's
        # scoring until the new result is there).
        def refresh_workspace(event):
            return event.then(lambda vid: workspace.signal(vid or None), [current], [ws], show_progress="hidden",
                              api_visibility="private")

        export_choices = [scope, include, proposals, formats, media_url]
        demo.load(cb.restore, None, [classes, qtable, known, top_k, status, panel, *export_choices],
                  api_visibility="private")
        for choice in export_choices:
            choice.input(cb.set_export_choices, export_choices, None, api_visibility="private",
                         show_progress="hidden")
        refresh_workspace(uploads.upload(cb.add_uploads, [uploads], [status, panel], api_name="add_videos").then(
            lambda: None, None, [uploads], api_visibility="private"))
        refresh_workspace(folder_btn.click(cb.add_folder, [folder], [status, panel], api_name="add_folder"))
        if example_videos():
            refresh_workspace(examples_btn.click(lambda: cb.add_uploads(example_videos()), None, [status, panel],
                                                 api_visibility="private"))
        library.change(cb.choose_library, [library, classes], [classes], api_visibility="private")
        classes.change(cb.set_classes, [classes, qtable], [qtable], api_name="set_classes")
        qtable.change(cb.set_questions, [qtable], None, api_name="set_questions")
        known.input(cb.set_options, [known, top_k], None, api_visibility="private")
        top_k.input(cb.set_options, [known, top_k], None, api_visibility="private")
        propose_btn.click(cb.propose_classes, [current, library, top_k, classes], [ranking, ranking_text],
                          concurrency_id="models", concurrency_limit=1, api_name="propose_classes")
        add_ranked.click(cb.add_ticked, [ranking, classes, qtable], [classes, qtable], api_visibility="private")
        qfile.upload(cb.load_queries, [qfile, classes], [classes, qtable], api_visibility="private")
        qsave.click(cb.save_queries, [qtable], [qdownload], api_visibility="private")
        # The key leaves the page once submitted, whether the call worked or not.
        # (Gradio's page does not run a .then() after a handler that raised: .failure() covers that case)
        llm_call = llm_btn.click(cb.generate_with_llm, [qtable, base_url, llm_model, api_key], [qtable],
                                 api_visibility="private")
        llm_call.success(lambda: "", None, [api_key], api_visibility="private")
        llm_call.failure(lambda: "", None, [api_key], api_visibility="private")
        refresh_workspace(run_btn.click(cb.score, [current, qtable], [status, panel], api_name="score",
                                        js=FLUSH_EDITS_JS))
        refresh_workspace(all_btn.click(cb.score_all, [qtable], [status, panel], api_name="score_all"))
        cancel_btn.click(cb.cancel, None, None, concurrency_limit=None, api_name="cancel")
        gt_file.upload(cb.load_ground_truth, [gt_file], [status], api_visibility="private")
        export_btn.click(cb.export, [scope, current, formats, include, proposals, media_url], [files], api_name="export",
                         js=FLUSH_EDITS_JS)
        refresh.click(lambda: models_markdown(pipeline), None, [models_md], api_visibility="private")
    return state, demo
