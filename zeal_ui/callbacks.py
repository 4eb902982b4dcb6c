"""Widgets and gr.State <-> the engine. Every handler takes the session (a `Session` in gr.State,
created on first use), works on copies, and only replaces the session's result once everything
succeeded, so an error (shown as gr.Error) leaves the previous state and view in place. After every
change the session is saved to its file, which is what a page reload restores.

Handlers that change the result return `view(session)`: the outputs named in VIEW_OUTPUTS, in order.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from zeal.config import LLMConfig, ProposalParams, list_presets, preset_info
from zeal.errors import ModelError, QueryError, ZealError
from zeal.types import Result
from zeal_ui import plots
from zeal_ui.session import (DEFAULT_NEW_INTERVAL_S, EditError, Session, SessionStore,
                             add_interval, apply_table, keep_decisions, nudge, read_ground_truth,
                             replace_interval, sampling_step, table_rows)

log = logging.getLogger(__name__)

QUERY_HEADERS = ["class", "start question", "end question", "description"]
THUMB_SIDE = 320  # pixels, longest side of the clicked frame's thumbnail
EXPORT_DEFAULT = ("csv", "json")
# Names of the outputs every result-changing handler returns, in order (demo.py wires them).
VIEW_OUTPUTS = ("state", "chart", "overview", "intervals", "shown_class", "status", "selection", "seek")
KEY_COMMANDS = ("next", "prev", "accept", "reject", "start-", "start+", "end-", "end+", "insert")
MODEL_HINT = ("Point the app at local weights: start it with --lvlm /path/to/model-folder (or an "
              "openai:MODEL@URL server) and --clip-model NAME --clip-pretrained /path/to/checkpoint, or set "
              "ZEAL_LVLM, ZEAL_CLIP_MODEL, ZEAL_CLIP_PRETRAINED; `python app.py --help` lists them.")


@dataclass(frozen=True)
class AppLimits:
    """Safety limits of one app instance. max_upload_mb: largest upload (MB); max_duration_min:
    longest video accepted for analysis (minutes)."""

    max_upload_mb: float = 2000.0
    max_duration_min: float = 240.0


def _gr():
    import gradio as gr

    return gr


def _error(exc: BaseException, secret: str | None = None) -> Exception:
    """An engine error as the gr.Error the page shows (one line, secret removed)."""
    message = str(exc) or type(exc).__name__
    if secret:
        message = message.replace(secret, "***")
    return _gr().Error(message)


def _with_hint(exc: BaseException) -> str:
    """A model error followed by MODEL_HINT as its own sentence."""
    return f"{str(exc).rstrip(' .')}. {MODEL_HINT}"


def _nonce() -> str:
    return uuid.uuid4().hex[:8]


def _fmt_s(t: float) -> str:
    m, s = divmod(max(0.0, float(t)), 60.0)
    h, m = divmod(int(m), 60)
    return f"{h}:{m:02d}:{s:05.2f}" if h else f"{m}:{s:05.2f}"


def video_info_markdown(info) -> str:
    vfr = " (variable frame rate)" if info.vfr else ""
    return (f"**{Path(info.path).name}** · duration {_fmt_s(info.duration_s)} ({info.duration_s:.2f} s) · "
            f"{info.fps:.3g} fps{vfr} · {info.width}×{info.height} px · {info.n_frames} frames")


# --- local model availability (no network) -----------------------------------------------------

def _cached_repo_ids() -> list[str]:
    try:
        from huggingface_hub import scan_cache_dir

        return [r.repo_id for r in scan_cache_dir().repos]
    except Exception:  # no cache folder yet, or unreadable: nothing is available locally
        return []


def _norm(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def lvlm_availability(model: str, cached: Sequence[str]) -> str:
    """'local folder', 'in the Hugging Face cache', 'remote server' or 'not downloaded'."""
    if model.startswith("openai:"):
        return "remote server"
    if Path(model).expanduser().is_dir():
        return "local folder"
    return "in the Hugging Face cache" if model in cached else "not downloaded"


def clip_availability(model: str, pretrained: str, cached: Sequence[str]) -> str:
    """CLIP weights: a local checkpoint file, or an open_clip tag whose Hugging Face repo (named after
    the tag, e.g. timm/eva02_large_patch14_clip_224.merged2b_s4b_b131k) is in the cache."""
    if Path(pretrained).expanduser().is_file():
        return "local file"
    tag = _norm(pretrained)
    return "in the Hugging Face cache" if tag and any(tag in _norm(r) for r in cached) else "not downloaded"


def models_markdown(pipeline) -> str:
    """The settings panel: presets with sizes and local availability, and the models in use."""
    cached = _cached_repo_ids()
    lines = ["| preset | models | download | LVLM | CLIP |", "|---|---|---|---|---|"]
    for name in list_presets():
        p = preset_info(name)
        c = p.config
        lines.append(f"| **{name}** | {c.lvlm.model} + {c.clip.model} ({c.clip.pretrained}) | "
                     f"~{p.approx_size_gb:g} GB | {lvlm_availability(c.lvlm.model, cached)} | "
                     f"{clip_availability(c.clip.model, c.clip.pretrained, cached)} |")
    cfg = pipeline.config
    loaded = pipeline.models_loaded()
    lines += ["", "**In use by this app**",
              f"- LVLM: `{cfg.lvlm.model}` ({lvlm_availability(cfg.lvlm.model, cached)}; "
              f"{'loaded' if loaded['lvlm'] else 'loads on first run'})",
              f"- CLIP: `{cfg.clip.model}` / `{cfg.clip.pretrained}` "
              f"({clip_availability(cfg.clip.model, cfg.clip.pretrained, cached)}; "
              f"{'loaded' if loaded['clip'] else 'loads on first use'})",
              f"- sampling: {cfg.video.fps:g} frames per second, frames scaled to at most "
              f"{cfg.video.max_side or 'full'} px; score cache: `{cfg.cache_dir}`",
              "", "Models load on first use. To use other weights, restart with `--preset`, `--lvlm`, "
              "`--clip-model`, `--clip-pretrained` (or the ZEAL_* variables): `python app.py --help`."]
    return "\n".join(lines)


# --- query table helpers -----------------------------------------------------------------------

def _rows(table: Any) -> list[list[Any]]:
    """Dataframe value (list of lists, pandas frame or {'data': ...}) -> list of rows."""
    if table is None:
        return []
    if hasattr(table, "values") and hasattr(table, "columns"):
        return table.values.tolist()
    if isinstance(table, dict):
        return [list(r) for r in table.get("data", [])]
    return [list(r) for r in table]


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == ""


def query_rows(table: Any) -> list[list[str]]:
    """Non-blank rows of the query table as [class, start, end, description] strings."""
    out = []
    for row in _rows(table):
        cells = [("" if _blank(c) else str(c)) for c in (list(row) + [""] * 4)[:4]]
        if any(cells):
            out.append(cells)
    return out


def queries_from_table(table: Any):
    """The QuerySet the annotator sees in the table; QueryError naming what is missing."""
    from zeal.queries import QuerySet

    rows = query_rows(table)
    if not rows:
        raise QueryError("no classes: choose classes (or type names) so that the questions table has rows")
    missing = [r[0] or f"row {i + 1}" for i, r in enumerate(rows) if not all(c.strip() for c in r)]
    if missing:
        raise QueryError(f"class(es) {', '.join(missing)} lack a question or description: fill the table "
                         "(or use 'Generate with LLM') before running")
    return QuerySet.from_dict({r[0].strip(): {"start": r[1], "end": r[2], "description": r[3]} for r in rows})


def rows_for_classes(classes: Sequence[str], table: Any) -> list[list[str]]:
    """Question rows for the chosen classes: edited rows kept, library questions for new names,
    empty questions for names the library does not know (to be typed or generated)."""
    from zeal.queries import lookup

    have = {r[0]: r for r in query_rows(table)}
    out = []
    for name in classes or []:
        name = str(name).strip()
        if not name:
            continue
        if name in have:
            out.append(have[name])
            continue
        try:
            q = next(iter(lookup([name])))
            out.append([q.name, q.start, q.end, q.description])
        except QueryError:
            out.append([name, "", "", ""])
    return out


class Callbacks:
    """Event handlers of one app: the pipeline and session store are shared, all per-user data is in
    the Session passed through gr.State."""

    def __init__(self, pipeline, store: SessionStore, limits: AppLimits = AppLimits()):
        self.pipeline = pipeline
        self.store = store
        self.limits = limits

    # --- session plumbing ----------------------------------------------------------------------
    @staticmethod
    def session(state: Session | None) -> Session:
        return state if isinstance(state, Session) else Session()

    def _save(self, s: Session) -> None:
        try:
            self.store.save(s)
        except OSError as exc:  # the work goes on; only the reload copy is missing
            log.warning("could not save session %s: %s", s.sid, exc)

    def view(self, s: Session, seek: float | None = None) -> tuple:
        """Outputs VIEW_OUTPUTS for the session's current result."""
        gr = _gr()
        r = s.result
        if r is None or not r.classes:
            empty = plots.empty_figure()
            return (s, empty, plots.empty_figure("The overview appears after a run"),
                    gr.update(value=table_rows(None) or None), gr.update(choices=[], value=None),
                    "No result yet.", "", gr.update())
        if s.shown_class not in r.classes:
            s.shown_class = next(iter(r.classes))
        flat = plots.flat_intervals(r)
        if s.selected is not None and not 0 <= s.selected < len(flat):
            s.selected = None
        chart = plots.class_figure(r, s.shown_class, s.ground_truth.get(s.shown_class, ()), s.selected)
        overview = plots.overview_figure(r, s.ground_truth, s.selected)
        return (s, chart, overview, gr.update(value=table_rows(r) or None),
                gr.update(choices=list(r.classes), value=s.shown_class), self.status(r),
                self.selection(s), f"{seek:.3f}|{_nonce()}" if seek is not None else gr.update())

    @staticmethod
    def status(r: Result) -> str:
        stats = r.settings.get("stats") or {}
        accepted = sum(1 for iv in r.intervals if iv.accepted)
        fps = (r.settings.get("video") or {}).get("fps")
        text = (f"{len(r.times_s)} frames sampled" + (f" at {fps:g} fps" if fps else "") +
                f" · {len(r.classes)} classes · {len(r.intervals)} intervals ({accepted} accepted)")
        if stats:
            text += (f" · questions: **{stats.get('questions_scored', 0)} scored by the model, "
                     f"{stats.get('questions_cached', 0)} reused from cache**")
        ranking = r.settings.get("ranking")
        if ranking:
            text += " · CLIP kept: " + ", ".join(f"{n} ({v:.2f})" for n, v in ranking[: len(r.classes)])
        return text

    @staticmethod
    def selection(s: Session) -> str:
        if s.result is None or s.selected is None:
            return "No interval selected: click a band, a table row, or press n."
        label, _, iv = plots.flat_intervals(s.result)[s.selected]
        state = "accepted" if iv.accepted else "rejected"
        return (f"Selected #{s.selected}: **{label}** {iv.start_s:.2f}–{iv.end_s:.2f} s · score {iv.score:.2f} · "
                f"{iv.source} · {state}")

    def _commit(self, s: Session, result: Result, selected: int | None, seek: float | None = None) -> tuple:
        s.result, s.selected = result, selected
        if selected is not None:
            s.shown_class = plots.flat_intervals(result)[selected][0]
        self._save(s)
        return self.view(s, seek)

    # --- page load -----------------------------------------------------------------------------
    def restore(self, saved_sid: str | None):
        """On page load: the session saved under the browser's id, or a new one.
        Outputs: browser sid, video, video info, classes, questions table, then VIEW_OUTPUTS."""
        gr = _gr()
        s = self.store.load(saved_sid) or Session()
        info = ""
        if s.video:
            try:
                from zeal.video import probe

                info = video_info_markdown(probe(s.video))
            except ZealError:
                s.video = None
        if s.result is not None and not info:
            info = f"Restored the last result for {Path(s.result.video.path).name} (the video file is gone)."
        # Nothing to restore: leave the player and the class choice alone (the user may be busy).
        video = gr.update(value=s.video) if s.video else gr.update()
        classes, questions = gr.update(), gr.update()
        if s.result is not None:
            names = list(s.result.classes)
            classes = gr.update(choices=names, value=names)
            questions = [[c.label, c.query.get("start", ""), c.query.get("end", ""), c.query.get("description", "")]
                         for c in s.result.classes.values()]
        return (s.sid, video, info or gr.update(), classes, questions, *self.view(s))

    # --- 1. video ------------------------------------------------------------------------------
    def open_video(self, video: str | None, state: Session | None):
        """A video was uploaded or picked. Outputs: video info, then VIEW_OUTPUTS."""
        from zeal.video import probe

        s = self.session(state)
        if not video:
            return ("", *self.view(s))
        if video == s.video:
            return (video_info_markdown(probe(video)), *self.view(s))
        try:
            info = probe(video)
        except ZealError as exc:
            raise _error(exc) from None
        if info.duration_s > self.limits.max_duration_min * 60:
            raise _gr().Error(f"{Path(video).name} lasts {info.duration_s / 60:.1f} min, longer than this app's "
                              f"limit of {self.limits.max_duration_min:g} min: cut it, or restart the app with "
                              "--max-duration-min")
        s.video, s.result, s.selected, s.ground_truth = video, None, None, {}
        self._save(s)
        return (video_info_markdown(info), *self.view(s))

    def frame(self, time_s: float, s: Session):
        """Thumbnail [H, W, 3] uint8 of the frame shown at time_s, or None without a video."""
        if not s.video:
            return None
        from zeal.video import frames_at

        try:
            return frames_at(s.video, [max(0.0, float(time_s))], max_side=THUMB_SIDE).images[0]
        except ZealError as exc:
            raise _error(exc) from None

    # --- 2. classes and questions ---------------------------------------------------------------
    @staticmethod
    def library_choices(library: str) -> list[str]:
        from zeal.queries import load_library

        try:
            return load_library(library).names
        except ZealError as exc:
            raise _error(exc) from None

    def choose_library(self, library: str, classes: Sequence[str] | None):
        gr = _gr()
        choices = self.library_choices(library)
        # Keep names the user typed or picked earlier: they stay selectable.
        extra = [c for c in (classes or []) if c not in choices]
        return gr.update(choices=choices + extra, value=list(classes or []))

    @staticmethod
    def sync_table(classes: Sequence[str] | None, table: Any):
        return rows_for_classes(classes or [], table) or None

    def propose_classes(self, video: str | None, library: str, top_k: float, state: Session | None):
        """CLIP's top-k classes of the library for this video. Outputs: classes value, ranking text."""
        gr = _gr()
        s = self.session(state)
        video = video or s.video
        if not video:
            raise gr.Error("open a video first (upload one or pick an example)")
        names = self.library_choices(library)
        try:
            ranked = self.pipeline.rank_classes(video, names)
        except ModelError as exc:
            raise gr.Error(_with_hint(exc)) from None
        except ZealError as exc:
            raise _error(exc) from None
        k = max(1, int(top_k))
        top = [n for n, _ in ranked[:k]]
        text = "CLIP's ranking for this video: " + ", ".join(f"{n} ({v:.3f})" for n, v in ranked[: max(k, 5)])
        return gr.update(value=top), text

    def load_queries(self, path: str | None, classes: Sequence[str] | None):
        """A query JSON file -> (classes value, table rows)."""
        gr = _gr()
        if not path:
            return gr.update(), gr.update()
        from zeal.queries import QuerySet

        try:
            qs = QuerySet.load(path)
        except ZealError as exc:
            raise _error(exc) from None
        rows = [[q.name, q.start, q.end, q.description] for q in qs]
        names = list(dict.fromkeys([*(classes or []), *qs.names]))
        return gr.update(choices=names, value=qs.names), rows

    def save_queries(self, table: Any, state: Session | None):
        """The question table as a query JSON file to download; outputs (state, file path)."""
        s = self.session(state)
        try:
            qs = queries_from_table(table)
        except ZealError as exc:
            raise _error(exc) from None
        path = self.store.folder(s.sid) / "queries.json"
        qs.save(path)
        return s, str(path)

    def generate_with_llm(self, table: Any, base_url: str, model: str, api_key: str):
        """Questions for every class in the table from an OpenAI-compatible LLM; returns the table
        rows. The key is used for this call only (the page clears its field afterwards) and is
        removed from any error message."""
        from zeal.llm import generate_queries

        names = [r[0] for r in query_rows(table)]
        key = (api_key or "").strip() or None
        try:
            if not names:
                raise QueryError("no classes to write questions for: choose or type class names first")
            qs = generate_queries(names, LLMConfig(base_url=(base_url or "").strip(), model=(model or "").strip()),
                                  api_key=key)
        except ZealError as exc:
            raise _error(exc, key) from None
        except Exception as exc:  # a client library failure must not echo the key either
            raise _error(RuntimeError(f"LLM request failed: {type(exc).__name__}: {exc}"), key) from None
        return [[q.name, q.start, q.end, q.description] for q in qs]

    # --- 3. run ----------------------------------------------------------------------------------
    @staticmethod
    def params(lam: float, top_p: float, sigma: float, merge_iou: float, min_score: float) -> ProposalParams:
        try:
            return ProposalParams(top_p=float(top_p), lam=float(lam), nms_sigma=float(sigma),
                                  merge_iou=float(merge_iou), min_score=float(min_score))
        except (ZealError, TypeError, ValueError) as exc:
            raise _error(exc) from None

    def run(self, video: str | None, table: Any, known: bool, lam: float, top_p: float, sigma: float,
            merge_iou: float, min_score: float, state: Session | None, progress: Callable | None = None):
        """Analyse the session's video with the table's questions. Outputs VIEW_OUTPUTS."""
        gr = _gr()
        s = self.session(state)
        video = video or s.video
        if not video:
            raise gr.Error("open a video first (upload one or pick an example)")
        if video != s.video:  # the player holds a video this session has not opened yet
            self.open_video(video, s)
        params = self.params(lam, top_p, sigma, merge_iou, min_score)
        try:
            queries = queries_from_table(table)
        except ZealError as exc:
            raise _error(exc) from None
        s.cancel.clear()
        report = _ProgressReporter(progress)
        try:
            result = self.pipeline.run(video, queries=queries, known_classes=bool(known), progress=report,
                                       cancel=s.cancel.is_set)
            result = self.pipeline.repropose(result, params)
        except ModelError as exc:
            raise gr.Error(_with_hint(exc)) from None
        except ZealError as exc:
            from zeal.pipeline import Cancelled

            if isinstance(exc, Cancelled):
                gr.Warning(str(exc))
                return self.view(s)
            raise _error(exc) from None
        except (OSError, ImportError, RuntimeError) as exc:  # a model library failing to load weights
            log.exception("analysis failed")
            raise gr.Error(f"the analysis failed: {type(exc).__name__}: {exc}. {MODEL_HINT}") from None
        s.shown_class = None
        return self._commit(s, result, None)

    def cancel(self, state: Session | None):
        s = self.session(state)
        s.cancel.set()
        _gr().Info("Cancelling: the run stops after the current chunk of frames.")
        return s

    # --- 4. review -------------------------------------------------------------------------------
    def repropose(self, lam, top_p, sigma, merge_iou, min_score, state: Session | None):
        """New proposal settings on the cached curves: no model runs."""
        s = self.session(state)
        if s.result is None:
            return self.view(s)
        params = self.params(lam, top_p, sigma, merge_iou, min_score)
        try:
            result = keep_decisions(s.result, self.pipeline.repropose(s.result, params))
        except ZealError as exc:
            raise _error(exc) from None
        return self._commit(s, result, None)

    def show_class(self, label: str | None, state: Session | None):
        s = self.session(state)
        if s.result is not None and label in s.result.classes:
            s.shown_class = label
            self._save(s)
        return self.view(s)

    def edit_table(self, table: Any, state: Session | None):
        """The annotator edited the intervals table (cells, added or removed rows)."""
        s = self.session(state)
        if s.result is None:
            raise _gr().Error("run the analysis first: there are no intervals to edit yet")
        try:
            result = apply_table(s.result, _rows(table))
        except ZealError as exc:
            raise _error(exc) from None
        return self._commit(s, result, None)

    def select_row(self, state: Session | None, evt=None):
        """A click on a table row selects that interval and seeks to its start.
        Outputs: thumbnail, then VIEW_OUTPUTS."""
        s = self.session(state)
        row = None
        if evt is not None and getattr(evt, "index", None) is not None:
            idx = evt.index
            row = int(idx[0]) if isinstance(idx, (list, tuple)) else int(idx)
        if s.result is None or row is None or not 0 <= row < len(s.result.intervals):
            return (None, *self.view(s))
        s.selected = row
        label, _, iv = plots.flat_intervals(s.result)[row]
        s.shown_class = label
        self._save(s)
        return (self.frame(iv.start_s, s), *self.view(s, seek=iv.start_s))

    def chart_click(self, message: str, state: Session | None):
        """A click on a chart ('time|row|nonce' written by the page script): thumbnail of that frame,
        and the interval selected when a band was clicked. Outputs: thumbnail, then VIEW_OUTPUTS."""
        s = self.session(state)
        try:
            t_text, row_text, *_ = str(message).split("|")
            t, row = float(t_text), int(float(row_text))
        except ValueError:
            return (_gr().update(), *self.view(s))
        if s.result is not None and 0 <= row < len(s.result.intervals):
            s.selected = row
            s.shown_class = plots.flat_intervals(s.result)[row][0]
            self._save(s)
        return (self.frame(t, s), *self.view(s))

    def key(self, message: str, state: Session | None):
        """A keyboard command ('cmd|playhead_s|nonce' from the page script). Outputs VIEW_OUTPUTS."""
        s = self.session(state)
        cmd, playhead, *_ = (str(message).split("|") + ["", ""])[:3]
        r = s.result
        if r is None or cmd not in KEY_COMMANDS:
            return self.view(s)
        flat = plots.flat_intervals(r)
        try:
            if cmd == "insert":
                return self.add_at(playhead, s.shown_class, s)
            if not flat:
                return self.view(s)
            if cmd in ("next", "prev"):
                if s.selected is None:
                    row = 0 if cmd == "next" else len(flat) - 1
                else:
                    row = (s.selected + (1 if cmd == "next" else -1)) % len(flat)
                s.selected = row
                s.shown_class = flat[row][0]
                self._save(s)
                return self.view(s, seek=flat[row][2].start_s)
            if s.selected is None:
                _gr().Warning("select an interval first (n / p, or click one)")
                return self.view(s)
            iv = flat[s.selected][2]
            if cmd in ("accept", "reject"):
                result, row = replace_interval(r, s.selected, replace(iv, state="accepted" if cmd == "accept" else "rejected"))
                return self._commit(s, result, row)
            step = sampling_step(r) * (1 if cmd.endswith("+") else -1)
            edge = "start" if cmd.startswith("start") else "end"
            result, row = nudge(r, s.selected, edge, step)
            moved = plots.flat_intervals(result)[row][2]
            return self._commit(s, result, row, seek=moved.start_s if edge == "start" else moved.end_s)
        except EditError as exc:
            raise _error(exc) from None

    def add_at(self, playhead: Any, label: str | None, state: Session | None):
        """A human interval of the shown class from the play head (DEFAULT_NEW_INTERVAL_S long)."""
        s = self.session(state)
        if s.result is None:
            raise _gr().Error("run the analysis first; then intervals can be added by hand")
        label = label if label in s.result.classes else s.shown_class
        try:
            t = float(playhead) if not _blank(playhead) else 0.0
        except ValueError:
            t = 0.0
        end = min(float(s.result.video.duration_s), t + DEFAULT_NEW_INTERVAL_S)
        try:
            result, row = add_interval(s.result, label, max(0.0, min(t, end - sampling_step(s.result))), end)
        except EditError as exc:
            raise _error(exc) from None
        return self._commit(s, result, row, seek=t)

    def set_all(self, accepted: bool, state: Session | None):
        """Accept or reject every interval of the shown class."""
        s = self.session(state)
        if s.result is None:
            return self.view(s)
        result = s.result
        for row, (label, _, iv) in enumerate(plots.flat_intervals(s.result)):
            if label == s.shown_class and iv.accepted != accepted:
                result, _ = replace_interval(result, row, replace(iv, state="accepted" if accepted else "rejected"))
        return self._commit(s, result, None)

    def load_ground_truth(self, path: str | None, state: Session | None):
        s = self.session(state)
        if not path:
            s.ground_truth = {}
            self._save(s)
            return self.view(s)
        video_id = Path(s.video or (s.result.video.path if s.result else "video")).stem
        try:
            gt = read_ground_truth(path, video_id)
        except ZealError as exc:
            raise _error(exc) from None
        s.ground_truth = gt
        self._save(s)
        return self.view(s)

    # --- 5. export -------------------------------------------------------------------------------
    def export(self, formats: Sequence[str] | None, state: Session | None):
        """Accepted intervals in the chosen formats; outputs (state, list of file paths)."""
        gr = _gr()
        from zeal.export import export

        s = self.session(state)
        if s.result is None:
            raise gr.Error("nothing to export yet: run the analysis first")
        formats = list(formats or EXPORT_DEFAULT)
        out_dir = self.store.folder(s.sid) / "exports" / time.strftime("%Y%m%d-%H%M%S")
        paths: list[str] = []
        try:
            for fmt in formats:
                paths += [str(p) for p in export(s.result, fmt, out_dir, proposals="all")]
        except ZealError as exc:
            raise _error(exc) from None
        return s, paths


class _ProgressReporter:
    """pipeline progress(stage, done, total) -> gr.Progress with frames done/total and an ETA."""

    def __init__(self, progress: Callable | None):
        self.progress = progress
        self.t0: float | None = None
        self.done0 = 0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.progress is None:
            return
        desc = stage
        if stage == "scoring frames" and total > 0:
            now = time.monotonic()
            if self.t0 is None:
                self.t0, self.done0 = now, done
            rate = (done - self.done0) / max(now - self.t0, 1e-6)
            eta = f"ETA {_fmt_s((total - done) / rate)}" if rate > 0 and done > self.done0 else "ETA …"
            desc = f"scoring frames {done}/{total} · {eta}"
        self.progress((done, total) if total > 0 else None, desc=desc, unit="frames")
