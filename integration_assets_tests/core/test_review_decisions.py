"""review_decisions.yaml checks each decision when it loads: an action, no contradiction, a known reason code, one
decision per item. Each of these used to load without a word and then do nothing, or something else than meant.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from integration_assets.canonical.build import PLACEMENT_REASONS
from integration_assets.canonical.review import NEXT_ACTIONS, REASON_CODES, known_reason_codes, load_decisions
from integration_assets.canonical.validate import FORMAT_REASON
from integration_assets.core.config import ConfigError, default_path
from integration_assets.core.quarantine import NEXT_ACTIONS as QUARANTINE_NEXT_ACTIONS
from integration_assets.core.quarantine import QUARANTINE_REASONS
from integration_assets.mapping.dictionary import load_dictionary
from integration_assets.mapping.normalize import REASON_CODES as NORMALIZER_REASON_CODES
from integration_assets.writeback.review import REASONS as WRITEBACK_REASONS

ITEM = {"system": "billing", "object_type": "customers", "record_id": "cus_1", "reason_code": "ambiguous_owner"}
OTHER = {"system": "crm", "object_type": "contacts", "record_id": "20000063", "reason_code": "invalid_email"}


def _write(tmp_path: Path, *decisions: dict) -> Path:
    path = tmp_path / "review_decisions.yaml"
    path.write_text(yaml.safe_dump({"decisions": list(decisions)}, sort_keys=False), encoding="utf-8")
    return path


def _line(path: Path, index: int, key: str | None = None) -> int:
    """The line of decision `index` (its first line), or of its `key`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    starts = [n for n, text in enumerate(lines, start=1) if text.startswith("- ")]
    if key is None:
        return starts[index]
    end = starts[index + 1] if index + 1 < len(starts) else len(lines) + 1
    return next(n for n in range(starts[index], end) if re.match(rf"^[- ] {key}:", lines[n - 1]))


def test_valid_decisions_load(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {**ITEM, "owner": "crm:10000012", "note": "finance confirmed", "decided_by": "jane"},
        {**OTHER, "ignore": True},
        {**OTHER, "reason_code": "duplicate_record", "keep": True},
    )
    decisions = load_decisions(path)
    assert [d.owner or ("keep" if d.keep else "ignore") for d in decisions.decisions] == [
        "crm:10000012",
        "ignore",
        "keep",
    ]


@pytest.mark.parametrize(
    ("decision", "key", "message"),
    [
        ({**ITEM}, None, "no action: say one of owner: crm:<company id>, keep: true, ignore: true"),
        ({**ITEM, "keep": False, "ignore": False}, None, "no action"),
        ({**OTHER, "keep": True, "ignore": True}, "ignore", "contradictory: keep and ignore together"),
        ({**ITEM, "owner": "crm:1", "ignore": True}, "ignore", "contradictory: owner and ignore together"),
        ({**ITEM, "owner": "crm:1", "keep": True}, "keep", "contradictory: owner and keep together"),
        (
            {**ITEM, "reason_code": "ambigous_owner", "owner": "crm:1"},
            "reason_code",
            "unknown reason code 'ambigous_owner'",
        ),
        ({**OTHER, "reason_code": "", "ignore": True}, "reason_code", "unknown reason code ''"),
        ({**ITEM, "owner": "10000012"}, "owner", "owner '10000012' is not <system>:<record id>"),
        (
            {**ITEM, "owner": "hubspot:10000012"},
            "owner",
            "owner 'hubspot:10000012' is not <system>:<record id> (e.g. crm:10000012)",
        ),
        ({**ITEM, "owner": "crm:"}, "owner", "owner 'crm:' is not <system>:<record id> (e.g. crm:10000012)"),
        (
            {**ITEM, "object_type": "customer", "owner": "crm:1"},
            "object_type",
            "unknown object type 'customer' of billing",
        ),
    ],
    ids=[
        "no action",
        "only false actions",
        "keep and ignore",
        "owner and ignore",
        "owner and keep",
        "misspelled reason code",
        "empty reason code",
        "owner without system",
        "owner with a vendor name",
        "owner without id",
        "unknown object type",
    ],
)
def test_a_wrong_decision_is_refused_naming_file_line_and_entry(
    decision: dict, key: str | None, message: str, tmp_path: Path
) -> None:
    path = _write(tmp_path, {**OTHER, "ignore": True}, decision)
    entry = "decisions.1" + (f".{key}" if key else "")
    with pytest.raises(ConfigError) as error:
        load_decisions(path)
    assert f"{path}:{_line(path, 1, key)}: {entry}: {message}" in str(error.value), str(error.value)


@pytest.mark.parametrize("reason_code", sorted(QUARANTINE_NEXT_ACTIONS))
@pytest.mark.parametrize("action", [{"ignore": True}, {"keep": True}])
def test_a_decision_for_a_quarantined_record_is_refused(reason_code: str, action: dict, tmp_path: Path) -> None:
    """No decision applies to a record the sync could not store: it resolves when corrected at the vendor."""
    decision = {"system": "crm", "object_type": "contacts", "record_id": "20000063", "reason_code": reason_code}
    path = _write(tmp_path, {**OTHER, "ignore": True}, {**decision, **action})
    with pytest.raises(ConfigError) as error:
        load_decisions(path)
    message = str(error.value)
    assert f"{path}:{_line(path, 1, 'reason_code')}: decisions.1.reason_code: reason code {reason_code!r}" in message
    assert "crm/contacts/20000063" in message and "correct the record at the vendor" in message
    assert "next sync stores it" in message


def test_two_decisions_for_one_item_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, {**ITEM, "owner": "crm:1"}, {**OTHER, "ignore": True}, {**ITEM, "owner": "crm:2"})
    with pytest.raises(ConfigError) as error:
        load_decisions(path)
    assert (
        f"{path}:{_line(path, 2)}: decisions.2: a second decision for billing/customers/cus_1/ambiguous_owner "
        "(the first is decisions.0): one decision per item"
    ) in str(error.value)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = _write(tmp_path, {**ITEM}, {**OTHER, "keep": True, "ignore": True, "reason_code": "typo"})
    with pytest.raises(ConfigError) as error:
        load_decisions(path)
    assert [line.split(": ", 2)[1] for line in str(error.value).splitlines()] == [
        "decisions.0",
        "decisions.1.ignore",
        "decisions.1.reason_code",
    ]


def test_the_packaged_file_and_its_example_load(tmp_path: Path) -> None:
    """The example in the packaged file's comment is itself a valid decision."""
    assert load_decisions().decisions == []
    comment = default_path("review_decisions.yaml").read_text(encoding="utf-8")
    example = "\n".join(
        line.removeprefix("#   ") for line in comment.splitlines() if line.startswith("#   ") and ":" in line
    )
    example = example[example.index("- system:") :]
    path = tmp_path / "review_decisions.yaml"
    path.write_text("decisions:\n" + "\n".join("  " + line for line in example.splitlines()) + "\n")
    assert load_decisions(path).decisions[0].owner == "crm:10000012"


def test_the_known_reason_codes_are_every_code_the_queue_holds() -> None:
    """Every code a review item can carry is known, so a decision for it loads (and no typo does)."""
    produced = {
        *NEXT_ACTIONS,
        *NORMALIZER_REASON_CODES,
        *FORMAT_REASON.values(),
        *PLACEMENT_REASONS,
        *WRITEBACK_REASONS.values(),
        *QUARANTINE_NEXT_ACTIONS,
        "conflicting_values",
        "mixed_currencies",
    }
    assert produced <= REASON_CODES, sorted(produced - REASON_CODES)
    # the quarantine's are known (a decision naming one is refused with its own reason, not as a typo)
    assert set(QUARANTINE_NEXT_ACTIONS) == set(QUARANTINE_REASONS)
    identity_codes = {code for i in load_dictionary().identity.values() for code in i.review}
    assert identity_codes and identity_codes <= known_reason_codes()
