"""List pages (100 records each) per second that each sandbox vendor serves.

The sandbox runs as its own process (`integration-sandbox serve`), as users run it. One pass walks every
page of the vendor's pagination to learn the page URLs; then client processes replay those URLs on
keep-alive connections for a fixed time, reading whole bodies without decoding them, so the figure measures
the server rather than a client's JSON parser. The client (`--client`) is `socket` by default: each request's
bytes prepared once, each answer read by its Content-Length into one buffer, so on two cores the client takes
as little of the CPU the server needs as it can; `http.client` is the standard library's client (what earlier
figures used: it spends about as much CPU per page as the server on large pages).

    .venv/bin/python benchmarks/sandbox_throughput.py --scale 2000 --seconds 10 --clients 2
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from integration_sandbox.clients import session
from integration_sandbox.generator import generate

# (vendor, stream) measured by default: each vendor's largest stream, and Stripe's invoices, its fullest payload
# (lines, tax and payment settings, as Stripe documents an invoice: issue 15)
STREAMS = (("hubspot", "contacts"), ("stripe", "charges"), ("stripe", "invoices"), ("zendesk", "tickets"))


def page_urls(base: str, vendor: str, object_type: str) -> list[str]:
    """Walks the vendor's own pagination once; returns each page's path and query."""
    http, paths = session(vendor), []
    if vendor == "hubspot":
        path = f"/crm/v3/objects/{object_type}?limit=100"
        while path:
            paths.append(path)
            body = http.get(base + path, timeout=30).json()
            after = body.get("paging", {}).get("next", {}).get("after")
            path = f"/crm/v3/objects/{object_type}?limit=100&after={after}" if after else None
    elif vendor == "stripe":
        path = f"/v1/{object_type}?limit=100"
        while path:
            paths.append(path)
            body = http.get(base + path, timeout=30).json()
            path = f"/v1/{object_type}?limit=100&starting_after={body['data'][-1]['id']}" if body["has_more"] else None
    else:
        url = f"{base}/api/v2/{object_type}.json?page[size]=100"
        while url:
            split = urlsplit(url)
            paths.append(f"{split.path}?{split.query}")
            body = http.get(url, timeout=30).json()
            url = body["links"]["next"] if body["meta"]["has_more"] else None
    return paths


def _replay(args: tuple[str, list[str], dict[str, str], float, str]) -> tuple[int, int]:
    base, paths, headers, seconds, client = args
    if client == "socket":
        return _replay_on_socket(base, paths, headers, seconds)
    split = urlsplit(base)
    connection = http.client.HTTPConnection(split.hostname, split.port)
    pages = size = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for path in paths:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"{path}: {response.status} {body[:200]!r}")
            pages, size = pages + 1, size + len(body)
            if time.perf_counter() >= deadline:
                break
    return pages, size


def _replay_on_socket(base: str, paths: list[str], headers: dict[str, str], seconds: float) -> tuple[int, int]:
    split = urlsplit(base)
    connection = socket.create_connection((split.hostname, split.port))
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    requests = [f"GET {path} HTTP/1.1\r\nHost: {split.netloc}\r\n{extra}\r\n".encode() for path in paths]
    buffer = bytearray(1 << 22)
    view = memoryview(buffer)
    pages = size = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for path, request in zip(paths, requests, strict=True):
            connection.sendall(request)
            filled = 0
            while (end := buffer.find(b"\r\n\r\n", 0, filled)) < 0:
                filled += connection.recv_into(view[filled:])
            head = bytes(buffer[:end]).decode("latin-1").split("\r\n")
            if " 200 " not in head[0] + " ":
                raise RuntimeError(f"{path}: {head[0]}")
            length = next(int(h.split(":", 1)[1]) for h in head[1:] if h.lower().startswith("content-length:"))
            while filled < end + 4 + length:
                filled += connection.recv_into(view[filled:])
            pages, size = pages + 1, size + length
            if time.perf_counter() >= deadline:
                break
    connection.close()
    return pages, size


def measure(base: str, vendor: str, object_type: str, clients: int, seconds: float, client: str = "socket") -> dict:
    paths = page_urls(base, vendor, object_type)
    prepared = session(vendor).prepare_request(__import__("requests").Request("GET", base))
    headers = {"Authorization": prepared.headers["Authorization"]}
    with multiprocessing.Pool(clients) as pool:
        started = time.perf_counter()
        results = pool.map(_replay, [(base, paths, headers, seconds, client)] * clients)
        elapsed = time.perf_counter() - started
    pages = sum(p for p, _ in results)
    return {
        "vendor": vendor,
        "stream": object_type,
        "client": client,
        "distinct_pages": len(paths),
        "pages": pages,
        "pages_per_s": round(pages / elapsed),
        "records_per_s": round(pages * 100 / elapsed),
        "mb_per_s": round(sum(s for _, s in results) / elapsed / 1e6, 1),
    }


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument("--scale", type=int, default=2000)
    options.add_argument("--seconds", type=float, default=10)
    options.add_argument("--clients", type=int, default=2)
    options.add_argument(
        "--streams",
        help="vendor=stream pairs to measure, comma-separated (default: "
        + ",".join(f"{v}={s}" for v, s in STREAMS)
        + ")",
    )
    options.add_argument(
        "--client", choices=("socket", "http.client", "both"), default="socket", help="see the module's docstring"
    )
    args = options.parse_args()
    streams = [tuple(pair.split("=", 1)) for pair in args.streams.split(",")] if args.streams else STREAMS
    with tempfile.TemporaryDirectory() as folder:
        generate(folder, seed=1, scale=args.scale)
        command = [sys.executable, "-m", "integration_sandbox.cli", "serve", "--data", folder]
        command += ["--hubspot-port", "0", "--stripe-port", "0", "--zendesk-port", "0"]
        server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        try:
            urls = dict(server.stdout.readline().split() for _ in range(3))
            kinds = ("socket", "http.client") if args.client == "both" else (args.client,)
            for vendor, object_type in streams:
                for kind in kinds:
                    figures = measure(urls[vendor], vendor, object_type, args.clients, args.seconds, kind)
                    print(json.dumps(figures), flush=True)
        finally:
            server.terminate()
            server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
