"""`integration-free-slots`: what holds the vendors' concurrency pools, and freeing a dead run's slots by hand.

    integration-free-slots [--url URL]                   # every pool: who holds its slots, who waits
    integration-free-slots [--url URL] RUN_ID [RUN_ID…]  # free the slots those runs hold
    integration-free-slots [--url URL] --force RUN_ID    # … even of a run the instance still thinks is running

It talks to the Dagster webserver (`dagster dev` or `dagster-webserver`) over its GraphQL API, as the UI's
concurrency page does: `instance.concurrencyLimits` to list, `freeConcurrencySlotsForRun` to free. The URL is
`--url`, else DAGSTER_WEBSERVER_URL, else http://127.0.0.1:3000.

Freeing the slots of a run that is still running lets a second step call the vendor at the same time, so a run
in progress (QUEUED, STARTING, STARTED, CANCELING) is refused without `--force`. Use `--force` for a run whose
process is gone but that nothing marked failed: a `dagster job execute` killed while no daemon watched it stays
STARTED for ever (README, "Runs that die").
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import requests

__all__ = ["DEFAULT_URL", "FreeSlotsError", "Webserver", "main"]

DEFAULT_URL = "http://127.0.0.1:3000"
URL_ENV = "DAGSTER_WEBSERVER_URL"
IN_PROGRESS = {"QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"}

POOLS_QUERY = """
query Pools {
  instance {
    supportsConcurrencyLimits
    concurrencyLimits {
      concurrencyKey
      limit
      claimedSlots { runId stepKey }
      pendingSteps { runId stepKey enqueuedTimestamp assignedTimestamp }
    }
  }
}
"""
RUNS_QUERY = """
query Runs($runIds: [String]) {
  runsOrError(filter: {runIds: $runIds}) {
    __typename
    ... on Runs { results { runId jobName status endTime } }
    ... on PythonError { message }
    ... on InvalidPipelineRunsFilterError { message }
  }
}
"""
FREE_MUTATION = """
mutation Free($runId: String!) {
  freeConcurrencySlotsForRun(runId: $runId)
}
"""


class FreeSlotsError(Exception):
    """What went wrong, said so that the person at the terminal knows what to do."""


class Webserver:
    """The GraphQL endpoint of one Dagster webserver."""

    def __init__(self, url: str, timeout: float = 15.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        endpoint = f"{self.url}/graphql"
        try:
            payload = {"query": query, "variables": variables or {}}
            response = requests.post(endpoint, json=payload, timeout=self.timeout)
        except requests.ConnectionError as error:
            raise FreeSlotsError(
                f"cannot reach the Dagster webserver at {self.url} ({_reason(error)}): start it (`dagster dev` or "
                f"`dagster-webserver`) or name the running one with --url or {URL_ENV}"
            ) from None
        except requests.Timeout:
            waited = f"{self.timeout:g} s"
            raise FreeSlotsError(f"the Dagster webserver at {self.url} did not answer within {waited}") from None
        if response.status_code != 200:
            raise FreeSlotsError(
                f"{endpoint} answered HTTP {response.status_code}: {response.text[:200].strip()} "
                f"(is {self.url} a Dagster webserver, with its path prefix if it has one?)"
            )
        try:
            body = response.json()
        except ValueError:
            raise FreeSlotsError(f"{endpoint} did not answer JSON: is {self.url} a Dagster webserver?") from None
        if body.get("errors"):
            messages = "; ".join(str(error.get("message", error)) for error in body["errors"])
            raise FreeSlotsError(f"the Dagster webserver at {self.url} refused: {messages}")
        return body.get("data") or {}

    def pools(self) -> list[dict[str, Any]]:
        instance = self.execute(POOLS_QUERY)["instance"]
        if not instance.get("supportsConcurrencyLimits"):
            raise FreeSlotsError(f"the Dagster instance behind {self.url} does not support concurrency pools")
        return instance["concurrencyLimits"]

    def runs(self, run_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not run_ids:
            return {}
        answer = self.execute(RUNS_QUERY, {"runIds": sorted(set(run_ids))})["runsOrError"]
        if answer["__typename"] != "Runs":
            raise FreeSlotsError(f"the webserver at {self.url} could not list runs: {answer.get('message')}")
        return {run["runId"]: run for run in answer["results"]}

    def free(self, run_id: str) -> None:
        if not self.execute(FREE_MUTATION, {"runId": run_id}).get("freeConcurrencySlotsForRun"):
            raise FreeSlotsError(f"the webserver at {self.url} did not free the slots of run {run_id}")


def _reason(error: requests.ConnectionError) -> str:
    text = str(error)
    for known in ("Connection refused", "Name or service not known", "No route to host", "timed out"):
        if known in text:
            return known.lower()
    return type(error).__name__


def _held(pools: Sequence[dict[str, Any]]) -> dict[str, list[tuple[str, str]]]:
    """run id -> [(pool, step key)] of every claimed slot."""
    held: dict[str, list[tuple[str, str]]] = {}
    for pool in pools:
        for slot in pool["claimedSlots"]:
            held.setdefault(slot["runId"], []).append((pool["concurrencyKey"], slot["stepKey"]))
    return held


def _run_label(run_id: str, runs: dict[str, dict[str, Any]]) -> str:
    run = runs.get(run_id)
    if run is None:
        return f"run {run_id} (not on this instance)"
    ended = ""
    if run.get("endTime"):
        ended = f" since {datetime.fromtimestamp(run['endTime'], UTC):%Y-%m-%d %H:%M:%S} UTC"
    return f"run {run_id} ({run['jobName']}, {run['status']}{ended})"


def list_pools(server: Webserver, out=sys.stdout) -> int:
    pools = server.pools()
    involved = {slot["runId"] for pool in pools for slot in pool["claimedSlots"]}
    involved |= {step["runId"] for pool in pools for step in pool["pendingSteps"]}
    runs = server.runs(sorted(involved))
    if not pools:
        print("no concurrency pool has been used on this instance yet", file=out)
    now = datetime.now(UTC).timestamp()
    dead: list[str] = []
    for pool in sorted(pools, key=lambda p: p["concurrencyKey"]):
        waiting = [step for step in pool["pendingSteps"] if step["assignedTimestamp"] is None]
        limit = pool["limit"] if pool["limit"] is not None else "none"
        print(
            f"pool {pool['concurrencyKey']}: limit {limit}, {len(pool['claimedSlots'])} held, {len(waiting)} waiting",
            file=out,
        )
        for slot in pool["claimedSlots"]:
            status = (runs.get(slot["runId"]) or {}).get("status")
            finished = status is None or status not in IN_PROGRESS
            if finished:
                dead.append(slot["runId"])
            mark = "   <- finished: its slot is lost until freed" if finished else ""
            print(f"  held by {_run_label(slot['runId'], runs)}, step {slot['stepKey']}{mark}", file=out)
        for step in waiting:
            minutes = (now - step["enqueuedTimestamp"]) / 60
            print(f"  waiting: {_run_label(step['runId'], runs)}, step {step['stepKey']}, {minutes:.1f} min", file=out)
    if dead:
        print(f"\nfree the slots of finished runs with: integration-free-slots {' '.join(sorted(set(dead)))}", file=out)
    return 0


def free_runs(server: Webserver, run_ids: Sequence[str], force: bool, out=sys.stdout) -> int:
    runs = server.runs(run_ids)
    running = [run_id for run_id in run_ids if (runs.get(run_id) or {}).get("status") in IN_PROGRESS]
    if running and not force:
        labels = "; ".join(_run_label(run_id, runs) for run_id in running)
        raise FreeSlotsError(
            f"{labels}: still in progress for this instance, and its steps may still be calling the vendor. If its "
            "process is gone (killed, with no daemon to notice), free its slots with --force; if it is alive, "
            "terminate it from the UI instead"
        )
    before = _held(server.pools())
    for run_id in run_ids:
        server.free(run_id)
    after = _held(server.pools())
    for run_id in run_ids:
        freed = [held for held in before.get(run_id, []) if held not in after.get(run_id, [])]
        if freed:
            slots = ", ".join(f"{pool} (step {step})" for pool, step in freed)
            print(f"freed {len(freed)} slot(s) of {_run_label(run_id, runs)}: {slots}", file=out)
        else:
            print(f"{_run_label(run_id, runs)} held no slot: nothing to free", file=out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="integration-free-slots",
        description="List what holds the Dagster concurrency pools, or free the slots a dead run still holds, "
        "through the Dagster webserver's GraphQL API.",
    )
    parser.add_argument("run_ids", nargs="*", metavar="RUN_ID", help="runs whose slots to free; none: list the pools")
    parser.add_argument(
        "--url",
        default=os.environ.get(URL_ENV) or DEFAULT_URL,
        help=f"the Dagster webserver (default: ${URL_ENV}, else {DEFAULT_URL})",
    )
    parser.add_argument("--force", action="store_true", help="free the slots even of a run still in progress")
    args = parser.parse_args(argv)
    server = Webserver(args.url)
    try:
        if args.run_ids:
            return free_runs(server, list(dict.fromkeys(args.run_ids)), args.force)
        return list_pools(server)
    except FreeSlotsError as error:
        print(f"integration-free-slots: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
