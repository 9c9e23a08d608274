"""Pictures for the README, taken from a real `dagster dev`: the asset lineage, a canonical asset's columns, a
failed reconciliation check with its records, and the open alerts, as PNGs in docs/img/.

Runs on a fresh Debian machine: it installs what it needs itself (headless Chromium from Debian's `chromium`
package, Playwright's Python package into this venv; Playwright's own browser download is not needed), then
starts the quickstart's pieces (demo dataset, sandbox, the jobs) against a throwaway Dagster instance and
warehouse, so the pictures never depend on, or change, the checkout's `.dagster_home`.

    bash scripts/screenshots.sh          # or: .venv/bin/python scripts/screenshots.py [--out docs/img]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from integration_assets import quickstart

LOCATION = "integration_assets"  # the code location's name, as in the project's workspace.yaml
REPOSITORY = "__repository__"  # what Dagster names the repository of a `Definitions` object
VIEWPORT = {"width": 1400, "height": 900}
ALERT_SENSOR = "missing_record_alerts"  # the sensor that opens the reconciliation checks' alerts


def ensure_tools() -> str:
    """Chromium and Playwright, installed when missing; the browser's path.

    Playwright drives Debian's Chromium (`executable_path`) because `playwright install` downloads its browsers
    from a CDN that a locked-down machine may not reach, while the distribution's package comes with apt."""
    if shutil.which("chromium") is None:
        apt = ["apt-get"] if os.geteuid() == 0 else ["sudo", "apt-get"]
        quiet = {"stdout": subprocess.DEVNULL, "env": {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}}
        subprocess.run([*apt, "update", "-qq"], check=True, **quiet)
        subprocess.run([*apt, "install", "-y", "-qq", "--no-install-recommends", "chromium"], check=True, **quiet)
    if importlib.util.find_spec("playwright") is None:  # the project's `screenshots` extra
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "playwright>=1.40"], check=True)
    browser = shutil.which("chromium")
    if browser is None:
        raise RuntimeError("chromium is not on PATH after installing Debian's chromium package")
    return browser


def free_port() -> int:
    """A port nothing listens on now (the OS picks it), for the webserver."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Webserver:
    """The UI and its GraphQL API at `url`, as the browser sees them."""

    def __init__(self, url: str) -> None:
        self.url = url

    def graphql(self, query: str, **variables: Any) -> dict:
        response = requests.post(f"{self.url}/graphql", json={"query": query, "variables": variables}, timeout=60)
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(body["errors"])
        return body["data"]

    def wait_until(self, what: str, ready, timeout: float = 240) -> Any:
        """Polls `ready()` (a falsy value or an error means not yet) until it gives a value; that value."""
        deadline, last = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            try:
                value = ready()
            except (requests.RequestException, RuntimeError, KeyError, TypeError) as error:
                value, last = None, error
            if value:
                return value
            time.sleep(2)
        raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f} s (last error: {last})")

    def asset_keys(self) -> set[str]:
        data = self.graphql("{ assetNodes { assetKey { path } } }")
        return {"/".join(node["assetKey"]["path"]) for node in data["assetNodes"]}

    def groups(self) -> set[str]:
        data = self.graphql("{ assetNodes { groupName } }")
        return {node["groupName"] for node in data["assetNodes"]}

    def sensor_ticks(self, name: str) -> list[dict]:
        """The sensor's recorded ticks (newest first): what the daemon did, as the sensor page lists it."""
        data = self.graphql(
            """query ($selector: SensorSelector!) { sensorOrError(sensorSelector: $selector) {
                 ... on Sensor { sensorState { ticks(limit: 5) { status timestamp } } } } }""",
            selector={"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "sensorName": name},
        )
        return data["sensorOrError"]["sensorState"]["ticks"]

    def materialized(self, key: str) -> bool:
        data = self.graphql(
            """query ($key: AssetKeyInput!) { assetOrError(assetKey: $key) {
                 ... on Asset { assetMaterializations(limit: 1) { runId } } } }""",
            key={"path": key.split("/")},
        )
        return bool(data["assetOrError"].get("assetMaterializations"))


@contextmanager
def running_dagster_dev(folder: Path) -> Iterator[Webserver]:
    """`dagster dev` (webserver and daemon) on a free port, started in `folder`: its own workspace file there,
    and no `.env` of the checkout read, so the environment this script set is the one Dagster sees."""
    workspace = folder / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - python_module:\n"
        f"      module_name: integration_assets.definitions\n      location_name: {LOCATION}\n"
    )
    port = free_port()
    dagster = Path(sys.executable).with_name("dagster")
    log = (folder / "dagster_dev.log").open("w")
    command = [str(dagster), "dev", "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(command, cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        server = Webserver(f"http://127.0.0.1:{port}")
        server.wait_until("the webserver and the code location", server.asset_keys)
        yield server
    finally:
        process.terminate()  # dagster dev stops its webserver, daemon and code servers on SIGTERM
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
        log.close()


@dataclass(frozen=True)
class Shot:
    """One picture: the UI route, what must be on the page before it is taken, and the PNG's name."""

    name: str
    route: str
    ready: str  # a Playwright selector (text=… works) that shows the content has loaded
    top: str | None = None  # scrolled to the top of the page when it is there
    fit_graph: bool = False  # the asset graph zoomed and moved to fill the frame


def shots(server: Webserver) -> list[Shot]:
    """The README's four pictures."""
    groups = sorted(server.groups())
    expanded = ",".join(f"global@global:{group}" for group in groups)  # the UI's "Expand all groups", as a URL
    return [
        Shot("asset_lineage", f"/asset-groups?expanded={quote(expanded)}", "text=customer_360", fit_graph=True),
        Shot("canonical_columns", "/assets/canonical/customers", "text=Description", top='text="Columns"'),
        Shot(
            "failed_reconciliation_check",
            "/assets/canonical/deals?view=checks&checkDetail=won_deals_invoiced",
            "text=Latest execution",
        ),
        Shot("open_alerts", "/assets/ops/alerts", "text=Metadata", top='text="Metadata"'),
    ]


# The layout the pictures use, set as the UI remembers its own choices: the wide graph fits a 1400x900 frame
# lying down (top to bottom), and the collapsed navigation leaves the page its width.
BROWSER_SETTINGS = """
localStorage.setItem("asset-graph-direction", JSON.stringify("vertical"));
localStorage.setItem("dagster-nav-collapsed", "true");
"""
NODES_BOX = """() => {
  const boxes = [...document.querySelectorAll("svg foreignObject")].map((e) => e.getBoundingClientRect())
    .filter((b) => b.width > 0);
  return {left: Math.min(...boxes.map((b) => b.left)), top: Math.min(...boxes.map((b) => b.top)),
          right: Math.max(...boxes.map((b) => b.right)), bottom: Math.max(...boxes.map((b) => b.bottom))};
}"""


def fit_graph(page) -> None:
    """Zooms the asset graph until it fills the canvas, then drags it to the middle: the UI's own fit stops at
    a zoom level meant for reading node details, which leaves a wide graph a thin strip."""
    canvas = page.evaluate(  # the element around the graph's own svg that is the visible canvas
        """() => {
          const svgs = [...document.querySelectorAll("svg")];
          let element = svgs.reduce((a, b) => (b.getBBox().width > a.getBBox().width ? b : a));
          while (element.parentElement && element.getBoundingClientRect().height < window.innerHeight / 2) {
            element = element.parentElement;
          }
          return element.getBoundingClientRect().toJSON();
        }"""
    )
    canvas_width, canvas_height = canvas["width"] - 60, canvas["height"] - 40  # the zoom controls on the right
    for _ in range(8):
        box = page.evaluate(NODES_BOX)
        width, height = box["right"] - box["left"], box["bottom"] - box["top"]
        if width * 1.25 > canvas_width or height * 1.25 > canvas_height:
            break
        page.mouse.move((box["left"] + box["right"]) / 2, (box["top"] + box["bottom"]) / 2)
        page.keyboard.down("Control")
        page.mouse.wheel(0, -100)
        page.keyboard.up("Control")
        page.wait_for_timeout(400)
    box = page.evaluate(NODES_BOX)
    shift_x = canvas["left"] + canvas_width / 2 - (box["left"] + box["right"]) / 2
    shift_y = canvas["top"] + canvas["height"] / 2 - (box["top"] + box["bottom"]) / 2
    start_x, start_y = canvas["left"] + canvas_width / 2, canvas["bottom"] - 60  # empty canvas below the graph
    page.mouse.move(start_x, start_y)
    page.mouse.down()
    page.mouse.move(start_x + shift_x, start_y + shift_y, steps=10)
    page.mouse.up()


def take(server: Webserver, browser_path: str, out: Path, wanted: list[Shot]) -> list[Path]:
    """Opens each route in headless Chromium at the README's size and saves the page as a PNG."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    server.graphql("mutation { setNuxSeen }")  # the community sign-up dialog a new instance shows once
    out.mkdir(parents=True, exist_ok=True)
    saved = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path)
        context = browser.new_context(viewport=VIEWPORT)
        context.add_init_script(BROWSER_SETTINGS)
        page = context.new_page()
        for shot in wanted:
            page.goto(server.url + shot.route, wait_until="domcontentloaded")
            page.wait_for_selector(shot.ready, timeout=60_000)
            # the UI polls now and then; a quiet half second means the page has what it asked for
            with suppress(PlaywrightTimeout):  # a page that keeps polling is still worth its picture
                page.wait_for_load_state("networkidle", timeout=20_000)
            if shot.fit_graph:
                page.locator("button:left-of(:text('Search and filter assets'))").first.click()  # the group list
                page.wait_for_timeout(500)
                fit_graph(page)
            if shot.top:
                target = page.locator(shot.top).first
                if target.count():
                    target.evaluate("(element) => element.scrollIntoView({block: 'start'})")
                else:
                    print(f"  {shot.name}: {shot.top!r} is not on {shot.route} (yet); the page as it is")
            page.wait_for_timeout(1500)  # layout and fade-ins
            path = out / f"{shot.name}.png"
            page.screenshot(path=str(path))
            saved.append(path)
        browser.close()
    return saved


def job_line(line: str) -> None:
    """Progress while the jobs run: each job's status, checks and duration, not the report's details."""
    if line.split(": run ", 1)[0] in quickstart.JOBS or line.startswith("  checks: "):
        print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument("--out", default=str(quickstart.PROJECT / "docs" / "img"), help="where the PNGs go")
    options.add_argument("--keep", action="store_true", help="keep the throwaway folder (logs, instance)")
    args = options.parse_args(argv)
    started = time.monotonic()
    browser_path = ensure_tools()

    folder = Path(tempfile.mkdtemp(prefix="screenshots-"))
    try:
        home = folder / "dagster_home"
        os.environ["DAGSTER_HOME"] = str(home)
        os.environ["WAREHOUSE_URL"] = str(folder / "warehouse.duckdb")
        config = quickstart.config_folder()
        if config:
            os.environ["INTEGRATION_CONFIG_DIR"] = config
        quickstart.prepare_instance(home)
        data = folder / "data"
        quickstart.ensure_dataset(data)  # the demo dataset, the same every time: the same pictures
        with quickstart.running_sandbox(data, None) as urls:
            quickstart.use_sandbox(urls)
            print(f"running {', '.join(quickstart.JOBS)}; Dagster's logs go to {folder}", flush=True)
            quickstart.run_jobs(log_file=home / quickstart.LOG_NAME, progress=job_line, evaluate_alerts=False)
            with running_dagster_dev(folder) as server:
                print(f"dagster dev at {server.url}; waiting for the daemon's alert sensor tick", flush=True)
                server.wait_until(
                    f"a tick of {ALERT_SENSOR}",
                    lambda: any(t["status"] in ("SUCCESS", "SKIPPED") for t in server.sensor_ticks(ALERT_SENSOR)),
                )
                server.wait_until("ops/alerts reported", lambda: server.materialized("ops/alerts"))
                for path in take(server, browser_path, Path(args.out), shots(server)):
                    print(path)
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
