"""Write a Result's intervals into the files annotators and evaluators already use.

Formats (name -> files written into the output folder, `<stem>` = the sanitised video id):

=============  =========================================================================================
csv            `<stem>.csv`: video, id, class, start_s, end_s, score, source, state, fps (sorted by start)
json           `<stem>.json`: {"video": VideoInfo fields, "intervals": [the same rows as the CSV]}
labelstudio    `<stem>.labelstudio.json` (tasks with `predictions` of `timelinelabels` regions) and
               `<stem>.labelstudio.xml` (the labeling config to paste into the project settings)
elan           `<stem>.eaf` (ELAN 3.0: tiers per class, overlaps on sibling tiers "<class> #2", each
               with a dependent "<tier> score" tier)
via            `<stem>.via.json` (VIA 3 project: temporal segments z=[t0, t1] seconds)
webvtt         `<stem>.vtt` (one cue per interval, its id as the cue id: "label (score 0.830)")
activitynet    `<stem>.activitynet.json` ({"version", "results": {video_id: [...]}, "external_data"})
cvat           `<stem>.cvat.xml` ("CVAT for video 1.1": one track per interval) and
               `<stem>.cvat-labels.json` (the label specification to paste when creating the task)
=============  =========================================================================================

Time conversion (all our intervals are in seconds of presentation time):

* Seconds are kept as seconds in CSV, JSON, VIA (3 decimals, as VIA itself stores them) and
  ActivityNet (6 decimals).
* Milliseconds (ELAN time slots, WebVTT timestamps): ``ms = floor(t * 1000 + 0.5)`` (round half up);
  an interval shorter than 1 ms after rounding is widened to 1 ms, because both formats need
  end > start. Error: at most 0.5 ms per boundary.
* Label Studio frames use the video's real average fps (``VideoInfo.fps``, also written as
  ``<Video frameRate=...>`` in the config, or as each task's ``data.fps`` read by
  ``frameRate="$fps"`` when one export holds several videos) and Label Studio's convention of 1-based frame numbers with
  an inclusive end: frame ``n`` is shown from ``(n - 1) / fps`` to ``n / fps``. We write
  ``start = round(t0 * fps) + 1`` and ``end = max(start, round(t1 * fps))`` with round half up;
  Label Studio's own reverse conversion gives back ``t0' = (start - 1) / fps`` and ``t1' = end / fps``.
  We round instead of taking floor(t0 * fps) + 1 / ceil(t1 * fps) because floor/ceil can move a boundary
  by almost a whole frame, while rounding keeps each boundary within half a frame (|t0' - t0| <= 0.5/fps,
  |t1' - t1| <= 0.5/fps) for every interval at least one frame long; a shorter interval becomes one
  frame. On a variable-frame-rate video the frame numbers are those of a constant-rate copy at the
  average fps (what Label Studio's player assumes too).
* CVAT frames are the same numbers 0-based (CVAT counts decoded frames from 0): first = start - 1,
  last = end - 1, so the same half-frame bound holds.

Where a web tool finds the video: `media_url=PREFIX` gives PREFIX + the URL-encoded file name
(Label Studio's data.video, VIA's remote file); ELAN always points at the local file.

Which intervals are written: `states` (default: accepted and unreviewed, i.e. all but the rejected)
and `proposals`: "review" (the default) keeps, of the unreviewed model proposals, only the review set
(one candidate per action, see `zeal.review`); "all" keeps the paper's full proposal set, as
evaluation needs. Every interval keeps its id where the format can hold one (CSV/JSON `id`, Label
Studio region id, VIA metadata id, WebVTT cue id, ELAN ANNOTATION_ID, CVAT "zeal_id" attribute), so
a round trip finds the same intervals. Interval text (class names) is written as is wherever the
format allows; XML formats drop the few control characters XML 1.0 cannot hold, and WebVTT
cue text has its line breaks collapsed and `& < >` escaped. Every CSV this project writes is safe
to open in a spreadsheet: a text cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage
return (which a spreadsheet would run as a formula) gets a leading apostrophe (`csv_cell`, the
OWASP rule), and the readers here remove it again (`csv_cell_value`). Times beyond MAX_TIME_S
(11.6 days) are refused with an ExportError rather than overflowing a frame or millisecond count.

File names never come straight from a video or class name: `safe_stem` strips path separators, control
characters, leading dots and characters Windows forbids, so a name like ``../../x`` stays inside the
output folder. Non-ASCII names are kept. Every file is written atomically (a temporary file in the
same folder, then os.replace), so a crash never leaves a half-written export behind.
"""

from __future__ import annotations

import csv
import io
import json
import math
import mimetypes
import os
import re
import time
import unicodedata
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from zeal import jsonio
from zeal.errors import ExportError, ExportWarning
from zeal.atomic import write_atomic
from zeal.palette import class_colors
from zeal.review import NOT_REJECTED, select
from zeal.types import (ACCEPTED, MAX_SCORE, MAX_TIME_S, PREDICTION_COLUMNS, REJECTED, REVIEW_STATES, SOURCES,
                        UNREVIEWED, Interval, Result, VideoInfo)

# Columns of the CSV export and of `intervals_table` rows, in order.
TABLE_COLUMNS = ("video", "id", "class", "start_s", "end_s", "score", "source", "state", "fps")

TIME_DECIMALS = 6  # seconds in CSV/JSON/ActivityNet: microseconds, far below one frame
VIA_DECIMALS = 3  # VIA rounds its temporal coordinates to milliseconds
MS_PER_S = 1000
SCORE_DECIMALS = 3  # scores shown as text (WebVTT cues, ELAN and VIA score fields, CVAT attributes)
MIN_CUE_MS = 1  # ELAN annotations and WebVTT cues need end > start
MAX_STEM_BYTES = 150  # leaves room for ".labelstudio.json" within the usual 255-byte name limit

LS_FROM_NAME = "videoLabels"
LS_TO_NAME = "video"
ELAN_ACTION_TYPE = "zeal-action"
ELAN_SCORE_TYPE = "zeal-score"
ELAN_SCORE_SUFFIX = " score"
VIA_FILE_TYPE_VIDEO = 4
VIA_LOC_LOCAL, VIA_LOC_URI = 1, 2
VIA_ATTR_TEXT, VIA_ATTR_SELECT = 1, 4
VIA_TEMPORAL_ANCHOR = "FILE1_Z2_XY0"  # one file, two temporal coordinates, no spatial ones
ACTIVITYNET_VERSION = "VERSION 1.3"
CVAT_VERSION = "1.1"
CVAT_SCORE_ATTR, CVAT_ID_ATTR = "score", "zeal_id"
CVAT_MAX_LABEL_CHARS = 64  # CVAT's database limit on a label name
LOCAL_MEDIA_WARNING = (
    "the Label Studio tasks point at a local file path, which Label Studio cannot open (its player "
    "asks its own server for the path and gets 404); set media_url= (CLI: --media-url PREFIX) to where "
    "Label Studio can fetch the video, e.g. /data/local-files/?d=videos/ (see the README, "
    "\"Use it from Label Studio\")")

# Path separators, control characters and what Windows forbids in a file name.
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]+://")
_UNSAFE_NAME_CHARS = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                     *(f"LPT{i}" for i in range(1, 10))}
# Characters XML 1.0 cannot carry at all (not even escaped).
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
# An XML ID (NCName, ASCII subset) and the ids ELAN generates itself ("a17").
_XML_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_ELAN_COUNTER_ID = re.compile(r"^a[0-9]+$")
_TRUE_WORDS, _FALSE_WORDS = {"true", "1", "yes", "y"}, {"false", "0", "no", "n"}


@dataclass(frozen=True)
class ExportJob:
    """Everything a writer needs. intervals: already filtered and checked, sorted by start (seconds);
    stem: safe file-name stem; video_id: the id written inside files; media: the video's path (or
    URL) as the result knows it; media_url: where a web tool fetches the video ("" when not set)."""

    result: Result
    intervals: list[Interval]
    out_dir: Path
    stem: str
    video_id: str
    media: str
    media_url: str = ""

    @property
    def labels(self) -> list[str]:
        """Every class of the result in order, then any label only found among the intervals."""
        out = [c.label for c in self.result.classes.values()]
        out += [i.label for i in self.intervals if i.label not in out]
        return list(dict.fromkeys(out))

    def path(self, suffix: str) -> Path:
        return self.out_dir / f"{self.stem}{suffix}"


Writer = Callable[[ExportJob], list[Path]]


# ---------------------------------------------------------------------------------------------
# Small helpers


def round_half_up(x: float) -> int:
    """Nearest integer, halves away from -inf (Python's round() goes to even, which is less
    predictable for users checking a conversion by hand)."""
    return math.floor(x + 0.5)


def seconds_to_ls_frames(start_s: float, end_s: float, fps: float) -> tuple[int, int]:
    """Seconds -> Label Studio (start, end) frame numbers, 1-based, end inclusive (see module doc)."""
    start = round_half_up(start_s * fps) + 1
    return start, max(start, round_half_up(end_s * fps))


def ls_frames_to_seconds(start: int, end: int, fps: float) -> tuple[float, float]:
    """Label Studio 1-based inclusive frame range -> (start_s, end_s) seconds."""
    return (start - 1) / fps, end / fps


def seconds_to_ms(t: float) -> int:
    """Seconds -> integer milliseconds, round half up."""
    return round_half_up(t * MS_PER_S)


def safe_stem(name: str) -> str:
    """A file-name stem made from any video or class name: no path separators, control characters,
    leading/trailing dots or spaces, Windows-forbidden characters or reserved names; at most
    MAX_STEM_BYTES bytes of UTF-8. Non-ASCII letters are kept. Never empty."""
    s = _UNSAFE_NAME_CHARS.sub("_", unicodedata.normalize("NFC", str(name)))
    s = s.strip(" .")  # leading dots: "..", hidden files; trailing ones: Windows drops them
    s = s.encode("utf-8")[:MAX_STEM_BYTES].decode("utf-8", errors="ignore").strip(" .")
    if not s:
        return "video"
    if s.split(".")[0].upper() in _WINDOWS_RESERVED:
        s = "_" + s
    return s


def default_video_id(video: VideoInfo) -> str:
    """The video's file name without folder and extension ("" -> "video"); THUMOS/ActivityNet ids
    are exactly this."""
    stem = PurePosixPath(video.path.replace("\\", "/")).stem
    return stem or "video"


def is_url(text: str) -> bool:
    """True for "scheme://..." (http, https, s3, file, ...)."""
    return bool(_URL.match(text))


def media_address(path: str, prefix: str | None, fallback_name: str = "video") -> str:
    """Where a web tool fetches the video: `prefix` + the URL-encoded file name of `path`
    ("/data/local-files/?d=clips/" and "/v/case 01.mp4" -> "/data/local-files/?d=clips/case%2001.mp4");
    "" without a prefix. Every character but letters, digits and "_.-~" is percent-encoded (UTF-8),
    so "?", "#", "&" and "+" in a name cannot change the URL's meaning."""
    if not prefix:
        return ""
    name = PurePosixPath(str(path).replace("\\", "/")).name or fallback_name
    return prefix + quote(name, safe="")


def _xml_safe(text: str) -> str:
    return _XML_ILLEGAL.sub(" ", text)


def _score_text(score: float) -> str:
    return f"{float(score):.{SCORE_DECIMALS}f}"


def _fps_text(fps: float) -> str:
    # repr keeps every digit (29.97002997002997 for 30000/1001): the frame grid must match exactly.
    return repr(float(fps))


def write_text_atomic(path: Path, text: str) -> Path:
    """Write UTF-8 text to `path` via a temporary file in the same folder and os.replace."""
    try:
        return write_atomic(path, text)
    except OSError as e:
        raise ExportError(f"cannot write {path}: {e.strerror}; choose a folder you can write to and check"
                          " its free space") from e


def _json_text(data: object) -> str:
    # allow_nan=False: NaN/Infinity are not JSON; intervals are checked before, this is the last guard.
    return json.dumps(data, ensure_ascii=False, indent=2, allow_nan=False) + "\n"


def _checked_intervals(result: Result, states: Sequence[str] = NOT_REJECTED, proposals: str = "review"
                       ) -> list[Interval]:
    """The intervals to write (see `zeal.review.select`), sorted by start; ExportError for a
    selection that is not understood or an interval that no format can hold."""
    try:
        chosen = select(result, states, proposals)
    except ValueError as e:
        raise ExportError(str(e)) from None
    out = []
    for iv in chosen:
        where = f"interval {iv.start_s!r}-{iv.end_s!r} s of class {iv.label!r}"
        if not isinstance(iv.label, str) or not iv.label.strip():
            raise ExportError(f"{where} has an empty class name; give it a class before exporting")
        if not all(math.isfinite(float(v)) for v in (iv.start_s, iv.end_s, iv.score)):
            raise ExportError(f"{where} has a time or score that is not a number (score {iv.score!r}); "
                              "fix or delete it before exporting")
        if iv.start_s < 0 or iv.end_s < iv.start_s:
            raise ExportError(f"{where} must have 0 <= start <= end; fix its times before exporting")
        if iv.end_s > MAX_TIME_S or abs(iv.score) > MAX_SCORE:
            raise ExportError(f"{where} lies beyond any video (times at most {MAX_TIME_S:g} s, scores at most "
                              f"{MAX_SCORE:g}); fix or delete it before exporting")
        out.append(iv)
    return out


# ---------------------------------------------------------------------------------------------
# Tables: CSV / JSON / evaluation predictions


def _row(iv: Interval, video_id: str, fps: float) -> dict:
    return {"video": video_id, "id": iv.id, "class": iv.label, "start_s": round(float(iv.start_s), TIME_DECIMALS),
            "end_s": round(float(iv.end_s), TIME_DECIMALS), "score": round(float(iv.score), TIME_DECIMALS),
            "source": iv.source, "state": iv.state, "fps": float(fps)}


def intervals_table(result: Result, states: Sequence[str] = REVIEW_STATES, proposals: str = "all",
                    video_id: str | None = None) -> list[dict]:
    """One dict per interval (keys TABLE_COLUMNS), sorted by start. Times in seconds, fps of the
    video; by default every interval (rejected ones too, see `state`)."""
    vid = video_id or default_video_id(result.video)
    return [_row(iv, vid, result.video.fps) for iv in _checked_intervals(result, states, proposals)]


def _table_rows(job: ExportJob) -> list[dict]:
    return [_row(iv, job.video_id, job.result.video.fps) for iv in job.intervals]


# A spreadsheet runs a cell that begins with one of these as a formula (OWASP "CSV injection"):
# such a text cell gets a leading apostrophe. A cell that begins with an apostrophe gets one more,
# so that `csv_cell_value` gives every text back exactly.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A value as a CSV cell that no spreadsheet runs as a formula; numbers stay numbers."""
    if isinstance(value, str) and value.startswith((*FORMULA_STARTS, "'")):
        return "'" + value
    return value


def csv_cell_value(text: str) -> str:
    """The text a `csv_cell` stands for (the apostrophe it added removed)."""
    if text.startswith("'") and text[1:].startswith((*FORMULA_STARTS, "'")):
        return text[1:]
    return text


def _csv_text(columns: Iterable[str], rows: Iterable[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    w.writerows({k: csv_cell(v) for k, v in row.items()} for row in rows)
    return buf.getvalue()


def write_csv(job: ExportJob) -> list[Path]:
    """`<stem>.csv`, columns TABLE_COLUMNS, one row per interval sorted by start (seconds)."""
    return [write_text_atomic(job.path(".csv"), _csv_text(TABLE_COLUMNS, _table_rows(job)))]


def write_json(job: ExportJob) -> list[Path]:
    """`<stem>.json`: {"video": VideoInfo fields, "intervals": rows as in the CSV}."""
    data = {"video": job.result.video.to_dict(), "intervals": _table_rows(job)}
    return [write_text_atomic(job.path(".json"), _json_text(data))]


def _parse_state(row: dict, source: str, where: str) -> str:
    """The review state of a row: its `state`, or (files of earlier versions) its `accepted` flag."""
    state = str(row.get("state") or "").strip().lower()
    if state:
        if state not in REVIEW_STATES:
            raise ExportError(f"{where}: state {state!r} must be one of {', '.join(REVIEW_STATES)}")
        return state
    value = row.get("accepted", True)
    word = value if isinstance(value, bool) else str(value).strip().lower()
    if word is True or word in _TRUE_WORDS or word == "":
        return ACCEPTED if source == "human" else UNREVIEWED
    if word is False or word in _FALSE_WORDS:
        return REJECTED
    raise ExportError(f"{where}: accepted={value!r} is not true/false")


def _row_interval(row: dict, where: str) -> Interval:
    missing = [k for k in ("class", "start_s", "end_s", "score") if row.get(k) in (None, "")]
    if missing:
        raise ExportError(f"{where}: missing {', '.join(missing)}; "
                          f"expected columns {', '.join(TABLE_COLUMNS)}")
    try:
        start, end, score = float(row["start_s"]), float(row["end_s"]), float(row["score"])
    except (TypeError, ValueError) as e:
        raise ExportError(f"{where}: start_s/end_s/score must be numbers ({e})") from None
    if not (math.isfinite(start) and math.isfinite(end) and math.isfinite(score)) or not 0 <= start <= end:
        raise ExportError(f"{where}: needs finite numbers with 0 <= start_s <= end_s")
    if end > MAX_TIME_S or abs(score) > MAX_SCORE:
        raise ExportError(f"{where}: end_s {end:g} or score {score:g} is out of range (times at most "
                          f"{MAX_TIME_S:g} s, scores at most {MAX_SCORE:g})")
    source = str(row.get("source") or "model")
    if source not in SOURCES:
        raise ExportError(f"{where}: source {source!r} must be one of {', '.join(SOURCES)}")
    return Interval(start, end, str(row["class"]), score, source, _parse_state(row, source, where),
                    id=str(row.get("id") or ""))


def read_intervals(path: str | os.PathLike) -> list[Interval]:
    """Intervals from a CSV or JSON written by this module (seconds). ExportError if unreadable."""
    path = Path(path)
    kind = path.suffix.lower()
    if kind not in (".csv", ".json"):
        raise ExportError(f"cannot read intervals from {path}: only .csv and .json are supported")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise ExportError(f"cannot read intervals from {path}: {e}; give a .csv or .json export") from e
    if kind == ".csv":
        rows = [{k: csv_cell_value(v) if isinstance(v, str) else v for k, v in r.items()}
                for r in csv.DictReader(io.StringIO(text, newline=""))]
    else:
        try:
            data = jsonio.loads(text)
        except (json.JSONDecodeError, jsonio.JSONLimitError) as e:
            raise ExportError(f"{path} is not valid JSON ({e}); give a .json written by zeal export") from None
        rows = data.get("intervals") if isinstance(data, dict) else data
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ExportError(f"{path} has no list of intervals; expected {{\"intervals\": [...]}}")
    return [_row_interval(r, f"{path} row {k + 1}") for k, r in enumerate(rows)]


def predictions_rows(result: Result, video_id: str | None = None) -> list[dict]:
    """Evaluation rows {video-id, t-start, t-end, label, score} (seconds): the paper's full proposal
    set and every interval a person made, all but the rejected."""
    vid = video_id or default_video_id(result.video)
    return [{"video-id": vid, "t-start": round(float(iv.start_s), TIME_DECIMALS),
             "t-end": round(float(iv.end_s), TIME_DECIMALS), "label": iv.label,
             "score": round(float(iv.score), TIME_DECIMALS)}
            for iv in _checked_intervals(result, NOT_REJECTED, proposals="all")]


def write_predictions_csv(rows: Iterable[dict], path: str | os.PathLike) -> Path:
    """Write evaluation rows (PREDICTION_COLUMNS) to a CSV file, atomically; creates the folder."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"cannot create {path.parent}: {e.strerror}") from e
    return write_text_atomic(path, _csv_text(PREDICTION_COLUMNS, rows))


# ---------------------------------------------------------------------------------------------
# Label Studio


LS_FPS_FROM_TASK = "$fps"  # frameRate read from each task's data.fps: videos of different frame rates


def labelstudio_config(labels: Iterable[str], fps: float | str) -> str:
    """The labeling config XML: <Video frameRate=real fps> (or LS_FPS_FROM_TASK, each task's own) and
    one <Label> per class, coloured as in the app (zeal.palette)."""
    import xml.etree.ElementTree as ET  # noqa: PLC0415 (stdlib, but only needed here)

    labels = list(labels)
    colors = class_colors(labels)
    view = ET.Element("View")
    ET.SubElement(view, "Video", name=LS_TO_NAME, value="$video",
                  frameRate=fps if fps == LS_FPS_FROM_TASK else _fps_text(fps))
    timeline = ET.SubElement(view, "TimelineLabels", name=LS_FROM_NAME, toName=LS_TO_NAME)
    for label in labels:
        ET.SubElement(timeline, "Label", value=_xml_safe(label), background=colors[label])
    ET.indent(view)
    return ET.tostring(view, encoding="unicode") + "\n"


def labelstudio_regions(intervals: Iterable[Interval], fps: float, from_name: str = LS_FROM_NAME,
                        to_name: str = LS_TO_NAME) -> list[dict]:
    """One `timelinelabels` region per interval, frames at `fps` (the config's frameRate: Label
    Studio turns frames back into seconds with it), region id = interval id, score in [0, 1]."""
    regions = []
    for iv in intervals:
        start, end = seconds_to_ls_frames(iv.start_s, iv.end_s, fps)
        regions.append({"id": iv.id, "type": "timelinelabels", "from_name": from_name, "to_name": to_name,
                        "value": {"ranges": [{"start": start, "end": end}],
                                  "timelinelabels": [_xml_safe(iv.label)]},
                        "score": float(iv.score)})
    return regions


def labelstudio_prediction(regions: list[dict]) -> dict:
    """A Label Studio prediction holding `regions`; its score is the mean region score (0 if none)."""
    from zeal import __version__  # noqa: PLC0415 (zeal/__init__ may import this module one day)

    mean = sum(r["score"] for r in regions) / len(regions) if regions else 0.0
    return {"model_version": f"zeal-{__version__}", "score": mean, "result": regions}


def labelstudio_task(result: Result, intervals: list[Interval], media: str) -> dict:
    """One Label Studio task: {"data": {"video": media, "fps": its fps}, "predictions": [timelinelabels
    regions]} (data.fps is what a config with frameRate="$fps" reads).

    Every interval given (human-edited ones too) becomes a prediction region, so the annotator
    reviews them all in one place."""
    fps = float(result.video.fps)
    if not (math.isfinite(fps) and fps > 0):
        raise ExportError(f"video {result.video.path!r} has fps {fps!r}; Label Studio needs frame "
                          "numbers, so probe the video again or export as csv/json instead")
    return {"data": {"video": media, "fps": fps},
            "predictions": [labelstudio_prediction(labelstudio_regions(intervals, fps))]}


def write_labelstudio(job: ExportJob) -> list[Path]:
    """`<stem>.labelstudio.json` (a task list to import) and `<stem>.labelstudio.xml` (its config).
    data.video is job.media_url; without one, the local path, with an ExportWarning."""
    media = job.media_url or job.media
    task = labelstudio_task(job.result, job.intervals, media)
    if not job.media_url and not is_url(job.media):
        warnings.warn(LOCAL_MEDIA_WARNING, ExportWarning, stacklevel=3)  # points at the export() call
    return [write_text_atomic(job.path(".labelstudio.json"), _json_text([task])),
            write_text_atomic(job.path(".labelstudio.xml"),
                              labelstudio_config(job.labels, job.result.video.fps))]


# ---------------------------------------------------------------------------------------------
# ELAN


def _media_urls(media: str, out_dir: Path) -> tuple[str, str]:
    """(MEDIA_URL, RELATIVE_MEDIA_URL) for ELAN: absolute file URL and one relative to the .eaf."""
    if not media:
        return "", ""
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]+://", media):  # already a URL
        return media, ""
    p = Path(media).absolute()
    try:
        rel = os.path.relpath(p, out_dir.absolute())
    except ValueError:  # another drive on Windows: no relative path
        return p.as_uri(), ""
    rel = Path(rel).as_posix()
    return p.as_uri(), quote(rel if rel.startswith("../") else "./" + rel)


def _unique(name: str, taken: set[str]) -> str:
    out, k = name, 2
    while out in taken:
        out, k = f"{name} #{k}", k + 1
    taken.add(out)
    return out


def stack_rows(spans: Sequence[tuple[int, int]]) -> list[int]:
    """Row of each (start, end) span so that no row holds two overlapping spans (touching ones,
    end == next start, share a row): spans in start order go to the lowest row that is free by
    then. As few rows as the deepest overlap needs."""
    rows = [0] * len(spans)
    row_end: list[int] = []  # end of the last span placed in each row
    for k in sorted(range(len(spans)), key=lambda k: spans[k]):
        start, end = spans[k]
        free = next((r for r, last in enumerate(row_end) if last <= start), len(row_end))
        if free == len(row_end):
            row_end.append(end)
        else:
            row_end[free] = end
        rows[k] = free
    return rows


class _ElanIds:
    """ANNOTATION_IDs: an interval keeps its own id where it is a valid, unused XML ID (so a round
    trip finds it); everything else gets ELAN's own "a<n>" form, never colliding with either."""

    def __init__(self, intervals: Sequence[Interval]):
        self.taken: set[str] = set()
        self.own: dict[int, str] = {}
        for k, iv in enumerate(intervals):
            if _XML_ID.match(iv.id) and not _ELAN_COUNTER_ID.match(iv.id) and iv.id not in self.taken:
                self.own[k] = iv.id
                self.taken.add(iv.id)
        self.counter = 0

    def for_interval(self, k: int) -> str:
        return self.own.get(k) or self.fresh()

    def fresh(self) -> str:
        self.counter += 1
        return f"a{self.counter}"


def write_elan(job: ExportJob) -> list[Path]:
    """`<stem>.eaf`, EAF 3.0. Time-alignable tiers per class (annotation value = the class name):
    overlapping intervals of one class go on numbered sibling tiers ("Diving", "Diving #2", ...),
    because ELAN keeps a tier free of overlaps and would silently cut or delete a neighbour the
    first time a boundary is moved. Each class tier has a dependent "<tier> score" tier
    (Symbolic_Association) holding "0.830" or "0.830 (human)", so the label stays clean for editing
    and for ELAN's controlled vocabularies. Times are integer milliseconds; every annotation has
    its own two time slots, so dragging one boundary never moves another annotation. An interval's
    id is its ANNOTATION_ID where it is a valid XML ID. ELAN opens the local video file (absolute
    and relative to the .eaf), not media_url."""
    import xml.etree.ElementTree as ET  # noqa: PLC0415

    root = ET.Element("ANNOTATION_DOCUMENT", {
        "AUTHOR": "ZEAL", "DATE": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "FORMAT": "3.0", "VERSION": "3.0", "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
        "xsi:noNamespaceSchemaLocation": "http://www.mpi.nl/tools/elan/EAFv3.0.xsd"})
    header = ET.SubElement(root, "HEADER", MEDIA_FILE="", TIME_UNITS="milliseconds")
    media_url, relative_url = _media_urls(job.media, job.out_dir)
    if media_url:
        mime = mimetypes.guess_type(media_url)[0] or "video/*"
        desc = {"MEDIA_URL": media_url, "MIME_TYPE": mime}
        if relative_url:
            desc["RELATIVE_MEDIA_URL"] = relative_url
        ET.SubElement(header, "MEDIA_DESCRIPTOR", desc)

    # Time slots in chronological order (ELAN expects TIME_ORDER sorted), two per annotation.
    spans = []
    for iv in job.intervals:
        t0 = seconds_to_ms(iv.start_s)
        spans.append((t0, max(t0 + MIN_CUE_MS, seconds_to_ms(iv.end_s))))
    order = sorted(((ms, k, side) for k, span in enumerate(spans) for side, ms in enumerate(span)))
    slot_id = {}
    time_order = ET.SubElement(root, "TIME_ORDER")
    for n, (ms, k, side) in enumerate(order, start=1):
        slot_id[k, side] = f"ts{n}"
        ET.SubElement(time_order, "TIME_SLOT", TIME_SLOT_ID=f"ts{n}", TIME_VALUE=str(ms))

    taken: set[str] = set()
    class_tier = {label: _unique(_xml_safe(label), taken) for label in job.labels}  # names reserved first
    ids = _ElanIds(job.intervals)
    for label in job.labels:
        members = [k for k, iv in enumerate(job.intervals) if iv.label == label]
        rows = stack_rows([spans[k] for k in members])
        for row in range(max(rows, default=0) + 1):
            tier_id = class_tier[label] if row == 0 else _unique(f"{class_tier[label]} #{row + 1}", taken)
            tier = ET.SubElement(root, "TIER", TIER_ID=tier_id, LINGUISTIC_TYPE_REF=ELAN_ACTION_TYPE)
            scores = []
            for k in (m for m, r in zip(members, rows) if r == row):
                iv = job.intervals[k]
                ann_id = ids.for_interval(k)
                ann = ET.SubElement(ET.SubElement(tier, "ANNOTATION"), "ALIGNABLE_ANNOTATION",
                                    ANNOTATION_ID=ann_id, TIME_SLOT_REF1=slot_id[k, 0],
                                    TIME_SLOT_REF2=slot_id[k, 1])
                ET.SubElement(ann, "ANNOTATION_VALUE").text = _xml_safe(label)
                scores.append((ann_id, _score_text(iv.score) + (" (human)" if iv.source == "human" else "")))
            # Right after its class tier, so PARENT_REF always points backwards in the file.
            score_tier = ET.SubElement(root, "TIER", TIER_ID=_unique(tier_id + ELAN_SCORE_SUFFIX, taken),
                                       LINGUISTIC_TYPE_REF=ELAN_SCORE_TYPE, PARENT_REF=tier_id)
            for ref, text in scores:
                ann = ET.SubElement(ET.SubElement(score_tier, "ANNOTATION"), "REF_ANNOTATION",
                                    ANNOTATION_ID=ids.fresh(), ANNOTATION_REF=ref)
                ET.SubElement(ann, "ANNOTATION_VALUE").text = text
    # ELAN numbers the annotations it creates from here on.
    ET.SubElement(header, "PROPERTY", NAME="lastUsedAnnotationId").text = str(ids.counter)

    ET.SubElement(root, "LINGUISTIC_TYPE", LINGUISTIC_TYPE_ID=ELAN_ACTION_TYPE, TIME_ALIGNABLE="true",
                  GRAPHIC_REFERENCES="false")
    ET.SubElement(root, "LINGUISTIC_TYPE", LINGUISTIC_TYPE_ID=ELAN_SCORE_TYPE,
                  CONSTRAINTS="Symbolic_Association", TIME_ALIGNABLE="false", GRAPHIC_REFERENCES="false")
    ET.SubElement(root, "CONSTRAINT", STEREOTYPE="Symbolic_Association",
                  DESCRIPTION="1-1 association with a parent annotation")
    ET.indent(root)
    text = '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
    return [write_text_atomic(job.path(".eaf"), text)]


# ---------------------------------------------------------------------------------------------
# VIA 3


def via_project(job: ExportJob) -> dict:
    """The VIA 3 project dict: one video file, a select attribute "action" (one option per class)
    and a text attribute "score"; one temporal segment (z = [t0, t1] seconds, xy = []) per interval.
    A local video gets loc=1 (VIA asks the user to pick the file once); media_url (or a video that
    is a URL already) gets loc=2, which VIA fetches itself."""
    labels = job.labels
    option_id = {label: str(k) for k, label in enumerate(labels)}
    remote = job.media_url or (job.media if is_url(job.media) else "")
    fname = remote or PurePosixPath(job.media.replace("\\", "/")).name or job.video_id
    metadata = {}
    for iv in job.intervals:
        metadata[f"1_{iv.id}"] = {
            "vid": "1", "flg": 0,
            "z": [round(float(iv.start_s), VIA_DECIMALS), round(float(iv.end_s), VIA_DECIMALS)],
            "xy": [], "av": {"1": option_id[iv.label], "2": _score_text(iv.score)}}
    return {
        "project": {"pid": "__VIA_PROJECT_ID__", "rev": "__VIA_PROJECT_REV_ID__",
                    "rev_timestamp": "__VIA_PROJECT_REV_TIMESTAMP__",
                    "pname": f"ZEAL prelabels: {job.video_id}",
                    "creator": "ZEAL", "created": int(time.time() * MS_PER_S), "data_format_version": "3.1.1",
                    "vid_list": ["1"]},
        "config": {"file": {"loc_prefix": {"1": "", "2": "", "3": "", "4": ""}},
                   "ui": {"file_content_align": "center"}},
        "attribute": {
            "1": {"aname": "action", "anchor_id": VIA_TEMPORAL_ANCHOR, "type": VIA_ATTR_SELECT,
                  "desc": "ZEAL class", "options": {v: k for k, v in option_id.items()},
                  "default_option_id": ""},
            "2": {"aname": "score", "anchor_id": VIA_TEMPORAL_ANCHOR, "type": VIA_ATTR_TEXT, "desc": "",
                  "options": {}, "default_option_id": ""}},
        "file": {"1": {"fid": 1, "fname": fname, "type": VIA_FILE_TYPE_VIDEO,
                       "loc": VIA_LOC_URI if remote else VIA_LOC_LOCAL, "src": remote}},
        "view": {"1": {"fid_list": [1]}},
        "metadata": metadata,
    }


def write_via(job: ExportJob) -> list[Path]:
    """`<stem>.via.json`, a VIA 3 project (see via_project)."""
    return [write_text_atomic(job.path(".via.json"), _json_text(via_project(job)))]


# ---------------------------------------------------------------------------------------------
# WebVTT


def vtt_timestamp(ms: int) -> str:
    """Integer milliseconds -> "HH:MM:SS.mmm" (hours grow past two digits if needed)."""
    s, milli = divmod(int(ms), MS_PER_S)
    m, s = divmod(s, 60)
    h, m = divmod(m, 60)
    return f"{h:02d}:{m:02d}:{s:02d}.{milli:03d}"


def _vtt_text(text: str) -> str:
    # One line per cue (a blank line would end the cue); & < > escaped as the WebVTT spec asks,
    # which also keeps "-->" out of the payload.
    text = " ".join(text.split())
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_webvtt(job: ExportJob) -> list[Path]:
    """`<stem>.vtt`: one cue per interval, "label (score 0.830)" (3 decimals: 0.999 must not read
    as 1.00), in start order; the cue id is the interval's id."""
    lines = ["WEBVTT", ""]
    for iv in job.intervals:
        t0 = seconds_to_ms(iv.start_s)
        t1 = max(t0 + MIN_CUE_MS, seconds_to_ms(iv.end_s))
        lines += [iv.id, f"{vtt_timestamp(t0)} --> {vtt_timestamp(t1)}",
                  _vtt_text(f"{iv.label} (score {_score_text(iv.score)})"), ""]
    return [write_text_atomic(job.path(".vtt"), "\n".join(lines))]


# ---------------------------------------------------------------------------------------------
# CVAT


def seconds_to_cvat_frames(start_s: float, end_s: float, fps: float) -> tuple[int, int]:
    """Seconds -> CVAT (first, last) frame numbers, 0-based, last inclusive. CVAT numbers the
    frames it decodes from 0, frame n shown from n / fps to (n + 1) / fps; the rounding is Label
    Studio's (module doc), so each boundary stays within half a frame."""
    first, end = seconds_to_ls_frames(start_s, end_s, fps)
    return first - 1, end - 1


def cvat_frames_to_seconds(first: int, last: int, fps: float) -> tuple[float, float]:
    """CVAT 0-based inclusive frame range -> (start_s, end_s) seconds."""
    return first / fps, (last + 1) / fps


def _frame_count(video: VideoInfo) -> int:
    """Frames CVAT will decode: the container's count, or duration x fps where it has none (MKV)."""
    if video.n_frames > 0:
        return int(video.n_frames)
    return max(1, round_half_up(video.duration_s * video.fps))


def cvat_label_spec(labels: Iterable[str]) -> list[dict]:
    """The labels to paste into CVAT's "Raw" label editor when creating the task: one rectangle
    label per class, coloured as in the app, with two immutable text attributes, "score" and
    "zeal_id" (the interval id, so a CVAT export maps back to our intervals)."""
    labels = list(labels)
    colors = class_colors(labels)
    attributes = [{"name": name, "mutable": False, "input_type": "text", "default_value": "", "values": [""]}
                  for name in (CVAT_SCORE_ATTR, CVAT_ID_ATTR)]
    return [{"name": _xml_safe(label), "color": colors[label], "type": "rectangle",
             "attributes": [dict(a) for a in attributes]} for label in labels]


def _cvat_meta(parent, job: ExportJob, size: int, spec: list[dict]) -> None:
    import xml.etree.ElementTree as ET  # noqa: PLC0415

    task = ET.SubElement(ET.SubElement(parent, "meta"), "task")
    video = job.result.video
    for key, value in (("name", job.video_id), ("size", size), ("mode", "interpolation"), ("overlap", 0),
                       ("start_frame", 0), ("stop_frame", size - 1), ("frame_filter", "")):
        ET.SubElement(task, key).text = _xml_safe(str(value))
    labels = ET.SubElement(task, "labels")
    for label in spec:
        node = ET.SubElement(labels, "label")
        for key in ("name", "color", "type"):
            ET.SubElement(node, key).text = label[key]
        attrs = ET.SubElement(node, "attributes")
        for a in label["attributes"]:
            attr = ET.SubElement(attrs, "attribute")
            for key in ("name", "mutable", "input_type", "default_value"):
                ET.SubElement(attr, key).text = str(a[key])
            ET.SubElement(attr, "values").text = "\n".join(a["values"])
    size_node = ET.SubElement(task, "original_size")
    ET.SubElement(size_node, "width").text = str(int(video.width))
    ET.SubElement(size_node, "height").text = str(int(video.height))


def write_cvat(job: ExportJob) -> list[Path]:
    """`<stem>.cvat.xml` ("CVAT for video 1.1": upload it with format "CVAT 1.1" into a task made
    from the same video) and `<stem>.cvat-labels.json` (the label specification for that task).

    CVAT has no time-segment type, so each interval is a track of one full-frame rectangle: a
    keyframe at its first frame (outside="0") and one at its last frame + 1 (outside="1"), left out
    when the interval runs to the video's last frame (CVAT refuses a frame past the end). Frames are
    0-based at the video's average fps (`seconds_to_cvat_frames`), clamped to the video. Both
    keyframes carry the immutable attributes "score" and "zeal_id": CVAT reads a track's immutable
    attributes from its last keyframe."""
    import xml.etree.ElementTree as ET  # noqa: PLC0415

    video = job.result.video
    fps = float(video.fps)
    if not (math.isfinite(fps) and fps > 0):
        raise ExportError(f"video {video.path!r} has fps {fps!r}; CVAT needs frame numbers, so probe the "
                          "video again or export as csv/json instead")
    too_long = [label for label in job.labels if len(label) > CVAT_MAX_LABEL_CHARS]
    if too_long:
        raise ExportError(f"CVAT label names have at most {CVAT_MAX_LABEL_CHARS} characters; rename "
                          f"{too_long[0][:80]!r} before exporting to cvat")
    size = _frame_count(video)
    spec = cvat_label_spec(job.labels)
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = CVAT_VERSION
    _cvat_meta(root, job, size, spec)
    box = {"occluded": "0", "xtl": "0.00", "ytl": "0.00", "xbr": f"{float(video.width):.2f}",
           "ybr": f"{float(video.height):.2f}", "z_order": "0"}
    for n, iv in enumerate(job.intervals):
        first, last = seconds_to_cvat_frames(iv.start_s, iv.end_s, fps)
        first = min(first, size - 1)
        last = min(max(last, first), size - 1)
        track = ET.SubElement(root, "track", id=str(n), label=_xml_safe(iv.label), source="auto")
        keys = [(first, "0")] + ([(last + 1, "1")] if last + 1 < size else [])
        for frame, outside in keys:
            shape = ET.SubElement(track, "box", frame=str(frame), keyframe="1", outside=outside, **box)
            ET.SubElement(shape, "attribute", name=CVAT_SCORE_ATTR).text = _score_text(iv.score)
            ET.SubElement(shape, "attribute", name=CVAT_ID_ATTR).text = _xml_safe(iv.id)
    ET.indent(root)
    text = '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
    return [write_text_atomic(job.path(".cvat.xml"), text),
            write_text_atomic(job.path(".cvat-labels.json"), _json_text(spec))]


# ---------------------------------------------------------------------------------------------
# ActivityNet


def write_activitynet(job: ExportJob) -> list[Path]:
    """`<stem>.activitynet.json`: the ActivityNet 1.3 detection results shape (seconds)."""
    dets = [{"label": iv.label,
             "segment": [round(float(iv.start_s), TIME_DECIMALS), round(float(iv.end_s), TIME_DECIMALS)],
             "score": round(float(iv.score), TIME_DECIMALS)} for iv in job.intervals]
    data = {"version": ACTIVITYNET_VERSION, "results": {job.video_id: dets}, "external_data": {}}
    return [write_text_atomic(job.path(".activitynet.json"), _json_text(data))]


# ---------------------------------------------------------------------------------------------
# Registry and entry point

FORMATS: dict[str, Writer] = {
    "csv": write_csv,
    "json": write_json,
    "labelstudio": write_labelstudio,
    "elan": write_elan,
    "via": write_via,
    "webvtt": write_webvtt,
    "activitynet": write_activitynet,
    "cvat": write_cvat,
}
# File-name endings each format writes (for help texts and for finding the files again).
FORMAT_SUFFIXES: dict[str, tuple[str, ...]] = {
    "csv": (".csv",), "json": (".json",), "labelstudio": (".labelstudio.json", ".labelstudio.xml"),
    "elan": (".eaf",), "via": (".via.json",), "webvtt": (".vtt",), "activitynet": (".activitynet.json",),
    "cvat": (".cvat.xml", ".cvat-labels.json"),
}


def export(result: Result, fmt: str, out: str | os.PathLike, states: Sequence[str] = NOT_REJECTED,
           proposals: str = "review", video_id: str | None = None, media_url: str | None = None) -> list[Path]:
    """Write `result` in format `fmt` (a FORMATS key) into the folder `out` (created if missing).

    states: the review states written (default: all but rejected); proposals: "review" writes, of
    the unreviewed model proposals, only the review set; "all" the paper's full set.

    video_id: the id written inside the files and used for their names (default: the video file's
    stem). media_url: a PREFIX telling web tools where to fetch the video: they get PREFIX + the
    URL-encoded file name (`media_address`), e.g. "/data/local-files/?d=videos/" for Label
    Studio's local-files storage or "https://media.example.org/clips/" for a web server; used by
    labelstudio (data.video) and via (a remote file). Without it, Label Studio gets the local path
    and an ExportWarning says it cannot open it. Returns the paths written.
    """
    key = str(fmt).strip().lower()
    if key not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"export destination {out_dir} is a file; give a folder (files are named "
                          "after the video)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"cannot create the export folder {out_dir}: {e.strerror}") from e
    vid = video_id if video_id else default_video_id(result.video)
    stem = safe_stem(vid)
    if Path(stem).name != stem or stem in (".", ".."):  # belt and braces over safe_stem
        raise ExportError(f"refusing to write {stem!r} outside {out_dir}; choose another video id")
    job = ExportJob(result=result, intervals=_checked_intervals(result, states, proposals), out_dir=out_dir,
                    stem=stem, video_id=vid, media=result.video.path,
                    media_url=media_address(result.video.path, media_url, fallback_name=stem))
    return FORMATS[key](job)


# ---------------------------------------------------------------------------------------------
# Several videos at once (a project)

# Formats written as one file for all videos; the others go one file per video, in one zip.
COMBINED_FORMATS = ("csv", "json", "labelstudio", "activitynet")


def export_collection(results: Sequence[tuple[str, Result]], fmt: str, out: str | os.PathLike, name: str,
                      states: Sequence[str] = NOT_REJECTED, proposals: str = "review",
                      media_url: str | None = None) -> list[Path]:
    """Write several videos' results, given as (video_id, result), in format `fmt` into `out`:
    one `<name>.csv`, `<name>.json`, `<name>.labelstudio.json` (+ its config) or
    `<name>.activitynet.json` for all of them, or for CVAT, ELAN, VIA and WebVTT one
    `<name>.<fmt>.zip` holding each video's own files. media_url: as for `export`. Returns the paths
    written."""
    import tempfile
    import zipfile

    key = str(fmt).strip().lower()
    if key not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out_dir = Path(out)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"cannot create the export folder {out_dir}: {e.strerror}") from None
    stem = safe_stem(name)
    jobs = [(vid, r, _checked_intervals(r, states, proposals)) for vid, r in results]
    if key == "csv":
        rows = [_row(iv, vid, r.video.fps) for vid, r, ivs in jobs for iv in ivs]
        return [write_text_atomic(out_dir / f"{stem}.csv", _csv_text(TABLE_COLUMNS, rows))]
    if key == "json":
        data = {"videos": [{"id": vid, "video": r.video.to_dict(), "intervals": [_row(iv, vid, r.video.fps) for iv in ivs]}
                           for vid, r, ivs in jobs]}
        return [write_text_atomic(out_dir / f"{stem}.json", _json_text(data))]
    if key == "activitynet":
        data = {"version": ACTIVITYNET_VERSION, "external_data": {},
                "results": {vid: [{"label": iv.label, "score": round(float(iv.score), TIME_DECIMALS),
                                   "segment": [round(float(iv.start_s), TIME_DECIMALS), round(float(iv.end_s), TIME_DECIMALS)]}
                                  for iv in ivs] for vid, r, ivs in jobs}}
        return [write_text_atomic(out_dir / f"{stem}.activitynet.json", _json_text(data))]
    if key == "labelstudio":
        if not media_url:
            warnings.warn(LOCAL_MEDIA_WARNING, ExportWarning, stacklevel=2)
        tasks = [labelstudio_task(r, ivs, media_address(r.video.path, media_url) or r.video.path) for vid, r, ivs in jobs]
        labels = list(dict.fromkeys(label for _, r, ivs in jobs for label in [*r.classes, *(iv.label for iv in ivs)]))
        # each task's frames are counted at its own video's fps: the config reads it from the task
        return [write_text_atomic(out_dir / f"{stem}.labelstudio.json", _json_text(tasks)),
                write_text_atomic(out_dir / f"{stem}.labelstudio.xml", labelstudio_config(labels, LS_FPS_FROM_TASK))]
    target = out_dir / f"{stem}.{key}.zip"
    part = target.with_name(f".{target.name}.part")
    try:
        with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
            files = [p for vid, r, _ in jobs
                     for p in export(r, key, Path(tmp) / safe_stem(vid), states, proposals, video_id=vid,
                                     media_url=media_url)]
            with zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED) as z:
                for f in files:
                    z.write(f, f.name)
            os.replace(part, target)
    except OSError as e:
        part.unlink(missing_ok=True)
        raise ExportError(f"cannot write {target}: {e.strerror}; check the folder's free space") from None
    return [target]
