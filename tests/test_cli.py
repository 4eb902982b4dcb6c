"""The `zeal` command: localize with tiny real-architecture models on a real clip, export of a saved
result into every format, query files (library, LLM over real HTTP, --check), presets, eval, and the
one-line errors a user sees for bad input (a traceback only with --debug)."""

from __future__ import annotations

import csv
import http.server
import json
import threading

import pytest

from cli_support import (CLASSES, FAST_TIMEOUT_S, SHORT_CLIP, clean_env, error_lines, model_flags,
                         one_torch_thread, read_json, run_zeal)
from zeal.cli import main
from zeal.export import FORMATS, read_intervals
from zeal.queries import QuerySet, list_libraries, lookup
from zeal.review import select
from zeal.types import Result


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def localized(tiny, tmp_path_factory):
    """`python -m zeal localize` run once, as a user runs it: (out_dir, completed process)."""
    work = tmp_path_factory.mktemp("localize")
    out = work / "out"
    proc = run_zeal("localize", str(SHORT_CLIP), "--classes", CLASSES, "--known-classes",
                    *model_flags(tiny, work / "cache"), "--out", str(out), "--format", "csv,json,webvtt",
                    cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


def test_localize_writes_a_reopenable_result_and_matching_csv(localized):
    out, proc = localized
    result = Result.from_dict(read_json(out / "result.json"))
    assert list(result.classes) == ["CliffDiving", "Diving"]
    assert len(result.times_s) == 3  # 1.07 s at 2 fps: t = 0, 0.5, 1.0
    assert result.video.path.endswith(SHORT_CLIP.name)
    stem = SHORT_CLIP.stem
    assert {p.name for p in out.iterdir()} == {"result.json", f"{stem}.csv", f"{stem}.json", f"{stem}.vtt"}
    with open(out / f"{stem}.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    expected = select(result)  # the review set: one candidate per action
    assert len(rows) == len(expected)
    for row, iv in zip(rows, expected):
        assert (row["class"], float(row["start_s"]), float(row["end_s"])) == (iv.label, iv.start_s, iv.end_s)
        assert float(row["score"]) == pytest.approx(iv.score, abs=1e-6)
    # the summary on stdout counts the intervals of each class
    for label in result.classes:
        shown = [i for i in expected if i.label == label]
        assert f"{label}: {len(shown)} interval(s)" in proc.stdout
    # progress went to stderr (tqdm: stage and frames), not into the summary
    assert "scoring frames" in proc.stderr and "scoring frames" not in proc.stdout
    assert result.run.stats["questions_scored"] == 4 and result.run.run_key


def test_localize_default_out_dir_and_queries_file(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default output is ./zeal_out/<video stem>/
    queries = tmp_path / "q.json"
    lookup(["Diving"]).save(queries)
    code = main(["localize", str(SHORT_CLIP), "--queries", str(queries), "--known-classes", "-q",
                 *model_flags(tiny, tmp_path / "cache")])
    assert code == 0
    result = Result.from_dict(read_json(tmp_path / "zeal_out" / SHORT_CLIP.stem / "result.json"))
    assert list(result.classes) == ["Diving"]
    assert "Diving: " in capsys.readouterr().out


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_export_a_saved_result_into_each_format(localized, fmt, tmp_path, capsys):
    out, _ = localized
    assert main(["export", str(out / "result.json"), "--to", fmt, "--out", str(tmp_path)]) == 0
    written = sorted(tmp_path.iterdir())
    assert written and all(p.stat().st_size > 0 for p in written)
    printed = capsys.readouterr().out
    for p in written:
        assert str(p) in printed
    result = Result.from_dict(read_json(out / "result.json"))
    if fmt == "csv":
        back = read_intervals(written[0])
        assert [(i.label, i.start_s, i.end_s) for i in back] == \
            [(i.label, i.start_s, i.end_s) for i in select(result)]


def test_export_leaves_rejected_intervals_out_unless_all(localized, tmp_path):
    out, _ = localized
    data = read_json(out / "result.json")
    # add one rejected human interval to the saved result, as the UI would
    data["classes"]["Diving"]["intervals"].append(
        {"start_s": 0.0, "end_s": 0.5, "label": "Diving", "score": 1.0, "source": "human", "state": "rejected"})
    saved = tmp_path / "edited" / "result.json"
    saved.parent.mkdir()
    saved.write_text(json.dumps(data))
    n_accepted = len(select(Result.from_dict(data)))
    assert main(["export", str(saved), "--to", "csv"]) == 0  # default: next to the result
    assert len(read_intervals(saved.parent / f"{SHORT_CLIP.stem}.csv")) == n_accepted
    assert main(["export", str(saved), "--to", "csv,json", "--out", str(tmp_path / "all"), "--all"]) == 0
    every = read_intervals(tmp_path / "all" / f"{SHORT_CLIP.stem}.csv")
    assert len(every) == n_accepted + 1 and any(i.state == "rejected" for i in every)


def test_export_media_url_and_the_warning_without_it(localized, tmp_path, capsys):
    out, _ = localized
    saved = str(out / "result.json")
    capsys.readouterr()
    assert main(["export", saved, "--to", "labelstudio,via", "--out", str(tmp_path / "plain")]) == 0
    err = capsys.readouterr().err
    warnings_printed = [line for line in err.splitlines() if line.startswith("zeal: warning:")]
    assert len(warnings_printed) == 1 and "--media-url PREFIX" in warnings_printed[0]  # one line, once
    tasks = read_json(tmp_path / "plain" / f"{SHORT_CLIP.stem}.labelstudio.json")
    assert tasks[0]["data"]["video"] == str(SHORT_CLIP.resolve())
    assert main(["export", saved, "--to", "labelstudio,via", "--out", str(tmp_path / "url"),
                 "--media-url", "/data/local-files/?d=my videos/"]) == 0
    assert "warning" not in capsys.readouterr().err
    tasks = read_json(tmp_path / "url" / f"{SHORT_CLIP.stem}.labelstudio.json")
    assert tasks[0]["data"]["video"] == f"/data/local-files/?d=my videos/{SHORT_CLIP.name}"
    via = read_json(tmp_path / "url" / f"{SHORT_CLIP.stem}.via.json")
    assert via["file"]["1"]["src"] == f"/data/local-files/?d=my videos/{SHORT_CLIP.name}"


def test_queries_from_the_library_and_check(tmp_path, capsys):
    path = tmp_path / "queries.json"
    assert main(["queries", "--classes", "cliff diving, Diving", "--out", str(path)]) == 0
    qs = QuerySet.load(path)
    assert qs.names == ["CliffDiving", "Diving"] and qs == lookup(["CliffDiving", "Diving"])
    capsys.readouterr()
    assert main(["queries", "--check", str(path)]) == 0
    assert "2 class(es)" in capsys.readouterr().out
    assert main(["queries", "--list"]) == 0
    listing = capsys.readouterr().out
    for name in list_libraries():
        assert name in listing
    assert "CliffDiving" in listing and "GallbladderDissection" in listing
    # without --out the JSON goes to stdout, loadable as a query set
    assert main(["queries", "--classes", "Billiards"]) == 0
    assert QuerySet.from_dict(json.loads(capsys.readouterr().out)).names == ["Billiards"]


class _ChatServer(http.server.BaseHTTPRequestHandler):
    """A minimal OpenAI-compatible chat endpoint answering with questions for the asked classes."""

    seen_auth: list[str] = []

    def do_POST(self):  # noqa: N802 -- http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _ChatServer.seen_auth.append(self.headers.get("Authorization", ""))
        classes = [c for c in ("Juggling", "Kayaking") if c in json.dumps(body)]
        answer = {c: {"start": f"Is the person starting {c.lower()}?", "end": f"Is the person done {c.lower()}?",
                      "description": f"A person doing {c.lower()}."} for c in classes}
        reply = {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                 "choices": [{"index": 0, "finish_reason": "stop",
                              "message": {"role": "assistant", "content": json.dumps(answer)}}]}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_queries_from_an_llm_read_the_key_from_the_named_variable(tmp_path, capsys, monkeypatch):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ChatServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    secret = "sk-test-DO-NOT-LEAK-1234"
    monkeypatch.setenv("MY_LLM_KEY", secret)
    path = tmp_path / "q.json"
    try:
        code = main(["queries", "--classes", "Juggling,Kayaking", "--llm-base-url",
                     f"http://127.0.0.1:{server.server_port}/v1", "--llm-model", "m", "--llm-api-key-env",
                     "MY_LLM_KEY", "--out", str(path)])
    finally:
        server.shutdown()
    assert code == 0
    assert QuerySet.load(path).names == ["Juggling", "Kayaking"]
    assert _ChatServer.seen_auth[-1] == f"Bearer {secret}"
    captured = capsys.readouterr()
    assert secret not in captured.out + captured.err + path.read_text()


def test_presets_lists_names_and_sizes(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for name in ("paper", "balanced", "light"):
        assert name in out
    assert "GB" in out and "ZEAL_LVLM" in out


def test_eval_runs_the_evaluation_on_predictions(tmp_path, capsys):
    pytest.importorskip("zeal.evaluate")
    gt = {"database": {"v1": {"annotations": [{"label": "Diving", "segment": [1.0, 3.0]}]}}}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "p.csv").write_text("video-id,t-start,t-end,label,score\nv1,1.0,3.0,Diving,0.9\n")
    code = main(["eval", "--ground-truth", str(tmp_path / "gt.json"), "--predictions", str(tmp_path / "p.csv"),
                 "--format", "json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["average"] == pytest.approx(1.0)  # a perfect prediction


# --- user errors: one line, no traceback, non-zero exit ------------------------------------------
# Each row: arguments (MODELS is replaced by the tiny-model flags), words the message must contain.
BAD_INPUTS = [
    (["localize", "no_such_video.mp4", "--classes", "Diving"], ["no_such_video.mp4", "does not exist"]),
    (["localize", str(SHORT_CLIP), "--classes", "Underwater Basket Weaving"], ["Underwater Basket Weaving", "LLM"]),
    (["localize", str(SHORT_CLIP), "--classes", "Diving", "--fps", "0"], ["--fps", "above 0 and at most 1000"]),
    (["localize", str(SHORT_CLIP), "--classes", "Diving", "--fps", "fast"], ["--fps", "fast"]),
    (["localize", str(SHORT_CLIP), "--classes", "Diving", "--preset", "huge"], ["huge", "balanced"]),
    (["localize", str(SHORT_CLIP), "--classes", "Diving", "--format", "csv,docx"], ["docx", "labelstudio"]),
    (["localize", str(SHORT_CLIP)], ["--classes", "--queries"]),
    (["localize", str(SHORT_CLIP), "--classes", "Diving", "--queries", "missing.json"], ["missing.json"]),
    (["localize", str(SHORT_CLIP), "--classes", "Diving", "--bogus-flag"], ["--bogus-flag"]),
    (["queries", "--classes", "Underwater Basket Weaving"], ["Underwater Basket Weaving", "LLM", "by hand"]),
    (["queries", "--check", "BADQUERIES"], ["BADQUERIES"]),
    (["export", "NOTARESULT", "--to", "csv"], ["NOTARESULT", "result"]),
    (["export", "missing_result.json", "--to", "csv"], ["missing_result.json", "does not exist"]),
    (["batch", "no_such_folder", "--classes", "Diving", "--out", "o"], ["no_such_folder"]),
    (["batch", ".", "--classes", "Diving", "--out", "o", "--workers", "0"], ["--workers"]),
    (["nonsense"], ["nonsense"]),
]


def _materialize(items, tmp_path):
    """Replace the placeholders by real bad files: a query file with missing fields, a JSON file
    that is not a result."""
    bad_queries = tmp_path / "bad_queries.json"
    bad_queries.write_text('{"Diving": {"start": "Is it?"}}')
    not_result = tmp_path / "not_result.json"
    not_result.write_text('{"hello": 1}')
    swap = {"BADQUERIES": bad_queries, "NOTARESULT": not_result}
    return [str(swap[x]) if x in swap else x for x in items], [swap[x].name if x in swap else x for x in items]


@pytest.mark.parametrize("args,words", BAD_INPUTS, ids=[" ".join(a)[:60] for a, _ in BAD_INPUTS])
def test_user_errors_print_one_line_and_exit_2(args, words, tmp_path):
    args, _ = _materialize(args, tmp_path)
    _, words = _materialize(words, tmp_path)
    proc = run_zeal(*args, cwd=tmp_path, timeout=FAST_TIMEOUT_S)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zeal: error: "), proc.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


def test_a_model_path_that_does_not_exist_is_one_line(tiny, tmp_path):
    flags = model_flags(tiny, tmp_path / "cache")
    flags[flags.index("--lvlm") + 1] = str(tmp_path / "no_such_model")
    proc = run_zeal("localize", str(SHORT_CLIP), "--classes", "Diving", "--known-classes", "-q", *flags,
                    cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    errors = error_lines(proc.stderr)
    assert len(errors) == 1 and "no_such_model" in errors[0], proc.stderr[-2000:]
    assert not (tmp_path / "zeal_out").exists() or not any((tmp_path / "zeal_out").rglob("result.json"))


def test_a_hub_model_that_is_not_here_is_one_short_line(tiny, tmp_path):
    """No network (HF_HUB_OFFLINE, as on this machine) and no local copy: the message names the model and
    the fix, at once, instead of minutes of hub retries."""
    flags = model_flags(tiny, tmp_path / "cache")
    flags[flags.index("--lvlm") + 1] = "org/model-not-downloaded"
    proc = run_zeal("localize", str(SHORT_CLIP), "--classes", "Diving", "--known-classes", "-q", *flags,
                    cwd=tmp_path)
    errors = error_lines(proc.stderr)
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr[-2000:]
    assert "org/model-not-downloaded" in errors[0] and "hf download" in errors[0] and "--lvlm" in errors[0]
    assert len(errors[0]) < 400


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback(where, tmp_path):
    args = ["localize", "no_such_video.mp4", "--classes", "Diving"]
    args = ["--debug", *args] if where == "before" else [*args, "--debug"]
    proc = run_zeal(*args, cwd=tmp_path, timeout=FAST_TIMEOUT_S)
    assert proc.returncode != 0
    assert "Traceback (most recent call last)" in proc.stderr
    assert "ConfigError" in proc.stderr and "no_such_video.mp4" in proc.stderr


def test_serve_ls_bad_input_is_one_line_before_any_model_loads(tmp_path, capsys):
    assert main(["serve-ls", "--queries", str(tmp_path / "missing.json")]) == 2
    assert capsys.readouterr().err.strip().startswith("zeal: error:")
    assert main(["serve-ls", "--llm-base-url", "http://127.0.0.1:1/v1"]) == 2
    assert "--llm-model" in capsys.readouterr().err
    assert main(["serve-ls", "--wait", "-1"]) == 2


def test_help_exits_zero_and_lists_commands(tmp_path):
    proc = run_zeal("--help", cwd=tmp_path, timeout=FAST_TIMEOUT_S)
    assert proc.returncode == 0
    for command in ("localize", "batch", "queries", "export", "presets", "eval", "serve-ls"):
        assert command in proc.stdout
    assert clean_env()["PYTHONPATH"]  # the subprocess ran this checkout's zeal
