"""What HubSpot's CRM API promises about each raw stream (pandera, validated lazily by
`canonical/raw_contracts.check_stream`): an id that is a non-empty digit string, unique; the `archived` flag;
every requested property present (null when it has no value: a missing key is drift)."""

from __future__ import annotations

import pandera.pandas as pa
from pandera.typing import Series

from integration_assets.core import promised  # noqa: F401  (registers the `promised` check)
from integration_assets.core.columns import PII

COLUMNS: dict[str, dict[str, str]] = {
    "companies": {
        "id": "id",
        "archived": "archived",
        **{p: f"properties.{p}" for p in ("name", "domain", "phone", "city", "industry", "createdate")},
        "hs_lastmodifieddate": "properties.hs_lastmodifieddate",
    },
    "contacts": {
        "id": "id",
        "archived": "archived",
        **{
            p: f"properties.{p}"
            for p in ("email", "firstname", "lastname", "phone", "lifecyclestage", "createdate", "lastmodifieddate")
        },
        "associatedcompanyid": "properties.associatedcompanyid",
    },
    "deals": {
        "id": "id",
        "archived": "archived",
        **{
            p: f"properties.{p}"
            for p in ("dealname", "amount", "deal_currency_code", "closedate", "pipeline", "dealstage", "createdate")
        },
        "hs_lastmodifieddate": "properties.hs_lastmodifieddate",
    },
}

_TEXT = {"nullable": True, "promised": "str|null"}


class _HubSpotObject(pa.DataFrameModel):
    id: Series[object] = pa.Field(unique=True, promised="str", str_matches=r"^[0-9]+$")
    archived: Series[object] = pa.Field(promised="bool")

    class Config:
        strict = True
        coerce = False


class Companies(_HubSpotObject):
    name: Series[object] = pa.Field(**_TEXT)
    domain: Series[object] = pa.Field(**_TEXT)
    phone: Series[object] = pa.Field(**_TEXT, metadata=PII)
    city: Series[object] = pa.Field(**_TEXT)
    industry: Series[object] = pa.Field(**_TEXT)
    createdate: Series[object] = pa.Field(**_TEXT)
    hs_lastmodifieddate: Series[object] = pa.Field(**_TEXT)


class Contacts(_HubSpotObject):
    email: Series[object] = pa.Field(**_TEXT, metadata=PII)
    firstname: Series[object] = pa.Field(**_TEXT, metadata=PII)
    lastname: Series[object] = pa.Field(**_TEXT, metadata=PII)
    phone: Series[object] = pa.Field(**_TEXT, metadata=PII)
    lifecyclestage: Series[object] = pa.Field(**_TEXT)
    createdate: Series[object] = pa.Field(**_TEXT)
    lastmodifieddate: Series[object] = pa.Field(**_TEXT)
    associatedcompanyid: Series[object] = pa.Field(**_TEXT)


class Deals(_HubSpotObject):
    dealname: Series[object] = pa.Field(**_TEXT)
    amount: Series[object] = pa.Field(**_TEXT)
    deal_currency_code: Series[object] = pa.Field(**_TEXT)
    closedate: Series[object] = pa.Field(**_TEXT)
    pipeline: Series[object] = pa.Field(**_TEXT)
    dealstage: Series[object] = pa.Field(**_TEXT)
    createdate: Series[object] = pa.Field(**_TEXT)
    hs_lastmodifieddate: Series[object] = pa.Field(**_TEXT)


MODELS: dict[str, type[pa.DataFrameModel]] = {"companies": Companies, "contacts": Contacts, "deals": Deals}
