"""P(yes) from OpenAI-compatible LVLM servers (vLLM, SGLang): the same `p_yes` contract as the local
`LVLMScorer`, computed from the log-probabilities of the first generated token.

Two request modes:
- "chat": `POST {base}/chat/completions` through the `openai` package with the frame as a data URL
  first, then the text; `max_tokens=1, temperature=0, logprobs=true, top_logprobs=20`. P(yes) is read
  from the returned top log-probs over the model's answer spellings (zeal.scorers.answers), with a
  bound for the spellings the server did not return.
- "sglang": SGLang's native `POST {root}/generate` with `token_ids_logprob`, which returns the exact
  log-probs of the given yes/no token ids (no top-k truncation, so no bound is ever needed).

Identity: before its first score (and before any cached score is reused), the scorer asks every URL
what model it serves (zeal.scorers.server_info); `model_id` holds the answer, so a different model
restarted under the same name gets a different cache key.

Concurrency: a pool of `max_in_flight` worker threads, each with at most one request outstanding, so
the bound holds by construction. Threads rather than asyncio because `p_yes` is a synchronous call made
from the pipeline, the CLI and Gradio worker threads: a pool needs no event loop of its own (nothing to
clash with a caller's running loop, no loop-bound client to keep alive between calls), blocking socket
I/O releases the GIL, and the bound is tens to a few hundred requests, where a thread each is cheap
next to a GPU forward. Jobs are queued frame-major (all questions of one frame, then the next frame),
so the questions of one frame reach the server together and its prefix cache reuses the image prefix.

Faults: timeouts, dropped connections, 408/409/429 and 5xx are retried (zeal.retry) with capped
exponential backoff and jitter, each retry on the next endpoint in rotation; an endpoint that fails
`fail_threshold` times in a row leaves the rotation for `cooldown_s` and is then tried again. A request
still failing after `max_retries` retries stops the call with a ModelError; nothing is dropped silently.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import logging
import os
import re
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from zeal.errors import ConfigError, ModelError
from zeal.retry import Backoff, GaveUp, Retryable, is_retryable_status, retry_after_s, with_retries
from zeal.scorers import REMOTE_PREFIX, chat_messages
from zeal.scorers.answers import (AnswerSpellings, check_mode, p_yes_from_id_logprobs, read_top_logprobs,
                                  resolve_answer_ids)
from zeal.scorers.server_info import (ServerCalls, Unreachable as _Unreachable, api_root, describe_model,
                                      model_type_of, resolve_spellings)

log = logging.getLogger(__name__)

MODES = ("chat", "sglang")
# vLLM's default cap on top_logprobs (--max-logprobs 20); also the OpenAI API's maximum.
DEFAULT_TOP_LOGPROBS = 20
# Backoff between retries: base * 2**attempt seconds, capped, times a jitter factor in [0.5, 1].
DEFAULT_BACKOFF_BASE_S = 0.5
DEFAULT_BACKOFF_CAP_S = 30.0
# An endpoint failing this many requests in a row leaves the rotation for DEFAULT_COOLDOWN_S seconds.
DEFAULT_FAIL_THRESHOLD = 3
DEFAULT_COOLDOWN_S = 30.0
# PNG is lossless (the server sees the pixels the local scorer sees); level 1 is ~5x faster than the
# default level 6 for ~20% more bytes, and the encoder, not the network, is the bottleneck on a LAN.
PNG_COMPRESS_LEVEL = 1
DEFAULT_JPEG_QUALITY = 95
# How much of a server's error text is quoted back.
MAX_QUOTE_CHARS = 300


def _check_image(image: Any) -> Any:
    """The frame itself when it is an [H,W,3] uint8 array or a PIL image; ConfigError otherwise."""
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ConfigError(f"a frame must be an [H,W,3] uint8 RGB array, got shape {image.shape}"
                              f" dtype {image.dtype}")
        return image
    from PIL import Image

    if not isinstance(image, Image.Image):
        raise ConfigError(f"a frame must be a numpy array or a PIL image, got {type(image).__name__}")
    return image


def encode_image(image: Any, fmt: str = "png", jpeg_quality: int = DEFAULT_JPEG_QUALITY) -> str:
    """A frame ([H,W,3] uint8 RGB array or PIL image) as a `data:image/...;base64,` URL."""
    from PIL import Image

    image = _check_image(image)
    pil = Image.fromarray(image) if isinstance(image, np.ndarray) else image.convert("RGB")
    buf = io.BytesIO()
    if fmt == "png":
        pil.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    elif fmt == "jpeg":
        pil.save(buf, format="JPEG", quality=jpeg_quality)
    else:
        raise ConfigError(f"image_format must be 'png' or 'jpeg', got {fmt!r}")
    return f"data:image/{fmt};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def parse_spec(spec: str) -> tuple[str, list[str]]:
    """"openai:MODEL@URL[,URL...]" -> (MODEL, [URL, ...]) with trailing slashes removed."""
    example = "openai:llava-hf/llava-onevision-qwen2-7b-ov-hf@http://gpu1:8000/v1,http://gpu2:8000/v1"
    if not isinstance(spec, str) or not spec.startswith(REMOTE_PREFIX) or "@" not in spec:
        raise ConfigError(f"remote LVLM spec {spec!r} must look like {example}")
    model, urls_part = spec[len(REMOTE_PREFIX):].split("@", 1)
    urls = [u.strip().rstrip("/") for u in urls_part.split(",") if u.strip()]
    if not model.strip() or not urls:
        raise ConfigError(f"remote LVLM spec {spec!r} needs a model name and at least one URL, e.g. {example}")
    bad = [u for u in urls if not re.match(r"^https?://[^/\s]+", u)]
    if bad:
        raise ConfigError(f"remote LVLM URL(s) {bad} in {spec!r} must start with http:// or https://")
    return model.strip(), urls


class _GaveUpError(ModelError):
    """A request that kept failing with retryable errors: the server may come back, the run can resume."""


class _Aborted(Exception):
    """Another request of the same call failed for good: stop waiting and trying."""


@dataclass
class _Endpoint:
    url: str
    client: Any = None
    consecutive_failures: int = 0
    down_until: float = 0.0  # time.monotonic() before which the endpoint is out of rotation
    requests: int = 0
    failures: int = 0
    times_taken_out: int = 0


class _Rotation:
    """Round-robin over endpoints, skipping those cooling down after repeated failures."""

    def __init__(self, endpoints: list[_Endpoint], fail_threshold: int, cooldown_s: float):
        self.endpoints = endpoints
        self.fail_threshold = fail_threshold
        self.cooldown_s = cooldown_s
        self._next = itertools.count()
        self._lock = threading.Lock()

    def pick(self) -> _Endpoint:
        """The next endpoint in rotation; when all are cooling down, the one that recovers first
        (the per-request backoff then paces the attempts)."""
        with self._lock:
            now = time.monotonic()
            n = len(self.endpoints)
            start = next(self._next)
            for k in range(n):
                ep = self.endpoints[(start + k) % n]
                if ep.down_until <= now:
                    ep.requests += 1
                    return ep
            ep = min(self.endpoints, key=lambda e: e.down_until)
            ep.requests += 1
            return ep

    def report(self, ep: _Endpoint, ok: bool) -> None:
        with self._lock:
            if ok:
                ep.consecutive_failures = 0
                ep.down_until = 0.0
                return
            ep.failures += 1
            ep.consecutive_failures += 1
            if ep.consecutive_failures >= self.fail_threshold:
                # Still failing after a cool-down trial -> straight back out.
                if ep.down_until <= time.monotonic():
                    ep.times_taken_out += 1
                    log.warning("LVLM endpoint %s failed %d times in a row; out of rotation for %.1f s",
                                ep.url, ep.consecutive_failures, self.cooldown_s)
                ep.down_until = time.monotonic() + self.cooldown_s


@dataclass
class _Frame:
    """One frame's image, encoded on first use by whichever worker needs it first."""

    image: Any
    url: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class RemoteScorer:
    """P(yes) for (frame, question) pairs from one model served at one or more base URLs.

    Build with `from_spec("openai:MODEL@URL[,URL...]")`. `model_id` is "openai:MODEL" plus what the
    servers say about the model and the answer spellings counted (asked once, on first use). `stats`
    counts requests, retries and the answers a missing spelling could move by more than 1e-3
    ("bounded"; "bounded_both": neither answer returned). Thread-safe; `close()` releases the workers.
    """

    def __init__(self, model: str, urls: Sequence[str], *, max_in_flight: int = 16, timeout_s: float = 60.0,
                 max_retries: int = 5, mode: str = "chat", top_logprobs: int = DEFAULT_TOP_LOGPROBS,
                 backoff_base_s: float = DEFAULT_BACKOFF_BASE_S, backoff_cap_s: float = DEFAULT_BACKOFF_CAP_S,
                 fail_threshold: int = DEFAULT_FAIL_THRESHOLD, cooldown_s: float = DEFAULT_COOLDOWN_S,
                 image_format: str = "png", api_key: str | None = None, answer_spellings: str = "all",
                 tokenizer: str | None = None, yes_ids: Sequence[int] | None = None,
                 no_ids: Sequence[int] | None = None, sglang_prompt: str | None = None):
        """model: the served model name; urls: base URLs (".../v1" for chat; SGLang's root or ".../v1"
        for sglang); max_in_flight: requests outstanding at once over all URLs; timeout_s: per request;
        max_retries: extra attempts per request; backoff_*: retry delay base and cap, seconds;
        answer_spellings: "all" or "exact" (zeal.scorers.answers). tokenizer: a local folder or cached
        hub id of the served model's tokenizer (else the server's root or the served name is tried).
        SGLang mode needs the yes/no token ids (yes_ids/no_ids, or `tokenizer`) and the prompt with the
        image placeholder: `sglang_prompt`, a format string with "{text}", or else the chat template of
        `tokenizer`'s processor."""
        if mode not in MODES:
            raise ConfigError(f"remote scorer mode must be one of {MODES}, got {mode!r}")
        checks = {"max_in_flight": (max_in_flight, max_in_flight >= 1), "timeout_s": (timeout_s, timeout_s > 0),
                  "max_retries": (max_retries, max_retries >= 0), "top_logprobs": (top_logprobs, top_logprobs >= 1),
                  "backoff_base_s": (backoff_base_s, backoff_base_s >= 0),
                  "backoff_cap_s": (backoff_cap_s, backoff_cap_s >= 0),
                  "fail_threshold": (fail_threshold, fail_threshold >= 1), "cooldown_s": (cooldown_s, cooldown_s >= 0)}
        bad = [f"{k}={v}" for k, (v, ok) in checks.items() if not ok]
        if bad:
            raise ConfigError(f"remote scorer setting(s) out of range: {', '.join(bad)}")
        if image_format not in ("png", "jpeg"):
            raise ConfigError(f"image_format must be 'png' or 'jpeg', got {image_format!r}")
        if not urls:
            raise ConfigError("remote scorer needs at least one base URL")
        self.model = model
        self.mode = mode
        self.max_in_flight = max_in_flight
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.top_logprobs = top_logprobs
        self.backoff = Backoff(backoff_base_s, backoff_cap_s)
        self.image_format = image_format
        self.answer_spellings = check_mode(answer_spellings)
        self._api_key = api_key or os.environ.get("ZEAL_LVLM_API_KEY") or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self._rotation = _Rotation([_Endpoint(u.rstrip("/")) for u in urls], fail_threshold, cooldown_s)
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._identity_lock = threading.Lock()
        self._identity: tuple[str, AnswerSpellings] | None = None
        self.stats: dict[str, int] = {"requests": 0, "retries": 0, "bounded": 0, "bounded_both": 0}
        self._tokenizer_name = tokenizer
        self._sglang_prompt = sglang_prompt
        self._processor = None
        self._given_ids = (list(yes_ids or []), list(no_ids or []))
        if mode == "sglang":
            if not (yes_ids and no_ids) and tokenizer is None:
                raise ConfigError("SGLang mode needs the yes/no token ids: pass yes_ids= and no_ids=, or tokenizer="
                                  " (the model's Hugging Face name or local folder)")
            if sglang_prompt is None and tokenizer is None:
                raise ConfigError("SGLang mode needs the prompt layout: pass sglang_prompt (a format string"
                                  " with {text} and the model's image placeholder) or tokenizer=")

    # --- construction ----------------------------------------------------------------------
    @classmethod
    def from_spec(cls, spec: str, **kwargs: Any) -> "RemoteScorer":
        """From "openai:MODEL@URL[,URL...]"; kwargs as in the constructor (max_in_flight, timeout_s,
        max_retries, mode, answer_spellings, ...)."""
        model, urls = parse_spec(spec)
        return cls(model, urls, **kwargs)

    @property
    def urls(self) -> list[str]:
        return [e.url for e in self._rotation.endpoints]

    @property
    def model_id(self) -> str:
        """"openai:MODEL|{what the servers say}|answers=...": the score-cache key of this model."""
        return self._identify()[0]

    @property
    def spellings(self) -> AnswerSpellings:
        """The answer spellings counted for the served model."""
        return self._identify()[1]

    def endpoint_stats(self) -> list[dict[str, Any]]:
        """Per endpoint: url, requests sent, failures, times taken out of rotation, whether out now."""
        now = time.monotonic()
        return [{"url": e.url, "requests": e.requests, "failures": e.failures, "times_taken_out": e.times_taken_out,
                 "out_of_rotation": e.down_until > now} for e in self._rotation.endpoints]

    # --- identity ----------------------------------------------------------------------------
    def _identify(self) -> tuple[str, AnswerSpellings]:
        """Ask every URL what it serves under the name and resolve the spellings, once. A URL that does
        not answer is left out (it is still tried for scores); the ones that answer must agree."""
        with self._identity_lock:
            if self._identity is None:
                import httpx

                headers = {"Authorization": f"Bearer {self._api_key}"}
                with httpx.Client(timeout=self.timeout_s, headers=headers) as client:
                    calls = ServerCalls(client, self.max_retries, self.backoff)
                    described: dict[str, dict[str, Any]] = {}
                    failures: list[str] = []
                    for url in self.urls:
                        try:
                            described[url] = describe_model(calls, _v1(url), self.model)
                        except _Unreachable as err:
                            failures.append(str(err))
                    if not described:
                        raise ModelError(f"no LVLM server of {self.model!r} answered ({'; '.join(failures)}); check"
                                         " that they are up (a run confirms the served model before reusing any"
                                         " cached score)")
                    if failures:
                        log.warning("LVLM server(s) did not answer when asked what they serve: %s", "; ".join(failures))
                    if len({json.dumps(d, sort_keys=True) for d in described.values()}) > 1:
                        raise ModelError(f"the servers behind {self.model!r} serve different models: {described};"
                                         " give URLs that serve the same model")
                    url, info = next(iter(described.items()))
                    spellings = self._resolve_spellings(calls, url, info)
                if not info:
                    log.warning("the LVLM server(s) %s say nothing about %r beyond its name (no root or"
                                " max_model_len in /models): cached scores are trusted by the name alone; if"
                                " another model is served under this name, clear the cache (--cache-dir)",
                                ", ".join(described), self.model)
                parts = [REMOTE_PREFIX + self.model]
                if info:
                    parts.append(json.dumps(info, sort_keys=True))
                parts.append(f"answers={spellings.describe()}")
                self._identity = ("|".join(parts), spellings)
            return self._identity

    def _resolve_spellings(self, calls: ServerCalls, url: str, info: dict[str, Any]) -> AnswerSpellings:
        yes_ids, no_ids = self._given_ids
        if yes_ids and no_ids:
            texts = tuple((f"#{i}", side, i) for side, ids in (("yes", yes_ids), ("no", no_ids)) for i in ids)
            return AnswerSpellings(tuple(sorted(yes_ids)), tuple(sorted(no_ids)), texts, True,
                                   self.answer_spellings, "given ids")
        if self.mode == "sglang":
            processor = self._load_processor()
            folder = self._tokenizer_name
            return resolve_answer_ids(getattr(processor, "tokenizer", processor), self.model, self.answer_spellings,
                                      model_type_of(_as_path(folder)), source="tokenizer")
        return resolve_spellings(calls, _v1(url), self.model, self.answer_spellings,
                                 [self._tokenizer_name, info.get("root"), self.model])

    def _load_processor(self) -> Any:
        """The processor (or, for a text-only folder, the tokenizer) named by `tokenizer=`, loaded once."""
        with self._lock:
            if self._processor is None:
                from transformers import AutoProcessor, AutoTokenizer

                name = str(self._tokenizer_name)
                try:
                    try:
                        self._processor = AutoProcessor.from_pretrained(name)
                    except (ValueError, KeyError):  # no processor config: a tokenizer's template may do
                        self._processor = AutoTokenizer.from_pretrained(name)
                except ModelError:
                    raise
                except Exception as err:  # noqa: BLE001 - many loader failures, one message
                    raise ModelError(f"cannot load the tokenizer/processor {name!r} for SGLang mode ({err}); pass"
                                     " a local folder, or yes_ids=/no_ids= and sglang_prompt=") from err
            return self._processor

    def close(self) -> None:
        """Stop the worker threads (a later p_yes starts new ones)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "RemoteScorer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- scoring -----------------------------------------------------------------------------
    def p_yes(self, images: Sequence[Any], texts: Sequence[str]) -> np.ndarray:
        """P(yes) of every (frame, text) pair -> [len(images), len(texts)] float64 in [0, 1].

        images: [H,W,3] uint8 RGB arrays or PIL images; texts: full user texts (queries.prompt_text).
        Raises ModelError when a request still fails after max_retries retries.
        """
        all_texts = list(texts)
        texts = list(dict.fromkeys(all_texts))  # a repeated question is asked once
        frames = [_Frame(_check_image(im)) for im in images]
        out = np.full((len(frames), len(texts)), np.nan, dtype=np.float64)
        if not frames or not texts:
            return np.zeros((len(frames), len(all_texts)), dtype=np.float64)
        spellings = self.spellings  # the served model is confirmed before its first score
        pool = self._get_pool()
        abort = threading.Event()
        bounded_before = self.stats["bounded"]
        # Frame-major submission: the pool's queue is FIFO, so one frame's questions go out together.
        futures: dict[Future, tuple[int, int]] = {}
        try:
            for i, frame in enumerate(frames):
                for j, text in enumerate(texts):
                    futures[pool.submit(self._score_with_retries, frame, text, spellings, abort)] = (i, j)
            pending = set(futures)
            first_error: BaseException | None = None
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for fut in done:
                    if fut.cancelled():
                        continue
                    err = fut.exception()
                    if err is None:
                        i, j = futures[fut]
                        out[i, j] = fut.result()
                    elif first_error is None and not isinstance(err, _Aborted):
                        first_error = err
                if first_error is not None and not abort.is_set():
                    abort.set()  # workers stop starting attempts; queued jobs are cancelled
                    for fut in pending:
                        fut.cancel()
        except BaseException:
            abort.set()
            for fut in futures:
                fut.cancel()
            raise
        if first_error is not None:
            failed = np.isnan(out)
            n_frames = int(failed.any(axis=1).sum())
            msg = (f"{int(failed.sum())} of {out.size} LVLM requests ({n_frames} of {len(frames)} frames x "
                   f"{len(texts)} questions) were not scored: {first_error}")
            if isinstance(first_error, _GaveUpError):
                msg += (". Frames scored in earlier batches are kept in the score cache: once the server"
                        " answers again, run the same command again to resume.")
            raise ModelError(msg) from first_error
        bounded = self.stats["bounded"] - bounded_before
        if bounded:
            log.warning("%d of %d answers had answer spellings outside the server's top %d log-probs that could"
                        " move P(yes) by more than 1e-3 (counted in stats['bounded']); raise top_logprobs"
                        " (vLLM: --max-logprobs) or use the sglang mode", bounded, out.size, self.top_logprobs)
        column = {text: j for j, text in enumerate(texts)}
        return out[:, [column[t] for t in all_texts]]

    def _get_pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.max_in_flight, thread_name_prefix="zeal-lvlm")
            return self._pool

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.stats[key] = self.stats.get(key, 0) + n

    def _score_with_retries(self, frame: _Frame, text: str, spellings: AnswerSpellings,
                            abort: threading.Event) -> float:
        with frame.lock:
            if frame.url is None:
                frame.url = encode_image(frame.image, self.image_format)

        def attempt() -> float:
            if abort.is_set():
                raise _Aborted()
            ep = self._rotation.pick()
            self._count("requests")
            try:
                value = self._request(ep, frame.url, text, spellings)
            except Retryable as err:
                self._rotation.report(ep, ok=False)
                log.info("LVLM request to %s failed: %s", ep.url, err)
                raise
            self._rotation.report(ep, ok=True)
            return value

        def pause(delay_s: float) -> None:
            # Waiting on the abort event, not sleeping: a failure elsewhere ends the wait at once.
            if abort.wait(delay_s):
                raise _Aborted()

        try:
            return with_retries(attempt, self.max_retries, self.backoff, wait=pause,
                                on_retry=lambda n, err, delay: self._count("retries"))
        except GaveUp as gave_up:
            raise _GaveUpError(f"gave up after {self.max_retries} retries; last error: {gave_up.last}") from None

    def _request(self, ep: _Endpoint, image_url: str, text: str, spellings: AnswerSpellings) -> float:
        if self.mode == "chat":
            return self._request_chat(ep, image_url, text, spellings)
        return self._request_sglang(ep, image_url, text, spellings)

    # --- OpenAI chat completions -----------------------------------------------------------------
    def _chat_client(self, ep: _Endpoint):
        with self._lock:
            if ep.client is None:
                from openai import OpenAI

                # The client's own retries are off: ours rotate endpoints and count failures.
                ep.client = OpenAI(base_url=ep.url, api_key=self._api_key, timeout=self.timeout_s, max_retries=0)
            return ep.client

    def _request_chat(self, ep: _Endpoint, image_url: str, text: str, spellings: AnswerSpellings) -> float:
        import openai

        client = self._chat_client(ep)
        # the OpenAI schema of chat_messages(text): the frame first, then the text
        messages = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": image_url}},
                                                 {"type": "text", "text": text}]}]
        try:
            resp = client.chat.completions.create(model=self.model, messages=messages, max_tokens=1, temperature=0,
                                                  logprobs=True, top_logprobs=self.top_logprobs)
        except (openai.APITimeoutError, openai.APIConnectionError) as err:  # timeout is a connection error
            raise Retryable(f"{ep.url}: {type(err).__name__}: {err}") from err
        except openai.APIStatusError as err:
            status = err.status_code
            if is_retryable_status(status):
                raise Retryable(f"{ep.url}: HTTP {status}", retry_after_s(err.response.headers)) from err
            raise ModelError(f"LVLM server {ep.url} rejected the request (HTTP {status}): {err.message}."
                             " Check the model name and that the server allows top_logprobs="
                             f"{self.top_logprobs} (vLLM: --max-logprobs {self.top_logprobs}).") from err
        try:
            first = resp.choices[0].logprobs.content[0]
            top = [(t.token, float(t.logprob)) for t in first.top_logprobs]
            if not any(t == first.token for t, _ in top):
                top.append((first.token, float(first.logprob)))
        except (AttributeError, IndexError, TypeError) as err:
            raise ModelError(f"LVLM server {ep.url} answered without log-probs for the first token; it must"
                             " support logprobs/top_logprobs in chat completions (vLLM does)") from err
        answer = read_top_logprobs(top, spellings)
        if answer.bounded:
            self._count("bounded")
        if answer.absent == 2:
            self._count("bounded_both")
        return answer.p_yes

    # --- SGLang native /generate -----------------------------------------------------------------
    def _sglang_client(self, ep: _Endpoint):
        with self._lock:
            if ep.client is None:
                import httpx

                ep.client = httpx.Client(base_url=api_root(ep.url), timeout=self.timeout_s,
                                         headers={"Authorization": f"Bearer {self._api_key}"})
            return ep.client

    def _render_sglang_prompt(self, text: str) -> str:
        if self._sglang_prompt is not None:
            return self._sglang_prompt.format(text=text)
        return self._load_processor().apply_chat_template(chat_messages(text), add_generation_prompt=True,
                                                          tokenize=False)

    def _request_sglang(self, ep: _Endpoint, image_url: str, text: str, spellings: AnswerSpellings) -> float:
        import httpx

        client = self._sglang_client(ep)
        payload = {"text": self._render_sglang_prompt(text), "image_data": image_url,
                   "sampling_params": {"max_new_tokens": 1, "temperature": 0},
                   "return_logprob": True, "logprob_start_len": -1,
                   "token_ids_logprob": [*spellings.yes, *spellings.no]}
        try:
            resp = client.post("/generate", json=payload)
        except httpx.TransportError as err:  # timeouts, refused and dropped connections
            raise Retryable(f"{ep.url}: {type(err).__name__}: {err}") from err
        status = resp.status_code
        if is_retryable_status(status):
            raise Retryable(f"{ep.url}: HTTP {status}", retry_after_s(resp.headers))
        if status >= 400:
            raise ModelError(f"SGLang server {ep.url} rejected the request (HTTP {status}):"
                             f" {resp.text[:MAX_QUOTE_CHARS]}")
        try:
            step = resp.json()["meta_info"]["output_token_ids_logprobs"][0]
            logprobs = {int(entry[1]): float(entry[0]) for entry in step}
        except (KeyError, IndexError, TypeError, ValueError) as err:
            raise ModelError(f"SGLang server {ep.url} answered without meta_info.output_token_ids_logprobs;"
                             " it must support return_logprob with token_ids_logprob") from err
        return p_yes_from_id_logprobs(logprobs, spellings)


def _v1(url: str) -> str:
    """The OpenAI base (".../v1") of a server given by its root or its base."""
    return url if url.endswith("/v1") else f"{url}/v1"


def _as_path(name: str | None) -> Path | None:
    return Path(name).expanduser() if name else None
