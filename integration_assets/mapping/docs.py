"""The field dictionary for people: a Markdown page (docs/field_dictionary.md, and Dagster asset metadata).

`python -m integration_assets.mapping.docs > docs/field_dictionary.md` regenerates the committed page from the
packaged dictionary (`integration_assets/defaults/field_dictionary.yaml`, whatever INTEGRATION_CONFIG_DIR says);
a test fails when it is stale. `python -m integration_assets.mapping.docs FILE` renders another dictionary file.
"""

from __future__ import annotations

import sys

from integration_assets.core.config import default_path
from integration_assets.mapping.dictionary import load_dictionary
from integration_assets.mapping.schema import VENDORS, FieldDictionary, FieldSpec, Identity, Source

__all__ = ["REGENERATE", "render_markdown"]

REGENERATE = "python -m integration_assets.mapping.docs > docs/field_dictionary.md"
SYSTEMS = tuple(VENDORS)

_EMPTY = {
    "reject": "the vendor guarantees the value: the record goes to review as a broken payload",
    "review": "the record goes to review for a person to decide",
    "default": "the default value is used",
    "allow": "the value stays empty",
}
_CONFLICT = {
    "owner_wins": "the owner's value wins (if it has none: the first other source, in the order listed)",
    "newest_wins": "the value of the most recently modified record wins (ties: the owner)",
    "review": "the record goes to review; nothing is chosen silently",
}


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _code(text: object) -> str:
    return f"`{text}`"


def _anchor(label_key: str) -> str:
    return "label-" + label_key.replace(".", "-").replace("_", "-")


def _source(source: Source) -> str:
    parts = [_code(source.object_type)]
    if source.amount is not None:
        parts.append(f"{_code(source.amount)} ({source.unit} units) in {_code(source.currency)}")
    else:
        parts.append(_code(source.path))
    extras = []
    if source.encoding:
        extras.append(source.encoding)
    if source.id_system:
        extras.append(f"a {source.id_system} id")
    if source.label:
        extras.append(f"labels: [{source.label}](#{_anchor(source.label)})")
    text = " · ".join(parts)
    return f"{text} ({'; '.join(extras)})" if extras else text


def _type(spec: FieldSpec) -> str:
    text = _code(spec.type + ("[]" if spec.many else ""))
    if spec.references:
        text += f" → {spec.references}"
    fmt = spec.format
    if fmt is not None:
        details = []
        if fmt.pattern:
            details.append(f"pattern {_code(fmt.pattern)}")
        if fmt.unit:
            details.append(fmt.unit)
        if fmt.min is not None:
            details.append(f"min {fmt.min:g}")
        if fmt.max is not None:
            details.append(f"max {fmt.max:g}")
        if fmt.max_length is not None:
            details.append(f"≤ {fmt.max_length} chars")
        text += "<br>" + "; ".join(details)
    return text


def _meaning(spec: FieldSpec) -> str:
    text = spec.description
    if spec.derived is not None:
        text += f"<br>**Derived** from {', '.join(_code(r) for r in spec.derived.from_)}: {spec.derived.rule}."
    if spec.owner_reason:
        text += f"<br>**Owner {spec.owner}:** {spec.owner_reason}"
    if spec.note:
        text += f"<br>*{spec.note}*"
    return text


def _destinations(entity: str, spec: FieldSpec) -> str:
    out = []
    for destination in spec.destinations:
        if destination.startswith(f"canonical.{entity}."):
            out.append(_code(destination.removeprefix(f"canonical.{entity}.")))
        else:
            out.append(f"write-back {_code(destination)}")
    return "<br>".join(out)


def _empty(spec: FieldSpec) -> str:
    if spec.empty == "default":
        return f"default {_code(spec.default)}"
    return spec.empty


def _entities(d: FieldDictionary) -> list[str]:
    lines: list[str] = []
    header = ["Field", "Meaning", "Type / format", "Owner"]
    header += [f"{system} ({VENDORS[system]})" for system in SYSTEMS]
    header += ["Destinations", "Empty", "Conflict", "PII"]
    for name, entity in d.entities.items():
        lines += [f"## {name}", "", _cell(entity.description), ""]
        ids = ", ".join(f"{system}: {_code(field)}" for system, field in entity.record_ids.items())
        key = " or ".join(_code(k) for k in entity.key)
        lines += [f"Table `canonical.{name}`; a row is identified by {key}. Record ids per system: {ids}.", ""]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for field_name, spec in entity.fields.items():
            row = [
                f"**{field_name}**",
                _meaning(spec),
                _type(spec),
                spec.owner,
                *(_source(spec.sources[s]) if s in spec.sources else "" for s in SYSTEMS),
                _destinations(name, spec),
                _empty(spec),
                spec.conflict,
                "yes" if spec.pii else "no",
            ]
            lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
        lines.append("")
    return lines


def _labels(d: FieldDictionary) -> list[str]:
    lines = [
        "## Label maps",
        "",
        "Vendor labels are matched exactly after trimming. A label that is not listed goes to review "
        "(`unknown_status_label`); no map has a default.",
        "",
    ]
    for key, label in d.labels.items():
        lines += [f'<a id="{_anchor(key)}"></a>', "", f"### {key}", "", _cell(label.description), ""]
        lines += [f"Canonical labels: {', '.join(_code(c) for c in label.canonical)}.", ""]
        lines += ["| Vendor label | Canonical |", "|---|---|"]
        lines += [f"| {_cell(_code(v))} | {_cell(_code(c))} |" for v, c in label.map.items()]
        lines.append("")
    return lines


def _identity_section(name: str, identity: Identity) -> list[str]:
    target = f"{identity.target.system} {identity.target.object_type}"
    lines = [f"### {name}", "", _cell(identity.description), ""]
    lines += [f"Target: {target} ({'archived included' if identity.include_archived else 'live records only'}).", ""]
    lines += ["| # | Step | Record | Method | Matches | On no match |", "|---|---|---|---|---|---|"]
    for number, step in enumerate(identity.steps, start=1):
        record = f"{step.from_.system} {step.from_.object_type} {_code(step.from_.path)}"
        if step.where is not None:
            record += f" where {_code(step.where.path)} in {', '.join(_code(v) for v in step.where.in_)}"
        matched = f"{identity.target.system} {step.match.object_type or identity.target.object_type} "
        matched += _code(step.match.path)
        if step.match.yields != "id":
            matched += f" → {_code(step.match.yields)}"
        method = step.method + (f" ({', '.join(step.normalize)})" if step.normalize else "")
        row = [str(number), step.name, record, method, matched, step.on_no_match]
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    lines += [
        "",
        f"Several candidates: `{identity.on_many}`. No step decides: `{identity.on_unmatched}`.",
        "",
    ]
    if identity.ignore_domains:
        lines += [f"Domains never used for matching: {', '.join(identity.ignore_domains)}.", ""]
    if identity.duplicates is not None:
        fields = ", ".join(_code(f) for f in identity.duplicates.match_all)
        lines += [f"Duplicates: records equal on all of {fields} → `{identity.duplicates.on_match}`.", ""]
    lines += ["| Review reason | When |", "|---|---|"]
    lines += [f"| `{code}` | {_cell(when)} |" for code, when in identity.review.items()]
    lines.append("")
    return lines


def render_markdown(dictionary: FieldDictionary) -> str:
    """The whole dictionary as one Markdown page: a table per entity, the label maps and the identity rules."""
    lines = [
        "# Field dictionary",
        "",
        f"Generated from `integration_assets/defaults/field_dictionary.yaml`; do not edit by hand. Regenerate with "
        f"`{REGENERATE}`.",
        "",
        "Systems: " + ", ".join(f"`{s}` = {VENDORS[s]}" for s in SYSTEMS) + ". Source cells give the vendor "
        "object type and the path in its raw payload; `[]` walks a list.",
        "",
        "| Empty rule | Meaning |",
        "|---|---|",
        *(f"| {rule} | {text} |" for rule, text in _EMPTY.items()),
        "",
        "| Conflict rule | Meaning |",
        "|---|---|",
        *(f"| {rule} | {text} |" for rule, text in _CONFLICT.items()),
        "",
        "A value that breaks its type or format goes to review. A write-back never overwrites a target record "
        "modified after its source record: that is a conflict for review. PII fields are masked in logs, alerts "
        "and review details.",
        "",
    ]
    lines += _entities(dictionary)
    lines += _labels(dictionary)
    lines += [
        "## Identity rules",
        "",
        "For each record, the steps for its system and object type are tried in order. An empty value passes to "
        "the next step; the first step that finds candidates decides. Candidates are counted by distinct target "
        "id; more than one is ambiguous.",
        "",
    ]
    for name, identity in dictionary.identity.items():
        lines += _identity_section(name, identity)
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    sys.stdout.write(render_markdown(load_dictionary(args[0] if args else default_path("field_dictionary.yaml"))))


if __name__ == "__main__":
    main()
