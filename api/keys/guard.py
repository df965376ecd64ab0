"""What the API knows about keys between database lookups: a short cache of checked keys,
the keys just found wrong, and failed keys counted per client address.

All in memory, per process, bounded (an attacker sending random keys from many addresses
fills a fixed number of slots, never the heap), thread-safe (sync routes run on a thread
pool). Times are ``time.monotonic()`` seconds, injectable for tests.

- A key checked within ``ttl`` seconds is trusted without a lookup; a revoked or expired key
  therefore works at most ``ttl`` seconds longer in a process that did not revoke it (the
  process that revokes forgets it at once).
- A key found unknown is remembered as wrong for ``ttl`` too, so one wrong key sent many
  times costs one lookup.
- An address that sent ``limit`` failed keys within ``window`` seconds gets ``ThrottledError``
  (429 with Retry-After) for keys not known good, before any connection is taken; keys that
  were good within ``KNOWN_SECONDS`` still pass, so a busy agent behind the same address as
  a guesser keeps working.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from api.keys.types import Principal

# Slots per table: enough for every real key and address, small enough to stay tiny.
MAX_ENTRIES = 10_000
# How long a key that was good stays exempt from an address's throttle.
KNOWN_SECONDS = 600.0

V = TypeVar("V")


@dataclass(slots=True)
class _Window:
    started: float
    failures: int


class KeyGuard:
    """The cache of checked keys and the throttle of failed ones."""

    def __init__(
        self,
        *,
        ttl: float,
        limit: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.limit = limit
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._good: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._bad: OrderedDict[str, float] = OrderedDict()
        self._failures: OrderedDict[str, _Window] = OrderedDict()

    def cached(self, digest: str, *, wall_now: float) -> Principal | None:
        """The key's holder if it was checked within the ttl and has not expired since."""
        with self._lock:
            hit = self._good.get(digest)
            if hit is None:
                return None
            principal, at = hit
            if self._clock() - at > self.ttl:
                return None
        expires = principal.expires_at
        if expires is not None and expires.timestamp() <= wall_now:
            return None
        return principal

    def known_bad(self, digest: str) -> bool:
        """Whether the key was found wrong within the ttl."""
        with self._lock:
            at = self._bad.get(digest)
            return at is not None and self._clock() - at <= self.ttl

    def retry_after(self, address: str, digest: str) -> int | None:
        """Seconds the address must wait before another unverified key, or None."""
        now = self._clock()
        with self._lock:
            hit = self._good.get(digest)
            if hit is not None and now - hit[1] <= KNOWN_SECONDS:
                return None
            window = self._failures.get(address)
            if window is None or now - window.started >= self.window:
                return None
            if window.failures < self.limit:
                return None
            return max(1, math.ceil(window.started + self.window - now))

    def good(self, digest: str, principal: Principal) -> None:
        """Remember a key that checked out."""
        with self._lock:
            self._bad.pop(digest, None)
            _put(self._good, digest, (principal, self._clock()))

    def failed(self, address: str, digest: str | None) -> None:
        """Count a failed key from `address` (and remember the key as wrong)."""
        now = self._clock()
        with self._lock:
            if digest is not None:
                self._good.pop(digest, None)
                _put(self._bad, digest, now)
            window = self._failures.get(address)
            if window is None or now - window.started >= self.window:
                window = _Window(now, 0)
            window.failures += 1
            _put(self._failures, address, window)

    def forget(self, key_id: int) -> None:
        """Drop a key from the cache (it was just revoked here)."""
        with self._lock:
            for digest in [d for d, (p, _) in self._good.items() if p.key_id == key_id]:
                del self._good[digest]


def _put(table: OrderedDict[str, V], key: str, value: V) -> None:
    table[key] = value
    table.move_to_end(key)
    while len(table) > MAX_ENTRIES:
        table.popitem(last=False)
