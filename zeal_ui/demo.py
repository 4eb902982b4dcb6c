"""The annotation assistant's page: `create_demo(pipeline)` builds the layout and wires events to
`Callbacks`; no engine logic lives here. Three steps, one tab each, so that setup never pushes the
review workspace off screen: Setup (video, classes, questions, run), Review (the workspace:
player, timeline, lanes, list; zeal_ui/workspace), Export. Launch with the settings of
`page_assets()` (Gradio takes the page script and style at launch):

    demo = create_demo(pipeline)
    demo.queue().launch(**page_assets())
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr

from zeal_ui import workspace
from zeal_ui.callbacks import (EXPORT_CHOICES, EXPORT_DEFAULT, PROPOSAL_CHOICES, QUERY_HEADERS, AppLimits,
                               Callbacks, models_markdown)
from zeal_ui.session import SessionStore

ROOT = Path(__file__).resolve().parents[1]
# Example clips of a source checkout (an installed copy has none, and shows no examples).
EXAMPLES_DIR = ROOT / "assets" / "examples"
PAGE_SCRIPT = "page.js"  # package data of zeal_ui, read with importlib.resources
# Only this many model runs at once across all users: one GPU, one analysis; the rest queue.
MODEL_CONCURRENCY = 1
DEFAULT_TOP_K = 3
# Key under which the browser keeps this app's session id (localStorage); the work itself stays on
# the server, in the session's files.
BROWSER_KEY = "zeal-session"
# Before a Python handler reads the session, the page's unsent edits reach the server.
FLUSH_EDITS_JS = "async (...args) => { if (window.zealWorkspace && window.zealWorkspace.flush) " \
                 "{ await window.zealWorkspace.flush(); } return args; }"

CSS = """
#zeal-header { padding: 0 4px; }
#zeal-header h1 { margin: 0; font-size: 20px; }
#zeal-header p { margin: 0; color: var(--body-text-color-subdued); font-size: 13px; }
.zeal-hidden { display: none !important; }
#zeal-status { min-height: 1.5em; }
#zeal-video video { max-height: 300px; }
"""

HELP = """
**From a video to an export**: 1) **Setup**: upload a video or click an example clip; pick classes from
a library (or type new names, or let CLIP propose them) and tick *known* if they surely occur; read or
edit the questions; **Run analysis**. 2) **Review**: every proposal starts *unreviewed*; accept (`a`),
reject (`r`), drag edges, draw missing intervals, undo (`Ctrl+Z`). 3) **Export** the accepted intervals.

**The review workspace**: the video and the list of intervals on top, the timeline under them: the
strip of the whole video (drag the window), the start (green) and end (red) P(yes) of the class shown
and its CLIP actionness (dashed purple), then one lane per class (overlapping intervals of a class
stacked in sub-rows; black bars = ground truth). Press `?` there for every key.

**Your work is kept**: each edit is sent to the server as you make it and saved there; a page
reload brings the result, the edits and the undo history back. Re-running (after editing a question
or a class) keeps every interval you made, edited, accepted or rejected and replaces only the
unreviewed proposals. The *review set* shows one candidate per action (no two overlapping proposals
of a class); *all proposals* shows the paper's full set, as `zeal eval` uses it.

**Ground truth** (optional, drawn under the lanes): an ActivityNet JSON
(`{"database": {video: {"annotations": [{"segment": [start, end], "label": ...}]}}}`) or a CSV with
the header `video-id,t-start,t-end,label` (seconds); rows are matched to the video by file name.
"""


def page_assets() -> dict:
    """The launch() settings the page needs: its script and style."""
    from importlib.resources import files

    return {"js": files("zeal_ui").joinpath(PAGE_SCRIPT).read_text(encoding="utf-8"),
            "css": CSS + workspace.stylesheet()}


def example_videos() -> list[list[str]]:
    return [[str(p)] for p in sorted(EXAMPLES_DIR.glob("*.mp4"))]


def create_demo(pipeline, work_dir: str | Path | None = None, limits: AppLimits = AppLimits()) -> gr.Blocks:
    """The app's page for a (shared) ZealPipeline. work_dir holds the sessions' files and exports."""
    from zeal.export import FORMATS
    from zeal.queries import list_libraries

    store = SessionStore(Path(work_dir or tempfile.mkdtemp(prefix="zeal-app-")) / "sessions")
    cb = Callbacks(pipeline, store, limits)
    libraries = list_libraries()
    default_library = "thumos14" if "thumos14" in libraries else libraries[0]

    with gr.Blocks(title="ZEAL annotation assistant", fill_width=True) as demo:
        sid = gr.State(None)
        browser_sid = gr.BrowserState(None, storage_key=BROWSER_KEY)
        gr.Markdown("# ZEAL annotation assistant\nZero-shot pre-labels for action intervals: set up, run, "
                    "review, export.", elem_id="zeal-header")
        with gr.Tabs(selected="setup", elem_id="zeal-tabs") as tabs:
            with gr.Tab("1 · Setup", id="setup", elem_id="zeal-tab-setup"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=5):
                        video = gr.Video(label="Video", sources=["upload"], elem_id="zeal-video", height=300)
                        info = gr.Markdown(elem_id="zeal-info")
                        if example_videos():
                            gr.Examples(example_videos(), inputs=[video], label="Example clips (click one)")
                        gt_file = gr.UploadButton("Load ground truth… (JSON or CSV)", file_types=[".json", ".csv"],
                                                  elem_id="zeal-gt", size="sm")
                    with gr.Column(scale=6):
                        with gr.Row():
                            library = gr.Dropdown(libraries, value=default_library, label="Class library", scale=1)
                            classes = gr.Dropdown(cb.library_choices(default_library), value=[], multiselect=True,
                                                  allow_custom_value=True, label="Classes (pick, or type a new name)",
                                                  elem_id="zeal-classes", scale=3)
                        with gr.Row():
                            top_k = gr.Number(DEFAULT_TOP_K, label="top-k", precision=0, minimum=1, scale=1)
                            propose_btn = gr.Button("Propose classes with CLIP", scale=2, elem_id="zeal-propose",
                                                    elem_classes="zeal-mouse-only")
                            known = gr.Checkbox(label="These classes are in the video (skip CLIP filtering)",
                                                value=True, scale=3, elem_id="zeal-known")
                        ranking = gr.Markdown()
                        qtable = gr.Dataframe(headers=QUERY_HEADERS, datatype="str", type="array", interactive=True,
                                              label="Questions (editable; the LVLM answers each per frame)",
                                              wrap=True, column_count=4, elem_id="zeal-queries", max_height=260,
                                              column_widths=["16%", "30%", "30%", "24%"])
                        with gr.Accordion("Load / save questions, or write them with an LLM", open=False):
                            with gr.Row():
                                with gr.Column():
                                    qfile = gr.UploadButton("Load a query JSON…", file_types=[".json"])
                                    qsave = gr.Button("Save questions as JSON")
                                qdownload = gr.File(label="questions.json", interactive=False, height=100)
                            with gr.Row():
                                base_url = gr.Textbox(label="LLM base URL", value=pipeline.config.llm.base_url,
                                                      placeholder="https://api.openai.com/v1 or http://localhost:8000/v1")
                                llm_model = gr.Textbox(label="LLM model", value=pipeline.config.llm.model,
                                                       placeholder="gpt-4o")
                                api_key = gr.Textbox(label="API key (used once, never stored)", type="password",
                                                     placeholder=f"empty: ${pipeline.config.llm.api_key_env}")
                            llm_btn = gr.Button("Generate questions with LLM", elem_classes="zeal-mouse-only")
                        with gr.Row():
                            run_btn = gr.Button("Run analysis", variant="primary", elem_id="zeal-run", scale=3,
                                                elem_classes="zeal-mouse-only")
                            cancel_btn = gr.Button("Cancel", variant="stop", elem_id="zeal-cancel", scale=1,
                                                   elem_classes="zeal-mouse-only")
                        status = gr.Markdown("No result yet.", elem_id="zeal-status")
            with gr.Tab("2 · Review", id="review", elem_id="zeal-tab-review"):
                ws = workspace.create_workspace(store, pipeline)
            with gr.Tab("3 · Export", id="export", elem_id="zeal-tab-export"):
                with gr.Row():
                    formats = gr.CheckboxGroup(list(FORMATS), value=list(EXPORT_DEFAULT), label="Formats",
                                               elem_id="zeal-formats", scale=3)
                    include = gr.Radio(list(EXPORT_CHOICES), value="accepted only", label="Intervals",
                                       elem_id="zeal-include", scale=2)
                    proposals = gr.Radio(list(PROPOSAL_CHOICES), value=next(iter(PROPOSAL_CHOICES)),
                                         label="Model proposals", elem_id="zeal-proposals", scale=2)
                export_btn = gr.Button("Export", variant="primary", elem_id="zeal-export",
                                       elem_classes="zeal-mouse-only")
                files = gr.File(label="Downloads", file_count="multiple", interactive=False, elem_id="zeal-files",
                                height=140)
            with gr.Tab("Settings and help", id="help", elem_id="zeal-tab-help"):
                gr.Markdown(HELP)
                models_md = gr.Markdown(models_markdown(pipeline))
                refresh = gr.Button("Check the models again", size="sm")

        # --- events ------------------------------------------------------------------------------
        demo.load(cb.restore, [browser_sid], [sid, browser_sid, video, info, classes, qtable, status, ws, tabs],
                  api_visibility="private")
        video.change(cb.open_video, [video, sid], [sid, info, status, ws], api_name="open_video")
        library.change(cb.choose_library, [library, classes], [classes], api_visibility="private")
        classes.change(cb.sync_table, [classes, qtable], [qtable], api_name="set_classes")
        propose_btn.click(cb.propose_classes, [video, library, top_k, sid], [classes, ranking],
                          concurrency_id="models", concurrency_limit=MODEL_CONCURRENCY, api_name="propose_classes")
        qfile.upload(cb.load_queries, [qfile, classes], [classes, qtable], api_visibility="private")
        qsave.click(cb.save_queries, [qtable, sid], [qdownload], api_visibility="private")
        # The key leaves the page once submitted, whether the call worked or not.
        llm_btn.click(cb.generate_with_llm, [qtable, base_url, llm_model, api_key], [qtable],
                      api_visibility="private").then(lambda: "", None, [api_key], api_visibility="private")

        def run(video_path, table, known_classes, session_id, progress=gr.Progress()):
            return cb.run(video_path, table, known_classes, session_id, progress=progress)

        run_btn.click(run, [video, qtable, known, sid], [sid, status, ws, tabs], concurrency_id="models",
                      concurrency_limit=MODEL_CONCURRENCY, api_name="run", js=FLUSH_EDITS_JS, show_progress_on=[status])
        cancel_btn.click(cb.cancel, [sid], None, concurrency_limit=None, concurrency_id="cancel", api_name="cancel")
        gt_file.upload(cb.load_ground_truth, [gt_file, sid], [sid, status, ws], api_visibility="private")
        export_btn.click(cb.export, [formats, include, proposals, sid], [files], api_name="export", js=FLUSH_EDITS_JS)
        refresh.click(lambda: models_markdown(pipeline), None, [models_md], api_visibility="private")
    return demo
