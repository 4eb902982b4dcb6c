"""The annotation assistant's page: `create_demo(pipeline)` builds the layout and wires events to
`Callbacks`; no engine logic lives here. Launch it with the settings of `page_assets()` (Gradio
takes the page script and style at launch):

    demo = create_demo(pipeline)
    demo.queue().launch(**page_assets())
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr

from zeal_ui.callbacks import (EXPORT_DEFAULT, QUERY_HEADERS, VIEW_OUTPUTS, AppLimits, Callbacks,
                               models_markdown)
from zeal_ui.session import TABLE_HEADERS, Session, SessionStore

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES_DIR = ROOT / "assets" / "examples"
SCRIPT = Path(__file__).with_name("zeal.js")
# Only this many model runs at once across all users: one GPU, one analysis; the rest queue.
MODEL_CONCURRENCY = 1
DEFAULT_TOP_K = 3
# Key under which the browser keeps this app's session id (localStorage); the result itself stays
# on the server, in the session's file.
BROWSER_KEY = "zeal-session"

CSS = """
#zeal-header h1 { margin-bottom: 0; }
#zeal-header p { margin-top: 2px; color: var(--body-text-color-subdued); }
.zeal-hidden { display: none !important; }
#zeal-status { min-height: 1.5em; }
#zeal-video video { max-height: 360px; }
"""

HELP = """
**From a video to a CSV**: 1) upload a video or click an example clip; 2) pick classes from a library
(or type new names, or let CLIP propose them) and tick *known* if they surely occur; 3) read or edit
the questions; 4) **Run**; 5) review the curves and intervals, tune the sliders, accept or reject;
6) **Export**.

**The chart**: green = P(yes) of the start question, red = P(yes) of the end question, dotted purple
= CLIP actionness (right axis). Shaded bands are the proposed intervals (darker = higher score;
orange = made by hand, grey = rejected), black strip = ground truth. Click any point to seek the
video there and see that frame; click a band's marker (▼) to select the interval.

**Keyboard** (when the cursor is not in a text field; click the page background first):

| key | action |
|---|---|
| Space | play / pause the video |
| n / p | next / previous interval (seeks to its start) |
| a / r | accept / reject the selected interval |
| [ / ] | move the selected start one sampled frame earlier / later |
| { / } | move the selected end one sampled frame earlier / later |
| i | insert an interval of the shown class at the play head |

**Editing the table**: tick/untick *accept*, change start, end or class in place (the interval
becomes *human*), add a row with an empty *#* for a new interval, delete a row to drop it. Moving a
slider re-proposes the model intervals from the cached curves (no model runs); intervals made by
hand stay, rejected proposals stay rejected.

**Ground truth** (optional, drawn as a black strip and thin black bars): an ActivityNet JSON
(`{"database": {video: {"annotations": [{"segment": [start, end], "label": ...}]}}}`) or a CSV with
the header `video-id,t-start,t-end,label` (seconds); rows are matched to the video by file name.

**Your work is kept**: every edit is saved on the server for this browser; reloading the page brings
the last result back. Exports contain accepted intervals only, exactly as shown.
"""


def new_session() -> Session:
    """Each browser session's own state object (gr.State calls this once per session)."""
    return Session()


def page_assets() -> dict:
    """The launch() settings the page needs: its script and style."""
    return {"js": SCRIPT.read_text(encoding="utf-8"), "css": CSS}


def example_videos() -> list[list[str]]:
    return [[str(p)] for p in sorted(EXAMPLES_DIR.glob("*.mp4"))]


def create_demo(pipeline, work_dir: str | Path | None = None, limits: AppLimits = AppLimits()) -> gr.Blocks:
    """The app's page for a (shared) ZealPipeline. work_dir holds the sessions' files and exports."""
    from zeal.queries import list_libraries

    store = SessionStore(Path(work_dir or tempfile.mkdtemp(prefix="zeal-app-")) / "sessions")
    cb = Callbacks(pipeline, store, limits)
    libraries = list_libraries()
    default_library = "thumos14" if "thumos14" in libraries else libraries[0]
    p = pipeline.config.proposals

    with gr.Blocks(title="ZEAL annotation assistant", fill_width=True) as demo:
        state = gr.State(new_session)
        browser_sid = gr.BrowserState(None, storage_key=BROWSER_KEY)
        with gr.Column(elem_id="zeal-header"):
            gr.Markdown("# ZEAL annotation assistant\nZero-shot pre-labels for action intervals: pick classes, "
                        "run, correct, export.")
        # Hidden channels between the page script and Python (see zeal.js).
        click_box = gr.Textbox(visible="hidden", elem_id="zeal-click", elem_classes="zeal-hidden")
        key_box = gr.Textbox(visible="hidden", elem_id="zeal-key", elem_classes="zeal-hidden")
        playhead_box = gr.Textbox(visible="hidden", elem_id="zeal-playhead", elem_classes="zeal-hidden")
        seek_box = gr.Textbox(visible="hidden", elem_id="zeal-seek", elem_classes="zeal-hidden")

        with gr.Row(equal_height=False):
            with gr.Column(scale=5):
                gr.Markdown("### 1 · Video")
                video = gr.Video(label="Video", sources=["upload"], elem_id="zeal-video", height=360)
                info = gr.Markdown(elem_id="zeal-info")
                if example_videos():
                    gr.Examples(example_videos(), inputs=[video], label="Example clips (click one)")
                thumb = gr.Image(label="Frame at the clicked time", height=180, interactive=False,
                                 elem_id="zeal-thumb")
            with gr.Column(scale=6):
                gr.Markdown("### 2 · Classes and questions")
                with gr.Row():
                    library = gr.Dropdown(libraries, value=default_library, label="Class library", scale=1)
                    classes = gr.Dropdown(cb.library_choices(default_library), value=[], multiselect=True,
                                          allow_custom_value=True, label="Classes (pick, or type a new name)",
                                          elem_id="zeal-classes", scale=3)
                with gr.Row():
                    top_k = gr.Number(DEFAULT_TOP_K, label="top-k", precision=0, minimum=1, scale=1)
                    propose_btn = gr.Button("Propose classes with CLIP", scale=2)
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
                    llm_btn = gr.Button("Generate questions with LLM")
                with gr.Row():
                    run_btn = gr.Button("Run analysis", variant="primary", elem_id="zeal-run", scale=3)
                    cancel_btn = gr.Button("Cancel", variant="stop", elem_id="zeal-cancel", scale=1)
                status = gr.Markdown("No result yet.", elem_id="zeal-status")

        gr.Markdown("### 3 · Review and correct")
        with gr.Row():
            shown_class = gr.Dropdown([], label="Class shown in the chart", elem_id="zeal-shown", scale=2)
            selection = gr.Markdown(elem_id="zeal-selection")
        chart = gr.Plot(label="Confidence over time", elem_id="zeal-chart")
        with gr.Accordion("Proposal settings (instant: no model runs)", open=True):
            with gr.Row():
                lam = gr.Slider(0, 1, value=p.lam, step=0.05, label="λ (boundary vs actionness weight)",
                                elem_id="zeal-lam")
                top_p = gr.Slider(0.05, 1, value=p.top_p, step=0.05, label="top-p (candidate fraction)",
                                  elem_id="zeal-top-p")
                sigma = gr.Slider(0.1, 5, value=p.nms_sigma, step=0.1, label="soft-NMS σ", elem_id="zeal-sigma")
                merge = gr.Slider(0.5, 1, value=p.merge_iou, step=0.05, label="merge IoU", elem_id="zeal-merge")
                min_score = gr.Slider(0, 1, value=p.min_score, step=0.01, label="min score",
                                      elem_id="zeal-min-score")
        overview = gr.Plot(label="Overview", elem_id="zeal-overview")
        intervals = gr.Dataframe(headers=TABLE_HEADERS, datatype=["number", "bool", "number", "number", "str",
                                                                   "number", "str"],
                                 type="array", interactive=True, static_columns=[0, 5, 6],
                                 label="Intervals (edit cells; empty # = new row)", elem_id="zeal-intervals",
                                 max_height=320)
        with gr.Row():
            add_btn = gr.Button("Add interval at play head (i)")
            accept_all = gr.Button("Accept all of this class")
            reject_all = gr.Button("Reject all of this class")
            gt_file = gr.UploadButton("Load ground truth… (JSON or CSV)",
                                      file_types=[".json", ".csv"], elem_id="zeal-gt")

        gr.Markdown("### 4 · Export accepted intervals")
        with gr.Row():
            from zeal.export import FORMATS

            formats = gr.CheckboxGroup(list(FORMATS), value=list(EXPORT_DEFAULT), label="Formats",
                                       elem_id="zeal-formats", scale=2)
            export_btn = gr.Button("Export", variant="primary", elem_id="zeal-export", scale=1)
        files = gr.File(label="Downloads", file_count="multiple", interactive=False, elem_id="zeal-files",
                        height=120)

        with gr.Accordion("Settings and models", open=False):
            models_md = gr.Markdown(models_markdown(pipeline))
            refresh = gr.Button("Check again", size="sm")
        with gr.Accordion("Help and keyboard shortcuts", open=False, elem_id="zeal-help"):
            gr.Markdown(HELP)

        # --- events ------------------------------------------------------------------------------
        view = [dict(state=state, chart=chart, overview=overview, intervals=intervals, shown_class=shown_class,
                     status=status, selection=selection, seek=seek_box)[name] for name in VIEW_OUTPUTS]
        sliders = [lam, top_p, sigma, merge, min_score]

        def restore_view(s):
            return cb.view(cb.session(s))

        demo.load(cb.restore, [browser_sid], [browser_sid, video, info, classes, qtable, *view],
                  api_visibility="private")
        video.change(cb.open_video, [video, state], [info, *view], api_name="open_video")
        library.change(cb.choose_library, [library, classes], [classes], api_visibility="private")
        classes.change(cb.sync_table, [classes, qtable], [qtable], api_name="set_classes")
        propose_btn.click(cb.propose_classes, [video, library, top_k, state], [classes, ranking],
                          concurrency_id="models", concurrency_limit=MODEL_CONCURRENCY, api_name="propose_classes")
        qfile.upload(cb.load_queries, [qfile, classes], [classes, qtable], api_visibility="private")
        qsave.click(cb.save_queries, [qtable, state], [state, qdownload], api_visibility="private")
        # The key leaves the page once submitted, whether the call worked or not.
        llm_btn.click(cb.generate_with_llm, [qtable, base_url, llm_model, api_key], [qtable],
                      api_visibility="private").then(lambda: "", None, [api_key], api_visibility="private")

        def run(video_path, table, known_classes, lam_v, top_p_v, sigma_v, merge_v, min_score_v, s,
                progress=gr.Progress()):
            return cb.run(video_path, table, known_classes, lam_v, top_p_v, sigma_v, merge_v, min_score_v, s,
                          progress=progress)

        run_btn.click(run, [video, qtable, known, *sliders, state], view, concurrency_id="models",
                      concurrency_limit=MODEL_CONCURRENCY, api_name="run")
        cancel_btn.click(cb.cancel, [state], [state], concurrency_limit=None, concurrency_id="cancel",
                         api_name="cancel")
        for i, slider in enumerate(sliders):
            # One public endpoint (the first) for scripts and tests: new settings on the cached curves.
            slider.input(cb.repropose, [*sliders, state], view, trigger_mode="always_last",
                         api_name="repropose" if i == 0 else None,
                         api_visibility="public" if i == 0 else "private")
        shown_class.input(cb.show_class, [shown_class, state], view, api_visibility="private")
        intervals.input(cb.edit_table, [intervals, state], view, api_name="edit_intervals").failure(
            restore_view, [state], view, api_visibility="private")

        def select_row(s, evt: gr.SelectData):
            return cb.select_row(s, evt)

        intervals.select(select_row, [state], [thumb, *view], api_visibility="private")
        click_box.change(cb.chart_click, [click_box, state], [thumb, *view], api_visibility="private")
        key_box.change(cb.key, [key_box, state], view, api_visibility="private").failure(
            restore_view, [state], view, api_visibility="private")
        seek_box.change(None, [seek_box], None,
                        js="(v) => { if (v && window.zealSeek) window.zealSeek(parseFloat(String(v).split('|')[0])); }")
        add_btn.click(cb.add_at, [playhead_box, shown_class, state], view, api_visibility="private")
        accept_all.click(lambda s: cb.set_all(True, s), [state], view, api_visibility="private")
        reject_all.click(lambda s: cb.set_all(False, s), [state], view, api_visibility="private")
        gt_file.upload(cb.load_ground_truth, [gt_file, state], view, api_visibility="private")
        export_btn.click(cb.export, [formats, state], [state, files], api_name="export")
        refresh.click(lambda: models_markdown(pipeline), None, [models_md], api_visibility="private")
    return demo
