"""What every reconciliation check shares: the diff table's columns, record references and raw lookups, and
the one step that runs the cross-system checks.

A reconciliation row names the record a person has to open (`system`, `object_type`, `id`: the vendor's own
id, as the sandbox manifest and the review queue name it, with `link` to its page at the vendor), the problem
kind, the field, both sides, and the record of the other side (`other_record`, with `other_link`). Money is
shown in its currency's major units with its code ("49,250.00 USD"); the exact minor-unit figures sit in
`this_minor` and `other_minor`. The UI shows the rows as a table (`DIFF_SCHEMA`), up to
`reconciliation.sample_rows` of monitoring.yaml, with the total counted beside it.

The cross-system checks (`billing`, `customers`, `tickets`) are each a `CrossSystemCheck`: a name, the
canonical asset it is shown on, the other canonical tables it reads, and what it computes from the warehouse.
`cross_system_step` runs them all in one step (one process, one warehouse connection), yet each is its own
asset check in the UI, with its own history, executable alone: the step evaluates only the checks selected
in its run. Each follows its canonical inputs (`automation_condition("reconciliation")`).
"""

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
    TableSchema,
    multi_asset_check,
)

from integration_assets.core.evidence import as_check, check_result, first_named, schema
from integration_assets.core.monitoring_config import load_monitoring
from integration_assets.core.policies import automation_condition
from integration_assets.core.warehouse import Warehouse, json_path, validate_table
from integration_assets.mapping.normalize import Money, currency_exponent
from integration_assets.mapping.schema import FieldDictionary
from integration_assets.reconciliation.findings import FindingsDelta
from integration_assets.systems import CATALOG

__all__ = [
    "CROSS_SYSTEM_STEP",
    "DIFF_COLUMNS",
    "DIFF_SCHEMA",
    "CrossSystemCheck",
    "Ref",
    "canonical_key",
    "cross_system_step",
    "diff_row",
    "found_text",
    "json_string",
    "json_text",
    "money_text",
    "outcome",
    "ref_text",
    "reference_sql",
    "source_refs",
]

CROSS_SYSTEM_STEP = "cross_system_checks"  # the step's (op's) name
DIFF_SCHEMA: TableSchema = schema(
    ("system", "string", "The system holding the record to open (its role: crm, billing, support)."),
    ("object_type", "string", "The vendor's object type of the record."),
    ("id", "string", "The vendor's own id of the record."),
    ("link", "url", "The record's page at the vendor; empty against the local sandbox."),
    ("problem", "string", "What is wrong."),
    ("field", "string", "The field that disagrees."),
    ("this_side", "string", "The record's value (money in major units with its currency)."),
    ("other_side", "string", "The value it should agree with."),
    ("this_minor", "int", "This side's amount in minor units (cents; yen for JPY), when it is money."),
    ("other_minor", "int", "The other side's amount in minor units, when it is money."),
    ("other_record", "string", "The record holding the other side (system/object_type/id)."),
    ("other_link", "url", "The other record's page at the vendor; empty against the local sandbox."),
)
DIFF_COLUMNS = tuple(column.name for column in DIFF_SCHEMA.columns)
Ref = tuple[str, str, str]  # (system, object_type, vendor id)


def canonical_key(entity: str) -> AssetKey:
    return AssetKey(["canonical", entity])


def source_refs(source_records: Any) -> list[Ref]:
    """`crm/companies/1, billing/customers/cus_2` (a canonical row's `source_records`) as references."""
    refs: list[Ref] = []
    for part in str(source_records or "").split(", "):
        pieces = part.split("/", 2)
        if len(pieces) == 3:
            refs.append((pieces[0], pieces[1], pieces[2]))
    return refs


def ref_text(ref: Ref) -> str:
    """`crm/deals/123`: a record as `source_records` and the summaries name it."""
    return "/".join(ref)


def money_text(minor: int, currency: str) -> str:
    """`4925000, "USD"` → `49,250.00 USD`; `150000, "JPY"` → `150,000 JPY` (the currency's own decimals).

    A code without an ISO-4217 minor unit is shown as the minor-unit figure it is, saying so."""
    if currency_exponent(str(currency)) is None:
        return f"{minor} {currency} (minor units)"
    text = Money(int(minor), str(currency)).major_text()
    sign, digits = ("-", text[1:]) if text.startswith("-") else ("", text)
    whole, dot, fraction = digits.partition(".")
    return f"{sign}{int(whole):,}{dot}{fraction} {currency}"


def diff_row(
    ref: Ref,
    problem: str,
    field: str,
    this_side: Any,
    other_side: Any,
    other: Ref | None = None,
    *,
    this_minor: int | None = None,
    other_minor: int | None = None,
) -> dict[str, Any]:
    """One row of the diff table: `other` is the record holding the other side, when one does."""
    system, object_type, record_id = ref
    return {
        "system": system,
        "object_type": object_type,
        "id": record_id,
        "link": CATALOG.record_page(system, object_type, record_id),
        "problem": problem,
        "field": field,
        "this_side": "" if this_side is None else this_side,
        "other_side": "" if other_side is None else other_side,
        "this_minor": this_minor,
        "other_minor": other_minor,
        "other_record": ref_text(other) if other else "",
        "other_link": CATALOG.record_page(*other) if other else None,
    }


def json_text(column: str, path: str) -> str:
    """SQL for the text at a dotted payload path (`metadata.hubspot_deal_id` → `payload->'metadata'->>'…'`).
    A path that maps over a list (`lines[]`) has no single value and is refused."""
    return json_path(column, path.split("."), text=True)


def json_string(column: str, path: str) -> str:
    """SQL for the text at a dotted payload path when the value there is a JSON string; NULL otherwise (missing,
    null, a number, a boolean, a list or an object), where `json_text` would give a number's digits as text.

    A JSON value cast to text starts with `"` exactly when it is a string, on DuckDB's JSON and PostgreSQL's
    jsonb alike."""
    value = json_path(column, path.split("."))
    return f"CASE WHEN substr(CAST({value} AS TEXT), 1, 1) = '\"' THEN {json_text(column, path)} END"


def reference_sql(dictionary: FieldDictionary, entity: str, field: str, system: str, table: str) -> str:
    """A query of the canonical ids `field` points at in the live raw records of `table`, read through the
    dictionary's path for `system`: where a record in review must still count (an invoice in review still bills
    its deal). Lists and objects, empty and missing values point at nothing."""
    source = dictionary.entity(entity).field(field).sources[system]
    value = json_text("payload", source.path or "")
    prefix = f"{source.id_system or system}:"
    return (
        f"SELECT DISTINCT '{prefix}' || trim(v) AS ref FROM (SELECT {value} AS v FROM {validate_table(table)} "
        "WHERE NOT is_deleted) AS r WHERE v IS NOT NULL AND trim(v) <> '' AND substr(v, 1, 1) NOT IN ('{', '[')"
    )


def outcome(
    *,
    system: str,
    rows: Sequence[Mapping[str, Any]],
    kinds: Sequence[str],
    ok_summary: str,
    summary: str,
    next_action: str,
    severity: AssetCheckSeverity,
    extra_counts: Mapping[str, int | float] | None = None,
    findings: FindingsDelta | None = None,
    extra_text: Mapping[str, str] | None = None,
) -> AssetCheckResult:
    """The check's result through `check_result`: every problem kind counted (zeros too, so plots are whole),
    a failing summary naming the counts and the first records, the records as the `DIFF_SCHEMA` table.

    With `findings` (what `findings.record_findings` stored of `rows`), the counts of new, persisting and
    resolved findings are added, the summary names the new ones only, and the metadata says which table holds
    the full list (the table shown here is capped)."""
    counts: dict[str, int | float] = {kind: sum(1 for r in rows if r["problem"] == kind) for kind in kinds}
    counts.update(extra_counts or {})
    text = ok_summary if not rows else _failing_summary(summary, found_text(counts, kinds), rows)
    extra: dict[str, Any] = {name: MetadataValue.text(value) for name, value in (extra_text or {}).items()}
    if findings is not None:
        counts.update(
            new_findings=len(findings.new),
            persisting_findings=findings.persisting,
            resolved_findings=findings.resolved,
        )
        if rows or findings.resolved:  # a clean check with nothing resolved has nothing to add
            text += " " + _changes(findings, failing=bool(rows))
        new_named = [ref_text((r["system"], r["object_type"], str(r["id"]))) for r in findings.new]
        extra["new_records"] = MetadataValue.text(first_named(new_named) if new_named else "")
        extra["findings_table"] = MetadataValue.text(findings.table)
    return check_result(
        passed=not rows,
        system=system,
        summary=text,
        next_action=next_action,
        records=rows,
        columns=DIFF_SCHEMA,
        counts=counts,
        limit=load_monitoring().reconciliation.sample_rows,
        severity=severity,
        extra=extra,
    )


def found_text(counts: Mapping[str, int | float], kinds: Sequence[str]) -> str:
    """`2 won_deal_without_invoice, 1 invoice_amount_mismatch`: the kinds found, in their order."""
    return ", ".join(f"{counts[k]} {k}" for k in kinds if counts[k])


def _changes(findings: FindingsDelta, *, failing: bool) -> str:
    """`1 new since the last evaluation: billing/invoices/in_9; 4 persisting, 2 resolved (every finding in
    ops.reconciliation_findings).`: what changed, naming only the new findings; once the check passes, only
    how many were resolved."""
    if not failing:
        return f"{findings.resolved} resolved since the last evaluation (their history is in {findings.table})."
    named = [ref_text((r["system"], r["object_type"], str(r["id"]))) for r in findings.new]
    new = f"{len(named)} new since the last evaluation" + (f": {first_named(named)}" if named else "")
    return f"{new}; {findings.persisting} persisting, {findings.resolved} resolved (every finding in {findings.table})."


def _failing_summary(summary: str, found: str, rows: Sequence[Mapping[str, Any]]) -> str:
    """`Won deals and their invoices disagree: 2 won_deal_without_invoice; records crm/deals/7, … (+3 more).`"""
    named = [ref_text((r["system"], r["object_type"], str(r["id"]))) for r in rows if r.get("id") is not None]
    text = f"{summary}: {found}" if found else summary
    if named:
        text += f"; records {first_named(named)}"
    return text + "."


@dataclass(frozen=True)
class CrossSystemCheck:
    """One cross-system check: shown as `name` on `asset`, reading `asset` and the tables of `reads`."""

    name: str
    asset: AssetKey
    description: str
    evaluate: Callable[[Warehouse], AssetCheckResult]
    reads: Sequence[AssetKey] = field(default_factory=tuple)

    @property
    def key(self) -> AssetCheckKey:
        return AssetCheckKey(self.asset, self.name)

    def spec(self) -> AssetCheckSpec:
        """Not blocking (they judge data the canonical step already committed); each runs when its inputs
        changed and are usable, on its own."""
        return AssetCheckSpec(
            self.name,
            asset=self.asset,
            additional_deps=list(self.reads),
            blocking=False,
            description=self.description,
            automation_condition=automation_condition("reconciliation"),
        )


def cross_system_step(checks: Sequence[CrossSystemCheck]) -> AssetChecksDefinition:
    """One step evaluating the selected ones of `checks`, in their order, on one warehouse connection.

    A check that raises does not hide the others: they are still evaluated and reported, then the step fails
    with the first error (the UI shows that check's execution as failed, the others with their results)."""
    by_key = {check.key: check for check in checks}
    if len(by_key) != len(checks):
        raise ValueError(f"two cross-system checks share a name on one asset: {[c.key for c in checks]}")

    @multi_asset_check(
        name=CROSS_SYSTEM_STEP,
        specs=[check.spec() for check in checks],
        can_subset=True,
        required_resource_keys={"warehouse"},
        description="The cross-system reconciliation checks, in one step: only those selected in the run.",
    )
    def cross_system_checks(context: AssetCheckExecutionContext) -> Iterator[AssetCheckResult]:
        selected = context.selected_asset_check_keys
        warehouse: Warehouse = context.resources.warehouse.open()
        errors: list[tuple[str, Exception]] = []
        with warehouse.held():  # one connection for every query of the step
            for check in checks:
                if check.key not in selected:
                    continue
                try:
                    result = check.evaluate(warehouse)
                except Exception as error:  # reported after the others ran; the step still fails
                    context.log.error(f"{check.name} on {check.asset.to_user_string()} raised: {error!r}")
                    errors.append((check.name, error))
                    continue
                yield as_check(result, check.key)
        if errors:
            name, first = errors[0]
            raise RuntimeError(f"cross-system check {name} failed to evaluate: {first}") from first

    return cross_system_checks
