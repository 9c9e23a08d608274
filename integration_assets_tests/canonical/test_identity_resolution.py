"""Identity resolved again after changes (`identity.resolution` given the one before) matches only the sources
whose own version or whose keys' candidates changed, and comes out exactly as a resolution from scratch."""

import copy

from integration_assets.canonical.identity import RawIndex, resolution
from integration_assets.canonical.review import Decisions
from integration_assets.mapping.dictionary import load_dictionary

COMPANIES, CONTACTS = ("crm", "companies"), ("crm", "contacts")
PAYERS, ORGANIZATIONS = ("billing", "customers"), ("support", "organizations")


def _row(payload: dict, stamp: str = "t1", *, deleted: bool = False) -> dict:
    return {"payload": payload, "is_deleted": deleted, "loaded_at": stamp}


def _business() -> RawIndex:
    companies = {
        str(n): _row({"id": str(n), "properties": {"domain": f"client{n}.example", "name": f"Client {n}"}})
        for n in range(1, 7)
    }
    contacts = {
        "c1": _row({"id": "c1", "properties": {"email": "ann@client1.example", "associatedcompanyid": "1"}}),
        "c2": _row({"id": "c2", "properties": {"email": "bo@client2.example", "associatedcompanyid": "2"}}),
    }
    payers = {
        "cus_link": _row({"id": "cus_link", "email": "x@elsewhere.example", "metadata": {"hubspot_company_id": "3"}}),
        "cus_mail": _row({"id": "cus_mail", "email": "bo@client2.example", "metadata": {}}),
        "cus_domain": _row({"id": "cus_domain", "email": "pay@client4.example", "metadata": {}}),
        "cus_quiet": _row({"id": "cus_quiet", "email": "pay@client5.example", "metadata": {}}),
        "cus_ann": _row({"id": "cus_ann", "email": "ann@client1.example", "metadata": {}}),
    }
    organizations = {
        "9": _row({"id": 9, "external_id": "6", "domain_names": ["client6.example"]}),
        "10": _row({"id": 10, "external_id": None, "domain_names": ["client4.example"]}),
    }
    return {COMPANIES: companies, CONTACTS: contacts, PAYERS: payers, ORGANIZATIONS: organizations}


def test_a_resolution_after_changes_equals_one_from_scratch() -> None:
    dictionary, decisions = load_dictionary(), Decisions()
    raw = _business()
    first = resolution(dictionary, "customers", raw, decisions)
    assert first.matches[(*PAYERS, "cus_domain")].target == "crm:4"
    assert first.matches[(*PAYERS, "cus_mail")].target == "crm:2"
    assert first.matches[(*ORGANIZATIONS, "10")].target == "crm:4"
    after = copy.deepcopy(raw)
    # a company takes another's domain: an unchanged payer and organization now match two companies
    after[COMPANIES]["5"] = _row({"id": "5", "properties": {"domain": "client4.example", "name": "Five"}}, "t2")
    # the company an explicit link names is deleted; the contact a payer's email names moves to another company
    after[COMPANIES]["3"] = _row(raw[COMPANIES]["3"]["payload"], "t2", deleted=True)
    contact = copy.deepcopy(raw[CONTACTS]["c1"]["payload"])
    contact["properties"]["associatedcompanyid"] = "6"
    after[CONTACTS]["c1"] = _row(contact, "t2")
    # a payer changes its own email; one is new; one disappears
    after[PAYERS]["cus_quiet"] = _row({"id": "cus_quiet", "email": "pay@client2.example", "metadata": {}}, "t2")
    after[PAYERS]["cus_new"] = _row({"id": "cus_new", "email": "new@client6.example", "metadata": {}}, "t2")
    del after[PAYERS]["cus_link"]
    again = resolution(dictionary, "customers", after, decisions, before=first)
    scratch = resolution(dictionary, "customers", after, decisions)
    assert again.matches == scratch.matches
    assert again.candidates == scratch.candidates and again.keys == scratch.keys
    assert again.matches[(*PAYERS, "cus_domain")].reason_code == "ambiguous_owner"  # unchanged, matched again
    assert again.matches[(*ORGANIZATIONS, "10")].reason_code == "ambiguous_owner"
    assert again.matches[(*PAYERS, "cus_ann")].target == "crm:6"  # its contact moved
    assert again.matches[(*PAYERS, "cus_quiet")].target == "crm:2"
    assert (*PAYERS, "cus_link") not in again.matches
    assert first.matches != again.matches
