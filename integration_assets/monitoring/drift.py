"""Drift: the vendor's shape against the raw contract, with a readable diff.

The shape is the `payload_shape` each source materialization reports (payload field → JSON types of the
records fetched that run); materializations from before it had its own key reported it as their
`dagster/column_schema`, read when `payload_shape` is absent, so the history stays comparable.

A promised field that is gone, or arrives with a type the contract does not allow, fails at ERROR: the
canonical layer cannot read it. A field the contract does not know and no earlier shape had fails at WARN,
once: the next shape already knows it. A run that fetched nothing says nothing about the shape, so the last
shape that was observed keeps being judged.
"""

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    DagsterInstance,
    MetadataValue,
    TableSchema,
    TableSchemaMetadataValue,
)

from integration_assets.canonical.raw_contracts import contract_model
from integration_assets.core.catalog import StreamSpec
from integration_assets.core.evidence import check_result
from integration_assets.core.monitoring_config import load_monitoring
from integration_assets.core.source_asset import PAYLOAD_SHAPE
from integration_assets.core.stream_check import StreamCheck, StreamCheckRun
from integration_assets.monitoring.history import Materialization, materializations

__all__ = ["Change", "DriftCheck", "promised_fields", "shape_changes", "shape_of"]

Shape = dict[str, frozenset[str]]  # payload path → JSON types observed
# where a materialization's shape is, newest key first: older runs reported it as their column schema
SHAPE_KEYS = (PAYLOAD_SHAPE, "dagster/column_schema")

# contract kinds (raw_contracts `promised`) → the JSON types that satisfy them
JSON_TYPES_OF_KIND: dict[str, frozenset[str]] = {
    "str": frozenset({"string"}),
    "int": frozenset({"integer"}),
    "number": frozenset({"integer", "number"}),
    "bool": frozenset({"boolean"}),
    "dict": frozenset({"object"}),
    "list": frozenset({"array"}),
    "null": frozenset({"null"}),
}
COLUMNS = ("field", "change", "promised_or_before", "observed")


@dataclass(frozen=True)
class Change:
    field: str
    change: str  # removed | retyped | new
    promised_or_before: str  # the contract's kinds (removed, retyped); empty for a new field
    observed: str  # JSON types now seen; empty for a removed field


def promised_fields(stream: StreamSpec) -> dict[str, str]:
    """Payload path → the kinds the contract promises there (e.g. `properties.phone` → `str|null`)."""
    model, columns = contract_model(stream)
    return _promised(model, tuple(columns.items()))


@cache
def _promised(model: Any, paths: tuple[tuple[str, str], ...]) -> dict[str, str]:
    columns = dict(paths)
    promised: dict[str, str] = {}
    for name, column in model.to_schema().columns.items():
        for check in column.checks:
            if check.name == "promised":
                promised[columns[name]] = check.statistics["kinds"]
    return promised


def _allowed(kinds: str) -> frozenset[str]:
    return frozenset().union(*(JSON_TYPES_OF_KIND[kind] for kind in kinds.split("|")))


def _types(types: Iterable[str]) -> str:
    return " | ".join(sorted(types))


def shape_of(materialization: Materialization) -> Shape | None:
    """The shape a materialization observed, or None when it fetched no live records (the shape is unknown:
    deletion tombstones carry no shape, so a run that fetched only those has none)."""
    return _shape(_shape_entry(materialization.metadata), materialization.number("fetched"))


def _shape_entry(metadata: Mapping[str, Any]) -> Any:
    """The shape's metadata entry under its current key, else under the one older runs used."""
    return next((metadata[key] for key in SHAPE_KEYS if key in metadata), None)


def _shape(schema: Any, fetched: float | None) -> Shape | None:
    """The shape in a `payload_shape` entry (as stored, or as the sync just reported it)."""
    schema = schema.schema if isinstance(schema, TableSchemaMetadataValue) else schema
    if not isinstance(schema, TableSchema) or not fetched or not schema.columns:
        return None
    return {
        column.name: frozenset(kind.strip() for kind in column.type.split("|") if kind.strip())
        for column in schema.columns
    }


def shape_changes(promised: Mapping[str, str], shape: Shape, earlier: Iterable[Shape]) -> list[Change]:
    """Promised fields removed or retyped, then fields neither promised nor seen in any earlier shape.

    With no earlier shape there is nothing to be new against: the first shape is the baseline. Fields that
    disappear but were never promised are not drift (they may have been a drift that is now undone).
    """
    changes: list[Change] = []
    for path, kinds in promised.items():
        if path not in shape:
            changes.append(Change(path, "removed", kinds, ""))
        elif shape[path] - _allowed(kinds):
            changes.append(Change(path, "retyped", kinds, _types(shape[path])))
    earlier = list(earlier)
    if earlier:
        known = set().union(*earlier)
        for path in sorted(shape.keys() - known - promised.keys()):
            changes.append(Change(path, "new", "", _types(shape[path])))
    return changes


def _known_shapes(
    instance: DagsterInstance, stream: StreamSpec, wanted: int, skip_run: str = ""
) -> list[tuple[str, Shape]]:
    """Up to `wanted` observed shapes (run id, shape), newest first; runs that fetched nothing are skipped."""
    found: list[tuple[str, Shape]] = []
    for materialization in materializations(instance, stream.asset_key):
        shape = shape_of(materialization) if materialization.run_id != skip_run else None
        if shape is not None:
            found.append((materialization.run_id, shape))
            if len(found) >= wanted:
                break
    return found


def _summary(stream: StreamSpec, changes: list[Change]) -> str:
    if not changes:
        return f"{stream.key}: the vendor's shape keeps the raw contract; no new fields"
    by_kind = {kind: sum(1 for c in changes if c.change == kind) for kind in ("removed", "retyped", "new")}
    listed = "; ".join(f"{c.field} {c.change}" for c in changes)
    return (
        f"{stream.key}: {by_kind['removed']} promised field(s) removed, {by_kind['retyped']} retyped, "
        f"{by_kind['new']} new since the previous shape ({listed})"
    )


class DriftCheck(StreamCheck):
    name = "drift"

    def applies(self, stream: StreamSpec) -> bool:
        return stream.contract is not None

    def description(self, stream: StreamSpec) -> str:
        return (
            f"The shape {stream.key} arrives in (fields and JSON types) against its raw contract in "
            f"`systems/{stream.role}/contracts.py`: promised fields removed or retyped (ERROR), fields new since "
            "the previous shape (WARN, once). Runs that fetched nothing keep the last known shape's verdict."
        )

    def evaluate(self, run: StreamCheckRun) -> AssetCheckResult:
        stream = run.stream
        history_runs = load_monitoring().drift.history_runs
        landed = run.landed
        current = None if landed is None else _shape(_shape_entry(landed.metadata), landed.report.fetched)
        # the shape this run measured, judged against the earlier ones (the event log may not hold it yet)
        shapes = [(run.run_id, current)] if current is not None else []
        shapes += _known_shapes(run.instance, stream, wanted=1 + history_runs - len(shapes), skip_run=run.run_id)
        if not shapes:
            return check_result(
                passed=True,
                system=stream.role,
                summary=f"{stream.key}: no records fetched yet, so no shape to judge",
                next_action="",
                counts={"fields_removed": 0, "fields_retyped": 0, "fields_new": 0, "fields_observed": 0},
            )
        (run_id, shape), earlier = shapes[0], [s for _, s in shapes[1:]]
        changes = shape_changes(promised_fields(stream), shape, earlier)
        breaking = [c for c in changes if c.change != "new"]
        return check_result(
            passed=not changes,
            system=stream.role,
            summary=_summary(stream, changes),
            next_action=(
                f"Check the vendor's changelog for {stream.object_type}; if the change is intended, update "
                f"`systems/{stream.role}/contracts.py` and `field_dictionary.yaml` (records breaking the "
                "contract wait in the review queue until then)"
                if breaking
                else f"Review the new fields of {stream.object_type}; map them in `field_dictionary.yaml` "
                "if they are needed (this warning is raised once)"
            ),
            records=[asdict(c) for c in changes],
            columns=COLUMNS,
            id_column="field",
            severity=AssetCheckSeverity.ERROR if breaking else AssetCheckSeverity.WARN,
            counts={
                "fields_removed": sum(1 for c in changes if c.change == "removed"),
                "fields_retyped": sum(1 for c in changes if c.change == "retyped"),
                "fields_new": sum(1 for c in changes if c.change == "new"),
                "fields_observed": len(shape),
            },
            extra={
                "changes": MetadataValue.json([asdict(c) for c in changes]),
                "shape_run_id": MetadataValue.text(run_id),
                "shapes_compared": len(earlier),
            },
        )
