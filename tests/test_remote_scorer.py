"""RemoteScorer against a real HTTP server on 127.0.0.1 that serves a tiny LLaVA-OneVision (real
architecture, real Qwen2 tokenizer, random weights) through the OpenAI chat-completions schema and
SGLang's /generate (tests/openai_lvlm_server.py).

Why the tiny model's output head is edited: a random model over a 151k vocabulary never puts "yes" or
"no" among its top 20 tokens, so chat-mode P(yes) would always be the bounded 0.5 and a comparison with
the local scorer would be vacuous. `_lift_answer_rows` adds the same vector to the lm_head rows of every
yes/no spelling, which raises all their logits by the same input-dependent amount: they enter the top
20, while the yes-minus-no logit difference, and hence P(yes), is exactly what the unedited model gives.
This is a change of weights served by a real forward pass, not a faked output.
"""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest

from openai_lvlm_server import LVLMTestServer
from tiny_models import build_tiny_llava_onevision
from zeal.errors import ConfigError, ModelError
from zeal.queries import prompt_text
from zeal.scorers import remote as remote_scorer
from zeal.scorers.answers import BOUND_TOLERANCE, plain_spellings, read_top_logprobs, resolve_answer_ids
from zeal.scorers.remote import RemoteScorer

SERVED = "tiny-lvlm"
TOL = 1e-4
# Margin (logit units) by which the lifted answers clear the best other token on the probe inputs.
LIFT_MARGIN = 12.0
# Fast retries for tests: the production default base is 0.5 s.
FAST = dict(backoff_base_s=0.01, backoff_cap_s=0.1)


def _frames(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    # Different sizes and aspect ratios exercise the processor's resizing/tiling.
    return [rng.integers(0, 256, (int(rng.integers(24, 72)), int(rng.integers(24, 72)), 3), dtype=np.uint8)
            for _ in range(n)]


TEXTS = [prompt_text("CliffDiving", "Is the person standing on the edge of a cliff above water?"),
         prompt_text("CliffDiving", "Is the person submerged in or breaking the surface of the water?"),
         prompt_text("LongJump", "Is the athlete landing in the sand pit?")]


def _lift_answer_rows(folder):
    """Raise the logits of every yes/no spelling into the top 20 without changing P(yes) (see above)."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(str(folder))
    model = AutoModelForImageTextToText.from_pretrained(str(folder), dtype=torch.float32).eval()
    ids = resolve_answer_ids(processor.tokenizer)
    answers = torch.tensor(ids.yes + ids.no)
    head = model.get_output_embeddings()
    captured: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda mod, inp, out: captured.append(inp[0][0, -1].detach()))
    logits = []
    with torch.inference_mode():
        for image in _frames(3, seed=99):
            for text in TEXTS[:2]:
                messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
                prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
                enc = processor(text=[prompt], images=[image], return_tensors="pt", add_special_tokens=False)
                logits.append(model(**enc, logits_to_keep=1).logits[0, -1])
    hook.remove()
    hidden, logits = torch.stack(captured), torch.stack(logits)
    direction = hidden.mean(0) / hidden.mean(0).norm()
    projection = hidden @ direction  # > 0 on every probe: the last position's state points one way
    assert projection.min() > 0
    others = logits.clone()
    others[:, answers] = -math.inf
    # Half the smallest probe projection: other frames (other sizes, real video) project less.
    needed = (others.max() - logits[:, answers].min() + LIFT_MARGIN) / (0.5 * projection.min())
    with torch.no_grad():
        head.weight[answers] += needed * direction
    model.save_pretrained(str(folder))
    return model, processor


@pytest.fixture(scope="module")
def lifted(tmp_path_factory):
    """(folder, model, processor) of the tiny LLaVA-OneVision with its answer rows lifted."""
    folder = build_tiny_llava_onevision(tmp_path_factory.mktemp("remote") / "llava_ov")
    model, processor = _lift_answer_rows(folder)
    return folder, model, processor


@pytest.fixture(scope="module")
def model_dir(lifted):
    return lifted[0]


@pytest.fixture(scope="module")
def frames():
    return _frames(4, seed=0)


@pytest.fixture(scope="module")
def expected(lifted, frames):
    """The local scorer's P(yes) for the same model, frames and texts: what every remote run must give.
    (The scorer is built from the weights just saved; the server loads them from the folder.)"""
    from zeal.scorers.local import LVLMScorer

    folder, model, processor = lifted
    out = LVLMScorer(model, processor, str(folder)).p_yes(frames, TEXTS)
    # Spread across frames and questions, so that equality says something.
    assert out.std() > 0.05
    return out


@pytest.fixture(scope="module")
def _server(lifted):
    # The very weights the local scorer ran, already in memory (loading the folder again costs seconds).
    folder, model, processor = lifted
    with LVLMTestServer(served_name=SERVED, model=model, processor=processor, root=str(folder)) as server:
        yield server


@pytest.fixture
def server(_server):
    _server.clear_faults()
    _server.reset_log()
    if _server._httpd is None:  # a test stopped it
        _server.start()
    deadline = time.monotonic() + 10
    while _server.active and time.monotonic() < deadline:  # answers a client gave up on (timeouts)
        time.sleep(0.02)
    yield _server
    _server.clear_faults()


def ANSWER_IDS(server) -> list[int]:  # noqa: N802 - reads as a constant of the served model
    ids = resolve_answer_ids(server.tokenizer)
    return [*ids.yes, *ids.no]


def _scorer(*urls: str, **kwargs) -> RemoteScorer:
    options = dict(max_in_flight=4, timeout_s=10, max_retries=5, **FAST)
    options.update(kwargs)
    return RemoteScorer.from_spec(f"openai:{SERVED}@{','.join(urls)}", **options)


# --- pure parts ---------------------------------------------------------------------------------------

def test_p_yes_gathers_every_spelling():
    top = [(" Yes", -0.5), ("yes", -2.0), ("▁YES", -4.0), ("No", -1.5), ("Ġno", -3.0), ("maybe", -6.0),
           ("yes.", -1.0), ("nope", -0.7), ("\tno", -0.9)]
    yes = np.logaddexp.reduce([-0.5, -2.0, -4.0])
    no = np.logaddexp.reduce([-1.5, -3.0])
    answer = read_top_logprobs(top, plain_spellings())
    assert answer.absent == 0 and not answer.bounded
    assert answer.p_yes == pytest.approx(1 / (1 + np.exp(no - yes)), abs=1e-12)


def test_p_yes_bounds_an_absent_side_with_the_smallest_logprob():
    answer = read_top_logprobs([("Yes", -0.1), ("the", -2.0), ("a", -5.0)], plain_spellings())
    assert answer.absent == 1 and answer.bounded and answer.p_yes == pytest.approx(1 / (1 + np.exp(-5.0 + 0.1)))
    answer = read_top_logprobs([("No", -0.2), ("a", -3.0)], plain_spellings())
    assert answer.absent == 1 and answer.bounded and answer.p_yes == pytest.approx(1 / (1 + np.exp(-0.2 + 3.0)))
    answer = read_top_logprobs([("the", -0.2), ("a", -3.0)], plain_spellings())
    assert answer.absent == 2 and answer.bounded and answer.p_yes == 0.5


def test_spec_parsing_and_errors():
    s = RemoteScorer.from_spec("openai:org/model-7b@http://a:8000/v1/, https://b/v1")
    assert s.model == "org/model-7b"
    assert s.urls == ["http://a:8000/v1", "https://b/v1"]
    for bad in ["org/model@http://a", "openai:@http://a", "openai:model", "openai:model@", "openai:m@ftp://x"]:
        with pytest.raises(ConfigError, match="openai:|http"):
            RemoteScorer.from_spec(bad)
    with pytest.raises(ConfigError, match="max_in_flight"):
        RemoteScorer.from_spec("openai:m@http://a", max_in_flight=0)
    with pytest.raises(ConfigError, match="yes/no token ids"):
        RemoteScorer.from_spec("openai:m@http://a", mode="sglang")


# --- against the server ---------------------------------------------------------------------------------

def test_chat_mode_equals_local_scorer(server, frames, expected):
    with _scorer(server.url) as scorer:
        got = scorer.p_yes(frames, TEXTS)
        # Every answer had both yes and no among its top 20: no bound entered the comparison.
        assert scorer.stats["bounded"] == 0
        assert scorer.stats["requests"] == len(frames) * len(TEXTS)
    # ... and in fact every spelling the local scorer sums was there, so the sums are the same sums.
    for record in server.served():
        assert set(ANSWER_IDS(server)) <= set(record.top_ids)
    assert got.shape == (len(frames), len(TEXTS)) and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, atol=TOL, rtol=0)
    assert len(server.served()) == got.size


def test_sglang_mode_equals_local_scorer(server, model_dir, frames, expected):
    with _scorer(server.root, mode="sglang", tokenizer=str(model_dir)) as scorer:
        got = scorer.p_yes(frames, TEXTS)
    np.testing.assert_allclose(got, expected, atol=TOL, rtol=0)
    assert {r.path for r in server.served()} == {"/generate"}


def _dispatch_displacement(records, frame_hashes, texts) -> int:
    """Largest |arrival position - frame-major job index| over the served requests."""
    index = {(h, t): i * len(texts) + j for i, h in enumerate(frame_hashes) for j, t in enumerate(texts)}
    return max(abs(pos - index[(r.image_hash, r.text)]) for pos, r in enumerate(records))


def test_questions_of_a_frame_go_out_together_and_in_flight_is_bounded(server, frames, expected, monkeypatch):
    encoded = []
    original = remote_scorer.encode_image
    monkeypatch.setattr(remote_scorer, "encode_image", lambda im, *a, **k: encoded.append(1) or original(im, *a, **k))
    max_in_flight = 3
    server.delay_s = 0.08  # slow answers: the client must hold requests back
    with _scorer(server.url, max_in_flight=max_in_flight) as scorer:
        got = scorer.p_yes(frames, TEXTS)
    np.testing.assert_allclose(got, expected, atol=TOL, rtol=0)
    assert len(encoded) == len(frames)  # one encoding per frame, not per question
    assert 2 <= server.peak_active <= max_in_flight
    records = server.served()
    hashes = list(dict.fromkeys(r.image_hash for r in records))
    assert len(hashes) == len(frames)
    # Frame-major dispatch: a request arrives at most max_in_flight - 1 places from its queue position.
    assert _dispatch_displacement(records, hashes, TEXTS) < max_in_flight
    # The check can fail: the same requests in question-major order are far from frame-major.
    by_text = sorted(records, key=lambda r: (TEXTS.index(r.text), hashes.index(r.image_hash)))
    assert _dispatch_displacement(by_text, hashes, TEXTS) >= max_in_flight


@pytest.mark.parametrize("fault", ["429", "500", "drop", "timeout"])
def test_injected_faults_lose_nothing(server, frames, expected, fault):
    n_faults = 3
    timeout_s = 10.0
    if fault == "drop":
        server.drop_next(n_faults)
    elif fault == "timeout":
        # Enough for a normal answer on a busy 2-core machine (a slow one is just retried), well below
        # the injected delay.
        timeout_s, n_faults = 1.0, 2
        server.delay_next(n_faults, 2.5 * timeout_s)
    else:
        server.fail_next(n_faults, int(fault))
    with _scorer(server.url, timeout_s=timeout_s, max_in_flight=2) as scorer:
        got = scorer.p_yes(frames, TEXTS)
        assert scorer.stats["retries"] >= n_faults
    np.testing.assert_allclose(got, expected, atol=TOL, rtol=0)
    outcomes = [r.outcome for r in server.records]
    if fault in ("429", "500"):
        assert outcomes.count(f"status:{fault}") == n_faults
    elif fault == "drop":
        assert outcomes.count("drop") == n_faults


def test_server_restarted_mid_run_loses_nothing(server, frames, expected):
    server.delay_s = 0.03
    result: dict = {}

    def run():
        # Retries must outlast the outage even on a loaded machine: with these delays, 10 retries
        # wait at least ~2 s in all (jitter shortens each wait by at most half), the server is down 0.4 s.
        with _scorer(server.url, max_retries=10, backoff_base_s=0.05, backoff_cap_s=0.5) as scorer:
            result["p"] = scorer.p_yes(frames, TEXTS)
            result["stats"] = dict(scorer.stats)

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 20
    while len(server.served()) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    served_before = len(server.served())
    server.restart(down_s=0.4)
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert 0 < served_before < len(frames) * len(TEXTS)  # the restart really fell mid-run
    np.testing.assert_allclose(result["p"], expected, atol=TOL, rtol=0)
    assert result["stats"]["retries"] >= 1


def test_exhausted_retries_raise_a_resumable_model_error(server, frames):
    server.fail_next(1000, 503)
    with _scorer(server.url, max_retries=2) as scorer:
        with pytest.raises(ModelError, match=r"frames x 3 questions.*503.*run the same command again to resume"):
            scorer.p_yes(frames, TEXTS)
    # Aborted early: not every queued request was tried three times.
    assert len(server.records) < len(frames) * len(TEXTS) * 3


def test_client_errors_are_not_retried(server, frames):
    # A name the server does not serve: found out from its model list, before any scoring request.
    scorer = RemoteScorer.from_spec(f"openai:no-such-model@{server.url}", max_retries=5, **FAST)
    with scorer, pytest.raises(ModelError, match=r"does not serve a model named 'no-such-model'.*tiny-lvlm"):
        scorer.p_yes(frames[:1], TEXTS[:1])
    assert len(server.records) == 0
    # A request the server refuses (more log-probs than it allows) is sent once, not retried.
    scorer = _scorer(server.url, top_logprobs=21, max_retries=5)
    with scorer, pytest.raises(ModelError, match="HTTP 400") as info:
        scorer.p_yes(frames[:1], TEXTS[:1])
    assert len(server.records) == 1
    assert "resume" not in str(info.value)  # retrying later would not help: the request is wrong
    with pytest.raises(ConfigError, match=r"\[H,W,3\] uint8"):
        scorer.p_yes([frames[0].astype(np.float32)], TEXTS[:1])


def test_round_robin_across_two_servers(server, frames, expected):
    with LVLMTestServer(served_name=SERVED, share=server) as second:
        with _scorer(server.url, second.url, max_in_flight=2) as scorer:
            np.testing.assert_allclose(scorer.p_yes(frames, TEXTS), expected, atol=TOL, rtol=0)
        a, b = len(server.served()), len(second.served())
    assert a + b == len(frames) * len(TEXTS) and abs(a - b) <= 2  # alternating


def test_a_dead_endpoint_leaves_the_rotation_and_is_retried_after_cooldown(server, frames, expected):
    second = LVLMTestServer(served_name=SERVED, share=server).start()
    second.stop()  # its port now refuses connections
    threshold = 2
    with _scorer(server.url, second.url, max_in_flight=2, fail_threshold=threshold, cooldown_s=60) as scorer:
        np.testing.assert_allclose(scorer.p_yes(frames, TEXTS), expected, atol=TOL, rtol=0)
        dead = scorer.endpoint_stats()[1]
    assert dead["out_of_rotation"] and dead["times_taken_out"] == 1
    # Out after `threshold` failures in a row (+1 request that was already on its way there).
    assert threshold <= dead["failures"] <= threshold + 1
    assert len(server.served()) == len(frames) * len(TEXTS)

    # One request at a time: the dead endpoint fails once and leaves for cooldown_s; once back and
    # cooled down it is in the rotation again and serves.
    cooldown_s = 2.0
    with _scorer(server.url, second.url, max_in_flight=1, fail_threshold=1, cooldown_s=cooldown_s) as scorer:
        scorer.p_yes(frames[:1], TEXTS[:2])  # A serves, B refuses and leaves, A serves the retry
        assert scorer.endpoint_stats()[1]["times_taken_out"] == 1
        second.start()
        try:
            scorer.p_yes(frames[:1], TEXTS[:2])
            assert len(second.served()) == 0  # still cooling down
            deadline = time.monotonic() + 2 * cooldown_s
            while scorer.endpoint_stats()[1]["out_of_rotation"] and time.monotonic() < deadline:
                time.sleep(0.05)
            got = scorer.p_yes(frames[:1], TEXTS[:2])
            assert len(second.served()) >= 1
        finally:
            second.stop()
    np.testing.assert_allclose(got, expected[:1, :2], atol=TOL, rtol=0)


# --- the pipeline, unchanged, on a server ------------------------------------------------------------

CLIP_FILE = "tests_data_test.mp4"  # 10 s real clip
CLASSES = ["CliffDiving", "Diving"]


def _pipeline_config(tmp_path, tiny, lvlm_model: str):
    """The tests' tiny configuration with this LVLM (a folder or an openai:... spec), a few small frames."""
    from tiny_models import tiny_config

    return tiny_config(tiny, tmp_path / "cache", lvlm={"model": lvlm_model},
                       video={"fps": 0.5, "max_side": 96, "chunk": 2})


def test_pipeline_on_a_server_equals_local_and_resumes_after_a_failure(server, lifted, data_dir, tmp_path, tiny):
    from zeal.scorers.local import LVLMScorer
    from zeal.pipeline import ZealPipeline

    folder, model, processor = lifted
    video = str(data_dir / CLIP_FILE)
    local = ZealPipeline(_pipeline_config(tmp_path / "local", tiny, str(folder)),
                         lvlm=LVLMScorer(model, processor, str(folder)))
    want = local.run(video, classes=CLASSES, known_classes=True)
    n_requests = len(want.times_s) * 2 * len(CLASSES)

    # The remote run fails for good after some frames: a ModelError, with the finished chunks cached.
    spec = f"openai:{SERVED}@{server.url}"
    cfg = _pipeline_config(tmp_path / "remote", tiny, spec)
    scorer = RemoteScorer.from_spec(spec, max_in_flight=4, max_retries=1, **FAST)
    server.delay_s = 0.02

    def break_server_after(n: int) -> None:
        deadline = time.monotonic() + 60
        while len(server.served()) < n and time.monotonic() < deadline:
            time.sleep(0.005)
        server.fail_next(10_000, 500)

    failing = threading.Thread(target=break_server_after, args=(n_requests // 2,))
    failing.start()
    with pytest.raises(ModelError, match="run the same command again to resume"):
        ZealPipeline(cfg, clip=local.clip, lvlm=scorer).run(video, classes=CLASSES, known_classes=True)
    failing.join()
    served_first = len(server.served())
    assert 0 < served_first < n_requests

    # Run again through the user's path (the spec in the config): only the missing frames are sent.
    server.clear_faults()
    server.reset_log()
    got = ZealPipeline(cfg, clip=local.clip).run(video, classes=CLASSES, known_classes=True)
    assert len(server.served()) < n_requests
    assert all(set(ANSWER_IDS(server)) <= set(r.top_ids) for r in server.served())
    assert served_first + len(server.served()) >= n_requests
    assert got.run.models["lvlm"].startswith(f"openai:{SERVED}|") and str(folder) in got.run.models["lvlm"]
    assert got.run.stats["lvlm"]["requests"] == len(server.served())  # counted in the result
    np.testing.assert_array_equal(got.times_s, want.times_s)
    for name in CLASSES:
        for curve in ("start_raw", "end_raw"):
            np.testing.assert_allclose(getattr(got.classes[name].curves, curve),
                                       getattr(want.classes[name].curves, curve), atol=TOL, rtol=0)
        assert [(iv.start_s, iv.end_s) for iv in got.classes[name].intervals] == \
               [(iv.start_s, iv.end_s) for iv in want.classes[name].intervals]


def test_bounded_answers_are_counted_and_repeated_texts_asked_once(server, frames):
    # One top log-prob: only one side can be present, the other is bounded by it -> exactly 0.5.
    with _scorer(server.url, top_logprobs=1) as scorer:
        got = scorer.p_yes(frames[:2], [TEXTS[0], TEXTS[1], TEXTS[0]])
        assert scorer.stats["requests"] == 4
        assert scorer.stats["bounded"] == 4 and scorer.stats["bounded_both"] == 0
    np.testing.assert_array_equal(got, np.full((2, 3), 0.5))


# --- what the server serves: identity and answer spellings ---------------------------------------------

def test_model_id_holds_what_the_server_says_and_its_spellings(server, model_dir):
    with _scorer(server.url) as scorer:
        model_id, spellings = scorer.model_id, scorer.spellings
    assert model_id.startswith(f"openai:{SERVED}|") and str(model_dir) in model_id and '"max_model_len": 4096' in model_id
    # the server's own tokenizer (vLLM's /tokenize) gave exactly the local scorer's spellings
    local = resolve_answer_ids(server.tokenizer)
    assert spellings.source == "server" and (spellings.yes, spellings.no) == (local.yes, local.no)
    assert server.tokenize_calls > 0
    exact = RemoteScorer.from_spec(f"openai:{SERVED}@{server.url}", answer_spellings="exact", **FAST)
    # the served folder is on this machine: its config.json says llava_onevision -> the vocabulary "yes"/"no"
    assert (exact.spellings.yes, exact.spellings.no) == ((server.tokenizer.convert_tokens_to_ids("yes"),),
                                                         (server.tokenizer.convert_tokens_to_ids("no"),))
    assert exact.model_id != model_id


def test_without_tokenize_the_local_copy_then_the_plain_rule_gives_the_spellings(server, model_dir, frames, expected):
    server.tokenize_enabled = False
    try:
        with _scorer(server.url) as scorer:  # the root the server reports is a folder here
            assert scorer.spellings.source == "tokenizer"
            np.testing.assert_allclose(scorer.p_yes(frames, TEXTS), expected, atol=TOL, rtol=0)
        server.root_path = "/models/on-another-machine"
        with _scorer(server.url) as scorer:  # neither the root nor the served name is here
            assert scorer.spellings.source == "plain"
            np.testing.assert_allclose(scorer.p_yes(frames, TEXTS), expected, atol=TOL, rtol=0)
    finally:
        server.tokenize_enabled, server.root_path = True, str(model_dir)


def test_a_server_that_tells_only_the_name_is_trusted_by_the_name_with_one_warning(server, frames, caplog):
    server.describe = False
    listed_before = server.listings
    try:
        with caplog.at_level("WARNING", logger="zeal.scorers.remote"), _scorer(server.url) as scorer:
            scorer.p_yes(frames[:1], TEXTS[:1])
            scorer.p_yes(frames[1:2], TEXTS[:1])
            assert scorer.model_id.startswith(f"openai:{SERVED}|answers=")
    finally:
        server.describe = True
    warnings = [r for r in caplog.records if "trusted by the name" in r.getMessage()]
    assert len(warnings) == 1 and server.listings - listed_before == 1  # asked once, warned once


def test_few_top_logprobs_flag_every_answer_a_missing_spelling_could_move(server, frames, expected, caplog):
    """With top_logprobs=5 most of the 12 spellings are missing from every answer. An answer that is not
    flagged is within 1e-3 of the local scorer's exact P(yes) (the oracle); the flagged ones are counted
    and logged."""
    import base64
    import hashlib

    with caplog.at_level("WARNING", logger="zeal.scorers.remote"), _scorer(server.url, top_logprobs=5) as scorer:
        got = scorer.p_yes(frames, TEXTS)
        flagged, spellings = scorer.stats["bounded"], scorer.spellings
    row = {hashlib.sha1(base64.b64decode(remote_scorer.encode_image(f).split(",", 1)[1])).hexdigest()[:16]: i
           for i, f in enumerate(frames)}
    records = server.served()
    assert len(records) == got.size and all(len(r.top) == 5 for r in records)
    answers = [(read_top_logprobs(r.top, spellings), row[r.image_hash], TEXTS.index(r.text)) for r in records]
    assert sum(a.bounded for a, _, _ in answers) == flagged > 0
    assert any("could move P(yes) by more than 1e-3" in r.getMessage() for r in caplog.records)
    for answer, i, j in answers:
        assert answer.p_yes == got[i, j]
        if not answer.bounded:
            assert abs(answer.p_yes - expected[i, j]) <= BOUND_TOLERANCE
    wrong = int((np.abs(got - expected) > BOUND_TOLERANCE).sum())
    assert wrong > 0  # the bound has something to catch: 5 log-probs really move P(yes)
    with _scorer(server.url) as scorer:  # the default top 20 holds every spelling: nothing flagged
        np.testing.assert_allclose(scorer.p_yes(frames, TEXTS), expected, atol=TOL, rtol=0)
        assert scorer.stats["bounded"] == 0


def test_another_model_behind_the_same_name_never_gets_cached_scores(server, lifted, data_dir, tmp_path, tiny):
    """Restart the server with other weights under the same served name: the next run asks for every
    score again, and its curves are the new model's."""
    import copy

    import torch

    from zeal.pipeline import ZealPipeline
    from zeal.scorers.local import LVLMScorer
    from zeal.video import sample

    folder, model, processor = lifted
    other = copy.deepcopy(model)
    with torch.no_grad():  # other weights: the head rows of "yes" move, P(yes) changes everywhere
        ids = resolve_answer_ids(processor.tokenizer)
        head = other.get_output_embeddings().weight
        head[list(ids.yes)] += 0.3 * torch.randn(head.shape[1], generator=torch.Generator().manual_seed(5))
    video = str(data_dir / CLIP_FILE)
    cfg = _pipeline_config(tmp_path / "remote", tiny, f"openai:{SERVED}@{server.url}")
    first = ZealPipeline(cfg).run(video, classes=CLASSES, known_classes=True)
    n_requests = len(server.served())
    assert n_requests == len(first.times_s) * 2 * len(CLASSES)
    again = ZealPipeline(cfg).run(video, classes=CLASSES, known_classes=True)  # same model: all cached
    assert len(server.served()) == n_requests and again.run.stats["questions_scored"] == 0

    server.serve(other, processor, root=str(tmp_path / "other-checkpoint"))
    try:
        swapped = ZealPipeline(cfg).run(video, classes=CLASSES, known_classes=True)
    finally:
        server.serve(model, processor, root=str(folder))
    assert len(server.served()) == 2 * n_requests  # every score asked again
    assert swapped.run.models["lvlm"] != first.run.models["lvlm"]
    texts = [prompt_text(name, swapped.classes[name].query[kind]) for name in CLASSES for kind in ("start", "end")]
    frames = [f for chunk in sample(video, fps=cfg.video.fps, max_side=cfg.video.max_side) for f in chunk.images]
    want = LVLMScorer(other, processor, "other").p_yes(frames, texts)
    old = LVLMScorer(model, processor, "old").p_yes(frames, texts)
    got = np.stack([getattr(swapped.classes[name].curves, f"{kind}_raw") for name in CLASSES
                    for kind in ("start", "end")], axis=1)
    np.testing.assert_allclose(got, want, atol=TOL, rtol=0)
    assert np.abs(got - old).max() > 0.01  # the old model's scores would have been wrong
