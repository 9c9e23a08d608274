"""What Zendesk's API promises about each raw stream (pandera, validated lazily by
`canonical/raw_contracts.check_stream`): integer ids, unique; ISO-8601 timestamps as text; every documented key
present (null when unset: a missing key is drift)."""

from __future__ import annotations

import pandera.pandas as pa
from pandera.typing import Series

from integration_assets.core import promised  # noqa: F401  (registers the `promised` check)
from integration_assets.core.columns import PII

COLUMNS: dict[str, dict[str, str]] = {
    "organizations": {
        "id": "id",
        "name": "name",
        "external_id": "external_id",
        "domain_names": "domain_names",
        "organization_fields": "organization_fields",
        "created_at": "created_at",
        "updated_at": "updated_at",
    },
    "users": {
        "id": "id",
        "name": "name",
        "email": "email",
        "phone": "phone",
        "role": "role",
        "external_id": "external_id",
        "organization_id": "organization_id",
        "created_at": "created_at",
        "updated_at": "updated_at",
    },
    "tickets": {
        "id": "id",
        "subject": "subject",
        "type": "type",
        "status": "status",
        "priority": "priority",
        "requester_id": "requester_id",
        "assignee_id": "assignee_id",
        "organization_id": "organization_id",
        "via": "via",
        "created_at": "created_at",
        "updated_at": "updated_at",
    },
}


class _ZendeskObject(pa.DataFrameModel):
    id: Series[object] = pa.Field(unique=True, promised="int")
    created_at: Series[object] = pa.Field(promised="str")
    updated_at: Series[object] = pa.Field(promised="str")

    class Config:
        strict = True
        coerce = False


class Organizations(_ZendeskObject):
    name: Series[object] = pa.Field(promised="str")
    external_id: Series[object] = pa.Field(nullable=True, promised="str|null")
    domain_names: Series[object] = pa.Field(promised="list")
    organization_fields: Series[object] = pa.Field(promised="dict", metadata=PII)  # holds the account owner


class Users(_ZendeskObject):
    name: Series[object] = pa.Field(nullable=True, promised="str|null", metadata=PII)
    email: Series[object] = pa.Field(nullable=True, promised="str|null", metadata=PII)
    phone: Series[object] = pa.Field(nullable=True, promised="str|null", metadata=PII)
    role: Series[object] = pa.Field(promised="str")
    external_id: Series[object] = pa.Field(nullable=True, promised="str|null")
    organization_id: Series[object] = pa.Field(nullable=True, promised="int|null")


class Tickets(_ZendeskObject):
    subject: Series[object] = pa.Field(nullable=True, promised="str|null")
    type: Series[object] = pa.Field(nullable=True, promised="str|null")
    status: Series[object] = pa.Field(promised="str")
    priority: Series[object] = pa.Field(nullable=True, promised="str|null")
    requester_id: Series[object] = pa.Field(promised="int")
    assignee_id: Series[object] = pa.Field(nullable=True, promised="int|null")
    organization_id: Series[object] = pa.Field(nullable=True, promised="int|null")
    via: Series[object] = pa.Field(promised="dict")


MODELS: dict[str, type[pa.DataFrameModel]] = {"organizations": Organizations, "users": Users, "tickets": Tickets}
