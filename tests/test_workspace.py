"""The server's half of the review workspace, in-process: the edit protocol (ordered, idempotent,
all-or-nothing, undo history), the server functions the page calls on a project's video, the payload
the page draws from, and the record files behind reloads."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from zeal.config import ProposalParams, ZealConfig
from zeal.pipeline import ZealPipeline
from zeal.types import ClassResult, Curves, Interval, Result, VideoInfo
from zeal.project import Project, VideoRecord
from zeal_ui.app_state import AppState
from zeal_ui.workspace import server_functions
from zeal.review import ReviewLog
from zeal.edits import MAX_HISTORY_GROUPS, EditError, apply_edits
from zeal_ui.workspace.payload import INTERVAL_FIELDS, decode_curve, encode_curve, payload


def small_result(n: int = 41) -> Result:
    rng = np.random.default_rng(0)
    times = np.arange(n) * 0.5
    classes = {}
    for label in ("A", "B"):
        curves = Curves(rng.random(n), rng.random(n), rng.random(n) * 0.3, np.zeros(n), np.zeros(n))
        classes[label] = ClassResult(label, {"start": "s?", "end": "e?", "description": "d"}, curves, [])
    r = Result(VideoInfo("/v/clip.mp4", times[-1] + 0.5, n * 15, 30.0, 64, 48), times, classes, {})
    return pipeline(None).repropose(r, ProposalParams())


def pipeline(tmp_path) -> ZealPipeline:
    # repropose needs no model: the scorers are never touched
    return ZealPipeline(ZealConfig(cache_dir=str(tmp_path or "/tmp/zeal-unused-cache")), clip=object(), lvlm=object())


def put(seq: int, iv: Interval, before: Interval | None, version: int = 1, kind: str = "do", gid: str | None = None):
    return {"seq": seq, "kind": kind, "gid": gid or f"g{seq}", "label": "edit",
            "ops": [{"id": iv.id, "v": version, "before": before and Interval.to_dict(before), "after": Interval.to_dict(iv)}]}


def delete(seq: int, iv: Interval, version: int = 1):
    return {"seq": seq, "kind": "do", "gid": f"g{seq}", "label": "delete",
            "ops": [{"id": iv.id, "v": version, "before": Interval.to_dict(iv), "after": None}]}


def test_edits_change_only_their_interval_and_are_idempotent():
    r, log = small_result(), ReviewLog()
    ivs = r.intervals
    a, b = ivs[0], ivs[1]
    accepted = replace(a, state="accepted")
    moved = replace(b, start_s=b.start_s + 0.5, source="human", state="accepted")
    batch = [put(1, accepted, a), put(2, moved, b)]
    out = apply_edits(r, log, "c1", batch)
    assert out.applied == 2 and out.conflicts == () and log.seqs == {"c1": 2}
    by_id = {iv.id: iv for iv in r.intervals}
    assert by_id[a.id] == accepted and by_id[b.id] == moved
    assert all(by_id[iv.id] == iv for iv in ivs[2:])  # nobody else touched
    # the page re-sends after a lost answer: nothing is applied twice
    again = apply_edits(r, log, "c1", batch)
    assert again.applied == 0 and again.rev == out.rev
    assert {iv.id: iv for iv in r.intervals} == by_id
    # another page of the same session keeps its own numbering
    other = apply_edits(r, log, "c2", [put(1, replace(accepted, state="rejected"), accepted, version=2)])
    assert other.applied == 1 and {iv.id: iv for iv in r.intervals}[a.id].state == "rejected"


def test_a_bad_op_refuses_the_whole_batch_and_changes_nothing():
    r, log = small_result(), ReviewLog()
    before = list(r.intervals)
    a = before[0]
    good = put(1, replace(a, state="accepted"), a)
    for bad, message in [
        (put(2, replace(a, end_s=a.start_s - 1, source="human"), a), "end must be after"),
        (put(2, replace(a, label="Nope"), a), "not in this result"),
        ({"seq": 2, "kind": "do", "ops": [{"id": "x/../y", "after": None}]}, "needs an interval id"),
        ({"seq": "2", "kind": "do", "ops": []}, "integer seq"),
        ({"seq": 2, "kind": "explode", "ops": []}, "kind"),
    ]:
        with pytest.raises(EditError, match=message):
            apply_edits(r, log, "c1", [good, bad])
        assert r.intervals == before and log.seqs == {} and log.undo == []
    with pytest.raises(EditError, match="client id"):
        apply_edits(r, log, "../c", [good])


def test_deleted_proposals_stay_deleted_through_a_reproposal(tmp_path):
    r, log = small_result(), ReviewLog()
    victim = next(iv for iv in r.intervals if iv.in_review_set)
    apply_edits(r, log, "c1", [delete(1, victim)])
    assert victim.id not in {iv.id for iv in r.intervals} and victim.id in log.deleted
    again = pipeline(tmp_path).repropose(r, ProposalParams(), suppressed=log.deleted)
    assert victim.id not in {iv.id for iv in again.intervals}
    # undoing the delete brings it back and lifts the suppression
    apply_edits(r, log, "c1", [{"seq": 2, "kind": "undo", "gid": "g1", "label": "delete",
                                "ops": [{"id": victim.id, "v": 2, "before": None, "after": Interval.to_dict(victim)}]}])
    assert victim in r.intervals and victim.id not in log.deleted


def test_undo_and_redo_move_the_history_as_the_page_does():
    r, log = small_result(), ReviewLog()
    a = r.intervals[0]
    acc = replace(a, state="accepted")
    apply_edits(r, log, "c1", [put(1, acc, a, gid="gA")])
    assert [g["gid"] for g in log.undo] == ["gA"] and log.redo == []
    apply_edits(r, log, "c1", [put(2, a, acc, version=2, kind="undo", gid="gA")])
    assert log.undo == [] and [g["gid"] for g in log.redo] == ["gA"]
    apply_edits(r, log, "c1", [put(3, acc, a, version=3, kind="redo", gid="gA")])
    assert [g["gid"] for g in log.undo] == ["gA"] and log.redo == []
    # a version that does not follow on from the server's is applied (the person's intent) and reported
    out = apply_edits(r, log, "c1", [put(4, a, acc, version=9, gid="gB")])
    assert out.conflicts == (a.id,) and log.versions[a.id] == 9
    # the history is bounded
    for k in range(MAX_HISTORY_GROUPS + 20):
        apply_edits(r, log, "c1", [put(5 + k, acc if k % 2 == 0 else a, a, version=10 + k, gid=f"g{k}")])
    assert len(log.undo) == MAX_HISTORY_GROUPS


SHORT_CLIP = Path(__file__).parent / "data" / "tests_data_rawvideo_dataset_part_0.mp4"


def app_with_result(tmp_path) -> tuple[AppState, str, VideoRecord]:
    """A project with one video whose record holds a result (built by hand: no model runs)."""
    project = Project.open(tmp_path / "p")
    entry, _ = project.add_video(SHORT_CLIP, copy=True)
    rec = project.record(entry.id)
    rec.result = small_result()
    project.save_record(entry.id, result=True)
    project.set_status(entry.id, "scored")
    return AppState(project=project, pipeline=pipeline(tmp_path)), entry.id, rec


def test_server_functions_load_edit_repropose_and_save(tmp_path):
    state, vid, rec = app_with_result(tmp_path)
    load, edit, repropose, videos, act = server_functions(state)
    page = load({"video": vid})
    assert page["video"] == vid and page["result"]["fields"] == list(INTERVAL_FIELDS)
    assert page["result"]["video"]["url"].startswith("zeal/media/") and page["videos"][0]["id"] == vid
    first = page["result"]["intervals"][0]
    iv = next(i for i in rec.result.intervals if i.id == first[0])
    ack = edit({"video": vid, "client": "c1", "edits": [put(1, replace(iv, state="accepted"), iv)]})
    assert ack["applied"] == 1 and ack["last_seq"] == 1 and ack["rev"] == 1
    assert state.project.videos[vid].status == "in review" and state.project.videos[vid].counts["accepted"] == 1
    refused = edit({"video": vid, "client": "c1", "edits": [put(2, replace(iv, label="Nope"), iv)]})
    assert "not in this result" in refused["error"] and refused["resync"]
    assert "reload the page" in edit({"video": "0" * 40, "client": "c1", "edits": []})["error"]
    out = repropose({"video": vid, "params": {"min_score": 0.0, "top_p": 0.5}})
    assert out["rev"] == 2 and "kept 1 reviewed" in out["message"]
    assert "out of range" in repropose({"video": vid, "params": {"top_p": 7}})["error"]
    # the app restarted: the project reads back the same intervals, history, numbering and settings
    # (a re-proposal is written just after its answer)
    import time

    deadline = time.monotonic() + 10
    while json.loads((tmp_path / "p" / "project.json").read_text())["proposals"]["top_p"] != 0.5:
        assert time.monotonic() < deadline, "the re-proposal's settings never reached project.json"
        time.sleep(0.05)
    again = Project.open(tmp_path / "p")
    back = again.record(vid)
    assert back.result.intervals == rec.result.intervals and back.review.seqs == {"c1": 1}
    assert [g["gid"] for g in back.review.undo] == ["g1"] and again.settings.proposals.top_p == 0.5
    assert load({"video": vid})["review"]["undo"][0]["gid"] == "g1"
    # a browser with no video open (or one that left the project) gets the one last opened
    assert load({"video": None})["video"] == load({"video": "nope"})["video"] == vid
    assert Project.open(tmp_path / "p").last_opened == vid and videos({})["videos"][0]["status"] == "in review"
    assert act({"action": "done", "video": vid})["ok"] and state.project.videos[vid].status == "done"
    assert "unknown action" in act({"action": "explode", "video": vid})["error"]


def test_an_edit_that_cannot_be_saved_says_so_and_is_saved_when_sent_again(tmp_path):
    state, vid, rec = app_with_result(tmp_path)
    _, edit, *_ = server_functions(state)
    iv = rec.result.intervals[0]
    msg = {"video": vid, "client": "c1", "edits": [put(1, replace(iv, state="accepted"), iv)]}
    journal = tmp_path / "p" / "videos" / vid / "review.log"
    journal.mkdir()  # the journal cannot be written (as on a full or broken disk)
    answer = edit(msg)
    assert answer["retry"] and "the server could not save" in answer["error"]
    journal.rmdir()
    answer = edit(msg)  # the page sends it again: applied once, written now
    assert answer["applied"] == 0 and answer["last_seq"] == 1 and "error" not in answer
    back = Project.open(tmp_path / "p").record(vid)  # as after a restart: review.json + the journal
    assert {i.id: i.state for i in back.result.intervals}[iv.id] == "accepted"


def test_the_edit_journal_is_replayed_and_compacted(tmp_path, monkeypatch):
    import zeal.project as project_module

    state, vid, rec = app_with_result(tmp_path)
    folder = tmp_path / "p" / "videos" / vid
    ivs = rec.result.intervals
    for k in range(3):
        state.project.apply_edits(vid, "c1", [put(k + 1, replace(ivs[k], state="rejected"), ivs[k])])
    assert len((folder / "review.log").read_text().splitlines()) == 3
    saved = json.loads((folder / "review.json").read_text())  # the full review was not rewritten
    assert all(d["state"] == "unreviewed" for d in saved["intervals"])
    with (folder / "review.log").open("a") as f:
        f.write('{"client": "c1", "edits": [{"seq": 4, "kind"')  # a line cut short by a crash
    reopened = Project.open(tmp_path / "p")
    back = reopened.record(vid)
    assert [i.state for i in sorted(back.result.intervals, key=lambda i: i.start_s)][:3] == ["rejected"] * 3
    assert back.review.seqs == {"c1": 3}
    # the fragment is cut off: an edit after the crash is a whole line of its own, replayed too
    reopened.apply_edits(vid, "c1", [put(4, replace(ivs[4], state="rejected"), ivs[4])])
    again = Project.open(tmp_path / "p").record(vid)
    assert {i.id: i.state for i in again.result.intervals}[ivs[4].id] == "rejected" and again.review.seqs == {"c1": 4}
    # every COMPACT_AFTER lines the review is written whole and the journal starts over
    monkeypatch.setattr(project_module, "COMPACT_AFTER", 2)
    fresh = Project.open(tmp_path / "p")
    fresh.apply_edits(vid, "c1", [put(5, replace(ivs[3], state="accepted"), ivs[3])])
    assert not (folder / "review.log").exists()
    assert {d["id"]: d["state"] for d in json.loads((folder / "review.json").read_text())["intervals"]}[ivs[3].id] \
        == "accepted"


def test_curves_travel_as_uint16_within_a_fraction_of_a_pixel():
    rng = np.random.default_rng(1)
    values = rng.random(14_401)
    values[[3, 500]] = np.nan  # frames that could not be decoded
    enc = encode_curve(values, 0.0, 1.0)
    back = decode_curve(enc)
    assert np.isnan(back[[3, 500]]).all()
    ok = np.isfinite(values)
    assert np.abs(back[ok] - values[ok]).max() <= 0.5 / 65534 + 1e-12
    assert len(enc["data"]) < 14_401 * 2 * 1.4  # base64 of 2 bytes a sample
    act = encode_curve(np.array([0.2, 0.25, 0.3]))
    assert (act["lo"], act["hi"]) == (0.2, 0.3)


def test_payload_of_a_video(tmp_path):
    state, vid, rec = app_with_result(tmp_path)
    entry = state.project.videos[vid]
    data = payload(vid, entry, rec, "zeal/media/x", {"A": [(1.0, 2.0)]}, ProposalParams())
    r = data["result"]
    assert [c["name"] for c in r["classes"]] == ["A", "B"] and r["classes"][0]["color"] != r["classes"][1]["color"]
    times = np.frombuffer(__import__("base64").b64decode(r["times"]), dtype="<f8")
    assert np.array_equal(times, rec.result.times_s)
    assert len(r["intervals"]) == len(rec.result.intervals) and r["ground_truth"] == [[0, 1.0, 2.0]]
    assert payload(vid, entry, VideoRecord(), None, {}, ProposalParams())["result"] is None


def test_a_damaged_review_file_leaves_the_analysis(tmp_path):
    state, vid, rec = app_with_result(tmp_path)
    (tmp_path / "p" / "videos" / vid / "review.json").write_text("{broken")
    back = Project.open(tmp_path / "p").record(vid)
    assert back.result is not None and back.result.times_s.tolist() == rec.result.times_s.tolist()
