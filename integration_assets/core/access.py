"""Narrow access: each connector may only do what `access_policy.yaml` says it may (`core/config.py` finds it)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from integration_assets.core.config import CONFIG_DIR_ENV, load_config
from integration_assets.core.errors import Category, IntegrationError, Resource


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
                f"'{connector}' in access_policy.yaml in your {CONFIG_DIR_ENV} folder (and give its credential that "
                "permission)"
            ),
        )


def load_policy(path: str | Path | None = None) -> AccessPolicy:
    """The access policy in force (`path` for a test's own file); read again when the file changes."""
    return load_config("access_policy.yaml", AccessPolicy, path)
