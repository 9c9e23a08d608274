"""The write-back's parts on their own: its configuration, the fields the dictionary lets each flow write, the
circuit breaker, the behaviours and the payload contracts."""

from __future__ import annotations

from pathlib import Path

import pytest

from integration_assets.core.config import ConfigError, default_path
from integration_assets.core.errors import Category, IntegrationError, Resource
from integration_assets.core.evidence import mask
from integration_assets.mapping.dictionary import load_dictionary
from integration_assets.systems.support.resource import ZendeskResource
from integration_assets.writeback.breaker import CircuitBreaker
from integration_assets.writeback.config import Behaviour, load_writeback
from integration_assets.writeback.contracts import violations
from integration_assets.writeback.flows.crm_to_support import CrmToSupport
from integration_assets.writeback.model import PlannedWrite
from integration_assets.writeback.ownership import writable_fields


def test_shipped_settings_load_and_a_broken_file_names_its_line(config_dir: Path) -> None:
    shipped = load_writeback()
    assert shipped.flow("crm_to_billing").behaviour == Behaviour.CREATE_ONLY
    broken = config_dir / "writeback.yaml"  # the operator's copy, which wins over the packaged file
    text = default_path("writeback.yaml").read_text().replace("behaviour: update_only", "behaviour: mirror", 1)
    broken.write_text(text)
    line = text.splitlines().index("    behaviour: mirror") + 1
    with pytest.raises(ConfigError) as error:
        load_writeback()
    assert f"{broken}:{line}: flows.billing_to_crm.behaviour:" in str(error.value)


def test_each_flow_writes_only_what_its_source_owns() -> None:
    dictionary = load_dictionary()
    fields = {
        (source, system, kind): sorted(f.field for f in writable_fields(dictionary, source, system, kind))
        for source, system, kind in [
            ("billing", "crm", "deals"),
            ("billing", "crm", "companies"),
            ("crm", "support", "organizations"),
            ("support", "support", "organizations"),
        ]
    }
    assert fields[("billing", "crm", "deals")] == ["invoice_status"]
    assert fields[("billing", "crm", "companies")] == []  # billing owns no company property
    assert fields[("crm", "support", "organizations")] == ["lifetime_value", "plan"]  # not the support-owned owner
    assert fields[("support", "support", "organizations")] == []


def test_breaker_opens_on_a_run_of_server_failures_only() -> None:
    def error(category: Category) -> IntegrationError:
        return IntegrationError(category, "x", Resource("billing"), "none")

    breaker = CircuitBreaker(failures_to_open=3)
    for category in (Category.TRANSIENT, Category.TRANSIENT, Category.REJECTED_VALUE, Category.TRANSIENT):
        breaker.record_failure("billing", error(category))
    assert not breaker.is_open("billing")  # a refusal means the destination answered
    breaker.record_failure("billing", error(Category.TRANSIENT))
    breaker.record_failure("billing", error(Category.TRANSIENT))
    assert breaker.is_open("billing") and not breaker.is_open("crm")


def test_behaviours() -> None:
    assert Behaviour.CREATE_ONLY.allows("create") and not Behaviour.CREATE_ONLY.allows("update")
    assert Behaviour.UPDATE_ONLY.allows("update") and not Behaviour.UPDATE_ONLY.allows("create")
    assert Behaviour.UPSERT.allows("create") and Behaviour.UPSERT.allows("update")


def test_a_payload_that_breaks_its_contract_is_caught_before_sending() -> None:
    client = ZendeskResource(base_url="http://127.0.0.1:9", email="a@b.test", api_token="t").client("crm_to_support")
    flow = CrmToSupport(client, load_dictionary())

    def write(plan: str, value: float) -> PlannedWrite:
        payload = {"organization_id": "support:1", "plan": plan, "lifetime_value": value}
        return PlannedWrite(
            "crm_to_support",
            "support",
            "organizations",
            "crm:1",
            "update",
            payload,
            "k",
            "crm:1",
            "support/organizations/1",
        )

    found = violations(
        [write("starter", 10.0), write("platinum", 10.0), write("starter", -5.0)], flow.contract("organizations")
    )
    assert sorted(found) == [1, 2]
    assert "plan" in found[1][0] and "lifetime_value" in found[2][0]
    # the failing value may be personal data: what reaches the sync log and the review queue is its fingerprint
    assert "platinum" not in found[1][0] and mask("platinum") in found[1][0]
    assert "-5" not in found[2][0] and mask(-5.0) in found[2][0]
