"""Every configuration file refuses a duplicate key, naming the file, the line and the entry.

YAML itself keeps the last of two equal keys without a word: `deals: [read]` then `deals: [read, update, delete]`
in access_policy.yaml granted delete. One loader (`core/config.py`) reads every file, so one check covers all.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from integration_assets.canonical.review import load_decisions
from integration_assets.core.access import load_policy
from integration_assets.core.config import ConfigError, default_path, parse_yaml
from integration_assets.core.monitoring_config import MonitoringConfig, load_monitoring
from integration_assets.mapping.dictionary import load_dictionary
from integration_assets.writeback.config import load_writeback
from integration_assets_tests.testing import PROJECT
from integration_sandbox.faults import FaultProfile, load_profile

# file -> (its loader, the line after which a duplicate goes, the duplicate, the entry an error names)
CASES: dict[str, tuple[Callable[[Path], Any], str, str, str]] = {
    "access_policy.yaml": (
        load_policy,
        "      deals: [read]\n",
        "      deals: [read, update, delete]\n",
        "connectors.crm_source.allow.deals",
    ),
    "writeback.yaml": (
        load_writeback,
        "    behaviour: create_only\n",
        "    behaviour: upsert\n",
        "flows.crm_to_billing.behaviour",
    ),
    "monitoring.yaml": (
        load_monitoring,
        "  default: integration-team\n",
        "  default: somebody-else\n",
        "owners.default",
    ),
    "review_decisions.yaml": (load_decisions, "decisions: []\n", "decisions: []\n", "decisions"),
    "field_dictionary.yaml": (load_dictionary, "version: 1\n", "version: 1\n", "version"),
}


def _with_duplicate(text: str, after: str, duplicate: str) -> tuple[str, int]:
    """The text with `duplicate` inserted after the first `after`, and the line the duplicate is on."""
    assert after in text, f"the packaged file changed: {after!r} is gone; update the test"
    at = text.index(after) + len(after)
    return text[:at] + duplicate + text[at:], text[:at].count("\n") + 1


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_duplicate_key_in_each_configuration_file_is_refused_with_file_and_line(name: str, tmp_path: Path) -> None:
    load, after, duplicate, entry = CASES[name]
    text, line = _with_duplicate(default_path(name).read_text(encoding="utf-8"), after, duplicate)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load(path)
    key = entry.rsplit(".", 1)[-1]
    assert f"{path}:{line}: {entry}: duplicate key {key!r} (first at line {line - 1})" in str(error.value)


def test_the_override_folder_copy_is_refused_the_same_way(config_dir: Path) -> None:
    """The grant is not widened when the duplicate is in the operator's copy, the file actually in force."""
    _, after, duplicate, _ = CASES["access_policy.yaml"]
    text, line = _with_duplicate(default_path("access_policy.yaml").read_text(encoding="utf-8"), after, duplicate)
    (config_dir / "access_policy.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"access_policy\.yaml:{line}: connectors\.crm_source\.allow\.deals: "):
        load_policy()


def test_a_duplicate_key_in_a_fault_profile_is_refused(tmp_path: Path) -> None:
    source = PROJECT / "data" / "faults" / "bad_day.yaml"
    text, line = _with_duplicate(source.read_text(encoding="utf-8"), "seed: 42\n", "seed: 7\n")
    path = tmp_path / "bad_day.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{path}:{line}: seed: duplicate key 'seed'"):
        load_profile(str(path))


def test_every_duplicate_is_reported_at_once_where_it_is() -> None:
    text = "owners:\n  default: a\n  crm: b\n  default: c\nhealth: {}\nowners: {default: d}\n"
    with pytest.raises(ConfigError) as error:
        parse_yaml(text, MonitoringConfig, "m.yaml")
    assert str(error.value).splitlines() == [
        "m.yaml:4: owners.default: duplicate key 'default' (first at line 2): YAML would silently keep the last "
        "one; remove or merge one of them",
        "m.yaml:6: owners: duplicate key 'owners' (first at line 1): YAML would silently keep the last one; remove "
        "or merge one of them",
    ]


@pytest.mark.parametrize(
    ("text", "entry"),
    [
        ("seed: 1\ndefault:\n  latency_ms: [1, 2]\n  latency_ms: [3, 4]\n", "default.latency_ms"),
        ("seed: 1\n'seed': 2\n", "seed"),  # quoting does not make it another key
        ("default:\n  rates: {500: 0.1, 500.0: 0.2}\n", "default.rates.500.0"),  # equal once loaded
        ("default:\n  rates: {500: 0.1, 0x1f4: 0.2}\n", "default.rates.0x1f4"),
    ],
)
def test_keys_are_compared_as_the_loaded_data_holds_them(text: str, entry: str) -> None:
    with pytest.raises(ConfigError, match=rf"^p\.yaml:\d+: {re.escape(entry)}: duplicate key"):
        parse_yaml(text, FaultProfile, "p.yaml")


def test_a_merge_key_override_and_a_shared_anchor_are_not_duplicates() -> None:
    text = (
        "seed: 3\n"
        "default: &base\n  latency_ms: [1, 2]\n  timeout_hold_s: 1\n"
        "hubspot:\n  <<: *base\n  timeout_hold_s: 5\n"  # an override of a merged key is what merge keys are for
        "stripe: *base\n"
    )
    profile = parse_yaml(text, FaultProfile, "p.yaml")
    assert profile.hubspot.timeout_hold_s == 5 and profile.stripe.timeout_hold_s == 1


def test_a_duplicate_inside_a_list_entry_names_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "review_decisions.yaml"
    path.write_text(
        "decisions:\n"
        "  - system: billing\n    object_type: customers\n    record_id: cus_1\n    reason_code: ambiguous_owner\n"
        "    owner: crm:1\n    owner: crm:2\n",
        encoding="utf-8",
    )
    with pytest.raises(
        ConfigError, match=rf"^{path}:7: decisions\.0\.owner: duplicate key 'owner' \(first at line 6\)"
    ):
        load_decisions(path)
