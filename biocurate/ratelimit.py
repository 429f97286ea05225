"""Being polite to a server: evenly spaced requests, a concurrency cap, Retry-After, backoff.

One limiter for both HTTP clients, the API executor (one per host) and the LLM provider.

A host's limiter lives as long as the process (``shared_limiter``): batches, stages and runs
in one process share its pacing, so no batch starts with a burst. Its rate adapts (AIMD): a
429, or a 503 with Retry-After, halves it (``decrease``) and holds every request to the host
until the Retry-After has passed; each second of successes gives back ``recovery`` of the
configured rate, which is never exceeded. Near the rate that drew the last 429 (above
``PROBE_FROM`` of it) the climb is ``PROBE_SLOWER`` times slower: the limit was just there.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import threading
import time
import weakref

PROBE_FROM = 0.85
PROBE_SLOWER = 5.0


class HostLimiter:
    """Evenly spaced request slots per host, so no 1 s window exceeds the host's rate.

    The pacing state is guarded by a thread lock (it is never held across an await), so one
    limiter paces every event loop and thread using it; each batch may run in its own
    ``asyncio.run``. The concurrency cap is a semaphore per event loop.
    """

    def __init__(
        self,
        rate_per_second: float,
        max_concurrency: int,
        *,
        decrease: float = 0.5,
        recovery: float = 0.05,
        min_fraction: float = 0.02,
    ):
        self.configured_rate = rate_per_second  # the ceiling; inf for an unlimited (replay) host
        self.rate = rate_per_second
        self.max_concurrency = max_concurrency
        self.decrease = decrease  # rate multiplier on a 429 (1.0: fixed rate)
        self.recovery = recovery  # fraction of the configured rate regained per second of successes
        self.min_rate = rate_per_second * min_fraction
        self.next_slot = 0.0
        self.blocked_until = 0.0  # Retry-After: nobody on this host goes before then
        self.last_decrease = float("-inf")
        self.last_change = 0.0
        self.ceiling = float("inf")  # the rate that drew the last 429, forgotten once passed
        self.throttled = 0  # 429s (and 503s with Retry-After) received
        self.decreases = 0  # times the rate was lowered
        self._state = threading.Lock()
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def interval(self) -> float:
        return 1.0 / self.rate  # 0 for an unlimited (replay) host

    @property
    def slots(self) -> asyncio.Semaphore:
        """Hold one while a request is in flight: at most ``max_concurrency`` at once (per event loop)."""
        loop = asyncio.get_running_loop()
        with self._state:
            if loop not in self._semaphores:
                self._semaphores[loop] = asyncio.Semaphore(self.max_concurrency)
            return self._semaphores[loop]

    async def wait_turn(self) -> float:
        """Wait for this host's next free slot; returns when the request may go (monotonic time)."""
        while True:
            with self._state:
                now = time.monotonic()
                due = max(self.next_slot, self.blocked_until)
                if now >= due:
                    # Keep the cadence when woken a little late; after an idle spell start afresh.
                    start = due if now - due < min(0.005, self.interval) else now
                    self.next_slot = start + self.interval
                    return now
            # Re-checked after the sleep: a Retry-After or a lower rate may have moved the slot.
            await asyncio.sleep(due - now)

    def push_back(self, seconds: float) -> None:
        """The server asked us to wait (Retry-After): no one on this host goes before then."""
        with self._state:
            self.blocked_until = max(self.blocked_until, time.monotonic() + seconds)

    def throttle(self, retry_after: float | None, sent_at: float) -> None:
        """A 429 (or a 503 with Retry-After) for a request sent at ``sent_at``: slow down.

        Only a request sent at the current rate lowers it again: the answers to requests that
        went out before the last decrease say nothing about the new rate.
        """
        if retry_after is not None:
            self.push_back(retry_after)
        with self._state:
            self.throttled += 1
            if sent_at < self.last_decrease or self.decrease >= 1.0:
                return
            now = time.monotonic()
            self.ceiling = self.rate
            self.rate = max(self.min_rate, self.rate * self.decrease)
            self.last_decrease = self.last_change = now
            self.decreases += 1
            # slots handed out at the old rate are re-spaced at the new one
            self.next_slot = max(now, self.blocked_until) + self.interval

    def succeeded(self) -> None:
        """An answer that was not a throttle: climb back toward the configured rate (additive)."""
        with self._state:
            now = time.monotonic()
            if self.rate < self.configured_rate:
                elapsed = min(now - self.last_change, 1.0)  # an idle spell is no evidence
                step = self.configured_rate * self.recovery * elapsed
                if self.rate >= PROBE_FROM * self.ceiling:
                    step /= PROBE_SLOWER
                self.rate = min(self.configured_rate, self.rate + step)
                if self.rate > self.ceiling:
                    self.ceiling = float("inf")
            self.last_change = now


class LimiterRegistry:
    """One limiter per key for the whole process, made on first use."""

    def __init__(self) -> None:
        self._limiters: dict[tuple, HostLimiter] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple, rate: float, max_concurrency: int, **adapt: float) -> HostLimiter:
        with self._lock:
            full = (*key, rate, max_concurrency, tuple(sorted(adapt.items())))
            if full not in self._limiters:
                self._limiters[full] = HostLimiter(rate, max_concurrency, **adapt)
            return self._limiters[full]

    def forget(self) -> None:
        """Drop every limiter (tests: loopback servers on reused ports are not the same server)."""
        with self._lock:
            self._limiters.clear()


LIMITERS = LimiterRegistry()


def shared_limiter(key: tuple, rate: float, max_concurrency: int, **adapt: float) -> HostLimiter:
    """The process's limiter for ``key`` (a host and where its requests really go) at these settings."""
    return LIMITERS.get(key, rate, max_concurrency, **adapt)


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date); None without one."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with jitter (half to all of it) before retry number ``attempt + 1``."""
    return min(cap, base * 2**attempt) * (0.5 + random.random() / 2)
