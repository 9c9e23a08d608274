"""The shared field dictionary: it loads, its paths exist in real vendor records, its label maps cover every
label clean data carries (and never the planted unknown one), broken variants fail with file, line and entry,
and the committed docs page is the rendered one."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from integration_assets.core.config import default_path
from integration_assets.core.payload import MISSING, resolve_path
from integration_assets.mapping.dictionary import ConfigError, load_dictionary, parse_dictionary
from integration_assets.mapping.docs import REGENERATE, render_markdown
from integration_assets.mapping.schema import SYSTEM_OBJECT_TYPES, FieldDictionary
from integration_assets.systems import CATALOG
from integration_assets_tests.testing import PROJECT
from integration_sandbox.generator import generate

DOCS_PAGE = PROJECT / "docs" / "field_dictionary.md"
VENDOR_DIRS = {"crm": "hubspot", "billing": "stripe", "support": "zendesk"}
ENTITIES = {"customers", "contacts", "deals", "invoices", "payments", "tickets"}


@pytest.fixture(scope="module")
def dictionary() -> FieldDictionary:
    return load_dictionary()


def _records(dataset: Path, system: str, object_type: str) -> list[dict]:
    return json.loads((dataset / VENDOR_DIRS[system] / f"{object_type}.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], list[dict]]:
    out = tmp_path_factory.mktemp("clean")
    generate(out, seed=1, scale=20)
    return {(s, o): _records(out, s, o) for s, types in SYSTEM_OBJECT_TYPES.items() for o in types}


def _all_paths(d: FieldDictionary) -> Iterator[tuple[str, str, str, str]]:
    """(system, object_type, path, where it is used) for every raw path the dictionary reads."""
    for entity_name, entity in d.entities.items():
        for field_name, spec in entity.fields.items():
            for system, source in spec.sources.items():
                for path in source.paths:
                    yield system, source.object_type, path, f"{entity_name}.{field_name} ({system})"
    for name, identity in d.identity.items():
        for step in identity.steps:
            used = f"identity.{name}.{step.name}"
            yield step.from_.system, step.from_.object_type, step.from_.path, used
            if step.where is not None:
                yield step.from_.system, step.from_.object_type, step.where.path, used
            target_object = step.match.object_type or identity.target.object_type
            yield identity.target.system, target_object, step.match.path, used
            yield identity.target.system, target_object, step.match.yields, used


def _flat(value: object) -> list[object]:
    return [v for item in value for v in _flat(item)] if isinstance(value, list) else [value]


# ----------------------------------------------------------------------------------- the shipped dictionary


def test_the_shipped_dictionary_loads_with_its_entities(dictionary: FieldDictionary) -> None:
    assert set(dictionary.entities) == ENTITIES
    assert load_dictionary() is dictionary  # cached
    assert load_dictionary(default_path("field_dictionary.yaml")).entities == dictionary.entities
    for entity in dictionary.entities.values():
        for spec in entity.fields.values():
            assert spec.description.strip().endswith((".", ")")), spec.description


def test_convenience_lookups(dictionary: FieldDictionary) -> None:
    assert dictionary.entity("deals").field("amount").type == "money"
    with pytest.raises(KeyError, match="no entity 'people'"):
        dictionary.entity("people")

    from_invoices = {(f.entity, f.field): f.paths for f in dictionary.fields_from("billing", "invoices")}
    assert from_invoices[("invoices", "total")] == ("total", "currency")
    assert from_invoices[("invoices", "deal_id")] == ("metadata.hubspot_deal_id",)
    from_orgs = {(f.entity, f.field): f.paths for f in dictionary.fields_from("support", "organizations")}
    assert from_orgs[("customers", "customer_id")] == ("external_id",)
    assert from_orgs[("customers", "plan")] == ("organization_fields.plan",)
    assert dictionary.fields_from("billing", "payments") == []  # the object type is `charges`

    stages = dictionary.label_map("crm", "deals", "dealstage")
    assert dictionary.label_map("crm", "deals", "properties.dealstage") is stages
    assert stages.translate("closedwon") == "won" and stages.translate("closed_maybe") is None
    assert dictionary.label_map("support", "users", "role").map == {
        "end-user": "customer",
        "agent": "staff",
        "admin": "staff",
    }
    with pytest.raises(KeyError):
        dictionary.label_map("crm", "deals", "pipeline")

    assert set(dictionary.pii_fields("contacts")) == {"email", "first_name", "last_name", "full_name", "phone"}
    assert dictionary.is_pii("payments", "payer_email") and not dictionary.is_pii("deals", "amount")
    with pytest.raises(KeyError):
        dictionary.is_pii("deals", "nope")


def test_write_backs_are_listed(dictionary: FieldDictionary) -> None:
    writes = {d for e in dictionary.entities.values() for f in e.fields.values() for d in f.destinations}
    assert "support.organizations.organization_fields.plan" in writes
    assert "crm.deals.properties.invoice_status" in writes


def test_the_object_types_are_the_connectors(dictionary: FieldDictionary) -> None:
    """Every object type the dictionary reads is a stream of the catalog, so a connector lands it."""
    read = {(system, object_type) for system, object_type, _, _ in _all_paths(dictionary)}
    assert read and read <= {(s.role, s.object_type) for s in CATALOG.streams}


def test_hubspot_properties_read_are_requested_by_the_connector(dictionary: FieldDictionary) -> None:
    """HubSpot returns only the properties a request names: a dictionary path outside the list is always null."""
    requested = {s.object_type: set(s.reader.properties) for s in CATALOG.streams_of("crm")}
    missing = [
        f"{object_type}.{path} ({used})"
        for system, object_type, path, used in _all_paths(dictionary)
        if system == "crm" and path.startswith("properties.") and path.split(".")[1] not in requested[object_type]
    ]
    assert not missing, f"not in integration_assets/systems/crm/streams.py: {missing}"


def test_every_path_exists_in_generated_records(dictionary: FieldDictionary, clean) -> None:
    problems = []
    for system, object_type, path, used in _all_paths(dictionary):
        records = clean[(system, object_type)]
        assert records, f"no generated {system} {object_type}"
        values = [resolve_path(r, path) for r in records]
        absent = sum(v is MISSING for v in values)
        if absent:
            problems.append(
                f"{used}: {system} {object_type} path {path!r} is absent in {absent}/{len(records)} records"
            )
        elif all(v is None for v in _flat(values)):
            problems.append(f"{used}: {system} {object_type} path {path!r} is null in every record")
    assert not problems, "\n".join(problems)


def test_label_maps_cover_every_label_in_clean_data(dictionary: FieldDictionary, clean) -> None:
    uncovered, seen = [], set()
    for entity in dictionary.entities.values():
        for spec in entity.fields.values():
            for system, source in spec.sources.items():
                if source.label is None:
                    continue
                seen.add(source.label)
                label = dictionary.labels[source.label]
                values = {v for r in clean[(system, source.object_type)] for v in _flat(resolve_path(r, source.path))}
                values.discard(None)
                assert values, f"{source.label}: no labels in the generated data"
                uncovered += [f"{source.label}: {v!r}" for v in sorted(values) if label.translate(v) is None]
    assert not uncovered, uncovered
    assert seen == set(dictionary.labels)


def test_the_planted_unknown_label_is_not_mapped(dictionary: FieldDictionary, tmp_path: Path) -> None:
    manifest = generate(tmp_path, seed=3, scale=30, defect_rate=0.5)
    planted = [d for d in manifest["defects"] if d["kind"] == "unknown_status_label"]
    assert planted
    stages = {r["id"]: r["properties"]["dealstage"] for r in _records(tmp_path, "crm", "deals")}
    assert {stages[d["id"]] for d in planted} == {"closed_maybe"}
    for key, label in dictionary.labels.items():
        assert "closed_maybe" not in label.map, key
        assert label.translate("closed_maybe") is None


def test_resolve_path_tells_missing_from_null() -> None:
    record = {"a": {"b": None, "c": [{"id": "1"}, {"id": "2"}]}, "n": None, "t": ["x"]}
    assert resolve_path(record, "a.b") is None
    assert resolve_path(record, "a.z") is MISSING
    assert resolve_path(record, "n.deeper") is None
    assert resolve_path(record, "a.c[].id") == ["1", "2"]
    assert resolve_path(record, "a.c[].nope") is MISSING
    assert resolve_path(record, "t[]") == ["x"]
    assert resolve_path(record, "a.b.c") is None
    assert resolve_path({"a": "text"}, "a.b") is MISSING


# ------------------------------------------------------------------------------------ broken dictionaries

SHIPPED = default_path("field_dictionary.yaml").read_text(encoding="utf-8")


def _delete_block(text: str, header: str) -> str:
    """Removes the YAML block starting at the line `header` (and its more indented lines)."""
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.rstrip() == header)
    indent = len(header) - len(header.lstrip())
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent):
        end += 1
    return "".join(lines[:start] + lines[end:])


# name: (old text, new text, text on the line the error must name, entry the error must name)
BROKEN = {
    "unknown type": (
        "        type: phone\n        description: The client's main phone",
        "        type: telephone\n        description: The client's main phone",
        "type: telephone",
        "entities.customers.fields.phone.type",
    ),
    "owner not a source": (
        "        owner: billing\n        empty: allow\n        conflict: review",
        "        owner: support\n        empty: allow\n        conflict: review",
        "owner: support",
        "entities.customers.fields.billing_customer_id.owner",
    ),
    "default without empty default": (
        "        empty: default\n        default: (unnamed deal)\n",
        "        empty: allow\n        default: (unnamed deal)\n",
        "default: (unnamed deal)",
        "entities.deals.fields.name.default",
    ),
    "empty default without a default": (
        "        empty: default\n        default: (no subject)\n",
        "        empty: default  # tickets.subject\n",
        "empty: default  # tickets.subject",
        "entities.tickets.fields.subject.empty",
    ),
    "unknown object type": (
        "billing: {object_type: charges, path: invoice}",
        "billing: {object_type: payments, path: invoice}",
        "object_type: payments, path: invoice",
        "entities.payments.fields.invoice_id.sources.billing.object_type",
    ),
    "unknown system": (
        "          support: {object_type: tickets, path: via.channel}",
        "          helpdesk: {object_type: tickets, path: via.channel}",
        "helpdesk: {object_type: tickets",
        "entities.tickets.fields.channel.sources.helpdesk",
    ),
    "duplicate destination": (
        "destinations: [canonical.tickets.channel]",
        "destinations: [canonical.tickets.channel, support.organizations.organization_fields.plan]",
        "[canonical.tickets.channel, support.organizations",
        "entities.tickets.fields.channel.destinations.1",
    ),
    "money without a currency path": (
        "amount: amount_refunded, currency: currency, unit: minor}",
        "amount: amount_refunded, unit: minor}",
        "amount: amount_refunded, unit: minor}",
        "entities.payments.fields.amount_refunded.sources.billing",
    ),
    "label map with a fallback": (
        "      closedlost: lost\n",
        "      closedlost: lost\n      default: lost\n",
        "      default: lost",
        "labels.crm.deals.dealstage.map.default",
    ),
    "label value outside the canonical labels": (
        "      hold: waiting\n",
        "      hold: on_hold\n",
        "      hold: on_hold",
        "labels.support.tickets.status.map.hold",
    ),
    "duplicate key": (
        "      closedlost: lost\n",
        "      closedlost: lost\n      closedwon: lost\n",
        "      closedwon: lost",
        "labels.crm.deals.dealstage.map.closedwon",
    ),
    "newest_wins from Stripe": (
        "        owner: billing\n        format: {pattern: '^[A-Z]{3}$', unit: ISO-4217 code with a minor unit}\n"
        "        empty: allow\n        conflict: owner_wins",
        "        owner: billing\n        format: {pattern: '^[A-Z]{3}$', unit: ISO-4217 code with a minor unit}\n"
        "        empty: allow\n        conflict: newest_wins",
        "conflict: newest_wins",
        "entities.customers.fields.currency.conflict",
    ),
    "yaml syntax error": (
        "        description: The client's name as sales records it; the Stripe",
        "        description: The client's name: as sales records it; the Stripe",
        "The client's name: as sales",
        "entities.customers.fields.name.description",
    ),
}


@pytest.mark.parametrize("case", BROKEN, ids=list(BROKEN))
def test_a_broken_dictionary_names_file_line_and_entry(case: str, tmp_path: Path) -> None:
    old, new, marker, entry = BROKEN[case]
    assert SHIPPED.count(old) == 1, f"{case}: the shipped dictionary changed; update the test's snippet"
    text = SHIPPED.replace(old, new)
    line = text[: text.index(marker)].count("\n") + 1
    path = tmp_path / f"{case.replace(' ', '_')}.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_dictionary(path)
    assert f"{path}:{line}: {entry}: " in str(error.value), str(error.value)


def test_a_missing_label_map_is_named_where_it_is_used(tmp_path: Path) -> None:
    path = tmp_path / "no_dealstage.yaml"
    text = _delete_block(SHIPPED, "  crm.deals.dealstage:")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_dictionary(path)
    line = text[: text.index("label: crm.deals.dealstage}")].count("\n") + 1
    assert f"{path}:{line}: entities.deals.fields.stage.sources.crm.label: no label map 'crm.deals.dealstage'" in str(
        error.value
    )


def test_a_label_field_must_name_its_map(tmp_path: Path) -> None:
    text = SHIPPED.replace(
        "path: properties.dealstage, label: crm.deals.dealstage}",
        "path: properties.dealstage}",
    )
    with pytest.raises(ConfigError, match=r"x\.yaml:\d+: entities\.deals\.fields\.stage\.sources\.crm: a label field"):
        parse_dictionary(text, "x.yaml")


def test_every_problem_is_reported_at_once() -> None:
    text = SHIPPED.replace("        default: (unnamed deal)\n", "").replace(
        "billing: {object_type: charges, path: invoice}", "billing: {object_type: refunds, path: invoice}"
    )
    with pytest.raises(ConfigError) as error:
        parse_dictionary(text, "x.yaml")
    lines = str(error.value).splitlines()
    assert len(lines) == 2 and all(re.match(r"x\.yaml:\d+: entities\.", line) for line in lines), lines


def test_an_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_dictionary(tmp_path / "absent.yaml")


# ------------------------------------------------------------------------------------------- the docs page


def test_the_docs_page_is_current(dictionary: FieldDictionary) -> None:
    committed = DOCS_PAGE.read_text(encoding="utf-8") if DOCS_PAGE.exists() else ""
    assert committed == render_markdown(dictionary), f"docs/field_dictionary.md is stale; run: {REGENERATE}"


def test_the_docs_module_prints_the_page(dictionary: FieldDictionary) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "integration_assets.mapping.docs"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == render_markdown(dictionary)
    for name in ENTITIES:
        assert f"## {name}\n" in done.stdout
    assert "### crm.deals.dealstage" in done.stdout
