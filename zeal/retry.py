"""Retries of network calls, one policy for every client (the LVLM servers, the query-writing LLM):
which failures are worth another attempt, how long to wait (capped exponential backoff with jitter,
at least the server's Retry-After within the cap), and the loop that applies it.

The loop knows nothing about HTTP: an attempt raises `Retryable` for a failure another attempt may not
meet, any other exception passes straight through, and `GaveUp` ends the loop after `max_retries`.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

T = TypeVar("T")

# HTTP statuses worth retrying: request timeout, conflict, rate limit; every 5xx is retried too.
RETRYABLE_STATUS = frozenset({408, 409, 429})
SERVER_ERROR_MIN = 500
# The jittered delay lies in [JITTER_LOW, 1] times the exponential one, so that many clients that
# failed together do not retry in lockstep.
JITTER_LOW = 0.5


def is_retryable_status(status: int | None) -> bool:
    """True for a timeout/conflict/rate-limit status or any 5xx; None (no answer at all) is retryable."""
    return status is None or status in RETRYABLE_STATUS or status >= SERVER_ERROR_MIN


def retry_after_s(headers: Any) -> float | None:
    """The numeric Retry-After header in seconds (>= 0), or None when absent or not a number."""
    try:
        value = headers.get("retry-after") if headers is not None else None
        return max(0.0, float(value)) if value is not None else None
    except (AttributeError, TypeError, ValueError):
        return None


class Retryable(Exception):
    """A failure another attempt may not meet (timeout, dropped connection, 429, 5xx)."""

    def __init__(self, message: str, retry_after_s: float | None = None):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class GaveUp(Exception):
    """Every attempt failed with a Retryable error; `last` is the last one, `attempts` their number."""

    def __init__(self, last: Retryable, attempts: int):
        super().__init__(f"gave up after {attempts} attempt(s); last error: {last}")
        self.last = last
        self.attempts = attempts


@dataclass(frozen=True)
class Backoff:
    """Delay before retry number `attempt` (0-based): min(cap_s, base_s * 2**attempt) seconds, times a
    random factor in [0.5, 1]; a server's Retry-After raises it, never above cap_s."""

    base_s: float = 0.5
    cap_s: float = 30.0

    def delay(self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None) -> float:
        rng = rng or random
        delay = min(self.cap_s, self.base_s * (2.0 ** attempt)) * (JITTER_LOW + (1 - JITTER_LOW) * rng.random())
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.cap_s))
        return delay


def with_retries(attempt: Callable[[], T], max_retries: int, backoff: Backoff, *,
                 wait: Callable[[float], None] = time.sleep,
                 on_retry: Callable[[int, Retryable, float], None] | None = None) -> T:
    """Call `attempt()` until it returns, retrying a `Retryable` failure up to max_retries times.

    wait(seconds) sleeps between attempts (a caller may pass one that raises to abort);
    on_retry(retry_number, error, delay_s) is told before each wait. Raises GaveUp after the last try.
    """
    failures = 0
    while True:
        try:
            return attempt()
        except Retryable as error:
            failures += 1
            if failures > max_retries:
                raise GaveUp(error, failures) from error
            delay = backoff.delay(failures - 1, error.retry_after_s)
            if on_retry is not None:
                on_retry(failures, error, delay)
            wait(delay)
