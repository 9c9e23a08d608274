"""`canonical/customer_360` from hand-made canonical tables, on both warehouses: money per currency (never
added across currencies, refunds netted, failed and deleted payments left out), open receivables of open
invoices only, open tickets and won deals counted, and a client with nothing still listed."""

from dagster import materialize

from integration_assets.canonical.assets import customer_360
from integration_assets.canonical.build import table_columns
from integration_assets.core.resources import WarehouseResource
from integration_assets.core.warehouse import Warehouse
from integration_assets.mapping.dictionary import load_dictionary

CUSTOMERS = [
    {"customer_id": "crm:1", "name": "Acme", "account_owner": "ana", "plan": "enterprise", "is_deleted": False},
    {"customer_id": "crm:2", "name": "Globex", "account_owner": None, "plan": "starter", "is_deleted": False},
    {"customer_id": "crm:3", "name": "Gone Ltd", "account_owner": None, "plan": "starter", "is_deleted": True},
]
PAYMENTS = [  # (customer, currency, amount, refunded, status, deleted)
    ("crm:1", "USD", 10_000, 2_500, "succeeded", False),
    ("crm:1", "USD", 5_000, None, "succeeded", False),
    ("crm:1", "EUR", 7_000, 0, "succeeded", False),
    ("crm:1", "USD", 99_999, None, "failed", False),  # not revenue
    ("crm:1", "USD", 88_888, None, "succeeded", True),  # deleted at the source
    ("crm:2", "JPY", 150_000, 150_000, "succeeded", False),  # refunded in full: 0 JPY, still its currency
]
INVOICES = [  # (customer, currency, amount_remaining, status)
    ("crm:1", "USD", 4_000, "open"),
    ("crm:1", "USD", 1_000, "open"),
    ("crm:1", "USD", 7_777, "paid"),  # not a receivable
    ("crm:2", "EUR", 2_000, "open"),
]
TICKETS = [("crm:1", "open"), ("crm:1", "waiting"), ("crm:1", "solved"), ("crm:2", "open")]
DEALS = [("crm:1", "won"), ("crm:1", "won"), ("crm:1", "lost"), ("crm:2", "open")]


def _table(warehouse: Warehouse, entity: str, rows: list[dict]) -> None:
    columns = table_columns(load_dictionary(), entity)
    warehouse.ensure_table(f"canonical.{entity}", columns)
    with warehouse.transaction() as tx:
        tx.append(f"canonical.{entity}", [{"is_deleted": False, **row} for row in rows])


def test_customer_360_sums_money_per_currency_and_counts(warehouse_url: str) -> None:
    warehouse = Warehouse.from_url(warehouse_url)
    _table(warehouse, "customers", CUSTOMERS)
    _table(
        warehouse,
        "payments",
        [
            {
                "payment_id": f"billing:ch_{n}",
                "customer_id": c,
                "currency": cur,
                "amount": a,
                "amount_refunded": r,
                "status": s,
                "is_deleted": d,
            }
            for n, (c, cur, a, r, s, d) in enumerate(PAYMENTS)
        ],
    )
    _table(
        warehouse,
        "invoices",
        [
            {"invoice_id": f"billing:in_{n}", "customer_id": c, "currency": cur, "amount_remaining": a, "status": s}
            for n, (c, cur, a, s) in enumerate(INVOICES)
        ],
    )
    _table(
        warehouse,
        "tickets",
        [{"ticket_id": f"support:{n}", "customer_id": c, "status": s} for n, (c, s) in enumerate(TICKETS)],
    )
    _table(
        warehouse, "deals", [{"deal_id": f"crm:d{n}", "customer_id": c, "stage": s} for n, (c, s) in enumerate(DEALS)]
    )

    result = materialize([customer_360], resources={"warehouse": WarehouseResource(url=warehouse_url)})

    assert result.success
    rows = {r["customer_id"]: r for r in warehouse.records("SELECT * FROM canonical.customer_360")}
    assert set(rows) == {"crm:1", "crm:2", "crm:3"}
    acme, globex, gone = rows["crm:1"], rows["crm:2"], rows["crm:3"]
    assert acme["revenue_paid"] == {"USD": 12_500, "EUR": 7_000}
    assert acme["open_receivables"] == {"USD": 5_000}
    assert acme["currencies"] == "EUR,USD"
    assert (acme["open_tickets"], acme["won_deals"], acme["owner"], acme["plan"]) == (2, 2, "ana", "enterprise")
    assert globex["revenue_paid"] == {"JPY": 0}
    assert globex["open_receivables"] == {"EUR": 2_000}
    assert globex["currencies"] == "EUR,JPY"
    assert (globex["open_tickets"], globex["won_deals"]) == (1, 0)
    assert gone["revenue_paid"] == {} and gone["open_receivables"] == {} and gone["is_deleted"] is True
    metadata = result.asset_materializations_for_node("canonical__customer_360")[0].metadata
    assert metadata["dagster/row_count"].value == 2 and metadata["deleted_rows"].value == 1
    assert metadata["customers_with_receivables"].value == 2
