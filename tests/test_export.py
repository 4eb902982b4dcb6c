"""Exports: write every format, read it back with the target tool's own rules, compare.

Label Studio and VIA have no Python reader, so the readers here follow their documented shapes
(Label Studio: 1-based inclusive frame ranges at <Video frameRate>; VIA 3: every metadata vid in
view, every av key an attribute, option ids existing). ELAN files are parsed with pympi-ling.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zeal.errors import ExportError, ExportWarning
from zeal.export import (FORMAT_SUFFIXES, FORMATS, PREDICTION_COLUMNS, TABLE_COLUMNS, cvat_frames_to_seconds,
                         export, intervals_table, ls_frames_to_seconds, media_address, predictions_rows,
                         read_intervals, safe_stem, seconds_to_cvat_frames, seconds_to_ls_frames,
                         stack_rows, write_predictions_csv)
from zeal.palette import class_colors
from zeal.review import NOT_REJECTED
from zeal.types import REVIEW_STATES, ClassResult, Curves, Interval, Result, VideoInfo

# Most tests export Label Studio tasks without media_url on purpose; the warning has its own test.
pytestmark = pytest.mark.filterwarnings("ignore::zeal.errors.ExportWarning")

FPS_CASES = (25.0, 29.97)
WEIRD = 'a<&">\'b'  # every XML special character
UNICODE = "Schnitt ü 切る"


def _curves(n: int = 4) -> Curves:
    z = np.zeros(n)
    return Curves(z, z, z, z, z)


def make_result(fps: float = 25.0, path: str = "/videos/case 01.mp4",
                intervals: list[Interval] | None = None, labels: list[str] | None = None) -> Result:
    """A hand-built result: two classes, off-grid times, one rejected and one human interval."""
    if intervals is None:
        intervals = [
            Interval(1.013, 3.4871, "Incision", 0.83),
            Interval(7.25, 9.9, "Incision", 0.41, state="rejected"),
            Interval(2.2, 2.95, "Suturing", 0.66),
            Interval(12.02, 15.51, "Suturing", 1.0, source="human"),
        ]
    labels = labels if labels is not None else list(dict.fromkeys(i.label for i in intervals))
    classes = {lab: ClassResult(lab, {"start": "s?", "end": "e?", "description": "d"}, _curves(),
                                [i for i in intervals if i.label == lab]) for lab in labels}
    video = VideoInfo(path=path, duration_s=20.0, n_frames=round(20 * fps), fps=fps, width=64, height=48)
    return Result(video=video, times_s=np.arange(20.0), classes=classes)


def expected(result: Result, states=NOT_REJECTED) -> list[Interval]:
    return [i for i in result.intervals if i.state in states]


def assert_close(got: list[tuple[str, float, float]], want: list[Interval], tol: float) -> None:
    """Same (label, start, end) multiset, boundaries within tol seconds."""
    got = sorted(got, key=lambda g: (g[1], g[2], g[0]))
    want = sorted(want, key=lambda w: (w.start_s, w.end_s, w.label))
    assert [g[0] for g in got] == [w.label for w in want]
    for (_, s, e), w in zip(got, want):
        assert abs(s - w.start_s) <= tol, (s, w)
        assert abs(e - w.end_s) <= tol, (e, w)


# --- readers following each target's own rules ---------------------------------------------


def read_labelstudio(tasks_path: Path, config_path: Path) -> tuple[float, list[str], list[tuple]]:
    """Check the task against its config as Label Studio would; return fps, labels, regions."""
    view = ET.parse(config_path).getroot()
    assert view.tag == "View"
    video = view.find("Video")
    timeline = view.find("TimelineLabels")
    assert video is not None and timeline is not None
    assert video.get("value") == "$video" and timeline.get("toName") == video.get("name")
    fps = float(video.get("frameRate"))
    labels = [lab.get("value") for lab in timeline.findall("Label")]
    assert len(labels) == len(set(labels))
    # each label in its class's colour of the app, the colours all different
    backgrounds = [lab.get("background") for lab in timeline.findall("Label")]
    assert backgrounds == list(class_colors(labels).values()) and len(set(backgrounds)) == len(labels)
    tasks = json.loads(tasks_path.read_text(encoding="utf-8"))
    assert isinstance(tasks, list) and len(tasks) == 1
    task = tasks[0]
    assert isinstance(task["data"]["video"], str)
    (pred,) = task["predictions"]
    assert pred["model_version"].startswith("zeal-")
    regions = []
    ids = set()
    for r in pred["result"]:
        assert r["type"] == "timelinelabels"
        assert r["from_name"] == timeline.get("name") and r["to_name"] == video.get("name")
        assert r["id"] not in ids
        ids.add(r["id"])
        (label,) = r["value"]["timelinelabels"]
        assert label in labels
        (rng,) = r["value"]["ranges"]
        assert isinstance(rng["start"], int) and isinstance(rng["end"], int)
        assert 1 <= rng["start"] <= rng["end"]  # 1-based, inclusive end
        assert 0.0 <= r["score"] <= 1.0
        s, e = ls_frames_to_seconds(rng["start"], rng["end"], fps)
        regions.append((label, s, e, r["score"]))
    if regions:
        assert pred["score"] == pytest.approx(np.mean([r[3] for r in regions]))
    return fps, labels, regions


def read_via(path: Path) -> tuple[list[str], list[tuple[str, float, float, float]]]:
    """A small VIA 3 project reader applying VIA's own consistency rules."""
    p = json.loads(path.read_text(encoding="utf-8"))
    assert set(p) >= {"project", "config", "attribute", "file", "view", "metadata"}
    assert p["project"]["data_format_version"].startswith("3.")
    assert all(vid in p["view"] for vid in p["project"]["vid_list"])
    for vid, view in p["view"].items():
        assert all(str(fid) in p["file"] for fid in view["fid_list"])
    for fid, f in p["file"].items():
        assert str(f["fid"]) == fid and f["type"] == 4 and f["loc"] in (1, 2, 3, 4)
    attrs = p["attribute"]
    by_name = {a["aname"]: aid for aid, a in attrs.items()}
    action, score = attrs[by_name["action"]], attrs[by_name["score"]]
    assert action["type"] == 4 and score["type"] == 1
    labels = list(action["options"].values())
    out = []
    for mid, m in p["metadata"].items():
        assert m["vid"] in p["view"] and mid.startswith(m["vid"] + "_")
        assert m["xy"] == [] and len(m["z"]) == 2 and m["z"][0] <= m["z"][1]
        for aid, value in m["av"].items():
            assert aid in attrs
            if attrs[aid]["type"] == 4:
                assert value in attrs[aid]["options"]
        out.append((action["options"][m["av"][by_name["action"]]], m["z"][0], m["z"][1],
                    float(m["av"][by_name["score"]])))
    return labels, out


_VTT_TIME = r"(?:(\d{2,}):)?(\d{2}):(\d{2})\.(\d{3})"
_VTT_TIMING = re.compile(rf"^{_VTT_TIME}[ \t]+-->[ \t]+{_VTT_TIME}(?:[ \t].*)?$")


def _vtt_seconds(h, m, s, ms) -> float:
    assert int(m) < 60 and int(s) < 60
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def read_webvtt(path: Path) -> list[tuple[str, float, float]]:
    """WebVTT cues as a player parses them: header, blank-line separated blocks, timing line."""
    text = path.read_text(encoding="utf-8")
    assert "\r" not in text
    blocks = text.split("\n\n")
    assert re.match(r"^WEBVTT(?:[ \t].*)?$", blocks[0].split("\n")[0])
    cues = []
    for block in blocks[1:]:
        lines = [ln for ln in block.split("\n") if ln != ""]
        if not lines:
            continue
        if "-->" not in lines[0]:
            lines = lines[1:]  # cue identifier
        m = _VTT_TIMING.match(lines[0])
        assert m, lines[0]
        start, end = _vtt_seconds(*m.groups()[:4]), _vtt_seconds(*m.groups()[4:])
        assert end > start
        payload = "\n".join(lines[1:])
        assert "-->" not in payload and "<" not in payload
        payload = payload.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
        cues.append((payload, start, end))
    starts = [c[1] for c in cues]
    assert starts == sorted(starts)  # WebVTT requires cues in start order
    return cues


def read_elan(path: Path) -> dict[str, list[tuple]]:
    from pympi.Elan import Eaf

    eaf = Eaf(str(path))
    assert eaf.adocument["FORMAT"] == "3.0"
    out = {}
    for tier, (_, _, attrs, _) in eaf.tiers.items():
        if "PARENT_REF" in attrs:
            out[tier] = eaf.get_ref_annotation_data_for_tier(tier)
        else:
            out[tier] = eaf.get_annotation_data_for_tier(tier)
    return out


_NCNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_EAF_ORDER = ["HEADER", "TIME_ORDER", "TIER", "LINGUISTIC_TYPE", "LOCALE", "LANGUAGE", "CONSTRAINT",
              "CONTROLLED_VOCABULARY", "LEXICON_REF", "EXTERNAL_REF"]


def check_eaf_structure(path: Path) -> None:
    """What the EAFv3.0 schema demands of the parts we write: element order, unique XML IDs that
    are NCNames, references that resolve (time slots, parent tiers and annotations, types)."""
    root = ET.parse(path).getroot()
    assert root.tag == "ANNOTATION_DOCUMENT" and root.get("FORMAT") == "3.0"
    kinds = [_EAF_ORDER.index(child.tag) for child in root]
    assert kinds == sorted(kinds) and kinds[:2] == [0, 1]
    slots = {ts.get("TIME_SLOT_ID") for ts in root.find("TIME_ORDER")}
    types = {lt.get("LINGUISTIC_TYPE_ID") for lt in root.findall("LINGUISTIC_TYPE")}
    ids: list[str] = []
    tiers: dict[str, set[str]] = {}
    for tier in root.findall("TIER"):
        assert tier.get("TIER_ID") not in tiers and tier.get("LINGUISTIC_TYPE_REF") in types
        own = set()
        for ann in tier.iter():
            if ann.tag in ("ALIGNABLE_ANNOTATION", "REF_ANNOTATION"):
                ids.append(ann.get("ANNOTATION_ID"))
                own.add(ann.get("ANNOTATION_ID"))
            if ann.tag == "ALIGNABLE_ANNOTATION":
                assert {ann.get("TIME_SLOT_REF1"), ann.get("TIME_SLOT_REF2")} <= slots
            if ann.tag == "REF_ANNOTATION":
                assert ann.get("ANNOTATION_REF") in tiers[tier.get("PARENT_REF")]
        if tier.get("PARENT_REF") is not None:
            assert tier.get("PARENT_REF") in tiers  # defined before, as ELAN writes it
        tiers[tier.get("TIER_ID")] = own
    assert len(ids) == len(set(ids)) and all(_NCNAME.match(i) for i in ids)
    assert not set(ids) & slots


def read_cvat(xml_path: Path, labels_path: Path, size: int) -> tuple[list[dict], list[tuple]]:
    """Read "CVAT for video 1.1" by the rules of CVAT's own importer (cvat/apps/dataset_manager):
    a track's label must be a task label; each shape needs `frame` and `keyframe`; only keyframes
    count; every frame must lie in range(0, size) or the import fails ("Unknown frame"); attribute
    names unknown to the label are dropped; a track's immutable attributes come from its last
    keyframe. The object is visible from an outside="0" keyframe up to (not including) the next
    outside="1" keyframe, or to the end. Returns (label spec, [(label, first, last, attrs)])."""
    spec = json.loads(labels_path.read_text(encoding="utf-8"))
    names = [lab["name"] for lab in spec]
    assert len(names) == len(set(names)) and all(lab["type"] == "rectangle" for lab in spec)
    attr_names = {lab["name"]: {a["name"] for a in lab["attributes"]} for lab in spec}
    for lab in spec:
        assert re.fullmatch(r"#[0-9a-f]{6}", lab["color"])
        for a in lab["attributes"]:
            assert a["input_type"] == "text" and a["mutable"] is False and isinstance(a["values"], list)
    root = ET.parse(xml_path).getroot()
    assert root.tag == "annotations" and root.findtext("version") == "1.1"
    out = []
    for track in root.findall("track"):
        label = track.get("label")
        assert label in names, f"CVAT rejects unknown label {label!r}"
        keys = []
        for box in track:
            assert box.tag == "box"
            frame = int(box.get("frame"))
            assert 0 <= frame < size, f"CVAT: Unknown frame {frame}"
            assert float(box.get("xtl")) < float(box.get("xbr")) and float(box.get("ytl")) < float(box.get("ybr"))
            attrs = {a.get("name"): a.text or "" for a in box.findall("attribute")}
            assert set(attrs) <= attr_names[label], "CVAT would drop these attributes"
            if box.get("keyframe") == "1":
                keys.append((frame, box.get("outside", "0") == "1", attrs))
        keys.sort(key=lambda k: k[0])
        assert keys and not keys[0][1]
        visible = [(f, nxt[0] - 1 if nxt else size - 1) for (f, out_, _), nxt in
                   zip(keys, keys[1:] + [None]) if not out_]
        assert len(visible) == 1  # one interval per track
        out.append((label, *visible[0], keys[-1][2]))
    return spec, out


# --- round trips, one per format --------------------------------------------------------------


@pytest.mark.parametrize("fps", FPS_CASES)
@pytest.mark.parametrize("states", [NOT_REJECTED, REVIEW_STATES])
def test_labelstudio_round_trip(tmp_path, fps, states):
    r = make_result(fps)
    paths = export(r, "labelstudio", tmp_path, states=states)
    assert [p.name for p in paths] == ["case 01.labelstudio.json", "case 01.labelstudio.xml"]
    got_fps, labels, regions = read_labelstudio(*paths)
    assert got_fps == fps  # the real fps, every digit
    assert labels == ["Incision", "Suturing"]
    want = expected(r, states)
    assert len(regions) == len(want) == (3 if states == NOT_REJECTED else 4)
    assert_close([g[:3] for g in regions], want, tol=0.5 / fps + 1e-9)
    assert sorted(g[3] for g in regions) == sorted(w.score for w in want)


@pytest.mark.parametrize("fps", FPS_CASES)
def test_elan_round_trip(tmp_path, fps):
    r = make_result(fps)
    (path,) = export(r, "elan", tmp_path)
    assert path.name == "case 01.eaf"
    tiers = read_elan(path)
    assert set(tiers) == {"Incision", "Incision score", "Suturing", "Suturing score"}
    got = [(value, s / 1000, e / 1000) for name in ("Incision", "Suturing") for s, e, value in tiers[name]]
    assert_close(got, expected(r), tol=0.0005 + 1e-9)  # within 1 ms (and far within half a frame)
    assert all(isinstance(s, int) for name in tiers for s, *_ in tiers[name])
    # Score tiers hang off the class annotations, one to one, human ones marked.
    scores = sorted((s, value) for s, e, value, parent in tiers["Suturing score"])
    assert scores == [(2200, "0.660"), (12020, "1.000 (human)")]
    assert [v for *_, v, _ in tiers["Incision score"]] == ["0.830"]
    # TIME_ORDER is chronological and every annotation has its own two slots.
    slots = ET.parse(path).getroot().find("TIME_ORDER").findall("TIME_SLOT")
    values = [int(t.get("TIME_VALUE")) for t in slots]
    assert values == sorted(values) and len(values) == 2 * len(expected(r))


def test_elan_media_descriptor(tmp_path):
    video = tmp_path / "videos" / "clip é.mp4"
    r = make_result(path=str(video))
    (path,) = export(r, "elan", tmp_path / "out")
    from pympi.Elan import Eaf

    (desc,) = Eaf(str(path)).media_descriptors
    assert desc["MIME_TYPE"] == "video/mp4"
    assert desc["MEDIA_URL"] == video.as_uri()
    assert desc["RELATIVE_MEDIA_URL"] == "../videos/clip%20%C3%A9.mp4"


@pytest.mark.parametrize("fps", FPS_CASES)
def test_via_round_trip(tmp_path, fps):
    r = make_result(fps)
    (path,) = export(r, "via", tmp_path)
    assert path.name == "case 01.via.json"
    labels, segs = read_via(path)
    assert labels == ["Incision", "Suturing"]
    assert_close([s[:3] for s in segs], expected(r), tol=0.0005 + 1e-9)
    project = json.loads(path.read_text())
    assert project["file"]["1"]["fname"] == "case 01.mp4" and project["file"]["1"]["loc"] == 1
    assert sorted(s[3] for s in segs) == [0.66, 0.83, 1.0]


def test_via_with_url_media(tmp_path):
    (path,) = export(make_result(), "via", tmp_path, media_url="https://example.org/v/")
    f = json.loads(path.read_text())["file"]["1"]
    url = "https://example.org/v/case%2001.mp4"  # the prefix + the URL-encoded file name
    assert (f["loc"], f["src"], f["fname"]) == (2, url, url)


@pytest.mark.parametrize("fps", FPS_CASES)
def test_webvtt_round_trip(tmp_path, fps):
    r = make_result(fps)
    (path,) = export(r, "webvtt", tmp_path)
    assert path.name == "case 01.vtt"
    cues = read_webvtt(path)
    want = expected(r)
    assert [c[0] for c in cues] == [f"{w.label} (score {w.score:.3f})" for w in want]
    got = [(c[0].split(" (score")[0], c[1], c[2]) for c in cues]
    assert_close(got, want, tol=0.0005 + 1e-9)


@pytest.mark.parametrize("fps", FPS_CASES)
def test_activitynet_round_trip(tmp_path, fps):
    r = make_result(fps)
    (path,) = export(r, "activitynet", tmp_path, video_id="video_test_0000004")
    assert path.name == "video_test_0000004.activitynet.json"
    data = json.loads(path.read_text())
    assert data["version"] == "VERSION 1.3" and data["external_data"] == {}
    (dets,) = data["results"].values()
    assert list(data["results"]) == ["video_test_0000004"]
    assert_close([(d["label"], *d["segment"]) for d in dets], expected(r), tol=1e-6)
    assert sorted(d["score"] for d in dets) == [0.66, 0.83, 1.0]


@pytest.mark.parametrize("fps", FPS_CASES)
def test_csv_and_json_round_trip(tmp_path, fps):
    r = make_result(fps)
    (csv_path,) = export(r, "csv", tmp_path)
    (json_path,) = export(r, "json", tmp_path)
    with open(csv_path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == TABLE_COLUMNS
    assert [float(x["start_s"]) for x in rows] == sorted(float(x["start_s"]) for x in rows)
    assert {x["video"] for x in rows} == {"case 01"} and {float(x["fps"]) for x in rows} == {fps}
    assert [x["source"] for x in rows] == ["model", "model", "human"]  # the rejected one left out
    data = json.loads(json_path.read_text())
    assert data["video"] == r.video.to_dict()
    assert [x["class"] for x in data["intervals"]] == [x["class"] for x in rows]
    for path in (csv_path, json_path):
        back = read_intervals(path)
        assert_close([(i.label, i.start_s, i.end_s) for i in back], expected(r), tol=1e-6)
        assert [(i.id, i.score, i.source, i.state) for i in back] == \
               [(i.id, i.score, i.source, i.state) for i in expected(r)]


def test_rejected_only_when_asked_for(tmp_path):
    r = make_result()
    for fmt in ("csv", "json"):
        (path,) = export(r, fmt, tmp_path / fmt, states=REVIEW_STATES)
        back = read_intervals(path)
        assert [i.state for i in back] == ["unreviewed", "unreviewed", "rejected", "accepted"]
        assert next(i for i in back if i.state == "rejected").start_s == 7.25
    (vtt,) = export(r, "webvtt", tmp_path / "all", states=REVIEW_STATES)
    assert len(read_webvtt(vtt)) == 4
    (vtt,) = export(r, "webvtt", tmp_path / "acc")
    assert all(c[1] != 7.25 for c in read_webvtt(vtt))


def test_every_format_registered_writes_its_suffixes(tmp_path):
    assert set(FORMATS) == {"csv", "json", "labelstudio", "elan", "via", "webvtt", "activitynet", "cvat"}
    r = make_result()
    for fmt in FORMATS:
        out = tmp_path / fmt
        paths = export(r, fmt, out)
        assert [p.name for p in paths] == [f"case 01{s}" for s in FORMAT_SUFFIXES[fmt]]
        # Atomic writes leave no temporary file behind.
        assert sorted(os.listdir(out)) == sorted(p.name for p in paths)


# --- Label Studio frame arithmetic ------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(fps=st.sampled_from([23.976, 24.0, 25.0, 29.97, 30000 / 1001, 50.0, 59.94, 120.0]),
       t0=st.floats(0.0, 4 * 3600.0), length=st.floats(0.0, 600.0))
def test_labelstudio_frames_within_half_a_frame(fps, t0, length):
    t1 = t0 + max(length, 1.0 / fps)  # intervals at least one frame long
    start, end = seconds_to_ls_frames(t0, t1, fps)
    assert 1 <= start <= end
    s, e = ls_frames_to_seconds(start, end, fps)
    half = 0.5 / fps
    assert abs(s - t0) <= half * (1 + 1e-9) + 1e-9
    assert abs(e - t1) <= half * (1 + 1e-9) + 1e-9


def test_labelstudio_frames_examples():
    # Frame n covers [(n-1)/fps, n/fps): 1 s to 2 s at 25 fps is frames 26..50.
    assert seconds_to_ls_frames(1.0, 2.0, 25.0) == (26, 50)
    assert seconds_to_ls_frames(0.0, 0.04, 25.0) == (1, 1)
    # floor/ceil would give (1, 2) for 0.039..0.041 and put the start nearly a frame early.
    assert seconds_to_ls_frames(0.039, 0.081, 25.0) == (2, 2)
    # A sub-frame interval becomes exactly one frame.
    assert seconds_to_ls_frames(3.0, 3.001, 25.0) == (76, 76)


# --- names, escaping, unicode, empty, errors --------------------------------------------------


@pytest.mark.parametrize("name", ["../../x", "..", "a/b\nc", "..\\..\\evil", "/etc/passwd", "", " . "])
def test_file_names_stay_inside_out_dir(tmp_path, name):
    out = tmp_path / "out"
    r = make_result(path=f"/videos/{name}.mp4")
    for fmt in FORMATS:
        for p in export(r, fmt, out, video_id=name or None):
            assert p.parent == out and p.resolve().parent == out.resolve()
            assert "\n" not in p.name and "/" not in p.name and not p.name.startswith(".")
    assert sorted(q.name for q in tmp_path.iterdir()) == ["out"]  # nothing written outside


def test_video_id_is_kept_inside_files(tmp_path):
    r = make_result()
    (path,) = export(r, "activitynet", tmp_path, video_id="../../x")
    assert path.name == "_.._x.activitynet.json"
    assert list(json.loads(path.read_text())["results"]) == ["../../x"]


def test_safe_stem_rules():
    assert safe_stem("../../x") == "_.._x"
    assert safe_stem("..") == "video" and safe_stem("") == "video"
    assert safe_stem("CON") == "_CON" and safe_stem("nul.tar") == "_nul.tar"
    assert safe_stem("clip é 切る") == "clip é 切る"
    assert safe_stem('a:b*c?"d<e>f|g') == "a_b_c__d_e_f_g"
    long = safe_stem("é" * 500)
    assert len(long.encode("utf-8")) <= 150 and set(long) == {"é"}


def test_xml_escaping_of_class_names(tmp_path):
    names = [WEIRD, 'say "hi"', "it's", "fish &amp; chips"]
    intervals = [Interval(1.0 + k, 2.0 + k, n, 0.5) for k, n in enumerate(names)]
    r = make_result(intervals=intervals)
    config = export(r, "labelstudio", tmp_path)[1]
    view = ET.parse(config).getroot()  # well-formed XML
    assert [e.get("value") for e in view.iter("Label")] == names
    _, _, regions = read_labelstudio(*export(r, "labelstudio", tmp_path))
    assert sorted(g[0] for g in regions) == sorted(names)
    tiers = read_elan(export(r, "elan", tmp_path)[0])
    for n in names:
        assert [v for *_, v in tiers[n]] == [n]
        assert n + " score" in tiers
    labels, _ = read_via(export(r, "via", tmp_path)[0])
    assert labels == names
    cues = read_webvtt(export(r, "webvtt", tmp_path)[0])
    assert [c[0] for c in cues] == [f"{n} (score 0.500)" for n in names]


def test_newline_in_class_name(tmp_path):
    r = make_result(intervals=[Interval(1.0, 2.0, "open\nvalve", 0.7)])
    (vtt,) = export(r, "webvtt", tmp_path)
    assert [c[0] for c in read_webvtt(vtt)] == ["open valve (score 0.700)"]
    tiers = read_elan(export(r, "elan", tmp_path)[0])
    assert [v for *_, v in tiers["open\nvalve"]] == ["open\nvalve"]
    assert read_intervals(export(r, "csv", tmp_path)[0])[0].label == "open\nvalve"


def test_unicode_class_names(tmp_path):
    intervals = [Interval(0.5, 1.5, UNICODE, 0.9), Interval(2.0, 4.0, "Naht", 0.2)]
    r = make_result(intervals=intervals, path="/v/Video ö.mp4")
    for fmt in FORMATS:
        export(r, fmt, tmp_path)
    assert (tmp_path / "Video ö.eaf").exists()
    assert UNICODE in read_elan(tmp_path / "Video ö.eaf")
    assert read_via(tmp_path / "Video ö.via.json")[0] == [UNICODE, "Naht"]
    assert read_webvtt(tmp_path / "Video ö.vtt")[0][0] == f"{UNICODE} (score 0.900)"
    assert [i.label for i in read_intervals(tmp_path / "Video ö.csv")] == [UNICODE, "Naht"]
    assert [i.label for i in read_intervals(tmp_path / "Video ö.json")] == [UNICODE, "Naht"]
    assert json.loads((tmp_path / "Video ö.activitynet.json").read_text())["results"]["Video ö"][0][
        "label"] == UNICODE
    assert read_labelstudio(tmp_path / "Video ö.labelstudio.json",
                            tmp_path / "Video ö.labelstudio.xml")[1] == [UNICODE, "Naht"]


@pytest.mark.parametrize("labels", [[], ["Incision"]])
def test_empty_result_gives_valid_empty_files(tmp_path, labels):
    r = make_result(intervals=[], labels=labels)
    for fmt in FORMATS:
        export(r, fmt, tmp_path)
    base = tmp_path / "case 01"
    assert read_intervals(base.with_suffix(".csv")) == []
    assert read_intervals(base.with_suffix(".json")) == []
    _, got_labels, regions = read_labelstudio(Path(f"{base}.labelstudio.json"), Path(f"{base}.labelstudio.xml"))
    assert got_labels == labels and regions == []
    tiers = read_elan(base.with_suffix(".eaf"))
    assert all(v == [] for v in tiers.values()) and len(tiers) == 2 * len(labels)
    assert read_via(Path(f"{base}.via.json")) == (labels, [])
    assert read_webvtt(base.with_suffix(".vtt")) == []
    assert json.loads(Path(f"{base}.activitynet.json").read_text())["results"] == {"case 01": []}
    assert read_cvat(Path(f"{base}.cvat.xml"), Path(f"{base}.cvat-labels.json"), 500)[1] == []


def test_unknown_format_lists_valid_names(tmp_path):
    with pytest.raises(ExportError, match="unknown export format 'srt'.*csv, json, labelstudio, elan, "
                                          "via, webvtt, activitynet, cvat"):
        export(make_result(), "srt", tmp_path)
    assert export(make_result(), " CSV ", tmp_path)[0].name == "case 01.csv"


def test_bad_inputs_raise_export_error(tmp_path):
    bad = make_result(intervals=[Interval(1.0, 2.0, "A", float("nan"))])
    with pytest.raises(ExportError, match="not a number"):
        export(bad, "json", tmp_path)
    backwards = make_result(intervals=[Interval(3.0, 2.0, "A", 0.5)])
    with pytest.raises(ExportError, match="start <= end"):
        export(backwards, "csv", tmp_path)
    no_fps = make_result(fps=0.0)
    with pytest.raises(ExportError, match="fps"):
        export(no_fps, "labelstudio", tmp_path)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(ExportError, match="is a file"):
        export(make_result(), "csv", a_file)
    assert not list(tmp_path.glob("case*"))  # nothing half-written


def test_read_intervals_rejects_bad_files(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("class,start_s,end_s\nA,1,2\n")
    with pytest.raises(ExportError, match="row 1: missing score"):
        read_intervals(p)
    p.write_text("class,start_s,end_s,score\nA,1,x,0.5\n")
    with pytest.raises(ExportError, match="must be numbers"):
        read_intervals(p)
    p.write_text("class,start_s,end_s,score,source\nA,1,2,0.5,robot\n")
    with pytest.raises(ExportError, match="source 'robot'"):
        read_intervals(p)
    j = tmp_path / "a.json"
    j.write_text("{not json")
    with pytest.raises(ExportError, match="not valid JSON"):
        read_intervals(j)
    with pytest.raises(ExportError, match="only .csv and .json"):
        read_intervals(tmp_path / "a.txt")
    with pytest.raises(ExportError, match="cannot read"):
        read_intervals(tmp_path / "missing.csv")


def test_intervals_table_for_the_ui():
    r = make_result(29.97)
    rows = intervals_table(r)
    assert [tuple(row) for row in rows] == [TABLE_COLUMNS] * 4
    assert [row["state"] for row in rows] == ["unreviewed", "unreviewed", "rejected", "accepted"]
    assert len(intervals_table(r, states=NOT_REJECTED)) == 3
    assert len(intervals_table(r, states=("accepted",))) == 1
    assert {row["fps"] for row in rows} == {29.97}


def test_predictions_csv_shape(tmp_path):
    r = make_result()
    rows = predictions_rows(r, "video_test_0000004") + predictions_rows(make_result(path="/x/other.mp4"))
    path = write_predictions_csv(rows, tmp_path / "sub" / "predictions.csv")
    with open(path, newline="", encoding="utf-8") as fh:
        back = list(csv.DictReader(fh))
    assert tuple(back[0]) == PREDICTION_COLUMNS
    assert len(back) == 6  # 3 accepted per video, the rejected one left out
    assert {b["video-id"] for b in back} == {"video_test_0000004", "other"}
    first = back[0]
    assert (first["label"], float(first["t-start"]), float(first["t-end"]), float(first["score"])) == \
           ("Incision", 1.013, 3.4871, 0.83)
    assert all(math.isfinite(float(b["score"])) for b in back)


def test_zero_length_interval_is_widened_where_the_format_needs_it(tmp_path):
    r = make_result(fps=25.0, intervals=[Interval(5.0, 5.0, "Clip", 0.5)])
    ((s, e, _),) = read_elan(export(r, "elan", tmp_path)[0])["Clip"]
    assert (s, e) == (5000, 5001)  # ELAN needs end > start: 1 ms
    ((_, s, e),) = read_webvtt(export(r, "webvtt", tmp_path)[0])
    assert (s, e) == (5.0, 5.001)
    _, _, ((_, s, e, _),) = read_labelstudio(*export(r, "labelstudio", tmp_path))
    assert (s, e) == (5.0, 5.04)  # one frame
    assert read_intervals(export(r, "csv", tmp_path)[0])[0].end_s == 5.0  # seconds kept as they are


# --- the fixes found in the real tools ----------------------------------------------------------


def test_media_url_is_the_prefix_and_the_encoded_file_name(tmp_path):
    r = make_result(path="/videos/case 01.mp4")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a media_url silences the warning
        tasks, _ = export(r, "labelstudio", tmp_path, media_url="/data/local-files/?d=clips/")
    assert json.loads(tasks.read_text())[0]["data"]["video"] == "/data/local-files/?d=clips/case%2001.mp4"
    assert media_address("/v/a?b#c&d+e é.mp4", "https://h/x/") == "https://h/x/a%3Fb%23c%26d%2Be%20%C3%A9.mp4"
    assert media_address("C:\\v\\clip.mp4", "/p/") == "/p/clip.mp4" and media_address("/v/a.mp4", None) == ""


def test_labelstudio_export_without_media_url_warns_and_keeps_the_path(tmp_path):
    r = make_result(path="/videos/case 01.mp4")
    with pytest.warns(ExportWarning, match="local file path, which Label Studio cannot open.*media_url"):
        tasks, _ = export(r, "labelstudio", tmp_path)
    assert json.loads(tasks.read_text())[0]["data"]["video"] == "/videos/case 01.mp4"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a video that is already a URL needs nothing
        export(make_result(path="https://media.example.org/case.mp4"), "labelstudio", tmp_path)


def test_labelstudio_config_colours_follow_the_palette(tmp_path):
    from zeal.palette import class_colors

    _, config = export(make_result(), "labelstudio", tmp_path, media_url="/m/")
    labels = ET.parse(config).getroot().find("TimelineLabels").findall("Label")
    colors = class_colors(["Incision", "Suturing"])
    assert [lab.get("background") for lab in labels] == [colors["Incision"], colors["Suturing"]]
    assert len(set(colors.values())) == 2


def test_webvtt_scores_have_three_decimals(tmp_path):
    r = make_result(intervals=[Interval(1.0, 2.0, "Dive", 0.999), Interval(3.0, 4.0, "Dive", 0.0004)])
    (vtt,) = export(r, "webvtt", tmp_path)
    assert [c[0] for c in read_webvtt(vtt)] == ["Dive (score 0.999)", "Dive (score 0.000)"]


def _overlapping() -> list[Interval]:
    # Diving: a chain where every interval overlaps the next, one nested in another, one touching.
    return [Interval(0.0, 10.0, "Diving", 0.9), Interval(5.0, 15.0, "Diving", 0.8),
            Interval(6.0, 8.0, "Diving", 0.7), Interval(10.0, 12.0, "Diving", 0.6),
            Interval(15.0, 18.0, "Diving", 0.5, source="human"), Interval(1.0, 2.0, "Jump", 0.4)]


def test_elan_overlaps_go_to_sibling_tiers_and_nothing_is_lost(tmp_path):
    r = make_result(intervals=_overlapping())
    (path,) = export(r, "elan", tmp_path, proposals="all")
    check_eaf_structure(path)
    tiers = read_elan(path)
    assert set(tiers) == {"Diving", "Diving score", "Diving #2", "Diving #2 score", "Diving #3",
                          "Diving #3 score", "Jump", "Jump score"}
    for name, rows in tiers.items():
        if not name.endswith(" score"):  # no tier holds two overlapping annotations
            spans = sorted((s, e) for s, e, *_ in rows)
            assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), name
    got = sorted((s, e, v) for name in ("Diving", "Diving #2", "Diving #3") for s, e, v in tiers[name])
    assert got == [(0, 10000, "Diving"), (5000, 15000, "Diving"), (6000, 8000, "Diving"),
                   (10000, 12000, "Diving"), (15000, 18000, "Diving")]
    # Each score tier hangs off its own tier and holds exactly that tier's scores.
    from pympi.Elan import Eaf

    eaf = Eaf(str(path))
    for name in ("Diving", "Diving #2", "Diving #3"):
        assert eaf.tiers[f"{name} score"][2]["PARENT_REF"] == name
        assert len(tiers[f"{name} score"]) == len(tiers[name])
    assert sorted(v for name in ("Diving", "Diving #2", "Diving #3") for *_, v, _ in tiers[f"{name} score"]) == \
        ["0.500 (human)", "0.600", "0.700", "0.800", "0.900"]
    # Interval ids are the annotations' ids, so a round trip finds them.
    ann_ids = {aid for name in ("Diving", "Diving #2", "Diving #3", "Jump") for aid in eaf.tiers[name][0]}
    assert ann_ids == {iv.id for iv in r.intervals}


def test_stack_rows_uses_as_few_rows_as_the_deepest_overlap():
    assert stack_rows([(0, 10), (5, 15), (6, 8), (10, 12), (15, 18)]) == [0, 1, 2, 0, 0]
    assert stack_rows([]) == [] and stack_rows([(3, 4), (0, 1)]) == [0, 0]


def test_elan_ids_that_are_not_xml_ids_fall_back_to_elans_own(tmp_path):
    ivs = [Interval(0.0, 1.0, "A", 0.5, id="1 bad id"), Interval(2.0, 3.0, "A", 0.5, id="a2"),
           Interval(4.0, 5.0, "A", 0.5, id="ok-id"), Interval(6.0, 7.0, "A", 0.5, id="ok-id")]
    (path,) = export(make_result(intervals=ivs), "elan", tmp_path)
    check_eaf_structure(path)  # unique NCNames although two intervals share an id
    root = ET.parse(path).getroot()
    last = int(root.find("HEADER").find("PROPERTY").text)
    own = [a.get("ANNOTATION_ID") for a in root.iter("ALIGNABLE_ANNOTATION")]
    assert own.count("ok-id") == 1 and "1 bad id" not in own
    generated = [int(i[1:]) for i in own + [a.get("ANNOTATION_ID") for a in root.iter("REF_ANNOTATION")]
                 if re.fullmatch(r"a[0-9]+", i)]
    assert max(generated) == last  # ELAN continues numbering after the last id we used


# --- CVAT -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fps", FPS_CASES)
def test_cvat_round_trip_within_half_a_frame(tmp_path, fps):
    r = make_result(fps, intervals=_overlapping() + [Interval(19.5, 20.0, "Jump", 0.3)])
    xml_path, labels_path = export(r, "cvat", tmp_path, proposals="all")
    assert (xml_path.name, labels_path.name) == ("case 01.cvat.xml", "case 01.cvat-labels.json")
    size = r.video.n_frames
    spec, tracks = read_cvat(xml_path, labels_path, size)
    assert [lab["name"] for lab in spec] == ["Diving", "Jump"]
    got = []
    for label, first, last, attrs in tracks:
        s, e = cvat_frames_to_seconds(first, last, fps)
        got.append((label, s, e))
        iv = next(i for i in r.intervals if i.id == attrs["zeal_id"])  # ids survive
        assert attrs["score"] == f"{iv.score:.3f}"
    assert_close(got, r.intervals, tol=0.5 / fps + 1e-9)
    # The interval that runs to the video's end has no outside keyframe (it would be frame `size`).
    root = ET.parse(xml_path).getroot()
    last_track = [t for t in root.findall("track") if len(t) == 1]
    assert len(last_track) == 1 and last_track[0].get("label") == "Jump"
    assert root.find("meta/task/size").text == str(size)


def test_cvat_frame_arithmetic():
    # 0-based: 1 s to 2 s at 25 fps is frames 25..49, shown from 25/25 to 50/25.
    assert seconds_to_cvat_frames(1.0, 2.0, 25.0) == (25, 49)
    assert cvat_frames_to_seconds(25, 49, 25.0) == (1.0, 2.0)
    assert seconds_to_cvat_frames(3.0, 3.001, 25.0) == (75, 75)  # at least one frame


def test_cvat_frames_are_the_frames_cvat_decodes(tmp_path):
    """On a real clip: the frame number we write is the index of the decoded frame shown at that
    time (CVAT numbers every decoded frame from 0)."""
    import av

    from zeal.video import probe

    clip = Path(__file__).parent / "data" / "tests_data_rawvideo_dataset_part_0.mp4"
    info = probe(str(clip))
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        pts = [float(f.pts * stream.time_base) for f in container.decode(stream)]
    pts = [t - pts[0] for t in pts]
    t0, t1 = pts[7], pts[20]  # an interval from the 8th frame's start to the 21st's
    r = make_result(intervals=[Interval(t0, t1, "Cut", 0.5)])
    r.video = info
    xml_path, labels_path = export(r, "cvat", tmp_path)
    (_, first, last, _), = read_cvat(xml_path, labels_path, len(pts))[1]
    assert (first, last) == (7, 19)
    assert info.n_frames == len(pts)


def test_cvat_refuses_what_cvat_would_refuse(tmp_path):
    long = make_result(intervals=[Interval(1.0, 2.0, "x" * 65, 0.5)])
    with pytest.raises(ExportError, match="at most 64 characters"):
        export(long, "cvat", tmp_path)
    with pytest.raises(ExportError, match="fps"):
        export(make_result(fps=0.0), "cvat", tmp_path)
    # An interval past the decoded end is clamped onto the last frame, never beyond it.
    past = make_result(intervals=[Interval(30.0, 31.0, "Late", 0.5)])
    xml_path, labels_path = export(past, "cvat", tmp_path)
    ((_, first, last, _),) = read_cvat(xml_path, labels_path, past.video.n_frames)[1]
    assert first == last == past.video.n_frames - 1


def test_a_labelstudio_export_of_videos_with_different_frame_rates_keeps_each_ones_times(tmp_path):
    """One task list for several videos: each task's frames are counted at its own fps, and the
    config reads that fps from the task (frameRate="$fps"), as Label Studio does."""
    from zeal.export import export_collection
    from zeal.labelstudio.config import parse_labeling_config

    results = [(f"clip{k}", make_result(fps, path=f"/videos/clip{k}.mp4")) for k, fps in enumerate((10.0, 29.97, 28.0))]
    tasks_path, config_path = export_collection(results, "labelstudio", tmp_path, "project")
    config = parse_labeling_config(config_path.read_text())
    assert config.frame_rate == "$fps"
    tasks = json.loads(tasks_path.read_text())
    for (_, result), task in zip(results, tasks):
        fps = config.fps(task["data"])
        assert fps == result.video.fps
        got = [(r["value"]["timelinelabels"][0], *ls_frames_to_seconds(r["value"]["ranges"][0]["start"],
                                                                        r["value"]["ranges"][0]["end"], fps))
               for r in task["predictions"][0]["result"]]
        assert_close(got, expected(result), 0.5 / fps + 1e-9)
