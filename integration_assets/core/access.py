"""Narrow access: each connector may only do what `access_policy.yaml` says it may (`core/config.py` finds it).

What a request does is read from the request itself, not from its caller: each system declares a route table
(`systems/<role>/routes.py`: method and path template -> object type and operation, as the vendor's API defines
them), and the HTTP client looks every request up there before checking the policy. A caller cannot declare a
PATCH a read, nor reach a contact through a deal's path; a request that matches no route is not sent at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict

from integration_assets.core.config import CONFIG_DIR_ENV, load_config
from integration_assets.core.errors import Category, IntegrationError, Resource


class Operation(StrEnum):
    READ = "read"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True)
class Route:
    """One endpoint of a vendor: what a request to it does, whatever its caller says.

    One method can mean different things on different routes (a HubSpot search is a POST that reads; a Stripe
    update, finalize or void is a POST), so the operation belongs to the (method, template) pair."""

    method: str
    template: str  # the path with `{name}` for each parameter: one whole segment each
    object_type: str
    operation: Operation
    pattern: re.Pattern[str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        pieces = re.split(r"(\{\w+\})", self.template)
        regex = "".join("[^/]+" if re.fullmatch(r"\{\w+\}", p) else re.escape(p) for p in pieces)
        object.__setattr__(self, "pattern", re.compile(f"^{regex}$"))


# Characters a path segment never needs and a traversal or a smuggled request does.
_UNSAFE_SEGMENT = re.compile(r"[/\\\x00-\x1f\x7f]")


def unsafe_segment(segment: str) -> bool:
    """A decoded path segment that could move the request elsewhere (`..`, a slash) once a server decodes it,
    or once a second layer (a proxy, then the application) decodes it again."""
    return any(text in (".", "..") or bool(_UNSAFE_SEGMENT.search(text)) for text in (segment, unquote(segment)))


@dataclass(frozen=True)
class RouteTable:
    """Every endpoint a system's connectors may call; what is not here is never sent."""

    system: str
    routes: tuple[Route, ...]
    optional_suffix: str = ""  # Zendesk: `/api/v2/users.json` and `/api/v2/users` are the same endpoint

    @classmethod
    def of(
        cls, system: str, entries: Iterable[tuple[str, str, str, Operation]], optional_suffix: str = ""
    ) -> RouteTable:
        """A table from (method, template, object type, operation) entries; a route declared twice is refused."""
        routes = tuple(Route(method, template, object_type, op) for method, template, object_type, op in entries)
        seen = {(r.method, r.template) for r in routes}
        if len(seen) != len(routes):
            raise ValueError(f"{system}: a route is declared twice")
        return cls(system, routes, optional_suffix)

    def match(self, method: str, path: str) -> Route | None:
        """The route of a request's method and path (as sent: percent-encoded), or None.

        A path with a dot segment or an encoded slash in any segment matches nothing, so what a server or a
        proxy normalizes can never land on another route than the one looked up here."""
        if any(unsafe_segment(unquote(segment)) for segment in path.split("/")[1:]):
            return None
        if self.optional_suffix:
            path = path.removesuffix(self.optional_suffix)
        for route in self.routes:
            if route.method == method.upper() and route.pattern.match(path):
                return route
        return None


class ConnectorGrant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    system: str
    description: str = ""
    allow: dict[str, list[Operation]]

    def permits(self, object_type: str, operation: Operation) -> bool:
        return operation in self.allow.get(object_type, ())


class AccessPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connectors: dict[str, ConnectorGrant]

    def check(self, connector: str, system: str, object_type: str, operation: Operation, endpoint: str) -> None:
        """Raises permission_denied, before anything is sent, for a call the policy does not allow."""
        grant = self.connectors.get(connector)
        if grant is not None and grant.system == system and grant.permits(object_type, operation):
            return
        raise IntegrationError(
            category=Category.PERMISSION_DENIED,
            message=f"connector {connector!r} may not {operation} {system} {object_type}: blocked before sending",
            resource=Resource(system=system, endpoint=endpoint, object_type=object_type),
            next_action=(
                f"if this is intended, allow '{operation}' on '{object_type}' for connector "
                f"'{connector}' in access_policy.yaml in your {CONFIG_DIR_ENV} folder (and give its credential that "
                "permission)"
            ),
        )


def load_policy(path: str | Path | None = None) -> AccessPolicy:
    """The access policy in force (`path` for a test's own file); read again when the file changes."""
    return load_config("access_policy.yaml", AccessPolicy, path)
