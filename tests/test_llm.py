"""Query generation against a real HTTP server on 127.0.0.1 speaking the OpenAI chat-completions
schema, with scripted answers, and the real `openai` client talking to it."""

import json
import logging
import random
import socket
import time

import pytest

from llm_server import ScriptedServer
from zeal.config import LLMConfig
from zeal.errors import LLMError
from zeal.llm import generate_queries, parse_answer
from zeal.retry import Backoff
from zeal.queries import QuerySet, lookup

CLASSES = ["CliffDiving", "LongJump"]
GOOD = lookup(CLASSES).to_json()
KEY = "sk-test-7f3a9c1e5b2d4f6a8c0e"
FAST = {"backoff_base_s": 0.01, "backoff_cap_s": 0.05}


@pytest.fixture
def server():
    srv = ScriptedServer()
    yield srv
    srv.close()


def settings(server, **kw):
    return LLMConfig(**{"base_url": server.url, "model": "test-model", "api_key_env": "ZEAL_TEST_LLM_KEY",
                        "timeout_s": 5.0, "max_retries": 3, **kw})


def test_good_answer_and_request_shape(server):
    server.script = [("ok", GOOD)]
    qs = generate_queries(CLASSES, settings(server), api_key=KEY, **FAST)
    assert qs == lookup(CLASSES) and qs.names == CLASSES
    [(path, headers, body, raw)] = server.requests
    assert path == "/v1/chat/completions"
    assert headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in raw
    assert body["model"] == "test-model"
    assert body["response_format"] == {"type": "json_object"}
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user"]
    system, user = (m["content"] for m in body["messages"])
    assert "JSON" in system and "yes/no" in system and "single" in system.lower()
    assert '"CliffDiving"' in user and '"LongJump"' in user


def test_malformed_then_good_sends_the_error_back(server):
    bad = '{"CliffDiving": {"start": "Is a person on a cliff?", "end": "Is there a splash?",'
    server.script = [("ok", bad), ("ok", GOOD)]
    qs = generate_queries(CLASSES, settings(server), api_key=KEY, **FAST)
    assert qs.names == CLASSES
    assert len(server.requests) == 2
    followup = server.bodies()[1]["messages"]
    assert [m["role"] for m in followup] == ["system", "user", "assistant", "user"]
    assert followup[2]["content"] == bad
    assert "not valid JSON" in followup[3]["content"] and "line 1" in followup[3]["content"]


def test_invalid_questions_then_good(server):
    data = json.loads(GOOD)
    data["LongJump"]["end"] = "The athlete lands in the sand."
    server.script = [("ok", json.dumps(data)), ("ok", GOOD)]
    assert generate_queries(CLASSES, settings(server), api_key=KEY, **FAST).names == CLASSES
    fix = server.bodies()[1]["messages"][-1]["content"]
    assert "LongJump" in fix and "not a yes/no question" in fix


def test_missing_class_then_good(server):
    data = json.loads(GOOD)
    del data["LongJump"]
    server.script = [("ok", json.dumps(data)), ("ok", GOOD)]
    assert generate_queries(CLASSES, settings(server), api_key=KEY, **FAST).names == CLASSES
    fix = server.bodies()[1]["messages"][-1]["content"]
    assert "LongJump" in fix and "no entry" in fix


@pytest.mark.parametrize("code", [429, 500, 503])
def test_transient_status_then_good(server, code):
    server.script = [("status", code, "busy"), ("ok", GOOD)]
    assert generate_queries(CLASSES, settings(server), api_key=KEY, **FAST).names == CLASSES
    assert len(server.requests) == 2
    assert server.bodies()[0] == server.bodies()[1]  # the same request again


def test_timeout_then_good(server):
    server.script = [("sleep", 1.0, GOOD), ("ok", GOOD)]
    start = time.monotonic()
    qs = generate_queries(CLASSES, settings(server, timeout_s=0.3), api_key=KEY, **FAST)
    assert qs.names == CLASSES and len(server.requests) == 2
    assert time.monotonic() - start < 1.0  # it gave up on the slow answer instead of waiting for it


def test_always_malformed_gives_up_after_three_retries(server):
    server.script = [("ok", "Sure! Here are your questions.")] * 10
    with pytest.raises(LLMError) as info:
        generate_queries(CLASSES, settings(server), api_key=KEY, **FAST)
    assert len(server.requests) == 4  # one answer + 3 retries
    msg = str(info.value)
    assert "4 answers" in msg and "not valid JSON" in msg and "built-in library" in msg


def test_response_format_rejected_is_retried_without(server):
    server.script = [("status", 400, "response_format is not supported by this model"), ("ok", GOOD)]
    assert generate_queries(CLASSES, settings(server), api_key=KEY, **FAST).names == CLASSES
    first, second = server.bodies()
    assert "response_format" in first and "response_format" not in second
    assert first["messages"] == second["messages"]


def test_second_400_is_an_error(server):
    server.script = [("status", 400, "bad"), ("status", 400, "still bad"), ("ok", GOOD)]
    with pytest.raises(LLMError, match="HTTP 400.*still bad"):
        generate_queries(CLASSES, settings(server), api_key=KEY, **FAST)
    assert len(server.requests) == 2


def test_persistent_429_is_bounded(server):
    server.script = [("status", 429, "rate limited")] * 10
    with pytest.raises(LLMError, match="failed 3 time.*HTTP 429"):
        generate_queries(CLASSES, settings(server, max_retries=2), api_key=KEY, **FAST)
    assert len(server.requests) == 3


def test_unauthorized_is_not_retried(server):
    server.script = [("status", 401, "invalid api key")] * 3
    with pytest.raises(LLMError) as info:
        generate_queries(CLASSES, settings(server), api_key=KEY, **FAST)
    assert len(server.requests) == 1
    assert "ZEAL_TEST_LLM_KEY" in str(info.value) and KEY not in str(info.value)


def test_wrong_path_says_check_base_url(server):
    cfg = settings(server, base_url=server.url.removesuffix("/v1") + "/api")
    with pytest.raises(LLMError, match="404.*base_url"):
        generate_queries(CLASSES, cfg, api_key=KEY, **FAST)


def test_nothing_listening():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = LLMConfig(base_url=f"http://127.0.0.1:{port}/v1", model="m", timeout_s=2.0, max_retries=1)
    with pytest.raises(LLMError, match="cannot connect"):
        generate_queries(CLASSES, cfg, api_key=KEY, **FAST)


def test_unconfigured_llm_says_what_to_set():
    with pytest.raises(LLMError) as info:
        generate_queries(CLASSES, LLMConfig())
    msg = str(info.value)
    assert "base_url" in msg and "model" in msg and "built-in" in msg
    with pytest.raises(LLMError, match="model"):
        generate_queries(CLASSES, LLMConfig(base_url="http://127.0.0.1:1/v1"))


@pytest.mark.parametrize("classes", [[], [""], "CliffDiving", [None]])
def test_bad_class_lists(server, classes):
    with pytest.raises(LLMError):
        generate_queries(classes, settings(server), api_key=KEY, **FAST)
    assert server.requests == []


def test_key_from_environment_and_never_leaked(server, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("ZEAL_TEST_LLM_KEY", KEY)
    # a failing run (server errors, echoing the key back in its message) and a succeeding one
    server.script = [("status", 500, f"internal error for key {KEY}")] * 4
    with pytest.raises(LLMError) as info:
        generate_queries(CLASSES, settings(server), **FAST)
    server.script = [("ok", "not json"), ("ok", GOOD)]
    qs = generate_queries(CLASSES, settings(server), **FAST)
    assert qs.names == CLASSES
    assert all(h["authorization"] == f"Bearer {KEY}" for _, h, _, _ in server.requests)
    assert not any(KEY in raw for _, _, _, raw in server.requests)
    assert "HTTP 500" in str(info.value)
    for text in (str(info.value), repr(info.value), caplog.text, repr(qs), qs.to_json(),
                 repr(settings(server))):
        assert KEY not in text
    assert caplog.records  # the retries were logged, without the key


def test_no_key_anywhere_still_works_for_local_servers(server, monkeypatch):
    monkeypatch.delenv("ZEAL_TEST_LLM_KEY", raising=False)
    server.script = [("ok", GOOD)]
    assert generate_queries(CLASSES, settings(server), **FAST).names == CLASSES
    assert server.requests[0][1]["authorization"].startswith("Bearer ")


# -- answer parsing, without a server ----------------------------------------------------------
def test_parse_answer_is_forgiving_about_form():
    data = json.loads(GOOD)
    renamed = {"cliff diving": data["CliffDiving"], "LONG_JUMP": data["LongJump"],
               "Extra": {"start": "x"}}
    qs = parse_answer("```json\n" + json.dumps(renamed) + "\n```", CLASSES)
    assert qs.names == CLASSES and qs == QuerySet.from_dict(data)
    assert parse_answer(json.dumps({"classes": data}), CLASSES).names == CLASSES
    assert parse_answer(json.dumps(data), list(reversed(CLASSES))).names == list(reversed(CLASSES))


def test_backoff_is_capped_exponential_with_jitter():
    """The one retry policy of every client (zeal.retry), the LLM's and the LVLM servers'."""
    rng = random.Random(0)
    backoff = Backoff(0.5, 4.0)
    for attempt in range(8):
        full = min(4.0, 0.5 * 2 ** attempt)
        delays = [backoff.delay(attempt, rng=rng) for _ in range(50)]
        assert all(full / 2 <= d <= full for d in delays)
        assert len(set(delays)) > 1
    # a server's Retry-After raises the delay, never above the cap
    assert backoff.delay(0, retry_after=3.0, rng=rng) == 3.0
    assert backoff.delay(0, retry_after=60.0, rng=rng) == 4.0
