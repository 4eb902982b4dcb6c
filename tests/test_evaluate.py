"""zeal.evaluate: hand-computed APs, readers and their errors, the command, and the real THUMOS14
ground truth (read from ../shared when present, never copied into the project)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from zeal.errors import EvaluationError
from zeal.evaluate import (EvalReport, average_precision, eval_main, evaluate, load_ground_truth,
                           load_predictions, segment_tiou, split_protocol)

TIOUS = (0.3, 0.4, 0.5, 0.6, 0.7)
HEADER = "video-id,t-start,t-end,label,score\n"


def ap(gt, preds):
    return average_precision(gt, preds, TIOUS).tolist()


# --- matching and AP, computed by hand -------------------------------------------------------------
def test_segment_tiou():
    # [0,10] vs [5,15]: intersection 5, union 10 + 10 - 5 = 15.
    np.testing.assert_allclose(segment_tiou((0, 10), np.array([[5, 15], [0, 10], [20, 30]])), [1 / 3, 1, 0])


def test_false_positive_between_two_hits():
    # Ranked: hit, miss, hit with 2 GT -> precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1.
    # AP = 1/2 * 1 + 1/2 * 2/3 = 5/6.
    gt = [("v", 0.0, 10.0), ("v", 20.0, 30.0)]
    preds = [("v", 0.0, 10.0, 0.9), ("v", 50.0, 60.0, 0.8), ("v", 20.0, 30.0, 0.7)]
    assert ap(gt, preds) == pytest.approx([5 / 6] * 5)


def test_duplicate_passes_to_next_best_segment():
    # GT A=[0,10], B=[4,14]. The first prediction takes A. The second, [1,11], fits A best
    # (tIoU 9/11) but A is locked, so it tries B: tIoU 7/13 = 0.538. A hit at 0.3-0.5 (AP 1), a
    # false positive at 0.6 and 0.7: precision 1, 1/2 at recall 1/2, 1/2 -> AP 1/2.
    gt = [("v", 0.0, 10.0), ("v", 4.0, 14.0)]
    preds = [("v", 0.0, 10.0, 0.9), ("v", 1.0, 11.0, 0.8)]
    assert ap(gt, preds) == pytest.approx([1, 1, 1, 0.5, 0.5])


def test_duplicate_of_a_single_segment_is_a_false_positive():
    # One GT, matched by the first prediction; the identical second one finds it locked -> FP.
    # A later hit on a second GT: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1 -> 5/6.
    gt = [("v", 0.0, 10.0), ("v", 20.0, 30.0)]
    preds = [("v", 0.0, 10.0, 0.9), ("v", 0.0, 10.0, 0.8), ("v", 20.0, 30.0, 0.7)]
    assert ap(gt, preds) == pytest.approx([5 / 6] * 5)


def test_prediction_in_video_without_ground_truth_is_false_positive():
    # Ranked: FP (other video, same segment), then hit: precision 0, 1/2 at recall 0, 1 -> AP 1/2.
    gt = [("v1", 0.0, 10.0)]
    preds = [("v2", 0.0, 10.0, 0.9), ("v1", 0.0, 10.0, 0.8)]
    assert ap(gt, preds) == pytest.approx([0.5] * 5)


def test_equal_tiou_counts_as_match():
    # [0,5] vs [0,10]: tIoU exactly 0.5 -> a hit at 0.3, 0.4 and 0.5, a miss at 0.6 and 0.7.
    assert ap([("v", 0.0, 10.0)], [("v", 0.0, 5.0, 1.0)]) == [1.0, 1.0, 1.0, 0.0, 0.0]


def test_equal_scores_keep_file_order():
    gt = [("v", 0.0, 10.0)]
    miss, hit = ("v", 20.0, 30.0, 0.5), ("v", 0.0, 10.0, 0.5)
    assert ap(gt, [miss, hit]) == pytest.approx([0.5] * 5)     # FP ranked first: precision 1/2 at recall 1
    assert ap(gt, [hit, miss]) == pytest.approx([1.0] * 5)


def test_class_without_predictions_scores_zero():
    gt = {"A": [("v", 0.0, 10.0)], "B": [("v", 20.0, 30.0)]}
    report = evaluate(gt, {"A": [("v", 0.0, 10.0, 1.0)]})
    assert report.per_class["B"] == [0.0] * 5
    assert report.mAP == pytest.approx([0.5] * 5) and report.average == pytest.approx(0.5)


def test_unknown_prediction_class_is_an_error():
    with pytest.raises(EvaluationError, match="Bowling"):
        evaluate({"A": [("v", 0.0, 1.0)]}, {"Bowling": [("v", 0.0, 1.0, 1.0)]})


def test_report_json_and_table_shapes():
    gt = {"A": [("v", 0.0, 10.0)], "B": [("v", 20.0, 30.0)]}
    report = evaluate(gt, {"A": [("v", 0.0, 5.0, 1.0)]})
    data = json.loads(report.to_json())
    assert set(data) == {"tiou", "mAP", "average", "per_class"}
    assert data["tiou"] == list(TIOUS) and data["per_class"]["A"] == [1, 1, 1, 0, 0]
    table = report.to_table().splitlines()
    assert table[0].split()[-6:] == ["0.3", "0.4", "0.5", "0.6", "0.7", "Avg"]
    # mAP = (A + B) / 2 = 0.5, 0.5, 0.5, 0, 0 -> percent with one decimal; Avg 30.0.
    assert table[2].split()[-6:] == ["50.0", "50.0", "50.0", "0.0", "0.0", "30.0"]


# --- split protocol --------------------------------------------------------------------------------
def _four_classes():
    gt = {c: [("v", 10.0 * i, 10.0 * i + 5)] for i, c in enumerate("ABCD")}
    preds = {c: [("v", 10.0 * i, 10.0 * i + 5, 1.0)] for i, c in enumerate("AB")}   # A, B perfect; C, D AP 0
    return gt, preds


def test_split_single_draw_is_the_mean_over_the_drawn_classes():
    gt, preds = _four_classes()
    report = split_protocol(gt, preds, fraction=0.5, draws=1, seed=3)
    assert len(report.per_class) == 2
    expected = np.mean([report.per_class[c] for c in report.per_class], axis=0)
    assert report.mAP == pytest.approx(expected.tolist())
    assert report.to_dict() == split_protocol(gt, preds, fraction=0.5, draws=1, seed=3).to_dict()


def test_split_averages_over_draws():
    gt, preds = _four_classes()
    # Each class is drawn equally often in expectation, so the mean over many draws approaches the
    # mean AP over all classes (0.5); one draw can only give 0, 0.5 or 1.
    many = split_protocol(gt, preds, fraction=0.5, draws=400, seed=0)
    assert many.average == pytest.approx(0.5, abs=0.05)
    assert split_protocol(gt, preds, fraction=1.0, draws=3).mAP == evaluate(gt, preds).mAP


# --- readers ---------------------------------------------------------------------------------------
def _thumos_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "annotations"
    folder.mkdir()
    (folder / "Diving_test.txt").write_text("video_test_1  1.0 3.5\nvideo_test_2  0.5 2.0\n")
    (folder / "HighJump_test.txt").write_text("video_test_1  10.0 12.0\n\n")
    (folder / "Ambiguous_test.txt").write_text("video_test_1  4.0 5.0\n")
    (folder / "readme.txt").write_text("not an annotation\n")
    return folder


def test_read_thumos_folder_skips_ambiguous(tmp_path):
    gt = load_ground_truth(_thumos_folder(tmp_path))
    assert gt == {"Diving": [("video_test_1", 1.0, 3.5), ("video_test_2", 0.5, 2.0)],
                  "HighJump": [("video_test_1", 10.0, 12.0)]}


def test_thumos_folder_with_both_subsets_needs_a_choice(tmp_path):
    folder = _thumos_folder(tmp_path)
    (folder / "Diving_val.txt").write_text("video_validation_1  1.0 2.0\n")
    with pytest.raises(EvaluationError, match="--subset"):
        load_ground_truth(folder)
    assert load_ground_truth(folder, subset="validation") == {"Diving": [("video_validation_1", 1.0, 2.0)]}
    assert len(load_ground_truth(folder, subset="test")) == 2


def test_bad_ground_truth_line_names_file_and_line(tmp_path):
    folder = _thumos_folder(tmp_path)
    (folder / "Diving_test.txt").write_text("video_test_1  1.0 3.5\nvideo_test_2  zero 2.0\n")
    with pytest.raises(EvaluationError, match=r"Diving_test.txt, line 2: start 'zero'"):
        load_ground_truth(folder)


def test_read_activitynet_json_with_subset(tmp_path):
    db = {"database": {
        "a": {"subset": "test", "annotations": [{"label": "Diving", "segment": [1, 2]}]},
        "b": {"subset": "validation", "annotations": [{"label": "Diving", "segment": [3, 4]}]},
        "c": {"subset": "Test", "annotations": [{"label": "HighJump", "segment": [5.5, 6]},
                                                 {"label": "Ambiguous", "segment": [7, 8]}]},
    }}
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(db))
    assert load_ground_truth(path, subset="test") == {"Diving": [("a", 1.0, 2.0)], "HighJump": [("c", 5.5, 6.0)]}
    assert load_ground_truth(path)["Diving"] == [("a", 1.0, 2.0), ("b", 3.0, 4.0)]


def test_bad_json_is_a_clear_error(tmp_path):
    path = tmp_path / "gt.json"
    path.write_text('{"videos": {}}')
    with pytest.raises(EvaluationError, match="database"):
        load_ground_truth(path)
    path.write_text(json.dumps({"database": {"a": {"annotations": [{"label": "X", "segment": [5, 1]}]}}}))
    with pytest.raises(EvaluationError, match=r"video 'a', annotation 0: start 5.0 is after end 1.0"):
        load_ground_truth(path)


def test_read_predictions(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(HEADER + "v1,1.0,3.0,Diving,0.9\n\nv2,0,2.5,HighJump,0.25\n")
    assert load_predictions(path) == {"Diving": [("v1", 1.0, 3.0, 0.9)], "HighJump": [("v2", 0.0, 2.5, 0.25)]}


@pytest.mark.parametrize("row,words", [
    ("v1,abc,3.0,Diving,0.9", ["row 3", "t-start 'abc'"]),
    ("v1,3.0,3.0,Diving,0.9", ["row 3", "not before"]),
    ("v1,4.0,3.0,Diving,0.9", ["row 3", "not before"]),
    ("v1,1.0,3.0,Bowling,0.9", ["row 3", "unknown class 'Bowling'", "Diving"]),
    ("v1,1.0,3.0,Diving", ["row 3", "4 field(s)"]),
    ("v1,1.0,3.0,Diving,nan", ["row 3", "score"]),
])
def test_bad_prediction_rows_name_file_and_row(tmp_path, row, words):
    path = tmp_path / "preds.csv"
    path.write_text(HEADER + "v1,1.0,3.0,Diving,0.9\n" + row + "\n")
    with pytest.raises(EvaluationError) as info:
        load_predictions(path, classes=["Diving"])
    for w in ["preds.csv", *words]:
        assert w in str(info.value)


def test_prediction_header_is_checked(tmp_path):
    path = tmp_path / "preds.csv"
    path.write_text("video,start,end,label,score\nv1,1,2,Diving,1\n")
    with pytest.raises(EvaluationError, match="video-id"):
        load_predictions(path)


# --- the command -----------------------------------------------------------------------------------
def test_eval_main_json_and_table(tmp_path, capsys):
    folder = _thumos_folder(tmp_path)
    preds = tmp_path / "p.csv"
    # Diving: one hit (video_test_1) and nothing for video_test_2 -> AP 1/2; HighJump: tIoU 0.5 ->
    # hits up to 0.5, misses at 0.6 and 0.7.
    preds.write_text(HEADER + "video_test_1,1.0,3.5,Diving,0.9\nvideo_test_1,10.0,11.0,HighJump,0.8\n")
    assert eval_main(["--ground-truth", str(folder), "--predictions", str(preds), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["per_class"] == {"Diving": [0.5] * 5, "HighJump": [1, 1, 1, 0, 0]}
    assert data["mAP"] == pytest.approx([0.75, 0.75, 0.75, 0.25, 0.25])
    assert eval_main(["--ground-truth", str(folder), "--predictions", str(preds), "--split", "0.5",
                      "--draws", "3"]) == 0
    out = capsys.readouterr().out
    assert "p.csv (50% of 2 classes, mean of 3 draws, seed 0)" in out


def test_eval_main_bad_flag_is_an_evaluation_error(tmp_path):
    with pytest.raises(EvaluationError, match="--split"):
        eval_main(["--ground-truth", "x", "--predictions", "y", "--split", "0.3"])
    with pytest.raises(EvaluationError, match="not found"):
        eval_main(["--ground-truth", str(tmp_path / "missing"), "--predictions", "y"])


# --- the real THUMOS14 ground truth ----------------------------------------------------------------
@pytest.fixture(scope="module")
def thumos_test(shared_dir) -> tuple[Path, dict]:
    folder = shared_dir / "data" / "thumos14" / "official_txt" / "annotations_test"
    if not folder.is_dir():
        pytest.skip("THUMOS14 ground truth not present in ../shared")
    return folder, load_ground_truth(folder)


def _as_predictions(gt, score=1.0):
    return {c: [(v, s, e, score) for v, s, e in rows] for c, rows in gt.items()}


def test_thumos_counts(thumos_test, shared_dir):
    _, gt = thumos_test
    assert len(gt) == 20 and "Ambiguous" not in gt
    assert sum(len(rows) for rows in gt.values()) == 3358
    assert len(gt["Diving"]) == 388
    both = load_ground_truth(shared_dir / "data" / "thumos14" / "official_txt", subset="validation")
    assert sum(len(rows) for rows in both.values()) == 3007


def test_thumos_ground_truth_as_predictions_is_perfect(thumos_test):
    _, gt = thumos_test
    report = evaluate(gt, _as_predictions(gt))
    assert report.mAP == [1.0] * 5 and report.average == 1.0
    assert split_protocol(gt, _as_predictions(gt), fraction=0.25).mAP == [1.0] * 5


def test_thumos_shifted_predictions(thumos_test):
    # Every other instance is predicted exactly (score 1); the rest are shifted later by a fifth of
    # their length (score 0.5), so their tIoU is (L - L/5) / (L + L/5) = 2/3. At 0.3-0.6 every
    # prediction hits: AP 1. At 0.7 the exact ones come first and all hit, the shifted ones all miss:
    # precision 1 up to recall n_exact / n, so AP = n_exact / n per class.
    _, gt = thumos_test
    preds, expected_07 = {}, {}
    for c, rows in gt.items():
        out = []
        for i, (v, s, e) in enumerate(rows):
            shift = 0.0 if i % 2 == 0 else (e - s) / 5
            out.append((v, s + shift, e + shift, 1.0 if i % 2 == 0 else 0.5))
        preds[c] = out
        expected_07[c] = ((len(rows) + 1) // 2) / len(rows)
    report = evaluate(gt, preds)
    for c in gt:
        assert report.per_class[c][:4] == pytest.approx([1.0] * 4), c
        assert report.per_class[c][4] == pytest.approx(expected_07[c]), c


def test_thumos_activitynet_json_round_trip(thumos_test, tmp_path):
    _, gt = thumos_test
    database: dict = {}
    for c, rows in gt.items():
        for v, s, e in rows:
            database.setdefault(v, {"subset": "Test", "annotations": []})["annotations"].append(
                {"label": c, "segment": [s, e]})
    database["video_validation_x"] = {"subset": "Validation", "annotations": [{"label": "Diving", "segment": [0, 1]}]}
    path = tmp_path / "thumos14.json"
    path.write_text(json.dumps({"database": database}))
    back = load_ground_truth(path, subset="test")
    assert back.keys() == gt.keys()
    for c in gt:
        assert sorted(back[c]) == sorted(gt[c])


def test_eval_report_is_a_dataclass_with_name():
    r = EvalReport([0.5], [0.25], 0.25, {"A": [0.25]}, name="zeal", setting="known classes")
    assert r.to_table().splitlines()[2].split() == ["zeal", "(known", "classes)", "25.0", "25.0"]
