"""Tickets: one row per support ticket, naming its client (the Zendesk organization's) and its requester as a
person (the linked CRM contact, else the Zendesk user)."""

from __future__ import annotations

from collections import ChainMap

from integration_assets.canonical.build.records import Built, _Reader
from integration_assets.canonical.build.single import build_single


def build_tickets(reader: _Reader, built: Built) -> None:
    build_single(reader, built, "tickets", ChainMap(reader.matches("contacts"), reader.matches("customers")))
