"""The systems floor: one package per external system, named by its role, collected into the catalog.

A new system is one package here (declaring its `SYSTEM`), its entries in the YAML configuration and a
sandbox vendor; it joins the catalog below and every slice picks it up from there.
"""

from integration_assets.core.catalog import Catalog
from integration_assets.systems import billing, crm, support

__all__ = ["CATALOG"]

CATALOG = Catalog((crm.SYSTEM, billing.SYSTEM, support.SYSTEM))
