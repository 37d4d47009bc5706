"""One delivery attempt's outcome, the HTTP post every HTTP channel makes, and the retry schedule."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

# Bounded so that an unreachable channel holds a delivery job for seconds, never minutes: each phase
# has its limit, and the whole request its deadline (a receiver trickling bytes resets no clock).
HTTP_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
HTTP_DEADLINE_SECONDS = 15.0
# Attempts in all (the first and its retries); with the delays below the last retry comes about 2.5 h after
# the first attempt, long enough to ride out a receiver's deploy or a vendor's rate limit.
MAX_ATTEMPTS = 10
FIRST_RETRY_DELAY = timedelta(seconds=5)
LONGEST_RETRY_DELAY = timedelta(hours=1)
# Enough of a receiver's answer to say why it refused, not a whole error page.
ERROR_TEXT_LIMIT = 300

# A receiver's verdict on a response that arrived: None when accepted, else (why, worth retrying).
ResponseCheck = Callable[[httpx.Response], "tuple[str, bool] | None"]


@dataclass(frozen=True)
class Attempt:
    """One try at delivering a notification to a channel: for the alert's delivery log."""

    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: float
    at: datetime
    # False when trying again cannot help (a 4xx, a wrong signature or key): the job stops retrying.
    retryable: bool = True
    # How long the receiver asked us to wait (its Retry-After), for next_retry_delay.
    retry_after_seconds: float | None = None

    def as_document(self) -> dict[str, Any]:
        """The attempt as a stored document."""
        return asdict(self)


def next_retry_delay(
    attempt: int, *, retry_after_seconds: float | None = None, rng: random.Random | None = None
) -> timedelta | None:
    """How long to wait after the ``attempt``-th failed try (1 for the first), or None when it was the last.

    Exponential backoff (5 s, 10 s, 20 s, ... at most 1 h) with equal jitter: the delay lies between half
    and all of that step, so retries of many deliveries that failed together spread out. A receiver's
    Retry-After (``attempt.retry_after_seconds``) lengthens the wait, up to the same hour.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    if attempt >= MAX_ATTEMPTS:
        return None
    step = min(FIRST_RETRY_DELAY * 2 ** (attempt - 1), LONGEST_RETRY_DELAY)
    delay = step * (rng or random).uniform(0.5, 1.0)
    if retry_after_seconds is not None:
        delay = max(delay, min(timedelta(seconds=retry_after_seconds), LONGEST_RETRY_DELAY))
    return delay


def retry_after(response: httpx.Response) -> float | None:
    """The seconds a Retry-After header asks for (given as seconds or as an HTTP date), if any."""
    value = response.headers.get("retry-after", "").strip()
    if value.isdigit():
        return float(value)
    try:
        until = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    until = until if until.tzinfo else until.replace(tzinfo=UTC)
    return max(0.0, (until - datetime.now(UTC)).total_seconds())


def failed(
    error: str,
    *,
    started: float,
    at: datetime,
    status_code: int | None = None,
    retryable: bool,
    retry_after_seconds: float | None = None,
) -> Attempt:
    """An attempt that did not deliver."""
    return Attempt(
        ok=False,
        status_code=status_code,
        error=error[:ERROR_TEXT_LIMIT],
        duration_ms=elapsed_ms(started),
        at=at,
        retryable=retryable,
        retry_after_seconds=retry_after_seconds,
    )


def elapsed_ms(started: float) -> float:
    """Milliseconds since a ``time.perf_counter()`` reading."""
    return round((time.perf_counter() - started) * 1000, 3)


def http_status_retryable(status: int) -> bool:
    """Whether a refusal may pass: the receiver's fault (5xx), a timeout or a rate limit."""
    return status >= 500 or status in (408, 425, 429)


async def post(
    http: httpx.AsyncClient,
    url: str,
    *,
    content: bytes,
    headers: dict[str, str],
    check: ResponseCheck | None = None,
) -> Attempt:
    """POST a body and tell how it went; network failures become a failed attempt, never an exception."""
    at, started = datetime.now(UTC), time.perf_counter()
    try:
        async with asyncio.timeout(HTTP_DEADLINE_SECONDS):
            response = await http.post(url, content=content, headers=headers, timeout=HTTP_TIMEOUT)
    except TimeoutError:
        return failed(f"no answer within {HTTP_DEADLINE_SECONDS:g} s", started=started, at=at, retryable=True)
    except (httpx.HTTPError, httpx.InvalidURL, OSError) as error:
        return failed(f"{type(error).__name__}: {error}".rstrip(": "), started=started, at=at, retryable=True)
    if not response.is_success:
        reason = f"HTTP {response.status_code}: {response.text.strip()}".rstrip(": ")
        return failed(
            reason,
            started=started,
            at=at,
            status_code=response.status_code,
            retryable=http_status_retryable(response.status_code),
            retry_after_seconds=retry_after(response),
        )
    verdict = check(response) if check else None
    if verdict is not None:
        reason, retryable = verdict
        return failed(reason, started=started, at=at, status_code=response.status_code, retryable=retryable)
    return Attempt(ok=True, status_code=response.status_code, error=None, duration_ms=elapsed_ms(started), at=at)


def json_body(payload: dict[str, Any]) -> bytes:
    """A payload as compact UTF-8 JSON (Chinese as itself, not escaped)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def vendor_code_check(field: str, *, rate_limited: frozenset[int], message_field: str) -> ResponseCheck:
    """A check of robot APIs that answer 200 with ``{field: 0}`` on success and an error code otherwise."""

    def check(response: httpx.Response) -> tuple[str, bool] | None:
        try:
            body = response.json()
        except ValueError:
            return f"unexpected answer: {response.text[:100]}", True
        code = body.get(field) if isinstance(body, dict) else None
        if code == 0:
            return None
        message = body.get(message_field, "") if isinstance(body, dict) else ""
        return f"{field} {code}: {message}", code in rate_limited

    return check
