"""The reconciliation slice: cross-system agreement, record by record, and completeness against each vendor.

| check | attached to | what it compares |
|---|---|---|
| `won_deals_invoiced` | canonical/deals | won deals ↔ invoices (none after the grace period, amount, currency) |
| `invoices_paid_by_payments` | canonical/payments | invoices ↔ charges (paid but short, overpaid, no invoice) |
| `customer_master_agrees` | canonical/customers | names, emails, phones in non-owning systems ↔ the owner's value |
| `tickets_known_people` | canonical/tickets | ticket requester and organization ↔ CRM contacts and clients |
| `complete_against_vendor` | each source asset | the vendor's count of live records ↔ live rows in its raw table |

Completeness runs in the sync itself, right after each stream lands: counted any later, records created at the
vendor since the sync would read as missing. The cross-system checks run together in one step
(`common.cross_system_step`), each still its own check in the UI, executable alone. Each runs when its
canonical inputs changed, and once a day besides (`core/policies.automation_condition("reconciliation")`):
the `reconciliation_automation` sensor launches them. The `reconciliation` job runs all four by hand.
"""

from __future__ import annotations

from dagster import AssetSelection, Definitions, in_process_executor

from integration_assets.core.automation import automation_sensor, job
from integration_assets.core.catalog import Catalog
from integration_assets.core.stream_check import StreamCheck
from integration_assets.reconciliation import billing, customers, tickets
from integration_assets.reconciliation.common import cross_system_step
from integration_assets.reconciliation.completeness import CompletenessCheck
from integration_assets.systems import CATALOG

__all__ = ["build_defs", "cross_system_checks", "stream_checks"]

cross_system_checks = [cross_system_step([*billing.checks, *customers.checks, *tickets.checks])]


def stream_checks() -> list[StreamCheck]:
    """The check this slice runs in every source stream's own step: completeness against the vendor."""
    return [CompletenessCheck()]


def build_defs(catalog: Catalog = CATALOG) -> Definitions:
    checks = AssetSelection.checks(*cross_system_checks)
    reconciliation = job(
        "reconciliation",
        "reconciliation",
        checks,
        "Cross-system reconciliation checks on the canonical tables (no asset is materialized), in one step and "
        "in the run's own process: they call no vendor and only read the warehouse, so there is no step to "
        "isolate and no process worth starting. The reconciliation_automation sensor runs each check when its "
        "canonical inputs change and once a day; this job runs all of them by hand.",
        catalog.roles,
        executor=in_process_executor,
    )
    return Definitions(
        asset_checks=cross_system_checks,
        jobs=[reconciliation],
        sensors=[
            automation_sensor(
                "reconciliation",
                checks,
                "Runs each cross-system check when its canonical tables changed and are usable (built, their "
                "contract passed), and once a day whatever changed (the won-deal grace period runs by the "
                "calendar).",
                catalog.roles,
            )
        ],
    )
