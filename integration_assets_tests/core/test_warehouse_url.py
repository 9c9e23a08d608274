"""WAREHOUSE_URL is read strictly: the accepted forms open their warehouse, anything else refuses to start.

Read loosely, a mistyped PostgreSQL URL (`POSTGRESQL://`, `postgresql:/`, a leading space, a driver psycopg2
is not) became a new DuckDB file under the working folder, where runs "succeeded" while the real warehouse
went stale. Each refusal names the value with its password masked, and the forms that are accepted.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import DagsterResourceFunctionError, EnvVar, asset, build_resources, materialize

from integration_assets.core.columns import storage_kind
from integration_assets.core.resources import WarehouseResource
from integration_assets.core.warehouse import Warehouse, is_postgres_url
from integration_assets.core.warehouse.handle import InvalidWarehouseUrl, mask_url_password, parse_warehouse_url

SECRET = "s3cr3t-pw"
PG = f"u:{SECRET}@127.0.0.1:5432/test"

# value -> what the refusal says about it
MALFORMED = {
    f"postgresql+asyncpg://{PG}": "unknown scheme or driver 'postgresql+asyncpg'",
    f"postgresql+pg8000://{PG}": "unknown scheme or driver 'postgresql+pg8000'",
    f"mysql://{PG}": "unknown scheme or driver 'mysql'",
    "sqlite:///warehouse.db": "unknown scheme or driver 'sqlite'",
    "file:///srv/warehouse.duckdb": "unknown scheme or driver 'file'",
    f"POSTGRESQL://{PG}": "the scheme must be written in lower case (postgresql://)",
    f"Postgres://{PG}": "the scheme must be written in lower case (postgres://)",
    f"POSTGRESQL+PSYCOPG2://{PG}": "the scheme must be written in lower case (postgresql+psycopg2://)",
    "DUCKDB:///srv/warehouse.duckdb": "the scheme must be written in lower case (duckdb://)",
    f"postgresql:/{PG}": "the scheme must be followed by '//' (postgresql://…)",
    f"postgres:/{PG}": "the scheme must be followed by '//' (postgres://…)",
    f"postgresql+psycopg2:/{PG}": "the scheme must be followed by '//' (postgresql+psycopg2://…)",
    f"postgresql:{PG}": "the scheme must be followed by '//' (postgresql://…)",
    "duckdb://warehouse.duckdb": "a DuckDB URL is duckdb:/// followed by an absolute path",
    "duckdb:/srv/warehouse.duckdb": "a DuckDB URL is duckdb:/// followed by an absolute path",
    f" postgresql://{PG}": "leading or trailing whitespace",
    f"postgresql://{PG} ": "leading or trailing whitespace",
    f"postgresql://{PG}\n": "leading or trailing whitespace",
    " warehouse.duckdb": "leading or trailing whitespace",
    "warehouse.duckdb\t": "leading or trailing whitespace",
    f"postgresql://u:{SECRET}@127.0.0.1 :5432/test": "a URL cannot hold whitespace",
    "ware\nhouse.duckdb": "control character",
    f"warehouse/postgresql://{PG}": "'://' in a file path",
    f"./postgresql://{PG}": "'://' in a file path",
    f"postgresql://{PG}/postgresql://other": "'://' appears twice",
    f"postgresql://u:{SECRET}@127.0.0.1:port/test": "not a valid URL",
    "": "it is empty",
    ":memory:": "an in-memory DuckDB would vanish",
    "duckdb:///:memory:": "an in-memory DuckDB would vanish",
}


def _refusal(url: str) -> str:
    with pytest.raises(InvalidWarehouseUrl) as error:
        Warehouse.from_url(url)
    return str(error.value)


@pytest.mark.parametrize("url", MALFORMED, ids=[repr(u) for u in MALFORMED])
def test_a_malformed_url_is_refused_naming_it_masked_and_the_accepted_forms(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # where a loose reading made its DuckDB file
    message = _refusal(url)
    assert MALFORMED[url] in message
    assert message.startswith(f"WAREHOUSE_URL={mask_url_password(url)!r} is refused: ")
    assert SECRET not in message
    assert "Accepted: postgresql://" in message and "duckdb:///" in message
    assert list(tmp_path.iterdir()) == []  # nothing was created


def test_a_folder_is_refused(tmp_path: Path) -> None:
    assert "it names a folder" in _refusal(str(tmp_path))


@pytest.mark.parametrize("url", [f"POSTGRESQL://{PG}", f" postgresql://{PG}", f"postgresql+asyncpg://{PG}"])
def test_the_resource_refuses_to_start(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with (
        pytest.raises(DagsterResourceFunctionError) as error,
        build_resources({"warehouse": WarehouseResource(url=url)}),
    ):
        pass
    assert isinstance(error.value.__cause__, InvalidWarehouseUrl)
    assert SECRET not in str(error.value.__cause__)
    assert list(tmp_path.iterdir()) == []


def test_a_run_with_a_mistyped_url_fails_at_resource_initialization(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The way the code location configures it (`EnvVar`): the run fails before its step, and no file appears."""
    ran = []

    @asset
    def needs_the_warehouse(warehouse: WarehouseResource) -> None:
        ran.append(warehouse.open())

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WAREHOUSE_URL", f"postgresql:/{PG}")
    result = materialize(
        [needs_the_warehouse],
        resources={"warehouse": WarehouseResource(url=EnvVar("WAREHOUSE_URL"))},
        raise_on_error=False,
    )
    assert not result.success and ran == []
    failure = next(e for e in result.all_events if e.is_failure)
    assert "the scheme must be followed by '//'" in str(failure.event_specific_data)
    assert SECRET not in str(failure.event_specific_data)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("form", ["plain", "relative", "duckdb_url", "home"])
def test_duckdb_forms_open_the_named_file(form: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    url, expected = {
        "plain": (str(tmp_path / "a.duckdb"), tmp_path / "a.duckdb"),
        "relative": ("sub/b.duckdb", tmp_path / "sub" / "b.duckdb"),
        "duckdb_url": (f"duckdb://{tmp_path / 'c.duckdb'}", tmp_path / "c.duckdb"),
        "home": ("~/d.duckdb", tmp_path / "d.duckdb"),
    }[form]
    assert parse_warehouse_url(url) == ("duckdb", str(expected.resolve()))
    with build_resources({"warehouse": WarehouseResource(url=url)}) as resources:
        warehouse = resources.warehouse.open()
    assert (warehouse.backend, warehouse.target) == ("duckdb", str(expected.resolve()))
    assert warehouse.query("SELECT count(*) FROM ops.cursors") == [(0,)]
    assert expected.is_file()
    assert storage_kind({"WAREHOUSE_URL": url}) == "duckdb"


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg2"])
def test_postgres_forms_connect(
    scheme: str, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"{scheme}://{postgres_url.split('://', 1)[1]}"
    assert is_postgres_url(url) and storage_kind({"WAREHOUSE_URL": url}) == "postgres"
    with build_resources({"warehouse": WarehouseResource(url=url)}) as resources:
        warehouse = resources.warehouse.open()
    # psycopg2 (libpq) knows no SQLAlchemy driver suffix: the target is what it takes
    assert (warehouse.backend, warehouse.target) == ("postgres", postgres_url)
    assert warehouse.query("SELECT current_database()") == [(postgres_url.rsplit("/", 1)[1],)]
    assert warehouse.has_table("ops.cursors")
    assert list(tmp_path.iterdir()) == []  # no DuckDB file on the side


def test_a_password_is_masked_in_any_shape() -> None:
    assert mask_url_password(f"postgresql://u:{SECRET}@h/db") == "postgresql://u:***@h/db"
    assert mask_url_password(f" POSTGRESQL:/u:{SECRET}@h/db") == " POSTGRESQL:/u:***@h/db"
    assert mask_url_password(f"u:{SECRET}@h") == "u:***@h"
    assert mask_url_password(f"postgresql://h/db?user=u&password={SECRET}") == "postgresql://h/db?user=u&password=***"
    assert mask_url_password("postgresql://u@h/db") == "postgresql://u@h/db"
