"""The Gradio handlers of the Project and Export tabs, on the app's `AppState`: adding videos,
the classes and questions (saved into the project as they change, so a reload finds them before any
run), scoring through the background queue, ground truth, exports. Reviewing itself happens in the
browser (zeal_ui/workspace), on the same project records. A handler that fails raises gr.Error with
one line that says what to do, and leaves the project as it was.
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from zeal.config import TOP_K_RANGE, LLMConfig, list_presets, preset_info
from zeal.errors import ModelError, QueryError, ZealError
from zeal.review import NOT_REJECTED, select
from zeal.types import ACCEPTED
from zeal_ui import notices
from zeal_ui.app_state import AppState

log = logging.getLogger(__name__)

QUERY_HEADERS = ["class", "start question", "end question", "description"]
EXPORT_DEFAULT = ("csv", "json")
# What an export holds: the choice on the Export tab -> review states written.
EXPORT_CHOICES = {"accepted only": (ACCEPTED,), "accepted + unreviewed": NOT_REJECTED}
PROPOSAL_CHOICES = {"review set (one candidate per action)": "review", "all proposals (as in the paper)": "all"}
SCOPE_VIDEO, SCOPE_PROJECT = "the open video", "the whole project"
# The export's warning about local video paths, said with the field of this page that fixes it.
APP_LOCAL_MEDIA_WARNING = ("The Label Studio tasks name the video by its path on this machine, which Label Studio "
                           "cannot open: fill in 'Media URL prefix' above with where Label Studio fetches the "
                           "video (e.g. /data/local-files/?d=videos/) and export again; the README's \"Use it "
                           "from Label Studio\" shows the ways.")
DEFAULT_LIBRARY = "thumos14"

def _gr():
    import gradio as gr

    return gr


def _error(exc: BaseException | str, secret: str | None = None, folders=()) -> Exception:
    """An engine error as the gr.Error the page shows (one line of text, secret removed, no server
    folder; see zeal_ui.notices)."""
    return notices.error(str(exc) or type(exc).__name__, folders, secret)


def models_markdown(pipeline) -> str:
    """The settings panel: presets with sizes and whether their models are on this machine, the models
    in use, and how to get the missing ones (zeal.scorers.availability: file system only, no network)."""
    from zeal.scorers.availability import model_availability

    def where(status) -> str:
        return status.where if status.present else "**missing**"

    from zeal.config import NO_GPU_PRESET
    from zeal.scorers.device import gpu_present

    lines = ["| preset | models | image budget | download | LVLM | CLIP |", "|---|---|---|---|---|---|"]
    for name in list_presets():
        p = preset_info(name)
        c = p.config
        lvlm, clip = model_availability(c)
        lines.append(f"| **{name}** | {c.lvlm.model} + {c.clip.model} ({c.clip.pretrained}) | {c.lvlm.image_budget} | "
                     f"~{p.approx_size_gb:g} GB | {where(lvlm)} | {where(clip)} |")
    cfg = pipeline.config
    loaded = pipeline.models_loaded()
    lvlm, clip = model_availability(cfg)
    gpu = gpu_present()
    lines += ["", "**In use by this app**",
              f"- device: {'a GPU' if gpu else f'no GPU found, the CPU (the `{NO_GPU_PRESET}` preset is the one made for it, and the default without `--preset`)'}",
              f"- LVLM: `{cfg.lvlm.model}`, image budget {cfg.lvlm.image_budget} ({lvlm.where}; "
              f"{'loaded' if loaded['lvlm'] else 'loads on first run'})",
              f"- CLIP: `{cfg.clip.model}` / `{cfg.clip.pretrained}` ({clip.where}; "
              f"{'loaded' if loaded['clip'] else 'loads on first use'})",
              f"- sampling: {cfg.video.fps:g} frames per second, frames scaled to at most "
              f"{cfg.video.max_side or 'full'} px; score cache: `{cfg.cache_dir}`"]
    lines += [f"- **{s.role.upper()} missing**: {s.fix}" for s in (lvlm, clip) if not s.present]
    lines += ["", "Models load on first use. To use other weights, restart with `--preset`, `--lvlm`, "
              "`--image-budget`, `--clip-model`, `--clip-pretrained` (or the ZEAL_* variables): "
              "`python app.py --help`."]
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


VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".wmv", ".flv")


def panel_signal() -> str:
    """A new value for the list of videos: it asks the server for the list again."""
    return json.dumps({"n": uuid.uuid4().hex[:8]})


def query_dict(rows: list[list[str]]) -> dict[str, dict[str, str]]:
    return {r[0].strip(): {"start": r[1], "end": r[2], "description": r[3]} for r in rows if r[0].strip()}


class Callbacks:
    """Event handlers of one app, on its AppState (project, pipeline, queue, limits)."""

    def __init__(self, state: AppState):
        self.state = state
        self.project = state.project
        self.pipeline = state.pipeline
        self.limits = state.limits

    # --- page load -----------------------------------------------------------------------------
    def restore(self):
        """On page load, the project's setup as it was left (also before any run).
        Outputs: classes, questions, known, top-k, status, videos panel signal, and the export
        choices (scope, include, proposals, formats, media URL prefix)."""
        gr = _gr()
        st = self.project.settings
        rows = [[c, *(st.queries.get(c, {}).get(f, "") for f in ("start", "end", "description"))] for c in st.classes]
        choices = list(dict.fromkeys([*self.library_choices(DEFAULT_LIBRARY), *st.classes]))
        return (gr.update(choices=choices, value=list(st.classes)), rows or None, st.known_classes, st.top_k,
                self.status(), panel_signal(), *self.export_choices())

    def export_choices(self) -> tuple[str, str, str, list[str], str]:
        """The export choices the project last saw, each one checked against what the page offers."""
        from zeal.export import FORMATS

        ex = self.project.settings.export

        def pick(key: str, allowed, default: str) -> str:
            return ex[key] if ex.get(key) in allowed else default

        formats = [f for f in ex.get("formats", EXPORT_DEFAULT) if f in FORMATS]
        return (pick("scope", (SCOPE_VIDEO, SCOPE_PROJECT), SCOPE_VIDEO),
                pick("include", EXPORT_CHOICES, next(iter(EXPORT_CHOICES))),
                pick("proposals", PROPOSAL_CHOICES, next(iter(PROPOSAL_CHOICES))),
                formats, str(ex.get("media_url", "")))

    def set_export_choices(self, scope: str | None, include: str | None, proposals: str | None,
                           formats: Sequence[str] | None, media_url: str | None) -> None:
        """Remembered in the project, for the next export (also from another browser)."""
        with self.project.lock:
            self.project.settings.export = {"scope": scope or SCOPE_VIDEO, "include": include or "",
                                            "proposals": proposals or "", "formats": list(formats or []),
                                            "media_url": str(media_url or "")[:2000]}
            self._save_settings()

    def status(self, note: str = "") -> str:
        """The line under the list of videos: what the last action did (the list shows the rest), as
        the HTML of its text (user strings in it stay text)."""
        if not note and not self.project.videos:
            note = "No video yet: upload videos or add a folder; then choose classes."
        elif not note and not self._settings_ready():
            note = "Choose classes and fill their questions: the videos are scored then."
        return notices.as_html(note, self.state.server_folders())

    def _error(self, exc: BaseException | str, secret: str | None = None) -> Exception:
        return _error(exc, secret, self.state.server_folders())

    def _warn(self, message: str) -> None:
        notices.warning(message, self.state.server_folders())

    # --- 1. videos -----------------------------------------------------------------------------
    def _add(self, paths: Sequence[str], copy: bool) -> str:
        from zeal.video import probe

        added, back, known, refused = [], [], [], []
        for path in paths:
            name = Path(path).name
            try:
                info = probe(path)
                if info.duration_s > self.limits.max_duration_min * 60:
                    refused.append(f"{name} lasts {info.duration_s / 60:.1f} min, longer than this app's limit of "
                                   f"{self.limits.max_duration_min:g} min (restart with --max-duration-min)")
                    continue
                entry, new = self.project.add_video(path, copy=copy)
            except ZealError as exc:
                refused.append(str(exc).replace(str(path), name))
                continue
            for w in info.warnings:  # e.g. a timestamp jump: analysed as far as the frames go
                self._warn(f"{name}: {w}")
            (known if not new else added if entry.status in ("new", "failed") else back).append(entry)
        if refused and not (added or back or known):  # nothing came in: one clear error, nothing changed
            raise self._error("Not added: " + "; ".join(refused))
        ready = self._settings_ready()
        if added and ready and self.state.queue:
            self.state.queue.enqueue([e.id for e in added])
        parts = []
        if back:
            parts.append(f"Back with its review (removed earlier): {', '.join(e.name for e in back)}.")
        if added:
            parts.append(f"Added {len(added)} video(s)" + (": scoring them in the background." if ready else
                         "; choose classes and questions, then score them."))
        if known:
            parts.append(f"Already in the project (same content): {', '.join(e.name for e in known)}.")
        if refused:
            parts.append("Not added: " + "; ".join(refused) + ".")
        return " ".join(parts) or "No video given."

    def add_uploads(self, files: Sequence[Any] | None):
        """Uploaded files (several at once) are copied into the project. Outputs: status, panel."""
        paths = [getattr(f, "name", f) for f in (files or [])]
        return self.status(self._add([str(p) for p in paths], copy=True)), panel_signal()

    def add_folder(self, folder: str | None):
        """Every video file of a folder on the server, read in place. Outputs: status, panel."""
        root = Path(str(folder or "").strip()).expanduser()
        try:
            usable = bool(str(folder or "").strip()) and root.is_dir()
        except OSError:  # a name too long for the file system, or a folder that cannot be read
            usable = False
        if not usable:
            raise self._error(f"{root} is not a folder on the server: give the full path of a folder of videos")
        paths = sorted(str(p) for p in root.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        if not paths:
            raise self._error(f"{root} holds no video file ({', '.join(VIDEO_SUFFIXES)})")
        return self.status(self._add(paths, copy=False)), panel_signal()

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

    def set_classes(self, classes: Sequence[str] | None, table: Any):
        """The chosen classes changed: their question rows (kept from earlier edits, else from the
        library, else empty to fill); the project remembers the questions of every class it had,
        so removing a class and choosing it again brings its questions back."""
        st = self.project.settings
        have = {**{c: [c, q["start"], q["end"], q["description"]] for c, q in st.queries.items()},
                **{r[0]: r for r in query_rows(table)}}
        rows = rows_for_classes(classes or [], [have[c] for c in (classes or []) if c in have])
        with self.project.lock:
            st.classes = [r[0] for r in rows]
            st.queries.update({k: v for k, v in query_dict(rows).items() if any(v.values())})
            self._save_settings()
        return rows or None

    def set_questions(self, table: Any):
        """The questions table was edited: saved into the project at once."""
        rows = query_rows(table)
        with self.project.lock:
            self.project.settings.queries.update(query_dict(rows))
            self.project.settings.classes = [r[0].strip() for r in rows if r[0].strip()]
            self._save_settings()

    def _top_k(self, top_k: Any) -> int:
        """The top-k field as a whole number within its range, else a gr.Error naming the range."""
        if top_k is None or top_k == "":
            return self.project.settings.top_k
        try:
            value = float(top_k)
        except (TypeError, ValueError):
            value = float("nan")
        if not TOP_K_RANGE.holds(value):
            raise self._error(f"CLIP's top-k is {top_k!r}: give {TOP_K_RANGE.describe()}")
        return int(value)

    def set_options(self, known: bool, top_k: float):
        k = self._top_k(top_k)
        with self.project.lock:
            self.project.settings.known_classes = bool(known)
            self.project.settings.top_k = k
            self._save_settings()

    def _save_settings(self) -> None:
        try:
            self.project.save()
        except ZealError as exc:
            raise self._error(exc) from None

    def _settings_ready(self) -> bool:
        st = self.project.settings
        return bool(st.classes) and all(all((st.queries.get(c) or {}).get(f, "").strip()
                                            for f in ("start", "end", "description")) for c in st.classes)

    def load_queries(self, path: str | None, classes: Sequence[str] | None):
        """A query JSON file: its classes are added to the chosen ones (none is removed) and their
        questions replace those of the same classes. Outputs: classes, questions."""
        gr = _gr()
        if not path:
            return gr.update(), gr.update()
        from zeal.queries import QuerySet

        try:
            qs = QuerySet.load(path)
        except ZealError as exc:
            raise self._error(exc) from None
        with self.project.lock:
            self.project.settings.queries.update({q.name: {"start": q.start, "end": q.end, "description": q.description}
                                                  for q in qs})
        names = list(dict.fromkeys([*(classes or []), *qs.names]))
        rows = self.set_classes(names, None)
        return gr.update(choices=list(dict.fromkeys([*self.library_choices(DEFAULT_LIBRARY), *names])), value=names), rows

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
            raise self._error(exc, key) from None
        except Exception as exc:  # a client library failure must not echo the key either
            raise self._error(f"LLM request failed: {type(exc).__name__}: {exc}", key) from None
        rows = [[q.name, q.start, q.end, q.description] for q in qs]
        self.set_questions(rows)
        return rows

    def propose_classes(self, current: str | None, library: str, top_k: float, classes: Sequence[str] | None):
        """CLIP's ranking of the library's classes for the open video (or the first one): shown as a
        list to tick; nothing changes until the annotator adds the ticked ones.
        Outputs: the ranking (choices, the top-k not chosen yet ticked), its text."""
        gr = _gr()
        vid = current if current in self.project.videos else next((e.id for e in self.project.entries()), None)
        path = self.project.video_path(vid) if vid else None
        if path is None:
            raise self._error("add a video first (upload one or add a folder): CLIP ranks the classes for a video")
        names = self.library_choices(library)
        k = self._top_k(top_k)
        try:
            with self.pipeline.cache.watch() as cache_notes:
                ranked = self.pipeline.rank_classes(str(path), names)
        except ModelError as exc:
            raise self._error(exc) from None  # the engine's message names the model and the fix
        except ZealError as exc:
            raise self._error(str(exc).replace(str(path), self.project.videos[vid].name)) from None
        for note in cache_notes.messages:  # the cache is not needed to rank, but the user should know
            self._warn(note)
        chosen = set(classes or [])
        labels = [(f"{n} ({v:.3f})", n) for n, v in ranked]
        ticked = [n for n, _ in ranked[:k] if n not in chosen]
        text = (notices.as_html(f"CLIP's ranking of {library} for {self.project.videos[vid].name}: tick the classes "
                                "to add, then press") + " <em>Add ticked classes</em> (nothing is removed).")
        return gr.update(choices=labels, value=ticked, visible=True), text

    def add_ticked(self, ticked: Sequence[str] | None, classes: Sequence[str] | None, table: Any):
        """Add the ticked classes of CLIP's ranking to the chosen ones. Outputs: classes, questions."""
        gr = _gr()
        names = list(dict.fromkeys([*(classes or []), *(ticked or [])]))
        rows = self.set_classes(names, table)
        choices = list(dict.fromkeys([*self.library_choices(DEFAULT_LIBRARY), *names]))
        return gr.update(choices=choices, value=names), rows

    def save_queries(self, table: Any):
        """The question table as a query JSON file to download."""
        try:
            qs = queries_from_table(table)
        except ZealError as exc:
            raise self._error(exc) from None
        try:
            path = qs.save(self._downloads() / "queries.json")
        except OSError as exc:
            raise self._error(f"cannot write queries.json ({exc.strerror or exc}): the server's download folder "
                              "is full or read-only") from None
        return str(path)

    def _downloads(self) -> Path:
        try:
            return self.state.download_folder()
        except OSError as exc:
            raise self._error(f"cannot prepare the download ({exc.strerror or exc}): the server's download folder "
                              "is full or read-only; free some space there") from None

    # --- 3. scoring ----------------------------------------------------------------------------
    def score(self, current: str | None, table: Any):
        """Score the open video again (first in the queue, in the background) with the questions as
        they are now; every interval a person touched stays. Outputs: status, panel signal."""
        self.set_questions(table)
        try:
            queries_from_table(table)
        except ZealError as exc:
            raise self._error(exc) from None
        if current not in self.project.videos:
            raise self._error("open a video first: click its name in the list of videos")
        self.state.queue.enqueue([current], front=True)
        name = self.project.videos[current].name
        return self.status(f"{name} is first in the scoring queue; the Review tab shows it when it is done "
                           "(your corrections stay)."), panel_signal()

    def score_all(self, table: Any):
        """Queue every video not scored yet (or failed). Outputs: status, panel signal."""
        self.set_questions(table)
        try:
            queries_from_table(table)
        except ZealError as exc:
            raise self._error(exc) from None
        ids = [e.id for e in self.project.entries() if e.status in ("new", "failed")]
        self.state.queue.enqueue(ids)
        return self.status(f"{len(ids)} video(s) queued for scoring." if ids else "Every video is scored or queued."), \
            panel_signal()

    def cancel(self):
        stopped = self.state.queue.cancel() if self.state.queue else None
        notices.info("Stopping: the run ends after the current chunk of frames; its scores are kept in the cache."
                     if stopped else "Nothing is being scored.")

    def load_ground_truth(self, path: str | None):
        """Ground truth for the project's videos, matched by file name. Outputs: status."""
        from zeal.evaluate import load_ground_truth

        if not path:
            return self.status()
        try:
            matched = self.project.set_ground_truth(load_ground_truth(path))
        except ZealError as exc:
            raise self._error(exc) from None
        listing = ", ".join(f"{name} ({n})" for name, n in matched.items())
        return self.status(f"Ground truth loaded for {len(matched)} video(s): {listing}. Reopen a video to see it.")

    # --- 4. export -------------------------------------------------------------------------------
    def export(self, scope: str | None, current: str | None, formats: Sequence[str] | None, include: str | None,
               proposals: str | None, media_url: str | None = None):
        """The open video, or the whole project, in the chosen formats; returns the files.
        media_url: where web tools (Label Studio, VIA) fetch the videos (see zeal.export)."""
        import warnings

        from zeal.errors import ExportWarning
        from zeal.export import LOCAL_MEDIA_WARNING, export
        from zeal.project import export_project

        states = EXPORT_CHOICES.get(include or "", EXPORT_CHOICES["accepted only"])
        which = PROPOSAL_CHOICES.get(proposals or "", "review")
        formats = list(formats or EXPORT_DEFAULT)
        prefix = (media_url or "").strip() or None
        out_dir = self._downloads()
        empty = False
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ExportWarning)
                if scope == SCOPE_PROJECT:
                    paths = export_project(self.project, out_dir, formats, states=states, proposals=which,
                                           media_url=prefix)
                else:
                    if current not in self.project.videos:
                        raise self._error("open a video first (or export the whole project)")
                    rec = self.project.record(current)
                    if rec.result is None:
                        raise self._error("nothing to export yet: this video is not scored")
                    with rec.lock:
                        paths = [p for fmt in formats
                                 for p in export(rec.result, fmt, out_dir, states=states, proposals=which,
                                                 video_id=Path(self.project.videos[current].name).stem,
                                                 media_url=prefix)]
                        empty = not select(rec.result, states, which)
        except ZealError as exc:
            raise self._error(exc) from None
        for w in {str(c.message) for c in caught if issubclass(c.category, ExportWarning)}:
            self._warn(APP_LOCAL_MEDIA_WARNING if w == LOCAL_MEDIA_WARNING else w)
        if empty:
            self._warn("The export holds no interval: accept some in the Review tab first, or choose "
                       "'accepted + unreviewed'.")
        return [str(p) for p in paths]
