"""A deterministic fake business across HubSpot, Stripe and Zendesk, written as each vendor's API returns it.

`generate(out_dir, seed=, scale=, defect_rate=)` writes nine JSON arrays and `manifest.json` (see
/work/shared/design.md). `scale` is the number of CRM companies; each company and everything linked to it
(contacts, deals, a Stripe customer with invoices and charges, a Zendesk organization with users and
tickets) is one *family*. Families are generated one at a time, each from its own `random.Random` seeded by
(seed, family index), and streamed straight into the open files, so memory does not grow with scale and a
clean family's content does not depend on the defects planted elsewhere.

The business rules a consumer may rely on:

* Every record not listed in `manifest["defects"]` is clean: valid emails and `+`-prefixed phone numbers
  (fictional ranges: Ofcom drama numbers, NANP 555-01xx, ACMA and ARCEP fiction ranges), real dates, known
  statuses and currencies, and consistent links across systems.
* Stripe customers carry `metadata.hubspot_company_id`; invoices carry `metadata.hubspot_deal_id`, exist for
  every closed-won deal, and total the deal amount in minor units of the deal currency (JPY zero-decimal).
  Paid invoices are covered exactly by their charges; an open invoice may have one partial charge.
  Invoices carry every field Stripe's published document requires: their `lines` (the deal's product, in
  one invoice in four with a setup fee) sum to the total, planted defects included; their period runs from
  the deal's close to their creation; `attempt_count` is their number of charges. Each charge is paid with
  the customer's one test card, unexpired when charged.
* Zendesk organizations carry `external_id` = HubSpot company id and end-users `external_id` = HubSpot
  contact id. An organization's `organization_fields.plan` is `implied_plan(n)` of the number `n` of the
  company's closed-won deals, and a clean organization's `updated_at` is earlier than its company's
  `hs_lastmodifieddate` (the CRM is the newer side), so a write-back may update it.
* All timestamps fall within ~400 days before `ANCHOR`, except expected close dates of open deals, which may
  lie up to 90 days after it.

The package: `vocabulary` (the words), `family` (what one family is), `crm`, `billing` and `support` (each
system's records), `defects` (the planter), `formats` (values and files) and `dataset` (the driver).
"""

from integration_sandbox.generator.dataset import generate
from integration_sandbox.generator.defects import DEFECT_KINDS
from integration_sandbox.generator.formats import ANCHOR, FILES
from integration_sandbox.generator.support import PLANS, implied_plan

__all__ = ["ANCHOR", "DEFECT_KINDS", "FILES", "PLANS", "generate", "implied_plan"]
