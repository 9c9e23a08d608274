"""How much of HubSpot's request budget each client spends, and how often it bounces off a 429.

The sandbox (its own process) limits HubSpot to 100 requests per rolling 10 s per token, the Free/Starter
private-app limit (`--faults` profile `hubspot: {rate_limit: {requests: 100, per_seconds: 10}}`), and
announces it in `X-HubSpot-RateLimit-*` headers as HubSpot does. Each side then lists contacts, in its own
process, for a fixed wall time:

- ours: `sync_stream` of `crm/contacts` through `HubSpotResource(requests_per_10s=None)`: the budget is
  learnt from the headers and spent by the client's proactive pacing;
- dlt:  the same `rest_api` source as `connector_vs_dlt.py` (dlt retries 429s with its backoff; it has no
  proactive pacing).

Requests are counted by the sandbox (`GET /__sandbox__/stats`), the same way for both sides. The first
`--warmup` seconds after a side's first request are left out (the first window starts empty, so any client
may burst through it), then the counts are read at the start and the end of `--seconds` of steady state:

    budget used = requests answered 200 / (100 x measured seconds / 10)      target >= 95 %
    429 share   = requests answered 429 / requests                           target <= 1 %

The limiter is reset between the sides (the profile is put again), so neither inherits the other's window.

    .venv/bin/python benchmarks/rate_limit_budget.py                # ~2 minutes
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _harness as h
from benchmarks.connector_vs_dlt import contacts_properties

LIMIT, WINDOW_S = 100, 10
PROFILE = {"seed": 1, "hubspot": {"rate_limit": {"requests": LIMIT, "per_seconds": WINDOW_S}}}
TARGET_BUDGET, TARGET_429 = 0.95, 0.01
CONNECTOR = Path(__file__).with_name("connector_vs_dlt.py")


def counts(server: h.SandboxProcess) -> dict[str, int]:
    stats = server.stats()
    return {"requests": stats.get("requests", 0), "200": stats.get("status:200", 0), "429": stats.get("status:429", 0)}


def measure(server: h.SandboxProcess, side: str, folder: Path, warmup_s: float, seconds: float) -> dict:
    # A fresh limiter (putting the profile again rebuilds it) and fresh counters.
    requests.put(
        f"{server.urls['hubspot']}/__sandbox__/faults", data=json.dumps(PROFILE), timeout=10
    ).raise_for_status()
    server.reset_stats()
    command = [h.PYTHON, str(CONNECTOR), "--worker", side, "--url", server.urls["hubspot"]]
    command += ["--db", str(folder / f"{side}.duckdb")]
    if side == "dlt":
        command += ["--properties", contacts_properties(), "--pipelines-dir", str(folder / "dlt_pipelines")]
    worker = subprocess.Popen(
        command,
        cwd=h.ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false"},
    )
    ended = "deadline"
    while counts(server)["requests"] == 0:  # the interpreter starts and imports: not the client's time
        if worker.poll() is not None:
            raise RuntimeError(f"{side} worker exited before its first request:\n{worker.stderr.read()[-2000:]}")
        time.sleep(0.05)
    first = time.monotonic()
    begin = end = None
    while True:
        now = time.monotonic()
        if begin is None and now - first >= warmup_s:
            begin, begun_at = counts(server), now
        if begin is not None and now - begun_at >= seconds:
            end, ended_at = counts(server), now
            break
        if worker.poll() is not None:
            ended = f"worker exited ({worker.returncode}) after {now - first:.1f} s"
            end, ended_at = counts(server), now
            if begin is None:
                begin, begun_at = {"requests": 0, "200": 0, "429": 0}, first
            break
        time.sleep(0.05)
    whole = counts(server)
    whole_s = time.monotonic() - first
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
    _, stderr = worker.communicate(timeout=30)
    measured_s = ended_at - begun_at
    sent = end["requests"] - begin["requests"]
    ok = end["200"] - begin["200"]
    limited = end["429"] - begin["429"]
    allowed = LIMIT * measured_s / WINDOW_S
    result = {
        "side": side,
        "ended": ended,
        "warmup_s": warmup_s,
        "measured_s": round(measured_s, 2),
        "requests": sent,
        "status_200": ok,
        "status_429": limited,
        "allowed": round(allowed, 1),
        "budget_used": round(ok / allowed, 4) if allowed else None,
        "share_429": round(limited / sent, 4) if sent else None,
        "whole_run": {
            "seconds": round(whole_s, 2),
            **whole,
            "share_429": round(whole["429"] / max(whole["requests"], 1), 4),
        },
    }
    if ended != "deadline":
        result["worker_stderr_tail"] = stderr.strip().splitlines()[-3:]
    return result


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument("--seconds", type=float, default=30.0, help="measured steady-state seconds per side")
    options.add_argument("--warmup", type=float, default=WINDOW_S, help="seconds left out after the first request")
    options.add_argument("--records", type=int, default=60_000, help="contacts served (enough not to run out)")
    options.add_argument("--seed", type=int, default=1)
    args = options.parse_args()
    if args.seconds < 3 * WINDOW_S or args.warmup < WINDOW_S:
        print(
            f"--seconds below {3 * WINDOW_S} or --warmup below {WINDOW_S}: window effects will dominate the figures",
            file=sys.stderr,
        )
    needed = (args.warmup + args.seconds) * LIMIT / WINDOW_S * 100
    if args.records < needed:
        print(f"--records {args.records} may run out before the deadline (~{needed:.0f} listed)", file=sys.stderr)

    machine_before = h.machine()
    with h.scratch("bench_ratelimit_") as tmp:
        folder = Path(tmp)
        h.generate(folder / "data", scale=int(args.records / 2.25) + 500, seed=args.seed)
        h.contacts_only(folder / "data", args.records)
        faults = folder / "faults.json"  # YAML is a superset of JSON
        faults.write_text(json.dumps(PROFILE))
        with h.sandbox(folder / "data", faults) as server:
            results = {}
            for side in ("ours", "dlt"):
                results[side] = measure(server, side, folder, args.warmup, args.seconds)
                h.emit(results[side])

    summary = {"benchmark": "rate_limit_budget", "limit": f"{LIMIT} per {WINDOW_S} s rolling, per token"}
    summary["machine_before"], summary["machine_after"] = machine_before, h.machine()
    for side, result in results.items():
        summary[side] = {
            "budget_used": result["budget_used"],
            "share_429": result["share_429"],
            "budget_met": (result["budget_used"] or 0) >= TARGET_BUDGET,
            "share_429_met": result["share_429"] is not None and result["share_429"] <= TARGET_429,
            "ended": result["ended"],
        }
    summary["targets"] = {"budget_used": f">= {TARGET_BUDGET}", "share_429": f"<= {TARGET_429}"}
    h.emit(summary)

    print(
        f"\nHubSpot limited to {LIMIT} requests / {WINDOW_S} s; "
        f"{args.seconds:.0f} s measured after {args.warmup:.0f} s of warm-up:"
    )
    for side, result in results.items():
        verdict = summary[side]
        print(
            f"  {side:<4} budget used {100 * (result['budget_used'] or 0):5.1f} % "
            f"({'MET' if verdict['budget_met'] else 'NOT MET'} >= {100 * TARGET_BUDGET:.0f} %)   "
            f"429s {100 * (result['share_429'] or 0):5.2f} % of {result['requests']} requests "
            f"({'MET' if verdict['share_429_met'] else 'NOT MET'} <= {100 * TARGET_429:.0f} %)   "
            f"whole run: {result['whole_run']['requests']} requests, {result['whole_run']['429']} x 429 "
            f"in {result['whole_run']['seconds']} s; {result['ended']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
