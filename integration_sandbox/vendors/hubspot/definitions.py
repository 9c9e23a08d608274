"""HubSpot's object types, property kinds, association types and default deal pipeline, as its API has them."""

from __future__ import annotations

OBJECT_TYPES = ("companies", "contacts", "deals")
SINGULAR = {"companies": "company", "contacts": "contact", "deals": "deal"}
PLURAL = {**{s: p for p, s in SINGULAR.items()}, **{p: p for p in OBJECT_TYPES}}
MODIFIED = {
    "contacts": "lastmodifieddate",
    "companies": "hs_lastmodifieddate",
    "deals": "hs_lastmodifieddate",
}
DEFAULT_PROPERTIES = {
    "contacts": ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
    "companies": ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    "deals": (
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    ),
}
# HubSpot always returns these, whatever `properties` asks for.
ALWAYS = {t: ("createdate", MODIFIED[t], "hs_object_id") for t in OBJECT_TYPES}
SEARCHABLE = {
    "contacts": ("firstname", "lastname", "email", "phone", "company"),
    "companies": ("name", "domain", "website", "phone"),
    "deals": ("dealname",),
}
DATE_PROPERTIES = frozenset(
    {"createdate", "lastmodifieddate", "hs_lastmodifieddate", "closedate", "hs_createdate", "archivedAt"}
)
NUMBER_PROPERTIES = frozenset(
    {
        "amount",
        "hs_object_id",
        "associatedcompanyid",
        "numberofemployees",
        "annualrevenue",
        "hs_deal_stage_probability",
    }
)
UNIQUE_PROPERTIES = {"contacts": "email"}

PUBLIC = "public"  # Route.scope of the routes HubSpot serves without a bearer token (OAuth)
LIST_MAX, SEARCH_MAX, SEARCH_WINDOW, BATCH_MAX, ASSOCIATIONS_MAX = 100, 200, 10_000, 100, 500
RATE_DEFAULT = (190, 10.0)  # Pro/Enterprise private app: 190 requests per 10 s

# (from, to) -> (unlabeled type id, primary type id or None); HubSpot-defined association types.
ASSOCIATION_TYPES: dict[tuple[str, str], tuple[int, int | None]] = {
    ("contacts", "companies"): (279, 1),
    ("companies", "contacts"): (280, 2),
    ("deals", "companies"): (341, 5),
    ("companies", "deals"): (342, 6),
    ("deals", "contacts"): (3, None),
    ("contacts", "deals"): (4, None),
}
TYPE_TARGET = {(pair[0], type_id): pair[1] for pair, ids in ASSOCIATION_TYPES.items() for type_id in ids if type_id}
PRIMARY_IDS = frozenset(ids[1] for ids in ASSOCIATION_TYPES.values() if ids[1])

DEAL_STAGES = (  # default pipeline: id, label, probability, closed
    ("appointmentscheduled", "Appointment Scheduled", "0.2", "false"),
    ("qualifiedtobuy", "Qualified To Buy", "0.4", "false"),
    ("presentationscheduled", "Presentation Scheduled", "0.6", "false"),
    ("decisionmakerboughtin", "Decision Maker Bought-In", "0.8", "false"),
    ("contractsent", "Contract Sent", "0.9", "false"),
    ("closedwon", "Closed Won", "1.0", "true"),
    ("closedlost", "Closed Lost", "0.0", "true"),
)
OPEN_STAGES = tuple(s[0] for s in DEAL_STAGES if s[3] == "false")
LIFECYCLE_GROUPS = (
    ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead"),
    ("salesqualifiedlead", "opportunity"),
    ("customer", "evangelist"),
)
PIPELINE_CREATED = "2019-01-01T00:00:00.000Z"
