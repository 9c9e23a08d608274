"""A vendor account's request budget kept in Redis, so every worker and every run of the account draws from one.

The in-process `RequestBudget` paces one process; two workers each pacing to the whole of HubSpot's per-account
limit send twice the limit and bounce off 429s together. `SharedRequestBudget` has the same methods and the same
rolling-window rule, but its state lives in Redis and each decision is one Lua script, run atomically by Redis
(EVALSHA through redis-py's `Script`), with Redis's own clock, so workers on machines whose clocks differ agree.

Keys, per vendor account (the `{…}` hash tag keeps both in one Redis Cluster slot, as a script needs):

- `<prefix>:{<vendor>:<account>}:sent`: a sorted set, one member per request granted, scored by the grant's
  time in microseconds, then by the time its answer came back: the vendor counted the request somewhere in
  between, so a request is counted until a window after its answer, however late it reached the vendor (a
  worker held up between its grant and the send would otherwise let another's request through too early, and
  the vendor, counting arrivals, would answer 429). Members older than the window are dropped as requests are
  granted.
- `<prefix>:{<vendor>:<account>}:policy`: a hash of what the vendor announced (`limit`, `window_us`) and until
  when every worker holds back after a 429 or an exhausted budget (`hold_until_us`). It expires a day after
  the last answer that fed it; until a vendor has announced its limit, the resource's configured one applies.

`<account>` is a fingerprint (a SHA-256 digest) of what identifies the account's budget: never a credential.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import redis
import redis.exceptions

from integration_assets.core.errors import Category, IntegrationError, Resource, Severity
from integration_assets.core.redact import redact

REDIS_URL_VARIABLE = "INTEGRATION_REDIS_URL"
DEFAULT_PREFIX = "integration_assets:rate_budget"
POLICY_TTL_MS = 24 * 3600 * 1000  # an announced limit outlives a run: the next run paces to it from its first call
MAX_HOLD_CHECK_S = 1.0  # after an exhausted budget, as the in-process budget does

# KEYS: sent, policy. ARGV: configured limit ('' when none), configured window (µs), margin, member.
# Returns 0 when the request may be sent (and counts it), else the microseconds to wait before asking again.
_ACQUIRE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local policy = redis.call('HMGET', KEYS[2], 'limit', 'window_us', 'hold_until_us')
local limit = tonumber(policy[1]) or tonumber(ARGV[1])
local window = tonumber(policy[2]) or tonumber(ARGV[2])
local hold_until = tonumber(policy[3]) or 0
if hold_until > now then
  return hold_until - now
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if limit then
  local allowed = math.max(1, math.floor(limit * tonumber(ARGV[3])))
  local count = redis.call('ZCARD', KEYS[1])
  if count >= allowed then
    -- the grant whose expiry brings the window under the allowance (not the oldest, if the limit shrank)
    local freeing = redis.call('ZRANGE', KEYS[1], count - allowed, count - allowed, 'WITHSCORES')
    return math.max(1, tonumber(freeing[2]) + window - now)
  end
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
return 0
"""

# KEYS: sent, policy. ARGV: limit and window (µs) announced ('' when not), remaining ('' when not announced),
# configured window (µs), most a hold on an exhausted budget lasts (µs), policy TTL (ms), the member of the
# request answered ('' when none).
_OBSERVE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
if ARGV[7] ~= '' then
  redis.call('ZADD', KEYS[1], 'XX', now, ARGV[7])
end
if ARGV[1] ~= '' and ARGV[2] ~= '' then
  redis.call('HSET', KEYS[2], 'limit', ARGV[1], 'window_us', ARGV[2])
end
if ARGV[3] == '0' and redis.call('EXISTS', KEYS[1]) == 1 then
  local window = tonumber(redis.call('HGET', KEYS[2], 'window_us')) or tonumber(ARGV[4])
  local hold_until = now + math.min(window, tonumber(ARGV[5]))
  if hold_until > (tonumber(redis.call('HGET', KEYS[2], 'hold_until_us')) or 0) then
    redis.call('HSET', KEYS[2], 'hold_until_us', hold_until)
  end
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
end
return 0
"""

# KEYS: policy. ARGV: hold (µs), policy TTL (ms).
_HOLD = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local hold_until = now + tonumber(ARGV[1])
if hold_until > (tonumber(redis.call('HGET', KEYS[1], 'hold_until_us')) or 0) then
  redis.call('HSET', KEYS[1], 'hold_until_us', hold_until)
end
redis.call('PEXPIRE', KEYS[1], math.max(tonumber(ARGV[2]), math.ceil(tonumber(ARGV[1]) / 1000) + 1000))
return 0
"""

_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


def redis_client(url: str) -> redis.Redis:
    """One client (and connection pool) per URL in a process, whichever steps and clients use it."""
    with _clients_lock:
        client = _clients.get(url)
        if client is None:
            try:
                client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10)
            except ValueError as error:
                raise ValueError(
                    f"{REDIS_URL_VARIABLE}: {redis_location(url)} is not a Redis URL ({error}); expected "
                    "redis://[[user]:password@]host[:port][/db], rediss://… (TLS) or unix:///path"
                ) from None
            _clients[url] = client
        return client


def redis_location(url: str) -> str:
    """Where a Redis URL points (`host:port`, or a socket path), without its user or password."""
    try:
        parts = urlsplit(url)
        if parts.scheme == "unix":
            return f"unix socket {parts.path}"
        host = parts.hostname or "(no host)"
        return f"{parts.scheme}://{host}:{parts.port or 6379}"
    except ValueError:
        return "the value (masked: it could not be parsed)"


def account_fingerprint(vendor: str, *identity: str) -> str:
    """A stable name for one account's budget: a digest, so no credential is ever written into a Redis key."""
    digest = hashlib.sha256("\0".join((vendor, *identity)).encode()).hexdigest()
    return digest[:24]


class SharedRequestBudget:
    """`RequestBudget`'s rule (at most `limit` requests in any rolling window, with a safety margin; `observe`
    and `hold` from the vendor's answers) for every process that names the same Redis, vendor and account."""

    def __init__(
        self,
        url: str,
        *,
        vendor: str,
        account: str,
        limit: int | None,
        window_s: float = 1.0,
        margin: float = 0.985,
        prefix: str = DEFAULT_PREFIX,
        system: str = "",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.vendor, self.system, self.margin = vendor, system or vendor, margin
        self._configured_limit, self._configured_window_s = limit, window_s
        self._location = redis_location(url)
        self._redis = redis_client(url)
        self._password = urlsplit(url).password or ""
        tag = f"{prefix}:{{{vendor}:{account}}}"
        self.sent_key, self.policy_key = f"{tag}:sent", f"{tag}:policy"
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._observe = self._redis.register_script(_OBSERVE)
        self._hold = self._redis.register_script(_HOLD)
        self._sleep = sleep
        self._granted = threading.local()  # this thread's last grant: its answer is the next one `observe` gets
        self.waited_s = 0.0

    @property
    def limit(self) -> int | None:
        """The limit every worker paces to now: the vendor's announced one, else the configured one."""
        announced = self._call(lambda: self._redis.hget(self.policy_key, "limit"))
        return int(announced) if announced is not None else self._configured_limit

    @property
    def window_s(self) -> float:
        announced = self._call(lambda: self._redis.hget(self.policy_key, "window_us"))
        return int(announced) / 1e6 if announced is not None else self._configured_window_s

    def acquire(self) -> None:
        """Blocks until a request may be sent within the account's budget."""
        configured = "" if self._configured_limit is None else str(self._configured_limit)
        window_us = _microseconds(self._configured_window_s)
        while True:
            member = os.urandom(12).hex()
            wait_us = int(
                self._call(
                    lambda member=member: self._acquire(
                        keys=[self.sent_key, self.policy_key], args=[configured, window_us, repr(self.margin), member]
                    )
                )
            )
            if wait_us <= 0:
                self._granted.member = member
                return
            wait = wait_us / 1e6
            self.waited_s += wait
            self._sleep(wait)

    def observe(self, limit: int | None, window_s: float | None, remaining: int | None) -> None:
        """Takes in what the vendor says about its limit on a response: every worker paces to it from now. The
        answer also marks when this thread's last request was surely counted by the vendor (see the module)."""
        announced = bool(limit and window_s)
        answered, self._granted.member = getattr(self._granted, "member", ""), ""
        args = [
            str(limit) if announced else "",
            _microseconds(window_s) if announced and window_s else "",
            "" if remaining is None else str(remaining),
            _microseconds(self._configured_window_s),
            _microseconds(MAX_HOLD_CHECK_S),
            POLICY_TTL_MS,
            answered,
        ]
        self._call(lambda: self._observe(keys=[self.sent_key, self.policy_key], args=args))

    def hold(self, seconds: float) -> None:
        """Holds every worker of the account back (after a 429) for as long as the vendor asked."""
        hold_us = _microseconds(max(seconds, 0.0))
        self._call(lambda: self._hold(keys=[self.policy_key], args=[hold_us, POLICY_TTL_MS]))

    def _call(self, command: Callable[[], object]) -> object:
        """The command's answer; a Redis that cannot be reached fails the request, naming where it looked (never
        the password): falling back to pacing alone would let this worker spend the others' budget."""
        try:
            return command()
        except redis.exceptions.RedisError as error:
            detail = redact(f"{type(error).__name__}: {error}", (self._password,))
            raise IntegrationError(
                category=Category.TRANSIENT,
                message=f"the shared rate budget's Redis at {self._location} did not answer ({detail})",
                resource=Resource(self.system),
                next_action=f"start Redis at {self._location} or correct {REDIS_URL_VARIABLE}; unset it to pace "
                "each worker on its own (then keep the vendor's concurrency pool at one slot)",
                severity=Severity.CRITICAL,
            ) from None


def _microseconds(seconds: float) -> int:
    return max(1, round(seconds * 1_000_000))
