"""Being polite to a server: evenly spaced requests, a concurrency cap, Retry-After, backoff.

One limiter for both HTTP clients, the API executor (one per host) and the LLM provider.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time


class HostLimiter:
    """Evenly spaced request slots per host, so no 1 s window exceeds the host's rate.

    asyncio's lock and semaphore belong to one event loop, and each batch runs in its own
    ``asyncio.run``: they are made afresh for each loop, while the pacing (``next_slot``)
    carries over from one loop to the next.
    """

    def __init__(self, rate_per_second: float, max_concurrency: int):
        self.interval = 1.0 / rate_per_second  # 0 for an unlimited (replay) host
        self.max_concurrency = max_concurrency
        self.next_slot = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None

    def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._lock, self._slots, self._loop = asyncio.Lock(), asyncio.Semaphore(self.max_concurrency), loop

    @property
    def slots(self) -> asyncio.Semaphore:
        """Hold one while a request is in flight: at most ``max_concurrency`` at once."""
        self._bind()
        return self._slots

    async def wait_turn(self) -> None:
        self._bind()
        async with self._lock:
            now = time.monotonic()
            start = max(now, self.next_slot)
            self.next_slot = start + self.interval
        if start > now:
            await asyncio.sleep(start - now)

    def push_back(self, seconds: float) -> None:
        """The server asked us to wait (Retry-After): no one on this host goes before then."""
        self.next_slot = max(self.next_slot, time.monotonic() + seconds)


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date); None without one."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    parsed = email.utils.parsedate_to_datetime(value)
    return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with jitter (half to all of it) before retry number ``attempt + 1``."""
    return min(cap, base * 2**attempt) * (0.5 + random.random() / 2)
