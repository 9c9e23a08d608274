"""The reconciliation slice: cross-system agreement, record by record, and completeness against each vendor.

| check | attached to | what it compares |
|---|---|---|
| `won_deals_invoiced` | canonical/deals | won deals ↔ invoices (none after the grace period, amount, currency) |
| `invoices_paid_by_payments` | canonical/payments | invoices ↔ charges (paid but short, overpaid, no invoice) |
| `customer_master_agrees` | canonical/customers | names, emails, phones in non-owning systems ↔ the owner's value |
| `tickets_known_people` | canonical/tickets | ticket requester and organization ↔ CRM contacts and clients |
| `complete_against_vendor` | each source asset | the vendor's count of live records ↔ live rows in its raw table |

Completeness runs in the sync itself, right after each stream lands: counted any later, records created at the
vendor since the sync would read as missing. The cross-system checks run on their own, daily.
"""

from __future__ import annotations

from dagster import AssetSelection, Definitions

from integration_assets.core.automation import job, schedule
from integration_assets.core.catalog import Catalog
from integration_assets.reconciliation import billing, customers, tickets
from integration_assets.reconciliation.completeness import completeness_checks
from integration_assets.systems import CATALOG

__all__ = ["build_defs", "cross_system_checks"]

cross_system_checks = [*billing.asset_checks, *customers.asset_checks, *tickets.asset_checks]


def build_defs(catalog: Catalog = CATALOG) -> Definitions:
    reconciliation = job(
        "reconciliation",
        "reconciliation",
        AssetSelection.checks(*cross_system_checks),
        "Cross-system reconciliation checks on the canonical tables (no asset is materialized).",
        catalog.roles,
    )
    return Definitions(
        asset_checks=[*cross_system_checks, *completeness_checks(catalog)],
        jobs=[reconciliation],
        schedules=[
            schedule(
                "reconciliation_daily",
                reconciliation,
                "30 5 * * *",
                "Reconciliation once a day, after the 05:00 sync has landed.",
            )
        ],
    )
