"""Projects (zeal.project): the folder format, atomic writes, videos found by content, a moved
in-place video found again, ground truth by name, project exports, the background scoring queue
(zeal_ui.scoring) with a person's work kept, and `zeal batch --project` writing what the app opens."""

from __future__ import annotations

import json
import shutil
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from cli_support import DATA, SHORT_CLIP, model_flags
from tiny_models import tiny_config
from zeal.cli import main
from zeal.errors import ZealError
from zeal.pipeline import ZealPipeline
from zeal.project import PROJECT_FILE, Project, ProjectError, export_project
from zeal.types import Interval
from zeal.queries import lookup
from zeal.video import video_hash
from zeal_ui.scoring import ScoringQueue

OTHER_CLIP = DATA / "tests_data_test.avi"
CLASSES = ["Diving", "CliffDiving"]


@pytest.fixture(scope="module")
def models(tiny):
    return tiny


def pipeline(models, cache: Path) -> ZealPipeline:
    return ZealPipeline.from_config(tiny_config(models, cache, video={"fps": 2.0, "max_side": 128}))


def with_classes(project: Project) -> Project:
    qs = lookup(CLASSES)
    project.settings.classes = qs.names
    project.settings.queries = {q.name: {"start": q.start, "end": q.end, "description": q.description} for q in qs}
    project.save()
    return project


def test_a_project_folder_round_trips_and_knows_videos_by_content(tmp_path):
    project = with_classes(Project.open(tmp_path / "p"))
    a, new = project.add_video(SHORT_CLIP, copy=True)
    b, _ = project.add_video(OTHER_CLIP, copy=False)
    again, new_again = project.add_video(SHORT_CLIP, copy=False)  # the same content: the same video
    assert new and not new_again and again.id == a.id == video_hash(SHORT_CLIP)
    assert (tmp_path / "p" / a.file).is_file() and not a.in_place and b.in_place and b.file == str(OTHER_CLIP.resolve())
    project.reorder([b.id])
    project.set_status(a.id, "done")
    back = Project.open(tmp_path / "p")
    assert [e.id for e in back.entries()] == [b.id, a.id] and back.videos[a.id].status == "done"
    assert back.settings.classes == CLASSES and back.settings.queries == project.settings.queries
    data = json.loads((tmp_path / "p" / PROJECT_FILE).read_text())
    assert data["format"] == 1 and data["videos"] == [b.id, a.id]
    # removing moves the video's folder aside; nothing is deleted
    back.remove_video(b.id)
    assert b.id not in Project.open(tmp_path / "p").videos
    assert any(p.name.startswith(b.id) for p in (tmp_path / "p" / "removed").iterdir())


def test_writes_are_atomic(tmp_path, monkeypatch):
    project = with_classes(Project.open(tmp_path / "p"))
    before = (tmp_path / "p" / PROJECT_FILE).read_text()
    import os

    def crash(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    project.settings.classes = ["Other"]
    with pytest.raises(ProjectError, match="No space left on device"):
        project.save()
    monkeypatch.undo()
    assert (tmp_path / "p" / PROJECT_FILE).read_text() == before  # the old file, whole
    assert not [p for p in (tmp_path / "p").iterdir() if p.name.endswith(".tmp")]


def test_a_moved_in_place_video_is_found_again_by_content(tmp_path):
    src = tmp_path / "videos" / "clip.mp4"
    src.parent.mkdir()
    shutil.copyfile(SHORT_CLIP, src)
    project = Project.open(tmp_path / "p")
    entry, _ = project.add_video(src, copy=False)
    # the project folder goes to another machine; the video to another folder
    shutil.copytree(tmp_path / "p", tmp_path / "elsewhere" / "p")
    moved = tmp_path / "elsewhere" / "media" / "clip.mp4"
    moved.parent.mkdir(parents=True)
    shutil.move(src, moved)
    decoy = tmp_path / "elsewhere" / "decoy" / "clip.mp4"  # same name and size, other content
    decoy.parent.mkdir()
    decoy.write_bytes(bytes(reversed(moved.read_bytes())))
    copy = Project.open(tmp_path / "elsewhere" / "p")
    assert copy.video_path(entry.id) is None
    assert copy.locate(entry.id, [decoy.parent]) is None
    assert copy.locate(entry.id, [tmp_path / "elsewhere"]) == moved
    assert Project.open(tmp_path / "elsewhere" / "p").video_path(entry.id) == moved.resolve()


def test_bad_project_folders_say_what_is_wrong(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ProjectError, match="is a file"):
        Project.open(tmp_path / "f")
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / PROJECT_FILE).write_text("{nope")
    with pytest.raises(ProjectError, match="unreadable"):
        Project.open(tmp_path / "p")
    with pytest.raises(ProjectError, match="holds no project"):
        Project.open(tmp_path / "empty", create=False)


def scored_project(models, tmp_path) -> tuple[Project, ScoringQueue]:
    project = with_classes(Project.open(tmp_path / "p"))
    for clip in (SHORT_CLIP, OTHER_CLIP):
        project.add_video(clip, copy=False)
    queue = ScoringQueue(project, pipeline(models, tmp_path / "cache"))
    for e in project.entries():
        project.set_status(e.id, "queued")
        queue.score(e.id)  # the worker's own step, run here in order
    return project, queue


def test_the_queue_scores_and_a_rescore_keeps_a_persons_work(models, tmp_path):
    project, queue = scored_project(models, tmp_path)
    first, second = project.entries()
    assert {e.status for e in project.entries()} == {"scored"} and first.scored_at > 0
    rec = project.record(first.id)
    target = next(iv for iv in rec.result.intervals if iv.in_review_set)
    with rec.lock:
        cls = rec.result.classes[target.label]
        cls.intervals[cls.intervals.index(target)] = kept = replace(target, end_s=target.end_s + 0.5,
                                                                     source="human", state="accepted")
        project.save_record(first.id)
    assert project.videos[first.id].counts["accepted"] == 1
    # an edited question: the video is scored again; the person's interval stays as it was
    project.settings.queries["Diving"]["start"] = "Is a diver standing still on the board?"
    project.save()
    project.set_status(first.id, "queued")
    queue.score(first.id)
    assert kept in project.record(first.id).result.intervals
    assert project.videos[first.id].status == "in review" and "re-scored: kept 1" in project.videos[first.id].message
    # a missing file or questions fail the video with a message, not the queue
    project.settings.classes = ["Diving", "NoSuchClass"]
    project.set_status(second.id, "queued")
    queue.score(second.id)
    assert project.videos[second.id].status == "failed" and "NoSuchClass" in project.videos[second.id].message


def test_score_first_does_not_move_the_video_in_the_list(models, tmp_path):
    project = with_classes(Project.open(tmp_path / "p"))
    first, _ = project.add_video(SHORT_CLIP, copy=False)
    second, _ = project.add_video(OTHER_CLIP, copy=False)
    queue = ScoringQueue(project, pipeline(models, tmp_path / "cache"))
    queue.enqueue([first.id, second.id])
    queue.enqueue([second.id], front=True)  # "Score the open video again" on the second one
    assert queue._next() == second.id
    queue.score(second.id)
    assert queue._next() == first.id
    assert [e.id for e in Project.open(tmp_path / "p").entries()] == [first.id, second.id]


def test_a_removed_video_added_again_comes_back_with_its_review(models, tmp_path):
    project, _ = scored_project(models, tmp_path)
    first = project.entries()[0]
    rec = project.record(first.id)
    target = next(iv for iv in rec.result.intervals if iv.in_review_set)
    after = replace(target, state="rejected")
    edit = {"seq": 1, "kind": "do", "gid": "g1", "label": "reject",
            "ops": [{"id": target.id, "v": 1, "before": Interval.to_dict(target), "after": Interval.to_dict(after)}]}
    project.apply_edits(first.id, "page", [edit])  # journaled, not yet compacted into result.json
    project.remove_video(first.id)
    assert first.id not in Project.open(tmp_path / "p").videos
    # the same content again, this time as an upload: the review comes back, from the new file
    back, new = project.add_video(SHORT_CLIP, copy=True)
    assert new and back.id == first.id and back.status == "scored" and not back.in_place  # not "new"
    assert (tmp_path / "p" / back.file).is_file()
    reopened = Project.open(tmp_path / "p")
    assert [e.id for e in reopened.entries()][-1] == first.id
    restored = {iv.id: iv for iv in reopened.record(first.id).result.intervals}
    assert restored[target.id].state == "rejected" and reopened.record(first.id).review.seqs == {"page": 1}
    assert not list((tmp_path / "p" / "removed").glob(f"{first.id}-*"))
    # in the app: it says so, and scores nothing again
    from app_server import in_process_app

    cb = in_process_app(pipeline(models, tmp_path / "cache"), tmp_path / "app")
    with_classes(cb.project)
    cb.add_uploads([str(SHORT_CLIP)])
    vid = cb.project.entries()[0].id
    cb.state.queue.score(vid)
    cb.project.remove_video(vid)
    status, _ = cb.add_uploads([str(SHORT_CLIP)])
    assert "Back with its review" in status and cb.project.videos[vid].status == "scored"
    assert cb.project.record(vid).result is not None


def test_project_exports_hold_every_video(models, tmp_path):
    project, _ = scored_project(models, tmp_path)
    out = tmp_path / "out"
    paths = export_project(project, out, ["csv", "json", "labelstudio", "activitynet", "elan", "via", "webvtt"],
                           states=("unreviewed", "accepted"), proposals="all")
    names = sorted(p.name for p in paths)
    assert names == sorted(["p.csv", "p.json", "p.labelstudio.json", "p.labelstudio.xml", "p.activitynet.json",
                            "p.elan.zip", "p.via.zip", "p.webvtt.zip"])
    stems = {Path(e.name).stem for e in project.entries()}
    import csv

    with (out / "p.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    total = sum(len(project.record(e.id).result.intervals) for e in project.entries())
    assert len(rows) == total and {r["video"] for r in rows} <= stems
    assert {v["id"] for v in json.loads((out / "p.json").read_text())["videos"]} == stems
    assert set(json.loads((out / "p.activitynet.json").read_text())["results"]) == stems
    assert len(json.loads((out / "p.labelstudio.json").read_text())) == 2
    with zipfile.ZipFile(out / "p.elan.zip") as z:
        assert sorted(z.namelist()) == sorted(f"{s}.eaf" for s in stems)
    with pytest.raises(ZealError, match="nothing to export"):
        export_project(Project.open(tmp_path / "empty"), out, ["csv"])


def test_ground_truth_is_matched_to_videos_by_name(tmp_path):
    from zeal.evaluate import load_ground_truth

    project = Project.open(tmp_path / "p")
    entry, _ = project.add_video(SHORT_CLIP, copy=True)
    gt = tmp_path / "gt.csv"
    gt.write_text(f"video-id,t-start,t-end,label\n{SHORT_CLIP.stem},0.1,0.6,Diving\nsomething_else,1,2,Diving\n")
    assert project.set_ground_truth(load_ground_truth(gt)) == {SHORT_CLIP.name: 1}
    assert Project.open(tmp_path / "p").ground_truth(entry.id) == {"Diving": [(0.1, 0.6)]}
    gt.write_text("video-id,t-start,t-end,label\nnope,1,2,Diving\n")
    with pytest.raises(ProjectError, match="names none of this project's videos"):
        project.set_ground_truth(load_ground_truth(gt))


def test_zeal_batch_writes_a_project_the_app_opens(models, tmp_path, capsys):
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copyfile(SHORT_CLIP, folder / SHORT_CLIP.name)
    shutil.copyfile(OTHER_CLIP, folder / OTHER_CLIP.name)
    args = ["batch", str(folder), "--project", str(tmp_path / "proj"), "--classes", ",".join(CLASSES),
            "--known-classes", "-q", *model_flags(models, tmp_path / "cache")]
    assert main(args) == 0
    project = Project.open(tmp_path / "proj")
    assert {e.status for e in project.entries()} == {"scored"} and project.settings.classes == CLASSES
    assert all(project.record(e.id).result is not None for e in project.entries())
    assert all(e.in_place for e in project.entries())
    assert "2 scored" in capsys.readouterr().out
    assert main(args) == 0 and "2 already done (skipped)" in capsys.readouterr().out
    # the app opens it: its page lists the videos (the app's own server functions)
    from zeal_ui.demo import create_demo
    from zeal_ui.videos import video_list

    state, _ = create_demo(pipeline(models, tmp_path / "cache"), tmp_path / "proj", start_queue=False)
    assert [v["status"] for v in video_list(state)] == ["scored", "scored"]


def test_a_class_clip_left_out_comes_back_with_one_click(models, tmp_path):
    from zeal.config import ProposalParams
    from zeal_ui.app_state import AppState
    from zeal_ui.videos import act
    from zeal_ui.workspace.payload import payload

    project = Project.open(tmp_path / "p")
    qs = lookup(["Diving", "CliffDiving", "Billiards"])
    project.settings.classes = qs.names
    project.settings.queries = {q.name: q.to_dict() for q in qs}
    project.settings.known_classes = False  # CLIP keeps its top-k of the three
    project.settings.top_k = 2
    project.save()
    entry, _ = project.add_video(SHORT_CLIP, copy=False)
    pipe = pipeline(models, tmp_path / "cache")
    pipe.config.clip.top_k = 2
    queue = ScoringQueue(project, pipe)
    project.set_status(entry.id, "queued")
    queue.score(entry.id)
    rec = project.record(entry.id)
    kept = list(rec.result.classes)
    page = payload(entry.id, entry, rec, None, {}, ProposalParams())
    dropped = page["result"]["dropped"]
    assert len(kept) == 2 and [d[0] for d in dropped] == [c for c in qs.names if c not in kept]
    assert all(isinstance(score, float) for _, score in dropped)
    # a reviewed interval, then the dropped class brought back: scored again with it, the work kept
    target = next(iv for iv in rec.result.intervals if iv.in_review_set)
    with rec.lock:
        cls = rec.result.classes[target.label]
        cls.intervals[cls.intervals.index(target)] = accepted = replace(target, state="accepted")
    state = AppState(project=project, pipeline=pipe, queue=queue)
    answer = act(state, {"action": "bring_back", "video": entry.id, "class": dropped[0][0]})
    assert answer["ok"] and project.videos[entry.id].status == "queued"
    queue.score(entry.id)
    assert set(project.record(entry.id).result.classes) == set(kept) | {dropped[0][0]}
    assert accepted in project.record(entry.id).result.intervals
