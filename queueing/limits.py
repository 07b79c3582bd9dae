"""The anonymous side's limits on `call.request`, counted across every server process.

A request is admitted only while each of its windows has room: at most N admissions per client
address (IPv6: per /64, what one subscriber is usually given) and per device in any
``QUEUE_CALL_REQUEST_WINDOW_S`` seconds. An elderly/accessibility claim takes a place in a window
of its own, per address; beyond it the call is still queued, as a normal one. The windows slide
(a log of admission times per key): a burst at a window's edge cannot double the rate.

Where they are counted: on the production profile in Redis, where one Lua script per request
checks and records all of the request's windows atomically, so the limit holds however many
daphne processes share the requests; on the embedded profile (one process) in this process's
memory. redis-py directly rather than Django's cache framework: a sliding window is a sorted set,
which the cache API cannot express, and its ``incr`` on Redis is not atomic with the key's
expiry (a key left without one would block an address for good).

The consumer awaits this before the request reaches the database (the Redis round trip runs on a
worker thread, not the database thread): a refused flood costs the database nothing. Open calls
per address and per device and the global cap are counted in the database, in the transaction
that stores the call (``services.call_enqueue``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass

import redis
from asgiref.sync import sync_to_async
from django.conf import settings

from .errors import RateLimited
from .models import Priority, PriorityClaim

log = logging.getLogger(__name__)

KEY_PREFIX = "videobank:limit:"


@dataclass(frozen=True)
class Window:
    key: str
    limit: int
    window_s: int
    name: str  # which limit, for the refusal


class MemoryWindows:
    """Sliding windows in this process (the embedded profile: one server process)."""

    SWEEP_EVERY = 1000  # takes between sweeps of keys whose windows have emptied

    def __init__(self) -> None:
        self._log: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._takes = 0

    def take(self, windows: list[Window]) -> tuple[Window, float] | None:
        """Record one admission in every window, or none: (the full window, seconds until it
        has room) when one is full."""
        now = time.monotonic()
        with self._lock:
            self._takes += 1
            if self._takes % self.SWEEP_EVERY == 0:
                self._sweep(now)
            for window in windows:
                entries = self._log.setdefault(window.key, deque())
                while entries and entries[0] <= now - window.window_s:
                    entries.popleft()
                if len(entries) >= window.limit:
                    return window, entries[0] + window.window_s - now
            for window in windows:
                self._log[window.key].append(now)
        return None

    def _sweep(self, now: float) -> None:
        longest = max(settings.QUEUE_CALL_REQUEST_WINDOW_S, settings.QUEUE_PRIORITY_CLAIM_WINDOW_S)
        for key in [k for k, v in self._log.items() if not v or v[-1] <= now - longest]:
            del self._log[key]

    def clear(self) -> None:
        with self._lock:
            self._log.clear()


# KEYS: the windows' keys; ARGV: limit and window (ms) per key, then a unique member. The time is
# Redis's own, so that servers with skewed clocks count alike.
_TAKE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 * i - 1])
  local window = tonumber(ARGV[2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= limit then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    return {i, tonumber(oldest[2]) + window - now}
  end
end
local member = ARGV[#ARGV]
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, tonumber(ARGV[2 * i]))
end
return {0, 0}
"""


class RedisWindows:
    """Sliding windows in Redis, shared by every server process (the production profile)."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.script = self.client.register_script(_TAKE_LUA)

    def take(self, windows: list[Window]) -> tuple[Window, float] | None:
        args: list = []
        for window in windows:
            args += [window.limit, window.window_s * 1000]
        args.append(uuid.uuid4().hex)
        try:
            index, wait_ms = self.script(keys=[w.key for w in windows], args=args)
        except redis.RedisError:
            # Redis unreachable: admit (the channel layer lives there too, so little else works;
            # the open-call limits and the global cap are still counted in the database).
            log.warning("call-request limits unavailable; admitting", exc_info=True)
            return None
        if index == 0:
            return None
        return windows[index - 1], wait_ms / 1000

    def clear(self) -> None:
        keys = list(self.client.scan_iter(match=KEY_PREFIX + "*", count=1000))
        if keys:
            self.client.delete(*keys)


_backend: tuple[str | None, MemoryWindows | RedisWindows] | None = None
_backend_lock = threading.Lock()


def windows() -> MemoryWindows | RedisWindows:
    """Redis when the profile has one (production), this process's memory otherwise."""
    global _backend
    url = getattr(settings, "REDIS_URL", None) or None
    with _backend_lock:
        if _backend is None or _backend[0] != url:
            _backend = (url, RedisWindows(url) if url else MemoryWindows())
        return _backend[1]


def limits_reset() -> None:
    """Forget every window (tests and benchmarks start from a clean slate)."""
    windows().clear()


def network_of(ip: str | None) -> str:
    """The client address a limit counts: IPv4 as is, IPv6 by its /64. Unknown (no address, as
    on a Unix socket without proxy headers) is one shared key: never unlimited."""
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return "unknown"
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def device_tag(device_id: str | None) -> str:
    """What the server keeps of a device id (a hash: the raw id is a bearer of the limits)."""
    if not device_id:
        return ""
    return hashlib.sha256(device_id.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Admission:
    """A call request let through, and the priority it will be queued with."""

    priority: int
    priority_claim: str
    device: str  # device_tag of the asking device, "" when unknown


def _per(window_s: int) -> tuple[str, str]:
    if window_s == 60:
        return "a minute", "每分钟"
    if window_s % 60 == 0:
        return f"in {window_s // 60} minutes", f"每 {window_s // 60} 分钟"
    return f"in {window_s} s", f"每 {window_s} 秒"


def _refusal(window: Window, wait_s: float) -> RateLimited:
    retry = max(1, math.ceil(wait_s))
    per_en, per_zh = _per(window.window_s)
    who_en, who_zh = (
        ("your network", "您所在的网络") if window.name == "ip_rate" else ("this device", "本设备")
    )
    return RateLimited(
        f"Too many calls from {who_en} (at most {window.limit} {per_en}). Please try again in "
        f"{retry} s.",
        f"{who_zh}呼叫过于频繁（{per_zh}最多 {window.limit} 次），请 {retry} 秒后再试。",
        limit=window.name,
        retry_after_s=retry,
    )


def call_request_admit(
    *, ip: str | None, device_id: str | None, claims_priority: bool, ip_limited: bool = True
) -> Admission:
    """Let one `call.request` through the per-address and per-device windows, or refuse it in
    words (``RateLimited``, with when to try again); nothing is recorded for a refused one.
    ``ip_limited`` False: the device proved who it is (kiosk credential, app claim), so only its
    own window holds (a branch's kiosks share one address)."""
    backend = windows()
    network = network_of(ip)
    device = device_tag(device_id)
    span = settings.QUEUE_CALL_REQUEST_WINDOW_S
    rules = []
    if ip_limited:
        rules.append(
            Window(
                f"{KEY_PREFIX}ip:{network}", settings.QUEUE_CALL_REQUESTS_PER_IP, span, "ip_rate"
            )
        )
    if device:
        rules.append(
            Window(
                f"{KEY_PREFIX}device:{device}",
                settings.QUEUE_CALL_REQUESTS_PER_DEVICE,
                span,
                "device_rate",
            )
        )
    rules = [rule for rule in rules if rule.limit > 0]
    if rules:
        full = backend.take(rules)
        if full is not None:
            raise _refusal(*full)
    if not claims_priority:
        return Admission(Priority.NORMAL, PriorityClaim.NONE, device)
    claims = Window(
        f"{KEY_PREFIX}claim:{network}",
        settings.QUEUE_PRIORITY_CLAIMS_PER_IP,
        settings.QUEUE_PRIORITY_CLAIM_WINDOW_S,
        "ip_claims",
    )
    if claims.limit > 0 and backend.take([claims]) is not None:
        return Admission(Priority.NORMAL, PriorityClaim.OVER_LIMIT, device)
    return Admission(Priority.ELDERLY, PriorityClaim.CLAIMED, device)


async def call_request_admit_async(
    *, ip: str | None, device_id: str | None, claims_priority: bool, ip_limited: bool = True
) -> Admission:
    """The same, from a consumer: on a worker thread (a Redis round trip), not the event loop
    and not the database thread."""
    return await sync_to_async(call_request_admit, thread_sensitive=False)(
        ip=ip, device_id=device_id, claims_priority=claims_priority, ip_limited=ip_limited
    )
