"""What the servers serve matches what the generator says it wrote, for several seeds and sizes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import requests

from integration_assets_tests.testing.sandbox import FREE_PORTS, sandbox_records
from integration_sandbox.clients import list_all
from integration_sandbox.generator import generate
from integration_sandbox.server import Sandbox

STREAMS = [
    ("hubspot", "companies"),
    ("hubspot", "contacts"),
    ("hubspot", "deals"),
    ("stripe", "customers"),
    ("stripe", "invoices"),
    ("stripe", "charges"),
    ("zendesk", "organizations"),
    ("zendesk", "users"),
    ("zendesk", "tickets"),
]


@pytest.mark.parametrize(("seed", "scale", "defect_rate"), [(1, 3, 0.0), (2, 45, 0.2), (3, 400, 0.05)])
def test_manifest_counts_match_what_each_vendor_lists(tmp_path, seed: int, scale: int, defect_rate: float) -> None:
    manifest = generate(tmp_path, seed=seed, scale=scale, defect_rate=defect_rate)
    with Sandbox(tmp_path, ports=FREE_PORTS) as sandbox:
        for vendor, object_type in STREAMS:
            name = f"{vendor}/{object_type}"
            listed = [r["id"] for r in list_all(sandbox.url(vendor), vendor, object_type)]
            assert len(listed) == len(set(listed)), f"{name}: a record was listed twice"
            if vendor == "hubspot":
                listed += [r["id"] for r in list_all(sandbox.url(vendor), vendor, object_type, archived="true")]
            assert len(listed) == manifest["counts"][name], name
            stored = {r["id"] for r in sandbox_records(sandbox, vendor, object_type)}
            assert set(listed) == stored, name
            on_disk = {r["id"] for r in json.loads((tmp_path / vendor / f"{object_type}.json").read_text())}
            assert stored == on_disk, name


def test_every_planted_defect_is_served(tmp_path) -> None:
    manifest = generate(tmp_path, seed=5, scale=80, defect_rate=0.25)
    vendor_of = {"crm": "hubspot", "billing": "stripe", "support": "zendesk"}
    with Sandbox(tmp_path, ports=FREE_PORTS) as sandbox:
        served = {
            (vendor, object_type): {r["id"] for r in sandbox_records(sandbox, vendor, object_type)}
            for vendor, object_type in STREAMS
        }
    assert manifest["defects"]
    for defect in manifest["defects"]:
        assert defect["id"] in served[(vendor_of[defect["system"]], defect["object_type"])], defect


def _start_cli(*args: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "integration_sandbox.cli", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_cli_generates_and_serves_until_terminated(tmp_path) -> None:
    data = tmp_path / "data"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "integration_sandbox.cli",
            "generate",
            "--out",
            str(data),
            "--seed",
            "4",
            "--scale",
            "12",
            "--defect-rate",
            "0.5",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "planted defects" in done.stdout
    manifest = json.loads((data / "manifest.json").read_text())
    server = _start_cli(
        "serve", "--data", str(data), "--hubspot-port", "0", "--stripe-port", "0", "--zendesk-port", "0"
    )
    try:
        urls = dict(server.stdout.readline().split() for _ in range(3))
        customers = requests.get(f"{urls['stripe']}/__sandbox__/records/customers", timeout=5).json()
        assert len(customers) == manifest["counts"]["stripe/customers"]
    finally:
        server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=10) == 0


def test_cli_refuses_a_broken_fault_profile_and_a_missing_dataset(tmp_path) -> None:
    generate(tmp_path / "data", seed=1, scale=2)
    faults = tmp_path / "faults.yaml"
    faults.write_text("default:\n  rates: {500: 2}\n")
    refused = _start_cli("serve", "--data", str(tmp_path / "data"), "--faults", str(faults))
    assert refused.wait(timeout=30) == 2
    assert f"{faults}:2: default.rates.500" in refused.stderr.read()

    missing = _start_cli("serve", "--data", str(tmp_path / "nothing-here"))
    assert missing.wait(timeout=30) == 2
    assert "no manifest.json" in missing.stderr.read()
    assert os.path.exists(tmp_path / "data" / "manifest.json")
