"""Identity resolution, read from the field dictionary's `identity` rules: which CRM record a record of another
system belongs to, and which CRM records are the same thing recorded twice. Never a guess: a record that
matches several targets, or names a target that does not exist, is a review item.

For each record, the steps whose `from` is its system and object type are tried in order: an empty value (or a
`where` that does not hold) passes to the next step; the first step that finds candidates decides. Candidates
are distinct target ids among live (not archived) target records. A person's decision naming an owner
(`review_decisions.yaml`) comes before every step.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from typing import Any, NamedTuple

from integration_assets.canonical.review import Decisions
from integration_assets.canonical.validate import is_empty
from integration_assets.core.payload import resolve_path
from integration_assets.mapping.normalize import namespaced_id
from integration_assets.mapping.schema import FieldDictionary, Identity, IdentityStep

__all__ = [
    "KnownTargets",
    "Match",
    "Matches",
    "RawIndex",
    "Targets",
    "duplicates",
    "index_name",
    "looked_up",
    "resolve",
    "sources",
]

# (system, object_type, record id) -> its match: a dict, or the kept matches read as asked (`matches.py`)
Matches = Mapping[tuple[str, str, str], "Match"]
# (system, object_type) -> record id -> {"payload": dict, "is_deleted": bool}
RawIndex = dict[tuple[str, str], dict[str, dict[str, Any]]]


class Match(NamedTuple):  # a tuple: hundreds of thousands are read back from the warehouse per build
    target: str | None  # namespaced target id (crm:10000001), None when unmatched / to review
    matched_by: str  # step name, "decision", or "unmatched"
    reason_code: str | None = None  # review reason when the record may not be accepted
    detail: str = ""


def _normalize(value: Any, ops: list[str], ignore_domains: frozenset[str]) -> str | None:
    if is_empty(value):
        return None
    text = str(value)
    for op in ops:
        if op == "trim":
            text = text.strip()
        elif op == "lowercase":
            text = text.lower()
        elif op == "email_domain":
            text = text.rpartition("@")[2] if "@" in text else ""
        elif op == "strip_www":
            text = text.removeprefix("www.")
        elif op == "strip_trailing_dot":
            text = text.rstrip(".")
    if not text:
        return None
    if any(op in ("email_domain", "strip_www") for op in ops) and text in ignore_domains:
        return None  # a shared mailbox provider says nothing about the client
    return text


class Targets:
    """Live target records indexed by each step's match path, normalized like the step's value. Steps that
    index the same path the same way share one index (`index_name`), which is also how a resolution's indexes
    are kept in the warehouse (`matches.py`), so records that changed can be matched again without the targets.
    """

    def __init__(self, identity: Identity, raw: RawIndex) -> None:
        self.identity = identity
        self.raw = raw
        self.ignore = frozenset(identity.ignore_domains)
        self._index: dict[str, dict[str, set[str]]] = {}
        target = (identity.target.system, identity.target.object_type)
        self._live_ids = {rid for rid, row in raw.get(target, {}).items() if not row["is_deleted"]}
        self.live = {namespaced_id(target[0], rid) for rid in self._live_ids}  # what a decision may name

    def candidates(self, step: IdentityStep, value: str) -> set[str]:
        name = index_name(step)
        if name not in self._index:
            self._index[name] = self._built(step)
        return self._index[name].get(value, set())

    def indexes(self) -> dict[str, dict[str, set[str]]]:
        """Every step's index, by `index_name`."""
        for step in self.identity.steps:
            self.candidates(step, "")
        return self._index

    def _built(self, step: IdentityStep) -> dict[str, set[str]]:
        target = self.identity.target
        object_type = step.match.object_type or target.object_type
        index: dict[str, set[str]] = defaultdict(set)
        ops = _target_ops(step)
        for row in self.raw.get((target.system, object_type), {}).values():
            if row["is_deleted"]:
                continue
            key = _normalize(resolve_path(row["payload"], step.match.path), ops, self.ignore)
            found = resolve_path(row["payload"], step.match.yields)
            if key is None or is_empty(found):
                continue
            found = str(found).strip()
            if found in self._live_ids:
                index[key].add(namespaced_id(target.system, found))
        return index


class KnownTargets(Targets):
    """Targets known only by the index entries a few records look up and whether the targets they may name
    are live: what matching again the records that changed needs, when the targets did not change."""

    def __init__(self, identity: Identity, entries: dict[str, dict[str, set[str]]], live: set[str]) -> None:
        super().__init__(identity, {})
        self._index = dict(entries)  # an index none of the records looks up stays empty
        self.live = live


def index_name(step: IdentityStep) -> str:
    """The index a step looks its values up in: the target records, the path and the normalization."""
    return f"{step.match.object_type or ''}:{step.match.path}:{step.match.yields}:{','.join(_target_ops(step))}"


def _target_ops(step: IdentityStep) -> list[str]:
    """How a step normalizes the targets' values: as its own, but a target's domain is no email address."""
    return [op for op in step.normalize if op != "email_domain"]


def sources(identity: Identity) -> list[tuple[str, str]]:
    """The streams whose records the identity resolves, in the order of its steps."""
    return list(dict.fromkeys((s.from_.system, s.from_.object_type) for s in identity.steps))


def resolve(
    dictionary: FieldDictionary,
    name: str,
    raw: RawIndex,
    decisions: Decisions,
    *,
    targets: Targets | None = None,
) -> dict[tuple[str, str, str], Match]:
    """(system, object_type, record id) -> Match, for every record of `raw` that identity `name`'s steps read
    (the targets, unless given, are those of `raw`)."""
    identity = dictionary.identity[name]
    targets = targets or Targets(identity, raw)
    owners = {(d.system, d.object_type, d.record_id): d.owner for d in decisions.decisions if d.owner and not d.ignore}
    out: dict[tuple[str, str, str], Match] = {}
    for system, object_type in sources(identity):
        steps = [s for s in identity.steps if (s.from_.system, s.from_.object_type) == (system, object_type)]
        for rid, row in raw.get((system, object_type), {}).items():
            key = (system, object_type, rid)
            owner = owners.get(key)
            if owner is not None:
                if owner in targets.live:
                    out[key] = Match(owner, "decision")
                    continue
                out[key] = Match(
                    None, "decision", identity.on_many, f"The decision names {owner}, which is no live record."
                )
                continue
            out[key] = _match(identity, steps, targets, row["payload"])
    return out


def looked_up(identity: Identity, stream: tuple[str, str], payload: dict) -> list[tuple[str, str]]:
    """(index, key) of every value a record of `stream` may look up, whichever step decides."""
    steps = [s for s in identity.steps if (s.from_.system, s.from_.object_type) == stream]
    ignore = frozenset(identity.ignore_domains)
    return [(index_name(step), key) for step in steps for key in _keys(step, payload, ignore)]


def _keys(step: IdentityStep, payload: dict, ignore: frozenset[str]) -> list[str]:
    """The normalized values the step looks up for a record (none when its `where` does not hold)."""
    if step.where is not None and resolve_path(payload, step.where.path) not in step.where.in_:
        return []
    value = resolve_path(payload, step.from_.path)
    values = value if isinstance(value, list) else [value]
    return [k for k in (_normalize(v, step.normalize, ignore) for v in values) if k is not None]


def _match(identity: Identity, steps: list[IdentityStep], targets: Targets, payload: dict) -> Match:
    for step in steps:
        keys = _keys(step, payload, targets.ignore)
        if not keys:  # no value, or its `where` does not hold: the next step decides
            continue
        found: set[str] = set()
        for k in keys:
            found |= targets.candidates(step, k)
        shown = ", ".join(keys) if step.method in ("explicit_id", "domain", "email_domain") else "the address"
        if len(found) > 1:
            return Match(
                None,
                step.name,
                identity.on_many,
                f"{step.name}: {shown} matches {len(found)} live records ({', '.join(sorted(found))}).",
            )
        if len(found) == 1:
            return Match(next(iter(found)), step.name)
        if step.on_no_match != "next":
            return Match(None, step.name, step.on_no_match, f"{step.name}: {shown} matches no live record.")
    if identity.on_unmatched == "accept":
        return Match(None, "unmatched")
    return Match(None, "unmatched", identity.on_unmatched, "No identity step found a record it belongs to.")


_SPACES = re.compile(r"\s+")


def _dup_key(value: Any) -> str | None:
    if is_empty(value):
        return None
    text = _SPACES.sub(" ", str(value).strip().casefold())
    return text.removeprefix("www.").rstrip(".") or None


def duplicates(dictionary: FieldDictionary, name: str, values: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Target record id -> the other live records equal on every `duplicates.match_all` field (all non-empty).

    `values`: live target record id -> canonical field values (as read by validate.py, EMPTY when none).
    """
    identity = dictionary.identity[name]
    if identity.duplicates is None:
        return {}
    groups: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for rid, fields in values.items():
        key = tuple(_dup_key(fields.get(f)) for f in identity.duplicates.match_all)
        if all(part is not None for part in key):
            groups[key].append(rid)  # type: ignore[arg-type]
    return {rid: [o for o in group if o != rid] for group in groups.values() if len(group) > 1 for rid in group}
