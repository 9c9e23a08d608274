"""`pip install .` as a deployment does it (a wheel, not an editable install), used from a folder outside the
checkout: the code location loads, the quickstart's jobs run against the installed sandbox on the configuration
packaged with the code, and a file in the folder INTEGRATION_CONFIG_DIR names wins over its packaged default.

Offline and quick: the wheel is built from a copy of the checkout's files (so no build folder is left in the
checkout) by the test environment's own setuptools, and the new virtual environment borrows the test
environment's installed dependencies through a `.pth` file instead of downloading them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

from integration_assets.core.config import default_path
from integration_assets_tests.testing import PROJECT

PACKAGED_OWNERS = set(yaml.safe_load(default_path("monitoring.yaml").read_text(encoding="utf-8"))["owners"].values())
OPERATOR = "night-shift"  # the owner the operator's own monitoring.yaml names for every alert
# Settings of the machine running the tests that must not reach the installed package's processes.
LEAKS = ("PYTHONPATH", "PYTHONHOME", "INTEGRATION_CONFIG_DIR", "DAGSTER_HOME", "DAGSTER_PG_HOST", "WAREHOUSE_URL")


def _run(command: list, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    done = subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _copy_checkout(target: Path) -> None:
    """The files git would take (tracked, and new ones not ignored): no .venv, build or egg-info folder."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT,
        capture_output=True,
        check=True,
    ).stdout
    for name in filter(None, listed.split(b"\0")):
        source = PROJECT / os.fsdecode(name)
        if source.is_file():  # a file deleted in the work tree but still in the index is left out
            (target / os.fsdecode(name)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / os.fsdecode(name))


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A fresh virtual environment with the project installed from its wheel: its python, site-packages, env."""
    assert shutil.which("git") and (PROJECT / ".git").exists(), "a build takes the files git lists: run in a checkout"
    root = tmp_path_factory.mktemp("packaging")
    _copy_checkout(root / "source")
    # `pip install .` builds a wheel and installs it: the same two steps, the build offline in this environment
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
    _run([*build, "--wheel-dir", root / "dist", root / "source"], cwd=root)
    (wheel,) = (root / "dist").glob("integration_assets-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=root)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel], cwd=root)
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=root).strip())
    # The dependencies (dagster, pandas, ...) come from this environment's site-packages, appended to sys.path
    # after the new one's. A path line in a .pth runs none of that folder's own .pth files, so the checkout's
    # editable install (a finder started from __editable__*.pth) cannot shadow the installed package.
    (site / "_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in LEAKS}
    return {"root": root, "python": python, "bin": venv / "bin", "site": site, "env": env}


def _quickstart(installed: dict, work: Path, data: Path, name: str, config: Path | None = None) -> str:
    env = {
        **installed["env"],
        "DAGSTER_HOME": str(work / f"{name}_home"),
        "WAREHOUSE_URL": str(work / f"{name}.duckdb"),
    }
    if config is not None:
        env["INTEGRATION_CONFIG_DIR"] = str(config)
    command = [installed["python"], "-m", "integration_assets.quickstart", "--data", data]
    out = _run([*command, "--dotenv", work / f"{name}.env"], cwd=work, env=env, timeout=600)
    for job in ("integration_sync", "reconciliation", "health"):
        assert re.search(rf"^{job}: run \S+: succeeded$", out, re.MULTILINE), out
    return out


def _alert_owners(out: str) -> set[str]:
    return set(re.findall(r"^  [A-Z]+ to (\S+): ", out, re.MULTILINE))


def test_installed_package_runs_outside_the_checkout_and_an_override_file_wins(installed: dict) -> None:
    site, python, env = installed["site"], installed["python"], installed["env"]
    work = installed["root"] / "work"  # outside the checkout, where a deployment runs
    work.mkdir()
    before = set(os.listdir(PROJECT))
    built = {"build", "dist", "integration_assets.egg-info"}  # what a build in the checkout would leave

    # the package imported is the installed copy, its configuration the packaged one beside it
    probe = "import integration_assets.core.config as c; print(c.__file__); print(c.config_path('monitoring.yaml'))"
    module, monitoring = _run([python, "-c", probe], cwd=work, env=env).splitlines()
    assert Path(module).is_relative_to(site), module
    assert Path(monitoring) == site / "integration_assets" / "defaults" / "monitoring.yaml"
    assert Path(monitoring).is_file()
    assert {"integration_assets", "integration_sandbox"} <= set(os.listdir(site))
    assert "integration_assets_tests" not in os.listdir(site)  # the tests stay in the checkout

    # the code location loads as Dagster loads it
    validated = _run(
        [python, "-m", "dagster", "definitions", "validate", "-m", "integration_assets.definitions"], cwd=work, env=env
    )
    assert "Validation successful" in validated, validated

    # a dataset from the installed command, then the quickstart's jobs against the sandbox serving it
    data = work / "data"
    generate = [installed["bin"] / "integration-sandbox", "generate", "--out", data]
    _run([*generate, "--seed", "3", "--scale", "10", "--defect-rate", "1.0"], cwd=work, env=env)
    packaged = _quickstart(installed, work, data, "packaged")
    assert f"configuration: packaged defaults in {site / 'integration_assets' / 'defaults'}\n" in packaged, packaged
    owners = _alert_owners(packaged)
    assert owners and owners <= PACKAGED_OWNERS, packaged  # the planted defects alert their packaged owners

    # the operator's folder holds one edited file: it wins; the other files keep their packaged defaults
    config = work / "config"
    config.mkdir()
    settings = yaml.safe_load(default_path("monitoring.yaml").read_text(encoding="utf-8"))
    settings["owners"] = {"default": OPERATOR}
    (config / "monitoring.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    overridden = _quickstart(installed, work, data, "overridden", config)
    assert f"INTEGRATION_CONFIG_DIR={config} overrides: monitoring.yaml\n" in overridden, overridden
    assert _alert_owners(overridden) == {OPERATOR}, overridden
    assert f"INTEGRATION_CONFIG_DIR={config}\n" in (work / "overridden.env").read_text()

    assert not (set(os.listdir(PROJECT)) - before) & built  # the build left nothing in the checkout
