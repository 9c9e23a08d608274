"""Workers of the shared-budget drills: real processes (multiprocessing's spawn, so nothing is inherited but
what is passed) that draw from one vendor account's budget in Redis, started together and joined with a timeout.

Each grant is reported as the interval in which Redis granted it: from the worker's last ask (the budget's
`sleep` returns just before it asks again) to `acquire()`'s return. A window holds a set of grants for sure when
their intervals fit in it, which no scheduling delay of the worker can fake."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis

from integration_assets.core.access import Operation
from integration_assets.core.errors import IntegrationError
from integration_assets.core.shared_pacing import SharedRequestBudget

REDIS_URL = "redis://127.0.0.1:6379/0"
VENDOR, ACCOUNT = "hubspot", "drill"
SPAWN = multiprocessing.get_context("spawn")
JOIN_S = 90.0


@dataclass(frozen=True)
class Grant:
    asked_at: float  # time.time() of the last ask before the grant
    granted_by: float  # time.time() once acquire() returned


@contextmanager
def redis_prefix(name: str) -> Iterator[str]:
    """A key prefix of this drill's own, its keys deleted afterwards."""
    prefix = f"integration_assets_tests:{name}:{time.time_ns()}"
    client = redis.Redis.from_url(REDIS_URL)
    try:
        yield prefix
    finally:
        for key in client.scan_iter(match=f"{prefix}:*"):
            client.delete(key)
        client.close()


def budget(prefix: str, limit: int | None, window_s: float, sleep: Callable[[float], None] = time.sleep):
    return SharedRequestBudget(
        REDIS_URL, vendor=VENDOR, account=ACCOUNT, limit=limit, window_s=window_s, prefix=prefix, sleep=sleep
    )


def run_together(target: Callable[..., None], argument_lists: Sequence[tuple]) -> list[Any]:
    """Runs `target(start, results, *arguments)` in one process per argument list; `start` is a barrier they all
    pass before their first request. Returns what each put on `results`, in no particular order."""
    start = SPAWN.Barrier(len(argument_lists))
    results = SPAWN.Queue()
    workers = [SPAWN.Process(target=target, args=(start, results, *arguments)) for arguments in argument_lists]
    for worker in workers:
        worker.start()
    gathered = []
    try:
        for _ in workers:
            gathered.append(results.get(timeout=JOIN_S))
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
                worker.join()
    failures = [item for item in gathered if isinstance(item, str)]
    assert not failures, "\n".join(failures)
    return gathered


def acquire_worker(start, results, prefix: str, limit: int | None, window_s: float, count: int) -> None:
    """Draws `count` grants and reports them."""
    try:
        last_ask = [0.0]

        def sleep(seconds: float) -> None:
            time.sleep(seconds)
            last_ask[0] = time.time()

        shared = budget(prefix, limit, window_s, sleep)
        start.wait(timeout=60)
        grants = []
        for _ in range(count):
            last_ask[0] = time.time()
            shared.acquire()
            grants.append(Grant(last_ask[0], time.time()))
        results.put(grants)
    except BaseException as error:
        results.put(f"acquire_worker: {type(error).__name__}: {error}")


def observe_worker(start, results, prefix: str, limit: int, window_s: float) -> None:
    """Announces a limit, as an answer's rate headers do."""
    try:
        shared = budget(prefix, 100, 1.0)
        start.wait(timeout=60)
        shared.observe(limit, window_s, None)
        results.put(shared.limit)
    except BaseException as error:
        results.put(f"observe_worker: {type(error).__name__}: {error}")


def hold_worker(start, results, prefix: str, seconds: float) -> None:
    """Holds the account back, as ApiClient does after a 429; reports when it asked."""
    try:
        shared = budget(prefix, 100, 1.0)
        start.wait(timeout=60)
        asked_at = time.time()
        shared.hold(seconds)
        results.put(("held", asked_at))
    except BaseException as error:
        results.put(f"hold_worker: {type(error).__name__}: {error}")


def hubspot_lister(start, results, base_url: str, redis_url: str | None, prefix: str, pages: int) -> None:
    """Pages through HubSpot contacts one record a page, as a sync reads them, through the project's own client;
    reports the statuses it was answered."""
    from integration_assets.systems.crm.resource import HubSpotResource

    try:
        connection = HubSpotResource(
            base_url=base_url,
            access_token="pat-sandbox",
            rate_budget_redis_url=redis_url,
            rate_budget_prefix=prefix,
            max_attempts=20,
            backoff_base_s=0.05,
            backoff_cap_s=1.0,
        )
        client = connection.client("crm_source", seed=1)
        start.wait(timeout=60)
        after = None
        for _ in range(pages):
            params = {"limit": 1, **({"after": after} if after else {})}
            try:
                page = client.call(
                    Operation.READ,
                    "contacts",
                    "GET",
                    "/crm/v3/objects/{object_type}",
                    path_params={"object_type": "contacts"},
                    params=params,
                )
            except IntegrationError:
                continue  # out of attempts on 429s: the statuses below count them
            after = ((page.body or {}).get("paging") or {}).get("next", {}).get("after")
        results.put([record.status for record in client.call_log.drain()])
    except BaseException as error:
        results.put(f"hubspot_lister: {type(error).__name__}: {error}")


def most_in_a_window(grants: Sequence[Grant], window_s: float) -> int:
    """The most grants that were surely given within one window: their intervals all fit in it."""
    most = 0
    for first in grants:
        inside = [g for g in grants if g.asked_at >= first.asked_at and g.granted_by < first.asked_at + window_s]
        most = max(most, len(inside))
    return most
