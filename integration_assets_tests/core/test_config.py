"""Where configuration comes from: the packaged defaults, overridden file by file by the folder
INTEGRATION_CONFIG_DIR names, read again whenever a file changes, with errors that name the file and line."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from integration_assets.canonical.assets import CanonicalConfig
from integration_assets.canonical.review import load_decisions
from integration_assets.core.access import load_policy
from integration_assets.core.config import ConfigError, config_files, config_path, default_path, load_config
from integration_assets.core.monitoring_config import MonitoringConfig, load_monitoring
from integration_assets.core.resources import VendorConnection
from integration_assets.mapping.dictionary import load_dictionary
from integration_assets.writeback.config import load_writeback
from integration_assets_tests.testing import PROJECT

PACKAGED = ("access_policy.yaml", "field_dictionary.yaml", "monitoring.yaml", "review_decisions.yaml", "writeback.yaml")


def _edited(name: str, change: Callable[[dict], None]) -> str:
    settings = yaml.safe_load(default_path(name).read_text(encoding="utf-8"))
    change(settings)
    return yaml.safe_dump(settings, sort_keys=False)


def _settled(path: Path) -> Path:
    """Dates the file a minute back, as an edit made earlier would be (a just-written file is never kept)."""
    past = time.time() - 60
    os.utime(path, (past, past))
    return path


def test_the_packaged_files() -> None:
    assert config_files() == PACKAGED


@pytest.mark.parametrize("name", PACKAGED)
def test_without_an_override_folder_the_packaged_file_is_used(name: str) -> None:
    assert "INTEGRATION_CONFIG_DIR" not in os.environ  # conftest clears it for every test
    assert config_path(name) == default_path(name)
    assert default_path(name).parent == PROJECT / "integration_assets" / "defaults"


DECISION = {
    "system": "billing",
    "object_type": "customers",
    "record_id": "cus_1",
    "reason_code": "ambiguous_owner",
    "owner": "crm:1",
}
# Each loader, and an edit to its file whose effect it shows.
OVERRIDES = {
    "access_policy.yaml": (
        lambda s: s["connectors"].pop("crm_to_billing"),
        lambda: "crm_to_billing" not in load_policy().connectors,
    ),
    "field_dictionary.yaml": (
        lambda s: s["entities"]["deals"]["fields"]["amount"].update(description="Edited by the operator."),
        lambda: load_dictionary().entity("deals").field("amount").description == "Edited by the operator.",
    ),
    "monitoring.yaml": (
        lambda s: s["owners"].update(default="night-shift"),
        lambda: load_monitoring().owners.default == "night-shift",
    ),
    "review_decisions.yaml": (
        lambda s: s.update(decisions=[DECISION]),
        lambda: load_decisions().for_key(("billing", "customers", "cus_1", "ambiguous_owner")) is not None,
    ),
    "writeback.yaml": (
        lambda s: s["circuit_breaker"].update(failures_to_open=9),
        lambda: load_writeback().circuit_breaker.failures_to_open == 9,
    ),
}


@pytest.mark.parametrize("name", PACKAGED)
def test_a_file_in_the_override_folder_wins_file_by_file(name: str, config_dir: Path) -> None:
    change, shows = OVERRIDES[name]
    assert not shows()
    (config_dir / name).write_text(_edited(name, change), encoding="utf-8")
    assert config_path(name) == config_dir / name
    assert shows()
    for other in PACKAGED:  # the other files still come from the package
        if other != name:
            assert config_path(other) == default_path(other)


def test_a_file_is_read_again_when_it_changes_and_kept_while_it_does_not(config_dir: Path) -> None:
    path = config_dir / "monitoring.yaml"
    path.write_text(_edited("monitoring.yaml", lambda s: s["owners"].update(default="aaaa")), encoding="utf-8")
    _settled(path)
    first = load_monitoring()
    assert first.owners.default == "aaaa" and load_monitoring() is first  # unchanged: the same object
    # an edit of the same size, right away (within one timestamp tick): still seen, no cache to clear
    path.write_text(path.read_text(encoding="utf-8").replace("aaaa", "bbbb"), encoding="utf-8")
    assert load_monitoring().owners.default == "bbbb"
    path.write_text(path.read_text(encoding="utf-8").replace("bbbb", "cccc"), encoding="utf-8")
    assert load_monitoring().owners.default == "cccc"
    path.unlink()  # the operator's copy is gone: back to the packaged file
    assert (
        load_monitoring().owners.default
        == yaml.safe_load(default_path("monitoring.yaml").read_text())["owners"]["default"]
    )


def test_an_explicit_path_is_cached_by_the_same_rule(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere.yaml"
    path.write_text(default_path("monitoring.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    _settled(path)
    assert load_config("monitoring.yaml", MonitoringConfig, path) is load_monitoring(path)


def test_a_broken_override_names_its_file_and_line(config_dir: Path) -> None:
    text = default_path("monitoring.yaml").read_text(encoding="utf-8").replace("min_calls: 10", "min_calls: 0", 1)
    (config_dir / "monitoring.yaml").write_text(text, encoding="utf-8")
    line = text[: text.index("min_calls: 0")].count("\n") + 1
    with pytest.raises(ConfigError, match=rf"^{config_dir / 'monitoring.yaml'}:{line}: health\.min_calls: "):
        load_monitoring()


def test_an_override_folder_that_does_not_exist_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTEGRATION_CONFIG_DIR", str(tmp_path / "absent"))
    with pytest.raises(ConfigError, match=r"INTEGRATION_CONFIG_DIR=.*absent: not a folder"):
        load_monitoring()


def test_an_unknown_name_is_an_error() -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        config_path("nothing.yaml")


def test_no_run_or_resource_config_names_a_configuration_file() -> None:
    """One rule for overrides: no path fields in run config or resources (they would show in the Dagster UI)."""
    assert not [f for f in CanonicalConfig.model_fields if f.endswith("_path")]
    assert not [f for f in VendorConnection.model_fields if f.endswith("_path")]


@pytest.mark.parametrize("setting", ["MONITORING_CONFIG", "WRITEBACK_CONFIG"])
def test_a_retired_per_file_setting_is_refused_not_ignored(setting: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before INTEGRATION_CONFIG_DIR these named one file each: still set, they would silently do nothing."""
    monkeypatch.setenv(setting, "/etc/integration/monitoring.yaml")
    with pytest.raises(ConfigError, match=rf"{setting} is no longer read: .* set INTEGRATION_CONFIG_DIR"):
        load_monitoring()
