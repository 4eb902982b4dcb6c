"""The Gradio handlers of the setup and export steps. Each takes the session id (a gr.State; the
browser keeps it across reloads) and works on the live `Session` from the `SessionStore`, under its
lock, the same object the review workspace's server functions change. A handler replaces the
session's result only once everything succeeded, so an error (shown as gr.Error) leaves the
previous state in place. Reviewing itself happens in the browser (zeal_ui/workspace).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from zeal.config import LLMConfig, list_presets, preset_info
from zeal.errors import ModelError, QueryError, ZealError
from zeal.review import NOT_REJECTED, carry_over, counts, select
from zeal.types import ACCEPTED, Result
from zeal_ui.session import Session, SessionStore, read_ground_truth
from zeal_ui.workspace import signal

log = logging.getLogger(__name__)

QUERY_HEADERS = ["class", "start question", "end question", "description"]
EXPORT_DEFAULT = ("csv", "json")
# What an export holds: the choice on the Export tab -> review states written.
EXPORT_CHOICES = {"accepted only": (ACCEPTED,), "accepted + unreviewed": NOT_REJECTED}
PROPOSAL_CHOICES = {"review set (one candidate per action)": "review", "all proposals (as in the paper)": "all"}
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


def _fmt_s(t: float) -> str:
    m, s = divmod(max(0.0, float(t)), 60.0)
    h, m = divmod(int(m), 60)
    return f"{h}:{m:02d}:{s:05.2f}" if h else f"{m}:{s:05.2f}"


def video_info_markdown(info) -> str:
    vfr = " (variable frame rate)" if info.vfr else ""
    return (f"**{Path(info.path).name}** · duration {_fmt_s(info.duration_s)} ({info.duration_s:.2f} s) · "
            f"{info.fps:.3g} fps{vfr} · {info.width}×{info.height} px · {info.n_frames} frames")


def models_markdown(pipeline) -> str:
    """The settings panel: presets with sizes and whether their models are on this machine, the models
    in use, and how to get the missing ones (zeal.scorers.availability: file system only, no network)."""
    from zeal.scorers.availability import model_availability

    def where(status) -> str:
        return status.where if status.present else "**missing**"

    lines = ["| preset | models | download | LVLM | CLIP |", "|---|---|---|---|---|"]
    for name in list_presets():
        p = preset_info(name)
        c = p.config
        lvlm, clip = model_availability(c)
        lines.append(f"| **{name}** | {c.lvlm.model} + {c.clip.model} ({c.clip.pretrained}) | "
                     f"~{p.approx_size_gb:g} GB | {where(lvlm)} | {where(clip)} |")
    cfg = pipeline.config
    loaded = pipeline.models_loaded()
    lvlm, clip = model_availability(cfg)
    lines += ["", "**In use by this app**",
              f"- LVLM: `{cfg.lvlm.model}` ({lvlm.where}; {'loaded' if loaded['lvlm'] else 'loads on first run'})",
              f"- CLIP: `{cfg.clip.model}` / `{cfg.clip.pretrained}` ({clip.where}; "
              f"{'loaded' if loaded['clip'] else 'loads on first use'})",
              f"- sampling: {cfg.video.fps:g} frames per second, frames scaled to at most "
              f"{cfg.video.max_side or 'full'} px; score cache: `{cfg.cache_dir}`"]
    lines += [f"- **{s.role.upper()} missing**: {s.fix}" for s in (lvlm, clip) if not s.present]
    lines += ["", "Models load on first use. To use other weights, restart with `--preset`, `--lvlm`, "
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
    """Event handlers of one app: the pipeline and the session store are shared; all per-user data
    is in the Session the store holds for the browser's session id."""

    def __init__(self, pipeline, store: SessionStore, limits: AppLimits = AppLimits()):
        self.pipeline = pipeline
        self.store = store
        self.limits = limits

    def session(self, sid: str | None) -> Session:
        """The live session for this id (a new one for an unknown id)."""
        return self.store.get(sid)

    def _save(self, s: Session, **what) -> None:
        try:
            self.store.save(s, **what)
        except OSError as exc:  # the work goes on in memory; the next save tries again
            _gr().Warning(f"Could not save this session on the server ({exc.strerror}); free some disk space.")

    @staticmethod
    def status(s: Session, note: str = "") -> str:
        r = s.result
        if r is None:
            return "No result yet: choose classes and press **Run analysis**."
        stats = r.run.stats if r.run is not None else {}
        n = counts(iv for iv in r.intervals if iv.reviewed or iv.in_review_set)
        fps = (r.settings.get("video") or {}).get("fps")
        text = (f"**{Path(r.video.path).name}**: {len(r.times_s)} frames sampled" + (f" at {fps:g} fps" if fps else "") +
                f" · {len(r.classes)} classes · review set: {n['unreviewed']} unreviewed, {n['accepted']} accepted, "
                f"{n['rejected']} rejected")
        if stats:
            text += (f" · questions: {stats.get('questions_scored', 0)} scored by the model, "
                     f"{stats.get('questions_cached', 0)} reused from cache")
        ranking = r.run.ranking if r.run is not None else None
        if ranking:
            text += " · CLIP kept: " + ", ".join(f"{n} ({v:.2f})" for n, v in ranking[: len(r.classes)])
        return text + (f"\n\n{note}" if note else "")

    # --- page load -----------------------------------------------------------------------------
    def restore(self, saved_sid: str | None):
        """On page load: the session saved under the browser's id, or a new one.
        Outputs: sid (state), sid (browser), video, video info, classes, questions, status,
        workspace signal, selected tab."""
        gr = _gr()
        s = self.session(saved_sid)
        with s.lock:
            info = ""
            if s.video:
                try:
                    from zeal.video import probe

                    info = video_info_markdown(probe(s.video))
                except ZealError:
                    s.video = None
            if s.result is not None and not info:
                info = f"Restored the last result for {Path(s.result.video.path).name} (the video file is gone)."
            video = gr.update(value=s.video) if s.video else gr.update()
            classes, questions = gr.update(), gr.update()
            if s.result is not None:
                names = list(s.result.classes)
                classes = gr.update(choices=names, value=names)
                questions = [[c.label, c.query.get("start", ""), c.query.get("end", ""), c.query.get("description", "")]
                             for c in s.result.classes.values() if c.query]
            tab = gr.update(selected="review") if s.result is not None else gr.update()
            return (s.sid, s.sid, video, info or gr.update(), classes, questions, self.status(s), signal(s.sid), tab)

    # --- 1. video ------------------------------------------------------------------------------
    def open_video(self, video: str | None, sid: str | None):
        """A video was uploaded or picked. Outputs: sid, video info, status, workspace signal."""
        from zeal.video import probe

        s = self.session(sid)
        if not video:
            return s.sid, "", self.status(s), signal(s.sid)
        try:
            info = probe(video)
        except ZealError as exc:
            raise _error(exc) from None
        if video == s.video:
            return s.sid, video_info_markdown(info), self.status(s), signal(s.sid)
        if info.duration_s > self.limits.max_duration_min * 60:
            raise _gr().Error(f"{Path(video).name} lasts {info.duration_s / 60:.1f} min, longer than this app's "
                              f"limit of {self.limits.max_duration_min:g} min: cut it, or restart the app with "
                              "--max-duration-min")
        with s.lock:
            s.video, s.result, s.ground_truth = video, None, {}
            s.review = type(s.review)()
            self._save(s)
        return s.sid, video_info_markdown(info), self.status(s), signal(s.sid)

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

    def propose_classes(self, video: str | None, library: str, top_k: float, sid: str | None):
        """CLIP's top-k classes of the library for this video. Outputs: classes value, ranking text."""
        gr = _gr()
        s = self.session(sid)
        video = video or s.video
        if not video:
            raise gr.Error("open a video first (upload one or pick an example)")
        names = self.library_choices(library)
        try:
            ranked = self.pipeline.rank_classes(video, names)
        except ModelError as exc:
            raise _error(exc) from None  # the engine's message names the model and the fix
        except ZealError as exc:
            raise _error(exc) from None
        k = max(1, int(top_k))
        top = [n for n, _ in ranked[:k]]
        text = "CLIP's ranking for this video: " + ", ".join(f"{n} ({v:.3f})" for n, v in ranked[: max(k, 5)])
        return gr.update(value=top), text

    def save_queries(self, table: Any, sid: str | None):
        """The question table as a query JSON file to download."""
        s = self.session(sid)
        try:
            qs = queries_from_table(table)
        except ZealError as exc:
            raise _error(exc) from None
        path = self.store.folder(s.sid) / "queries.json"
        qs.save(path)
        return str(path)

    # --- 3. run ----------------------------------------------------------------------------------
    def run(self, video: str | None, table: Any, known: bool, sid: str | None, progress: Callable | None = None):
        """Analyse the session's video with the table's questions. Every interval a person made,
        edited, accepted or rejected stays; only unreviewed proposals are replaced.
        Outputs: sid, status, workspace signal, selected tab."""
        gr = _gr()
        s = self.session(sid)
        video = video or s.video
        if not video:
            raise gr.Error("open a video first (upload one or pick an example)")
        if video != s.video:  # the player holds a video this session has not opened yet
            self.open_video(video, s.sid)
        try:
            queries = queries_from_table(table)
        except ZealError as exc:
            raise _error(exc) from None
        s.cancel.clear()
        report = _ProgressReporter(progress)
        try:
            fresh = self.pipeline.run(video, queries=queries, known_classes=bool(known), progress=report,
                                      cancel=s.cancel.is_set)
        except ModelError as exc:
            raise _error(exc) from None  # the engine's message names the model and the fix
        except ZealError as exc:
            from zeal.pipeline import Cancelled

            if isinstance(exc, Cancelled):
                gr.Warning(str(exc))
                return s.sid, self.status(s), gr.update(), gr.update()
            raise _error(exc) from None
        except (OSError, ImportError, RuntimeError) as exc:  # a model library failing to load weights
            log.exception("analysis failed")
            raise gr.Error(f"the analysis failed: {type(exc).__name__}: {exc}. {MODEL_HINT}") from None
        with s.lock:  # edits made during the run are in s.result: they are carried over too
            fresh = self.pipeline.repropose(fresh, s.params)
            merged, carried = carry_over(s.result, fresh, suppressed=s.review.deleted)
            first = s.result is None
            s.result = merged
            s.review.rev += 1
            self._save(s, result=True, review=True)
            note = "" if first else f"Re-run: {carried.sentence()}."
            return s.sid, self.status(s, note), signal(s.sid), gr.update(selected="review")

    def cancel(self, sid: str | None):
        s = self.session(sid)
        s.cancel.set()
        _gr().Info("Cancelling: the run stops after the current chunk of frames.")

    def load_ground_truth(self, path: str | None, sid: str | None):
        """Ground truth for this video, drawn under the lanes. Outputs: sid, status, workspace signal."""
        s = self.session(sid)
        with s.lock:
            if not path:
                s.ground_truth = {}
            else:
                video_id = Path(s.video or (s.result.video.path if s.result else "video")).stem
                try:
                    s.ground_truth = read_ground_truth(path, video_id)
                except ZealError as exc:
                    raise _error(exc) from None
            self._save(s, review=False)
            n = sum(len(v) for v in s.ground_truth.values())
            return s.sid, self.status(s, f"Ground truth: {n} segment(s) of {len(s.ground_truth)} class(es)."), signal(s.sid)

    # --- 4. export -------------------------------------------------------------------------------
    def export(self, formats: Sequence[str] | None, include: str | None, proposals: str | None, sid: str | None):
        """The reviewed intervals in the chosen formats; returns the list of file paths."""
        gr = _gr()
        from zeal.export import export

        s = self.store.find(sid)
        if s is None or s.result is None:
            raise gr.Error("nothing to export yet: run the analysis first")
        states = EXPORT_CHOICES.get(include or "", EXPORT_CHOICES["accepted only"])
        which = PROPOSAL_CHOICES.get(proposals or "", "review")
        formats = list(formats or EXPORT_DEFAULT)
        out_dir = self.store.folder(s.sid) / "exports" / time.strftime("%Y%m%d-%H%M%S")
        paths: list[str] = []
        with s.lock:
            try:
                for fmt in formats:
                    paths += [str(p) for p in export(s.result, fmt, out_dir, states=states, proposals=which)]
            except ZealError as exc:
                raise _error(exc) from None
            empty = not select(s.result, states, which)
        if empty:
            gr.Warning("The export holds no interval: accept some in the Review tab first, or choose "
                       "'accepted + unreviewed'.")
        return paths


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
