"""`zeal reproduce thumos14` end to end: real clips named as THUMOS14 test videos, a ground-truth folder
in the official per-class layout made for them, tiny real-architecture models behind the paper preset;
the printed table holds the paper's figures beside this run's, and this run's equal `zeal eval`'s
protocol on the same predictions. Resumable; known classes in their own folder. Where the real THUMOS14
ground truth is present (../shared), the video discovery is checked on it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cli_support import DATA, ROOT, model_flags, one_torch_thread
from zeal.cli import main
from zeal.config import PAPER_PROMPT_TEMPLATE
from zeal.evaluate import evaluate, load_ground_truth, load_predictions, split_protocol
from zeal.reproduce import PAPER_TABLE1, find_ground_truth, find_videos
from zeal.types import Result

# Real clips under THUMOS14 test names (ids of the real test set), and one id the folder lacks.
CLIPS = {"video_test_0000004": DATA / "tests_data_test.mp4",  # 10 s swimming pool
         "video_test_0000006": ROOT / "assets" / "examples" / "basketball.mp4",  # 10 s, 29.97 fps
         "video_test_0000007": DATA / "examples_flipping_a_pancake.mkv"}  # 10.3 s, MKV
ABSENT = "video_test_0000010"
# class -> [(video, start, end)], in seconds. Long segments: the tiny models' intervals overlap them
# enough for non-zero APs, so the comparison of our figures with the protocol's is not 0 == 0.
GROUND_TRUTH = {
    "Diving": [("video_test_0000004", 0.0, 9.0)],
    "CliffDiving": [("video_test_0000004", 2.0, 9.0), ("video_test_0000007", 0.0, 10.0)],
    "BasketballDunk": [("video_test_0000006", 0.0, 9.0), (ABSENT, 10.0, 20.0)],
    "CleanAndJerk": [("video_test_0000007", 0.0, 10.0), ("video_test_0000006", 1.0, 10.0)],
    "TennisSwing": [(ABSENT, 3.0, 4.0)],
}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def thumos(tmp_path_factory) -> tuple[Path, Path]:
    """(videos folder, ground-truth folder) laid out as THUMOS14 ships them."""
    root = tmp_path_factory.mktemp("thumos14")
    videos = root / "videos_test"
    videos.mkdir()
    for vid, clip in CLIPS.items():
        shutil.copy(clip, videos / f"{vid}{clip.suffix}")
    shutil.copy(DATA / "tests_data_test.avi", videos / "video_test_9999999.avi")  # no ground truth: ignored
    (videos / "notes.txt").write_text("not a video\n")
    gt = root / "annotations_test"
    gt.mkdir()
    for label, rows in GROUND_TRUTH.items():
        (gt / f"{label}_test.txt").write_text("".join(f"{v}  {s:.1f} {e:.1f}\n" for v, s, e in rows))
    (gt / "Ambiguous_test.txt").write_text("video_test_0000006  7.0 8.0\n")
    return videos, gt


def reproduce(thumos, tiny, runs: Path, capsys, *extra: str) -> tuple[int, str]:
    videos, gt = thumos
    flags = model_flags(tiny, runs.parent / "cache", fps="1")
    flags[flags.index("--lvlm") + 1] = tiny.lvlm("llava_onevision")  # the paper's LVLM architecture
    capsys.readouterr()
    code = main(["reproduce", "thumos14", "--videos", str(videos), "--out", str(runs), "--ground-truth", str(gt),
                 "-q", *flags, *extra])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def our_row(table: str, setting_title: str, known: bool) -> list[float]:
    """The numbers of this run's row under one setting of the printed table."""
    lines = table.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(setting_title))
    for line in lines[start:]:
        if "ZEAL, this run" in line and ("✛" in line) == known:
            return [float(x) for x in line.split()[-6:]]
    raise AssertionError(f"no row of this run under {setting_title!r}:\n{table}")


def test_reproduce_prints_the_table_beside_the_paper_and_resumes(thumos, tiny, tmp_path, capsys):
    runs = tmp_path / "runs"
    code, out = reproduce(thumos, tiny, runs, capsys)
    assert code == 0, out
    setting = runs / "filtered"
    assert sorted(p.name for p in setting.iterdir() if p.is_dir()) == sorted(CLIPS)
    table = (setting / "table.txt").read_text()
    assert table.strip() in out
    # the paper's rows, with its figures (Table 1, 50%/50%: LLaVA-OV 10.7, Pixtral 7.8)
    assert "ZEAL-LLaVA-OV (paper)" in table and "ZEAL-Pixtral (paper)" in table
    assert " 21.1   15.0    9.9    5.0    2.6   10.7" in table and "   7.8" in table
    # this run, in the paper's setting
    result = Result.from_dict(json.loads((setting / "video_test_0000004" / "result.json").read_text()))
    assert result.settings["lvlm"]["prompt_template"] == PAPER_PROMPT_TEMPLATE
    assert result.settings["lvlm"]["answer_spellings"] == "exact"
    assert result.settings["clip"]["filter_text"] == "description"
    assert len(result.classes) == 3 and len(result.run.ranking) == 20  # all 20 classes ranked, top 3 kept
    # our figures are the paper's protocol on our predictions, over the videos found (not the absent one)
    gt = load_ground_truth(thumos[1], subset="test")
    gt = {c: [r for r in rows if r[0] != ABSENT] for c, rows in gt.items()}
    gt = {c: rows for c, rows in gt.items() if rows}
    every = load_predictions(setting / "predictions.csv")
    assert {v for rows in every.values() for v, *_ in rows} <= set(CLIPS)
    preds = {c: rows for c, rows in every.items() if c in gt}  # other classes have no AP to change
    expected = {"Zero-shot 75% seen, 25% unseen": split_protocol(gt, preds, 0.25, 10, 0),
                "Zero-shot 50% seen, 50% unseen": split_protocol(gt, preds, 0.5, 10, 0),
                "All classes": evaluate(gt, preds)}
    for title, report in expected.items():
        want = [round(100 * v, 1) for v in report.mAP] + [round(100 * report.average, 1)]
        assert our_row(table, title, known=False) == pytest.approx(want, abs=0.051), title
    saved = json.loads((setting / "report.json").read_text())
    assert saved["videos_found"] == 3 and saved["videos_with_ground_truth"] == 4
    half = expected["Zero-shot 50% seen, 50% unseen"]
    assert saved["settings"]["filtered"]["50%"]["average"] == pytest.approx(half.average)

    # again: every video is done, nothing is computed, the same table
    code, again = reproduce(thumos, tiny, runs, capsys)
    assert code == 0 and "3 already done (skipped)" in again
    assert (setting / "table.txt").read_text() == table

    # known classes: each video asked only its ground-truth classes; both settings in the table
    code, out = reproduce(thumos, tiny, runs, capsys, "--known-classes")
    assert code == 0, out
    known = runs / "known-classes"
    for vid in CLIPS:
        result = Result.from_dict(json.loads((known / vid / "result.json").read_text()))
        assert sorted(result.classes) == sorted(c for c, rows in GROUND_TRUTH.items() if any(r[0] == vid for r in rows))
        assert result.run.known_classes and result.run.ranking is None
    table = (known / "table.txt").read_text()
    assert "ZEAL-LLaVA-OV✛ (paper)" in table and " 16.0" in table and "ZEAL-Pixtral✛ (paper)" in table
    filtered_table = (setting / "table.txt").read_text()
    assert our_row(table, "All classes", known=False) == our_row(filtered_table, "All classes", False)
    preds = {c: r for c, r in load_predictions(known / "predictions.csv").items() if c in gt}
    report = evaluate(gt, preds)
    assert report.average > 0  # the classes are known: the intervals meet the ground truth
    want = [round(100 * v, 1) for v in report.mAP] + [round(100 * report.average, 1)]
    assert our_row(table, "All classes", known=True) == pytest.approx(want, abs=0.051)


def test_the_ground_truth_is_found_next_to_the_videos(thumos, tmp_path):
    videos, gt = thumos
    assert find_ground_truth(videos) == gt
    with pytest.raises(Exception, match="--ground-truth"):
        find_ground_truth(tmp_path)
    with pytest.raises(Exception, match="none of the 2 ground-truth videos"):
        find_videos(videos, {"video_test_0000001", "video_test_0000002"})


def test_paper_table_holds_the_published_averages():
    assert PAPER_TABLE1[(0.5, "LLaVA-OV", False)][-1] == 10.7 and PAPER_TABLE1[(0.5, "LLaVA-OV", True)][-1] == 16.0
    assert PAPER_TABLE1[(0.5, "Pixtral", False)][-1] == 7.8 and PAPER_TABLE1[(0.5, "Pixtral", True)][-1] == 11.9
    for values in PAPER_TABLE1.values():  # each average is the mean of its five thresholds
        assert sum(values[:5]) / 5 == pytest.approx(values[5], abs=0.1)  # each figure rounded to 0.1


def test_the_real_thumos14_test_set_has_212_videos_with_ground_truth(shared_dir, tmp_path):
    folder = shared_dir / "data" / "thumos14" / "official_txt" / "annotations_test"
    if not folder.is_dir():
        pytest.skip(f"the real THUMOS14 ground truth is not here ({folder})")
    gt = load_ground_truth(folder, subset="test")
    videos = {v for rows in gt.values() for v, _, _ in rows}
    assert len(gt) == 20 and len(videos) == 212
    (tmp_path / "video_test_0000004.mp4").write_bytes(b"")  # names alone decide what is found
    (tmp_path / "video_test_0001292.mp4").write_bytes(b"")  # only Ambiguous lines: no ground truth
    assert list(find_videos(tmp_path, videos)) == ["video_test_0000004"]
