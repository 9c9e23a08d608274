"""HubSpot's source assets: crm/companies, crm/contacts, crm/deals."""

from integration_assets.core.source_asset import build_source_asset
from integration_assets.systems.crm.streams import STREAMS

DESCRIPTIONS = {
    "companies": "HubSpot companies: the CRM's accounts, owner of names and domains.",
    "contacts": "HubSpot contacts: the people at each company, with emails and phones.",
    "deals": "HubSpot deals with their stage, amount, currency and associated company and contacts.",
}

assets = [build_source_asset(s, vendor="hubspot", description=DESCRIPTIONS[s.object_type]) for s in STREAMS]
