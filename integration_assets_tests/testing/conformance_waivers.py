"""The reviewed waivers of the conformance suite: where a vendor's published document is itself known wrong.

`violations` waives one kind of violation (vendor, operation, status, JSON path, schema keyword), each with
why and the vendor's own documentation that contradicts the document. `routes_outside_documents` lists routes
the sandbox serves that the slimmed documents do not carry, each with the vendor's reference page. The file
is validated at load (errors name the file, line and entry); a waiver that matches nothing fails the suite,
so waivers cannot outlive the difference they excuse.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic

from integration_assets.core.config import Problem, parse_yaml
from integration_assets_tests.testing.conformance import Violation

__all__ = ["WAIVERS", "RouteWaiver", "ViolationWaiver", "Waivers", "load_waivers"]

WAIVERS = Path(__file__).resolve().parents[1] / "sandbox" / "conformance_waivers.yaml"
Vendor = Literal["hubspot", "stripe", "zendesk"]
Operation = Annotated[str, pydantic.StringConstraints(pattern=r"^(GET|POST|PUT|PATCH|DELETE) /\S*$")]
Status = Annotated[int, pydantic.Field(ge=100, le=599)]
Keyword = Annotated[str, pydantic.StringConstraints(min_length=1)]
VENDOR_SITES = ("hubspot.com", "stripe.com", "zendesk.com")
VENDOR_GITHUB_ORGANISATIONS = ("hubspot", "stripe", "zendesk")


def _several(value: Any) -> tuple:
    """One value or a list of them, as a tuple."""
    return tuple(value) if isinstance(value, list) else (value,)


class _Entry(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    vendor: Vendor
    why: str = pydantic.Field(min_length=20)
    evidence: pydantic.HttpUrl  # the vendor's own documentation that contradicts the published document

    @pydantic.field_validator("evidence")
    @classmethod
    def _vendor_page(cls, url: pydantic.HttpUrl) -> pydantic.HttpUrl:
        """A vendor's site, or its own GitHub organisation (where HubSpot publishes its specs, collections and
        client libraries, and its maintainers answer about the API's behaviour)."""
        host = url.host or ""
        on_site = any(host == d or host.endswith("." + d) for d in VENDOR_SITES)
        organisation = (url.path or "/").split("/")[1].lower()
        if not on_site and not (host == "github.com" and organisation in VENDOR_GITHUB_ORGANISATIONS):
            raise ValueError(f"{url} is not the vendor's own documentation")
        return url


class ViolationWaiver(_Entry):
    # one operation, or the several that serve the same schema (a ticket's fields are the same everywhere)
    operation: Operation | list[Operation] = pydantic.Field(description="METHOD /path as the document names it")
    status: Status | list[Status]
    at: str = pydantic.Field(pattern=r"^\$", description="JSON path: [*] any index, .* any one key, .. any depth")
    keyword: Keyword | list[Keyword]  # e.g. both `type` and `enum` refuse a null where an enum is declared

    @property
    def operations(self) -> tuple[str, ...]:
        return _several(self.operation)

    @property
    def statuses(self) -> tuple[int, ...]:
        return _several(self.status)

    @property
    def keywords(self) -> tuple[str, ...]:
        return _several(self.keyword)

    @cached_property
    def _path(self) -> re.Pattern[str]:
        pattern = re.escape(self.at).replace(r"\.\.", r"(?:\.[^.\[]+|\[[^\]]*\])*\.")
        pattern = pattern.replace(r"\[\*\]", r"\[\d+\]").replace(r"\.\*", r"(?:\.[^.\[]+|\['[^']*'\])")
        return re.compile(f"^{pattern}$")

    def matches(self, violation: Violation) -> bool:
        return (
            self.vendor == violation.vendor
            and violation.operation in self.operations
            and violation.status in self.statuses
            and violation.keyword in self.keywords
            and bool(self._path.match(violation.at))
        )

    def __str__(self) -> str:
        statuses = ", ".join(str(s) for s in self.statuses)
        return f"waiver {self.vendor} {self.at} [{', '.join(self.keywords)}] ({statuses})"


class RouteWaiver(_Entry):
    """A served route whose operation the slimmed document does not carry: not judged, listed here instead."""

    operation: Operation = pydantic.Field(description="METHOD /template as the sandbox's route names it")


class Waivers(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    violations: list[ViolationWaiver] = []
    routes_outside_documents: list[RouteWaiver] = []

    def waiver_for(self, violation: Violation) -> ViolationWaiver | None:
        return next((w for w in self.violations if w.matches(violation)), None)

    def route_waived(self, vendor: str, operation: str) -> bool:
        return any((w.vendor, w.operation) == (vendor, operation) for w in self.routes_outside_documents)

    def unused(self, vendor: str, violations: Iterable[Violation]) -> list[str]:
        """This vendor's waivers (per operation they name) that no violation needed: each must be removed."""
        seen = list(violations)
        found = []
        for waiver in (w for w in self.violations if w.vendor == vendor):
            used = [v for v in seen if waiver.matches(v)]
            for name, listed, attribute in (
                ("operation", waiver.operations, "operation"),
                ("status", waiver.statuses, "status"),
                ("keyword", waiver.keywords, "keyword"),
            ):
                found += [
                    f"{waiver}: {name} {value} is unused"
                    for value in listed
                    if value not in {getattr(v, attribute) for v in used}
                ]
        return found


def _no_repeats(waivers: Waivers) -> Iterator[Problem]:
    seen: dict[tuple, int] = {}
    for index, waiver in enumerate(waivers.violations):
        for operation, status, keyword in itertools.product(waiver.operations, waiver.statuses, waiver.keywords):
            key = (waiver.vendor, operation, status, waiver.at, keyword)
            if key in seen and seen[key] != index:
                yield ("violations", index), f"repeats entry {seen[key]} for {operation}"
            seen.setdefault(key, index)
    routes: dict[tuple, int] = {}
    for index, waiver in enumerate(waivers.routes_outside_documents):
        key = (waiver.vendor, waiver.operation)
        if key in routes:
            yield ("routes_outside_documents", index), f"repeats entry {routes[key]}"
        routes.setdefault(key, index)


def load_waivers(path: Path = WAIVERS) -> Waivers:
    """The waiver file, validated: the schema above, then no entry twice."""
    return parse_yaml(path.read_text(encoding="utf-8"), Waivers, str(path), _no_repeats)
