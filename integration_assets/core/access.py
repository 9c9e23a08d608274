"""Narrow access: each connector may only do what `data/access_policy.yaml` says it may."""

from __future__ import annotations

from enum import StrEnum
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from integration_assets.core.config import load_yaml
from integration_assets.core.errors import Category, IntegrationError, Resource

DATA = Path(__file__).resolve().parent.parent.parent / "data"


class Operation(StrEnum):
    READ = "read"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


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
                f"'{connector}' in data/access_policy.yaml (and give its credential that permission)"
            ),
        )


@cache
def load_policy(path: str | None = None) -> AccessPolicy:
    return load_yaml(path or DATA / "access_policy.yaml", AccessPolicy)
