"""Zendesk's source assets: support/organizations, support/users, support/tickets."""

from integration_assets.core.source_asset import build_source_asset
from integration_assets.systems.support.streams import STREAMS

DESCRIPTIONS = {
    "organizations": "Zendesk organizations, linked to CRM companies through external_id.",
    "users": "Zendesk users: customers' people (end-users, linked to CRM contacts) and agents.",
    "tickets": "Zendesk tickets with status, priority, requester and organization.",
}

assets = [build_source_asset(s, vendor="zendesk", description=DESCRIPTIONS[s.object_type]) for s in STREAMS]
