"""What the alert drills share: a loopback webhook that records what it is sent, and monitoring settings
that differ from the packaged ones only in their sinks."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

from integration_assets.core.config import default_path

__all__ = ["WebhookReceiver", "read_lines", "write_monitoring"]


class WebhookReceiver:
    """A loopback HTTP server that records every POSTed JSON body and answers the statuses it is given."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.statuses: list[int] = []  # answered in order; 200 once used up
        self.delay = 0.0  # seconds each answer waits (a slow or hanging webhook)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                time.sleep(receiver.delay)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                if status < 300:
                    receiver.bodies.append(json.loads(body))
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain")
                    self.end_headers()
                    self.wfile.write(b"ok" if status < 300 else b"unavailable")
                except OSError:  # the client gave up waiting (a timeout under test)
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def write_monitoring(path: Path, sinks: list[dict], attempts: int = 3) -> Path:
    """A monitoring config equal to the packaged one but for its alert sinks."""
    config = yaml.safe_load(default_path("monitoring.yaml").read_text())
    config["alerts"] = {"sinks": sinks, "delivery_attempts": attempts, "delivery_timeout_seconds": 2}
    path.write_text(yaml.safe_dump(config))
    return path


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
