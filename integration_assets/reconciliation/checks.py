"""Every reconciliation asset check, for definitions.py: cross-system agreement, record by record.

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

from integration_assets.reconciliation import billing, completeness, customers, tickets

__all__ = ["asset_checks", "completeness_checks", "cross_system_checks"]

cross_system_checks = [*billing.asset_checks, *customers.asset_checks, *tickets.asset_checks]
completeness_checks = completeness.asset_checks
asset_checks = [*cross_system_checks, *completeness_checks]
