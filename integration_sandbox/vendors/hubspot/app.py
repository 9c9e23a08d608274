"""The HubSpot app: its endpoints composed, its routes, and how a HubSpot user edits and archives records."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from integration_sandbox.generator.vocabulary import INDUSTRIES
from integration_sandbox.kit import Request, Response, Route
from integration_sandbox.store import Record
from integration_sandbox.vendors.hubspot.batch import Batch
from integration_sandbox.vendors.hubspot.core import unquoting
from integration_sandbox.vendors.hubspot.definitions import LIFECYCLE_GROUPS, OBJECT_TYPES, OPEN_STAGES, PUBLIC
from integration_sandbox.vendors.hubspot.oauth import OAuth
from integration_sandbox.vendors.hubspot.objects import Objects
from integration_sandbox.vendors.hubspot.pipelines import Pipelines
from integration_sandbox.vendors.hubspot.search import Search
from integration_sandbox.vendors.hubspot.values import as_number, iso


class HubSpotApp(Objects, Search, Batch, Pipelines, OAuth):
    """HubSpot: one mixin per family of endpoints, all over `HubSpotCore`, which holds the state they share."""

    vendor = "hubspot"
    object_types = OBJECT_TYPES
    request_id_header = "X-HubSpot-Correlation-Id"

    def build_routes(self) -> list[Route]:
        routes: list[Route] = []
        for t in self.object_types:
            read, write, base = f"crm.objects.{t}.read", f"crm.objects.{t}.write", f"/crm/v3/objects/{t}"

            def bind(handler: Callable[[str, Request], Response], object_type: str = t):
                return unquoting(functools.partial(handler, object_type))

            routes += [
                Route("GET", base, bind(self._list), read),
                Route("GET", base + "/{id}", bind(self._read), read),
                Route("POST", base + "/search", bind(self._search), read),
                Route("POST", base, bind(self._create), write),
                Route("PATCH", base + "/{id}", bind(self._update), write),
                Route("DELETE", base + "/{id}", bind(self._archive), write),
                Route("POST", base + "/batch/read", bind(self._batch_read), read),
                Route("POST", base + "/batch/create", bind(self._batch_create), write),
                Route("POST", base + "/batch/update", bind(self._batch_update), write),
                Route("POST", base + "/batch/upsert", bind(self._batch_upsert), write),
                Route("POST", base + "/batch/archive", bind(self._batch_archive), write),
                Route(
                    "GET",
                    f"/crm/v4/objects/{t}/{{id}}/associations/{{toType}}",
                    bind(self._associations),
                    read,
                ),
                Route("GET", f"/crm/v3/properties/{t}", bind(self._properties), read),
            ]
        routes += [
            Route("GET", "/crm/v3/pipelines/deals", self._pipelines, "crm.objects.deals.read"),
            Route(
                "GET",
                "/crm/v3/pipelines/deals/{pipelineId}",
                unquoting(self._pipeline),
                "crm.objects.deals.read",
            ),
            Route("POST", "/oauth/v1/token", self._oauth_token, PUBLIC),
            Route("GET", "/oauth/v1/access-tokens/{token}", unquoting(self._oauth_token_info), PUBLIC),
        ]
        return routes

    def mutate(self, object_type: str, record: Record, now: float, rng) -> Record:
        """A plausible user edit that leaves planted defects (email, phone, date, amount, stage) alone."""
        props = dict(record.get("properties") or {})
        if object_type == "contacts":
            phone = props.get("phone") or ""
            group = next((g for g in LIFECYCLE_GROUPS if props.get("lifecyclestage") in g), None)
            if group and (rng.random() < 0.5 or not mutable_phone(phone)):
                props["lifecyclestage"] = rng.choice([s for s in group if s != props["lifecyclestage"]])
            elif mutable_phone(phone):
                last = phone[-1]
                props["phone"] = phone[:-1] + rng.choice([d for d in "0123456789" if d != last])
            else:
                props["lifecyclestage"] = rng.choice(("lead", "subscriber"))
        elif object_type == "companies":
            props["industry"] = rng.choice([i for i in INDUSTRIES if i != props.get("industry")])
        else:
            stage, amount = props.get("dealstage"), as_number(props.get("amount"))
            if stage in OPEN_STAGES and rng.random() < 0.5:
                props["dealstage"] = rng.choice([s for s in OPEN_STAGES if s != stage])
            elif stage != "closedwon" and amount is not None and amount >= 0:
                delta = 250 * rng.randint(1, 20)
                amount = amount + delta if amount < delta or rng.random() < 0.5 else amount - delta
                props["amount"] = f"{amount:.2f}" if "." in props["amount"] else str(int(amount))
            else:  # won deals are invoiced: leave amount and stage alone
                props["hs_priority"] = rng.choice(
                    [p for p in ("low", "medium", "high") if p != props.get("hs_priority")]
                )
        return self._touched(object_type, {**record, "properties": props}, now)

    def delete(self, object_type: str, record_id: Any, now: float) -> Record | None:
        record = self.collections[object_type].get(str(record_id))
        if record is None or record.get("archived"):
            return record
        stamp = iso(now)
        archived = {**record, "archived": True, "archivedAt": stamp, "updatedAt": stamp}
        self._save(object_type, archived)
        return archived


def mutable_phone(phone: str) -> bool:
    return phone.startswith("+") and sum(c.isdigit() for c in phone) >= 8 and phone[-1].isdigit()
