"""The running app, driven through gradio_client as a script would: upload a real clip, choose classes,
run with tiny real-architecture models, fetch the CSV, edit intervals, and two users at once."""

from __future__ import annotations

import csv
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from app_server import EXAMPLE_CLIP, ROOT, SECOND_CLIP, start_app, tiny_models

pytestmark = pytest.mark.timeout(300)
UPLOAD_LIMIT_MB = 1
DEFAULT_PARAMS = (0.1, 0.35, 1.3, 0.9, 0.1)  # lambda, top-p, sigma, merge IoU, min score (the paper's)


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    return tiny_models(tmp_path_factory.mktemp("ui_models"))


@pytest.fixture(scope="module")
def app(tmp_path_factory, models):
    # the example clips are under 1 MB: a 1 MB upload limit lets them in and keeps bigger files out
    proc = start_app(tmp_path_factory.mktemp("ui_app"), models, extra=["--max-upload-mb", str(UPLOAD_LIMIT_MB)])
    yield proc
    proc.stop()


def client(app):
    from gradio_client import Client

    return Client(app.url, verbose=False)


def table_data(value) -> list[list]:
    """A Dataframe output (plain or wrapped in an update) -> its rows."""
    if isinstance(value, dict) and "value" in value:
        value = value["value"]
    return (value or {}).get("data", []) if isinstance(value, dict) else []


def read_csv(paths) -> list[dict]:
    csv_paths = [p for p in paths if str(p).endswith(".csv")]
    assert len(csv_paths) == 1, paths
    with open(csv_paths[0], newline="") as f:
        return list(csv.DictReader(f))


def analyse(c, video: Path, classes: list[str], params=DEFAULT_PARAMS):
    """Open the video, choose known classes, run; returns the run's intervals table rows."""
    from gradio_client import handle_file

    info = c.predict(handle_file(str(video)), api_name="/open_video")[0]
    assert video.name in info and "fps" in info
    questions = c.predict(classes, {"headers": [], "data": []}, api_name="/set_classes")
    assert [r[0] for r in table_data(questions)] == classes
    out = c.predict(handle_file(str(video)), questions, True, *params, api_name="/run")
    return table_data(out[2]), out[4]


def test_upload_run_and_fetch_the_csv(app):
    c = client(app)
    rows, status = analyse(c, EXAMPLE_CLIP, ["BasketballDunk", "Diving"])
    assert "4 scored by the model" in status
    assert rows, "the tiny models should propose at least one interval with the default settings"
    exported = read_csv(c.predict(["csv"], api_name="/export"))
    assert {"video", "class", "start_s", "end_s", "score", "source", "fps", "accepted"} <= set(exported[0])
    # exactly the accepted intervals the table showed, with the same times, classes and scores
    shown = sorted((r[4], round(r[2], 3), round(r[3], 3), round(r[5], 3)) for r in rows if r[1])
    got = sorted((r["class"], round(float(r["start_s"]), 3), round(float(r["end_s"]), 3),
                  round(float(r["score"]), 3)) for r in exported)
    assert got == shown
    assert {r["video"] for r in exported} == {"basketball"} and {r["source"] for r in exported} == {"model"}

    # a second run of the same questions reuses every score from the cache, and says so
    _, status = analyse(c, EXAMPLE_CLIP, ["BasketballDunk", "Diving"])
    assert "0 scored by the model, 4 reused from cache" in status


def test_sliders_and_table_edits_reach_the_export(app):
    from gradio_client.exceptions import AppError

    c = client(app)
    rows, _ = analyse(c, EXAMPLE_CLIP, ["BasketballDunk"])
    assert len(rows) >= 2
    # a min score no interval reaches: nothing proposed, instantly (no model run)
    out = c.predict(0.1, 0.35, 1.3, 0.9, 1.0, api_name="/repropose")
    assert table_data(out[2]) == []
    rows = table_data(c.predict(*DEFAULT_PARAMS, api_name="/repropose")[2])
    assert len(rows) >= 2

    # reject the first interval, move the second one's end, add one by hand (empty '#')
    edited = [list(r) for r in rows]
    edited[0][1] = False
    edited[1][3] = round(edited[1][2] + 1.0, 3)
    edited.append([None, True, 8.0, 9.5, "BasketballDunk", None, None])
    headers = ["#", "accept", "start (s)", "end (s)", "class", "score", "source"]
    out = c.predict({"headers": headers, "data": edited}, api_name="/edit_intervals")
    after = table_data(out[2])
    assert len(after) == len(rows) + 1
    exported = read_csv(c.predict(["csv"], api_name="/export"))
    assert len(exported) == len(rows)  # one rejected, one added
    spans = {(round(float(r["start_s"]), 3), round(float(r["end_s"]), 3), r["source"]) for r in exported}
    assert (8.0, 9.5, "human") in spans
    assert (round(edited[1][2], 3), round(edited[1][2] + 1.0, 3), "human") in spans

    # a bad edit (end before start) is refused with a message, and nothing changes
    bad = [list(r) for r in after]
    bad[0][3] = bad[0][2] - 1.0
    with pytest.raises(AppError, match="end must be after the start"):
        c.predict({"headers": headers, "data": bad}, api_name="/edit_intervals")
    assert read_csv(c.predict(["csv"], api_name="/export")) == exported


def test_two_users_at_once_get_their_own_results(app):
    jobs = {"a": (EXAMPLE_CLIP, ["BasketballDunk"]), "b": (SECOND_CLIP, ["Billiards", "Diving"])}
    results: dict[str, list[dict]] = {}
    errors: list[BaseException] = []

    def work(key: str) -> None:
        try:
            c = client(app)
            video, classes = jobs[key]
            analyse(c, video, classes)
            results[key] = read_csv(c.predict(["csv"], api_name="/export"))
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not errors, errors
    assert {r["video"] for r in results["a"]} <= {"basketball"}
    assert {r["class"] for r in results["a"]} <= {"BasketballDunk"}
    assert {r["video"] for r in results["b"]} <= {"arm_wrestling"}
    assert {r["class"] for r in results["b"]} <= {"Billiards", "Diving"}
    assert results["a"] and results["b"]


def test_help_lists_flags_and_environment():
    out = subprocess.run([sys.executable, str(ROOT / "app.py"), "--help"], capture_output=True, text=True,
                         timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    for word in ("--host", "--port", "--share", "--lvlm", "--clip-pretrained", "--clip-config",
                 "--max-upload-mb", "ZEAL_LVLM", "ZEAL_CLIP_PRETRAINED", "ZEAL_CACHE_DIR", "127.0.0.1"):
        assert word in out.stdout, word


def test_uploads_over_the_limit_are_refused_with_a_clear_message(app, tmp_path):
    from gradio_client import handle_file

    big = tmp_path / "too big.mp4"
    big.write_bytes(EXAMPLE_CLIP.read_bytes() * 3)  # about 1.7 MB
    with pytest.raises(Exception, match="(?i)(exceeds|too large|maximum).*"):
        client(app).predict(handle_file(str(big)), api_name="/open_video")


def test_clip_proposes_top_k_library_classes(app):
    from gradio_client import handle_file

    c = client(app)
    chosen, ranking = c.predict(handle_file(str(EXAMPLE_CLIP)), "cholec80", 2, api_name="/propose_classes")
    from zeal.queries import load_library

    library = load_library("cholec80").names
    chosen = chosen["value"] if isinstance(chosen, dict) else chosen
    assert len(chosen) == 2 and set(chosen) <= set(library)
    assert ranking.startswith("CLIP's ranking") and chosen[0] in ranking
