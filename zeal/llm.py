"""Query generation (step 1) through any OpenAI-compatible chat endpoint: OpenAI, a local vLLM or
Ollama server. The answer is validated with the QuerySet rules; a malformed answer is sent back with
the problem for another try. The API key is only ever placed in the client's Authorization header:
it is never logged, stored, or put into an exception message.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from typing import Any, Sequence

from zeal.config import LLMConfig
from zeal.errors import LLMError, QueryError
from zeal.queries import FIELDS, MAX_CLASSES, QuerySet, class_key, parse_json
from zeal.retry import Backoff, GaveUp, Retryable, is_retryable_status, retry_after_s, with_retries

log = logging.getLogger(__name__)

# A malformed answer (bad JSON, missing class, a statement instead of a question) is re-asked this
# many times, each time with the problem as a follow-up message.
MAX_FIX_ATTEMPTS = 3
# Transport retries (timeouts, HTTP 429/5xx) back off exponentially from this base, capped.
DEFAULT_BACKOFF_BASE_S = 1.0
DEFAULT_BACKOFF_CAP_S = 30.0
# Local servers (vLLM, Ollama) need no key but the client insists on one: this is sent instead.
NO_KEY_PLACEHOLDER = "no-key"
# How much of a server's error text or a bad answer is quoted back (to the user / to the model).
MAX_QUOTE_CHARS = 300
MAX_ECHO_CHARS = 20_000

SYSTEM_PROMPT = """\
You help a video annotation tool find actions in long videos. The tool shows a vision-language \
model one still frame at a time and asks it yes/no questions. For every action class you are given, \
write three sentences:
- "start": a yes/no question that is answered "yes" by the single frame at the very beginning of \
the action: what the people, objects and setting look like at that moment.
- "end": a yes/no question that is answered "yes" by the single frame at the very end of the \
action, once it is finished. It must differ from the start question.
- "description": one short plain sentence that describes the whole action.
Rules for both questions: answerable from ONE still image (no motion, sound, speed or comparison \
with other frames); begin with a verb such as Is, Are, Does, Do, Can or Has; end with a question \
mark; one sentence each.
Reply with a single JSON object and nothing else. Its keys are the class names exactly as given; \
each value is an object with exactly the keys "start", "end" and "description". Example for the \
class RopeClimb:
{"RopeClimb": {"start": "Is a person standing on the floor gripping a hanging rope with both hands?", \
"end": "Is a person hanging near the top of a rope, touching the ceiling beam?", \
"description": "A person climbs up a hanging rope."}}"""

USER_PROMPT = "Write the start question, end question and description for these action classes: {classes}"
FIX_PROMPT = ("Your answer could not be used: {error}\nReply again with the complete JSON object for all"
              " of these classes, following every rule: {classes}")


@dataclass
class _Request:
    """What one conversation sends; use_format flips off once if the server rejects response_format."""

    model: str
    use_format: bool = True


def _redact(text: str, secret: str | None) -> str:
    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
    return text


def _describe(exc: Exception, secret: str | None) -> str:
    """One line about a client error, with the key redacted (servers have been known to echo it)."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return "the request timed out"
    if isinstance(exc, openai.APIConnectionError):
        return f"cannot connect ({type(exc).__name__})"
    status = getattr(exc, "status_code", None)
    message = getattr(exc, "message", None) or str(exc)
    text = " ".join(_redact(str(message), secret).split())[:MAX_QUOTE_CHARS]
    return f"HTTP {status}: {text}" if status else text


def _strip_fences(text: str) -> str:
    """Models served without JSON mode often wrap the object in ```json ... ``` fences."""
    text = text.strip()
    match = re.fullmatch(r"```[A-Za-z]*\s*(.*?)\s*```", text, flags=re.DOTALL)
    return match.group(1) if match else text


def parse_answer(content: str, classes: Sequence[str]) -> QuerySet:
    """Turn the model's answer into a QuerySet holding exactly `classes`, in that order.

    Keys are matched ignoring case, spaces, underscores and hyphens, and renamed to the requested
    names; classes nobody asked for are dropped; a single wrapping object ({"classes": {...}}) is
    unwrapped. QueryError says what is wrong (it is sent back to the model)."""
    text = _strip_fences(content or "")
    if not text:
        raise QueryError("the answer was empty; reply with the JSON object")
    data = parse_json(text, "the answer")
    if not isinstance(data, dict):
        raise QueryError(f"the answer is a JSON {type(data).__name__}, expected one object keyed by class name")
    wanted = {class_key(c): c for c in classes}
    if len(data) == 1 and class_key(next(iter(data))) not in wanted:
        inner = next(iter(data.values()))
        if isinstance(inner, dict) and any(class_key(k) in wanted for k in inner):
            data = inner
    picked: dict[str, Any] = {}
    for key, value in data.items():
        name = wanted.get(class_key(key))
        if name is not None:
            picked[name] = value
    missing = [c for c in classes if c not in picked]
    if missing:
        raise QueryError(f"the answer has no entry for class(es) {missing}; every class needs"
                         f" {list(FIELDS)}")
    return QuerySet.from_dict({c: picked[c] for c in classes})


def _check_classes(classes: Sequence[str]) -> list[str]:
    if isinstance(classes, str) or not isinstance(classes, Sequence):
        raise LLMError(f"classes must be a list of class names, got {type(classes).__name__}")
    out: list[str] = []
    keys: set[str] = set()
    for name in classes:
        if not isinstance(name, str) or not name.strip():
            raise LLMError(f"class names must be non-empty strings, got {name!r}")
        if class_key(name) not in keys:
            keys.add(class_key(name))
            out.append(name.strip())
    if not out:
        raise LLMError("no classes given: name at least one action class to write questions for")
    if len(out) > MAX_CLASSES:
        raise LLMError(f"{len(out)} classes given, at most {MAX_CLASSES} per request; split the list")
    return out


def _complete(client: Any, request: _Request, messages: list[dict[str, str]], settings: LLMConfig,
              secret: str | None, backoff: Backoff) -> str:
    """One chat completion with bounded retries on timeouts, connection errors, 429 and 5xx."""
    import openai

    where = f"the LLM server at {settings.base_url} (model {settings.model!r})"

    def attempt() -> str:
        while True:  # a second pass only when the server refuses JSON mode
            kwargs: dict[str, Any] = {"model": request.model, "messages": messages}
            if request.use_format:
                kwargs["response_format"] = {"type": "json_object"}
            try:
                raw = client.chat.completions.with_raw_response.create(**kwargs)
                kind = raw.headers.get("content-type", "").split(";")[0].strip().lower()
                response = raw.parse() if kind.endswith("json") else None
            except (openai.APIConnectionError, openai.APIStatusError) as exc:
                status = getattr(exc, "status_code", None)
                what = _describe(exc, secret)
                if status == 400 and request.use_format:
                    # Some servers (older vLLM, Ollama builds, proxies) refuse JSON mode: ask once without.
                    log.info("%s rejected response_format (%s); asking again without it", where, what)
                    request.use_format = False
                    continue
                if status in (401, 403):
                    raise LLMError(f"{where} refused the API key ({what}); set the environment variable"
                                   f" {settings.api_key_env} or pass api_key") from None
                if status == 404:
                    raise LLMError(f"{where} answered 404 ({what}); check base_url (it usually ends in /v1)"
                                   " and the model name") from None
                if not is_retryable_status(status):
                    raise LLMError(f"{where} rejected the request ({what})") from None
                response_obj = getattr(exc, "response", None)
                raise Retryable(what, retry_after_s(getattr(response_obj, "headers", None))) from None
            if response is None or not hasattr(response, "choices"):
                # a proxy's login page or a web server's error page, answered with 200
                raise LLMError(f"the server at {settings.base_url} did not answer as an OpenAI-compatible API "
                               f"(got {kind or 'no content type'}); check the base URL (it usually ends in /v1)"
                               " and that no proxy asks for a login")
            choices = response.choices or []
            if not choices or choices[0].message is None:
                return ""
            return choices[0].message.content or ""

    def report(retry: int, error: Retryable, delay_s: float) -> None:
        log.warning("%s: %s; retry %d of %d in %.2f s", where, error, retry, settings.max_retries, delay_s)

    try:
        return with_retries(attempt, settings.max_retries, backoff, on_retry=report)
    except GaveUp as gave_up:
        raise LLMError(f"{where} failed {gave_up.attempts} time(s), last: {gave_up.last}; check that the server"
                       " is up, or raise timeout_s / max_retries, or use the built-in library") from None


def generate_queries(classes: list[str], settings: LLMConfig, api_key: str | None = None, *,
                     backoff_base_s: float = DEFAULT_BACKOFF_BASE_S,
                     backoff_cap_s: float = DEFAULT_BACKOFF_CAP_S,
                     max_fix_attempts: int = MAX_FIX_ATTEMPTS) -> QuerySet:
    """Ask an OpenAI-compatible chat endpoint to write start/end questions and a description for each
    class; returns a validated QuerySet with exactly `classes`, in order.

    api_key: used as given, else read from the environment variable settings.api_key_env, else a
    placeholder (local servers need none). Timeouts and HTTP 429/5xx are retried settings.max_retries
    times with capped exponential backoff (backoff_base_s, backoff_cap_s, seconds); a malformed answer is
    re-asked max_fix_attempts times. Raises LLMError saying what went wrong last.
    """
    import openai

    if not settings.base_url or not settings.model:
        missing = [n for n in ("base_url", "model") if not getattr(settings, n)]
        raise LLMError(f"no LLM configured ({' and '.join(missing)} not set): set the LLM base_url and model"
                       " (e.g. https://api.openai.com/v1 and a model name, or a local vLLM/Ollama server),"
                       " or use the built-in query library / a query file")
    names = _check_classes(classes)
    secret = api_key or os.environ.get(settings.api_key_env) or None
    client = openai.OpenAI(base_url=settings.base_url, api_key=secret or NO_KEY_PLACEHOLDER,
                           timeout=settings.timeout_s, max_retries=0)
    listing = json.dumps(names, ensure_ascii=False)
    messages = [{"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": USER_PROMPT.format(classes=listing)}]
    request = _Request(settings.model)
    backoff = Backoff(backoff_base_s, backoff_cap_s)
    problem = ""
    try:
        for attempt in range(1 + max_fix_attempts):
            content = _complete(client, request, messages, settings, secret, backoff)
            try:
                queries = parse_answer(content, names)
            except QueryError as exc:
                problem = _redact(str(exc), secret)
                log.warning("LLM answer %d of %d unusable: %s", attempt + 1, 1 + max_fix_attempts, problem)
                messages = [*messages, {"role": "assistant", "content": content[:MAX_ECHO_CHARS]},
                            {"role": "user", "content": FIX_PROMPT.format(error=problem, classes=listing)}]
                continue
            log.info("LLM wrote questions for %d class(es) in %d answer(s)", len(queries), attempt + 1)
            return queries
    finally:
        client.close()
    raise LLMError(f"the LLM (model {settings.model!r} at {settings.base_url}) gave no usable questions in"
                   f" {1 + max_fix_attempts} answers; last problem: {problem}. Try another model, write the"
                   " questions by hand, or use the built-in library")
