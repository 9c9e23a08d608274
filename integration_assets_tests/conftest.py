"""Shared fixtures: a generated dataset and the three vendor servers on free loopback ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from integration_assets_tests.testing import fresh_postgres_database
from integration_assets_tests.testing.sandbox import FREE_PORTS
from integration_sandbox.generator import generate
from integration_sandbox.server import Sandbox


@pytest.fixture(scope="session", autouse=True)
def packaged_config() -> Iterator[None]:
    """Every test starts from the packaged configuration, whatever INTEGRATION_CONFIG_DIR the shell has."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("INTEGRATION_CONFIG_DIR", raising=False)
        yield


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's override folder (INTEGRATION_CONFIG_DIR): a file written into it wins over the packaged one."""
    folder = tmp_path / "config"
    folder.mkdir()
    monkeypatch.setenv("INTEGRATION_CONFIG_DIR", str(folder))
    return folder


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small business with every kind of planted defect (read-only: tests that write use `sandbox`)."""
    out = tmp_path_factory.mktemp("dataset")
    generate(out, seed=7, scale=60, defect_rate=0.3)
    return out


@pytest.fixture
def sandbox(dataset: Path) -> Iterator[Sandbox]:
    """Fresh servers per test (writes never leak between tests), sharing the dataset on disk."""
    with Sandbox(dataset, ports=FREE_PORTS) as running:
        yield running


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the local server, dropped afterwards."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on both warehouses: a DuckDB file, and PostgreSQL at 127.0.0.1:5432."""
    if request.param == "duckdb":
        return str(tmp_path / "warehouse.duckdb")
    return request.getfixturevalue("postgres_url")
