"""`zeal batch`: a folder with a corrupted clip (decoded around) and a text file goes on past them, resuming skips finished videos,
threads give the same answers, and a batch killed with SIGKILL and started again ends with the same
predictions as an uninterrupted run."""

from __future__ import annotations

import csv
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from cli_support import (AVI_CLIP, CLASSES, CORRUPTED_CLIP, MKV_CLIP, SHORT_CLIP, clean_env, model_flags,
                         one_torch_thread, read_json, run_zeal, zeal_cmd)
from zeal.cli import main
from zeal.export import predictions_rows
from zeal.types import Result

# The killed batch must be caught while it still has work to do: poll this often, for this long.
POLL_S = 0.02
KILL_WAIT_S = 180
# P(yes) differs by ~1e-6 between batchings of the same frames and questions (measured); far below
# anything that moves an interval.
CURVE_TOL = 1e-5


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


def make_folder(folder: Path, bad: bool = True) -> Path:
    """a.mp4 (1 s), b.mkv (10 s), and when bad: c_corrupt.mp4 (two damaged stretches, decoded
    around), d_text.mp4 (text), plus
    a file that is not a video by extension (ignored)."""
    folder.mkdir(parents=True)
    shutil.copy(SHORT_CLIP, folder / "a.mp4")
    shutil.copy(MKV_CLIP, folder / "b.mkv")
    if bad:
        shutil.copy(CORRUPTED_CLIP, folder / "c_corrupt.mp4")
        (folder / "d_text.mp4").write_text("this is not a video\n")
    (folder / "notes.txt").write_text("not a video either, and not picked up\n")
    return folder


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def statuses(out: Path) -> dict[str, str]:
    return {v["video_id"]: v["status"] for v in read_json(out / "summary.json")["videos"]}


def batch_args(folder, out, tiny, cache, *extra):
    return ["batch", str(folder), "--classes", CLASSES, "--known-classes", "--out", str(out), "-q",
            *model_flags(tiny, cache), *extra]


@pytest.fixture(scope="module")
def first_batch(tiny, tmp_path_factory):
    """One batch over a folder with two good and two bad videos: (folder, out, cache, exit code, stdout)."""
    work = tmp_path_factory.mktemp("batch")
    folder, out, cache = make_folder(work / "videos"), work / "out", work / "cache"
    code = main(batch_args(folder, out, tiny, cache))
    return folder, out, cache, code


def test_one_bad_video_is_reported_and_the_batch_goes_on(first_batch):
    folder, out, cache, code = first_batch
    assert code == 1
    assert statuses(out) == {"a": "done", "b": "done", "c_corrupt": "done", "d_text": "failed"}
    summary = read_json(out / "summary.json")
    videos = {v["video_id"]: v for v in summary["videos"]}
    assert "d_text.mp4" in videos["d_text"]["error"]
    assert summary["counts"] == {"done": 3, "skipped": 0, "failed": 1, "pending": 0}
    for stem in ("a", "b", "c_corrupt"):
        assert (out / stem / "result.json").exists() and (out / stem / f"{stem}.csv").exists()
    # the damaged clip's skipped stretches are in its result and its summary entry
    damaged = Result.from_dict(read_json(out / "c_corrupt" / "result.json"))
    assert damaged.run.skipped and "could not be decoded" in videos["c_corrupt"]["warnings"][0]
    assert not videos["a"]["warnings"] and not videos["b"]["warnings"]
    # the combined CSV holds exactly the analysed videos' accepted intervals, in the evaluation shape
    rows = read_csv(out / "predictions.csv")
    expected = []
    for stem in ("a", "b", "c_corrupt"):
        expected += predictions_rows(Result.from_dict(read_json(out / stem / "result.json")), stem)
    assert [r["video-id"] for r in rows] == [e["video-id"] for e in expected]
    assert [(r["label"], float(r["t-start"]), float(r["t-end"]), float(r["score"])) for r in rows] == \
        [(e["label"], e["t-start"], e["t-end"], e["score"]) for e in expected]
    assert {r["video-id"] for r in rows} <= {"a", "b", "c_corrupt"} and {"a", "b"} <= {r["video-id"] for r in rows}
    assert list(rows[0]) == ["video-id", "t-start", "t-end", "label", "score"]


def test_resume_recomputes_only_the_missing_video(first_batch, tiny, capsys):
    folder, out, cache, _ = first_batch
    kept = (out / "b" / "result.json").stat().st_mtime_ns
    (out / "a" / "result.json").unlink()
    code = main(batch_args(folder, out, tiny, cache))
    assert code == 1  # the text file fails again
    assert statuses(out) == {"a": "done", "b": "skipped", "c_corrupt": "skipped", "d_text": "failed"}
    assert (out / "b" / "result.json").stat().st_mtime_ns == kept  # untouched
    redone = Result.from_dict(read_json(out / "a" / "result.json"))
    # every P(yes) curve of the recomputed video came from the score cache: no LVLM call
    assert (redone.run.stats["questions_scored"], redone.run.stats["questions_cached"]) == (0, 4)
    assert redone.run.stats["lvlm"]["pairs"] == 0  # the loaded scorer answered nothing during this run
    assert "1 analysed, 2 already done" in capsys.readouterr().out
    assert {"a", "b"} <= {r["video-id"] for r in read_csv(out / "predictions.csv")}


def test_changed_questions_are_not_skipped(first_batch, tiny, tmp_path):
    folder, out, cache, _ = first_batch
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    code = main(["batch", str(folder), "--classes", "Diving", "--known-classes", "--out", str(copy), "-q",
                 *model_flags(tiny, cache)])
    assert code == 1
    assert statuses(copy)["a"] == statuses(copy)["b"] == "done"  # other queries: computed again
    assert list(Result.from_dict(read_json(copy / "b" / "result.json")).classes) == ["Diving"]


def test_list_file_and_threads_give_the_same_predictions(first_batch, tiny, tmp_path):
    folder, out, _, _ = first_batch
    listing = tmp_path / "videos.txt"
    shutil.copy(folder / "b.mkv", tmp_path / "b.mkv")
    # one absolute path, one relative to the list file, a comment and a blank line
    listing.write_text(f"# two good videos\n{folder / 'a.mp4'}\n\nb.mkv\n")
    par = tmp_path / "par"
    # a fresh cache: the two threads really score at the same time with one shared pipeline
    assert main(batch_args(listing, par, tiny, tmp_path / "cache", "--workers", "2")) == 0
    assert statuses(par) == {"a": "done", "b": "done"}
    assert read_csv(par / "predictions.csv") == [r for r in read_csv(out / "predictions.csv")
                                                 if r["video-id"] in ("a", "b")]


def test_empty_folder_and_duplicate_names_are_user_errors(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["batch", str(tmp_path / "empty"), "--classes", "Diving", "--out", str(tmp_path / "o")]) == 2
    assert "no videos" in capsys.readouterr().err
    (tmp_path / "x").mkdir()
    shutil.copy(SHORT_CLIP, tmp_path / "x" / "clip.mp4")
    shutil.copy(SHORT_CLIP, tmp_path / "clip.mkv")
    (tmp_path / "list.txt").write_text("x/clip.mp4\nclip.mkv\n")
    assert main(["batch", str(tmp_path / "list.txt"), "--classes", "Diving", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "share the name 'clip'" in err


def test_sigkill_then_resume_equals_an_uninterrupted_run(tiny, tmp_path):
    """Kill -9 the batch as soon as the first video is finished, start it again: the finished video
    is not recomputed and the final predictions equal those of a run that was never interrupted."""
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy(SHORT_CLIP, folder / "a.mp4")
    shutil.copy(MKV_CLIP, folder / "b.mkv")
    shutil.copy(AVI_CLIP, folder / "c.avi")
    fps = "2"
    args = ["batch", str(folder), "--classes", CLASSES, "--known-classes", "-q",
            *model_flags(tiny, tmp_path / "cache", fps=fps)]
    out = tmp_path / "out"
    log = open(tmp_path / "killed.log", "wb")  # a file, not a pipe nobody reads (it could fill and block)
    proc = subprocess.Popen(zeal_cmd(*args, "--out", str(out)), cwd=tmp_path, env=clean_env(),
                            stdout=log, stderr=subprocess.STDOUT)
    first = out / "a" / "result.json"
    deadline = time.monotonic() + KILL_WAIT_S
    try:
        while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(POLL_S)
        assert first.exists(), (tmp_path / "killed.log").read_text()[-3000:]
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        log.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "c" / "result.json").exists(), "the batch ended before the kill: nothing to resume"
    first_mtime = first.stat().st_mtime_ns

    resumed = run_zeal(*args, "--out", str(out), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert statuses(out)["a"] == "skipped" and first.stat().st_mtime_ns == first_mtime
    assert statuses(out)["c"] == "done"

    # the reference: the same batch, never interrupted, with a cache of its own (everything recomputed)
    ref = tmp_path / "ref"
    ref_args = ["batch", str(folder), "--classes", CLASSES, "--known-classes", "-q",
                *model_flags(tiny, tmp_path / "ref_cache", fps=fps), "--out", str(ref)]
    assert main(ref_args) == 0
    assert statuses(ref) == {"a": "done", "b": "done", "c": "done"}
    # What "equal" means: the LVLM's P(yes) depends on how frames and questions are batched by about
    # 1e-6 (a resumed video may restart mid-chunk or with fewer questions in a batch), so the curves
    # agree within CURVE_TOL, and the same curves give the same intervals: same rows, same times,
    # scores within CURVE_TOL.
    got_rows, want_rows = read_csv(out / "predictions.csv"), read_csv(ref / "predictions.csv")
    assert [(r["video-id"], r["label"], r["t-start"], r["t-end"]) for r in got_rows] == \
        [(r["video-id"], r["label"], r["t-start"], r["t-end"]) for r in want_rows]
    for g, w in zip(got_rows, want_rows):
        assert float(g["score"]) == pytest.approx(float(w["score"]), abs=CURVE_TOL)
    for stem in ("a", "b", "c"):
        got = Result.from_dict(read_json(out / stem / "result.json"))
        want = Result.from_dict(read_json(ref / stem / "result.json"))
        assert got.times_s.tolist() == want.times_s.tolist()
        for label, cls in want.classes.items():
            for name in ("start_raw", "end_raw", "actionness"):
                np.testing.assert_allclose(getattr(got.classes[label].curves, name),
                                           getattr(cls.curves, name), atol=CURVE_TOL, rtol=0)


def test_a_batch_hashes_each_video_once(tiny, tmp_path, monkeypatch):
    """The resume check and the run share one content hash per video (a multi-GB file takes seconds)."""
    import zeal.video

    hashed = []
    real = zeal.video.video_hash
    monkeypatch.setattr(zeal.video, "video_hash", lambda path: hashed.append(Path(path).name) or real(path))
    folder = make_folder(tmp_path / "videos", bad=False)
    assert main(batch_args(folder, tmp_path / "out", tiny, tmp_path / "cache")) == 0
    assert sorted(hashed) == ["a.mp4", "b.mkv"]
