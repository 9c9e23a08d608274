"""`integration-sandbox`: generate a dataset, or serve the three imitated vendors over HTTP."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from integration_assets.core.config import ConfigError


def _generate(args: argparse.Namespace) -> int:
    from integration_sandbox.generator import generate

    if not 0 <= args.defect_rate <= 1:
        print(f"--defect-rate must be between 0 and 1, got {args.defect_rate}", file=sys.stderr)
        return 2
    if args.scale < 1:
        print(f"--scale must be at least 1, got {args.scale}", file=sys.stderr)
        return 2
    manifest = generate(args.out, seed=args.seed, scale=args.scale, defect_rate=args.defect_rate)
    total = sum(manifest["counts"].values())
    print(f"wrote {total} records and {len(manifest['defects'])} planted defects to {args.out}")
    for name, count in manifest["counts"].items():
        print(f"  {name:<24} {count}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from integration_sandbox.faults import FaultProfile, load_profile
    from integration_sandbox.server import Sandbox

    data = Path(args.data)
    if not (data / "manifest.json").exists():
        print(
            f"{data}: no manifest.json here; make a dataset with `integration-sandbox generate`",
            file=sys.stderr,
        )
        return 2
    try:
        profile = load_profile(args.faults) if args.faults else FaultProfile()
    except ConfigError as error:
        print(f"fault profile rejected:\n{error}", file=sys.stderr)
        return 2
    ports = {"hubspot": args.hubspot_port, "stripe": args.stripe_port, "zendesk": args.zendesk_port}
    # the handlers are in place before the addresses are printed: whoever reads them may stop the sandbox at once
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    sandbox = Sandbox(data, profile, host=args.host, ports=ports).start()
    for vendor in ports:
        print(f"{vendor:<8} {sandbox.url(vendor)}", flush=True)
    stopped.wait()
    sandbox.stop()
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="integration-sandbox", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)

    generate = commands.add_parser("generate", help="write a seeded dataset with planted defects")
    generate.add_argument("--out", required=True, help="dataset folder to write")
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--scale", type=int, default=100, help="CRM companies; ~11 records each in all")
    generate.add_argument("--defect-rate", type=float, default=0.0, help="share of companies with a defect")
    generate.set_defaults(run=_generate)

    serve = commands.add_parser("serve", help="serve a dataset as HubSpot, Stripe and Zendesk")
    serve.add_argument("--data", required=True, help="dataset folder (from `generate`)")
    serve.add_argument("--faults", help="fault profile YAML")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--hubspot-port", type=int, default=8701)
    serve.add_argument("--stripe-port", type=int, default=8702)
    serve.add_argument("--zendesk-port", type=int, default=8703)
    serve.set_defaults(run=_serve)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
