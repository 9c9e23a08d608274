"""The stream catalog: every source stream declared once, and every list of streams a query on it.

Each `systems/<role>/` package declares its system (vendor, resource, count of live records) and its streams;
`integration_assets.systems.CATALOG` collects them. Asset keys, raw tables, health, completeness, contracts,
the field dictionary's object types and the jobs' tags are all read from here, so adding a stream is one
declaration and adding a system is one package under `systems/`, with nothing to edit in `core/`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from dagster import AssetKey

from integration_assets.core.warehouse import RawRow

if TYPE_CHECKING:
    from integration_assets.core.access import RouteTable
    from integration_assets.core.http import ApiClient

__all__ = ["Catalog", "Chunk", "LiveTotal", "Reader", "RecordPage", "StreamSpec", "SystemSpec"]

# (live records at the vendor, their ids when the vendor lists them, None when it only counts)
LiveTotal = Callable[["ApiClient", str], tuple[int, "frozenset[str] | None"]]
# (object type, record id) -> the vendor's page of the record, None where there is none (the local sandbox)
RecordPage = Callable[[str, object], "str | None"]


def _no_pages(object_type: str, record_id: object) -> str | None:
    return None


@dataclass(frozen=True)
class Chunk:
    """Rows a reader yields, committed in one transaction with the cursor that covers them."""

    rows: list[RawRow]
    cursor: str | None = None  # committed with these rows; None keeps the stored one
    pages: int = 1
    complete_listing: bool = False  # the stream has now listed everything it holds (a full pass ended)
    # the pass listed the id of every live record (a vendor without a count): the completeness check takes this
    # step's listing as the vendor's list instead of listing every id a second time
    listed_all: bool = False


class Reader(Protocol):
    """How one stream is read from its vendor: chunks from `cursor` on (a full pass when it is None)."""

    object_type: str
    chunk_records: int

    def read(self, client: ApiClient, cursor: str | None) -> Iterator[Chunk]: ...


@dataclass(frozen=True)
class StreamSpec:
    """One source stream: where it comes from, which asset and raw table it lands in, what it promises."""

    role: str  # the system's role: crm, billing, support
    vendor: str  # hubspot, stripe, zendesk: also the resource key and the concurrency pool
    object_type: str  # the vendor's object type, as its API and the sandbox name it (Stripe: charges)
    name: str  # the asset's name within its role (billing/payments reads Stripe charges)
    description: str
    reader: Reader
    contract: Any = None  # the pandera DataFrameModel of what the vendor's API promises
    contract_columns: Mapping[str, str] = field(default_factory=dict)  # contract column -> payload path

    @property
    def key(self) -> str:
        """The asset key as a path: "crm/contacts"."""
        return f"{self.role}/{self.name}"

    @property
    def asset_key(self) -> AssetKey:
        return AssetKey([self.role, self.name])

    @property
    def raw_table(self) -> str:
        return f"raw.{self.role}_{self.name}"

    @property
    def connector(self) -> str:
        """The access-policy connector the source assets and completeness checks call with."""
        return f"{self.role}_source"


@dataclass(frozen=True)
class SystemSpec:
    """One external system, named by its role; `streams` in the order they are synced and shown."""

    role: str
    vendor: str  # also the name of its resource and concurrency pool
    title: str  # the vendor as people name it: HubSpot
    streams: tuple[StreamSpec, ...]
    live_total: LiveTotal  # the vendor's own count of live records of an object type (completeness)
    resource: Callable[[], Any]  # the vendor connection (a Dagster resource) configured from the environment
    has_updated_at: bool = True  # its records carry a last-modified time (Stripe objects only `created`)
    record_page: RecordPage = _no_pages  # where a person opens a record the evidence of a check names
    # the vendor's endpoints and what each does (`systems/<role>/routes.py`): the HTTP client enforces the access
    # policy on these, so a system without a table can send nothing
    routes: RouteTable | None = None
    # currency -> decimals of the vendor's integer amounts where they are not ISO-4217's (Stripe keeps ISK at 2):
    # the mapping layer reads the system's minor units with these and stores ISO's; empty: the vendor follows ISO
    minor_units: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def declare(
        cls,
        role: str,
        vendor: str,
        title: str,
        *,
        readers: Iterable[Reader],
        contracts: Any,
        descriptions: Mapping[str, str],
        live_total: LiveTotal,
        resource: Callable[[], Any],
        names: Mapping[str, str] | None = None,
        has_updated_at: bool = True,
        record_page: RecordPage = _no_pages,
        routes: RouteTable | None = None,
        minor_units: Mapping[str, int] | None = None,
    ) -> SystemSpec:
        """A system and its streams, one per reader (each with an `object_type`): its contract from the contracts
        module (`MODELS` and `COLUMNS` by object type), its description; `names` renames an asset (charges:
        payments)."""
        streams = tuple(
            StreamSpec(
                role=role,
                vendor=vendor,
                object_type=reader.object_type,
                name=(names or {}).get(reader.object_type, reader.object_type),
                description=descriptions[reader.object_type],
                reader=reader,
                contract=contracts.MODELS[reader.object_type],
                contract_columns=contracts.COLUMNS[reader.object_type],
            )
            for reader in readers
        )
        return cls(
            role, vendor, title, streams, live_total, resource, has_updated_at, record_page, routes, minor_units or {}
        )

    def __post_init__(self) -> None:
        for stream in self.streams:
            if (stream.role, stream.vendor) != (self.role, self.vendor):
                raise ValueError(f"{stream.key}: declared under {self.role} ({self.vendor}) with another system")
        if self.routes is not None:
            if self.routes.system != self.role:
                raise ValueError(f"{self.role}: its route table is {self.routes.system}'s")
            unrouted = [s.key for s in self.streams if s.object_type not in {r.object_type for r in self.routes.routes}]
            if unrouted:
                raise ValueError(f"{', '.join(unrouted)}: no route of {self.role}'s table reads that object type")
        for code, exponent in self.minor_units.items():
            if not (isinstance(code, str) and len(code) == 3 and code.isascii() and code.isalpha() and code.isupper()):
                raise ValueError(f"{self.role}: minor_units entry {code!r} is not an upper-case three-letter currency")
            if isinstance(exponent, bool) or not isinstance(exponent, int) or not 0 <= exponent <= 4:
                raise ValueError(f"{self.role}: minor_units[{code}] = {exponent!r} is not a number of decimals 0..4")


class Catalog:
    """Every system and stream, with the look-ups the rest of the package needs."""

    def __init__(self, systems: tuple[SystemSpec, ...]) -> None:
        self.systems = systems
        self.streams: tuple[StreamSpec, ...] = tuple(s for system in systems for s in system.streams)
        self._by_key = {s.key: s for s in self.streams}
        self._by_object = {(s.role, s.object_type): s for s in self.streams}
        if len(self._by_key) != len(self.streams) or len(self._by_object) != len(self.streams):
            raise ValueError("the catalog declares a stream twice (same asset key or same object type)")
        self._systems = {system.role: system for system in systems}

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(self._systems)

    def stream(self, key: str) -> StreamSpec:
        """The stream of an asset key path ("billing/payments")."""
        return self._by_key[key]

    def stream_of(self, role: str, object_type: str) -> StreamSpec:
        """The stream of a vendor object type ("billing", "charges")."""
        return self._by_object[(role, object_type)]

    def streams_of(self, role: str) -> tuple[StreamSpec, ...]:
        return self._systems[role].streams

    def record_page(self, role: str, object_type: str, record_id: object) -> str | None:
        """The vendor's page of a record (a link in a check's evidence); None for a role the catalog lacks."""
        system = self._systems.get(role)
        return system.record_page(object_type, record_id) if system is not None else None

    def routes(self, role: str) -> RouteTable | None:
        """The route table of a system: what each of its vendor's endpoints does, for the access policy."""
        system = self._systems.get(role)
        return system.routes if system is not None else None

    def minor_units(self, role: str) -> Mapping[str, int]:
        """A system's own decimals per currency where its integer amounts are not ISO-4217's; empty for a system
        that follows ISO (or a role the catalog lacks)."""
        system = self._systems.get(role)
        return system.minor_units if system is not None else {}

    def object_types(self) -> dict[str, tuple[str, ...]]:
        """role -> the vendor object types it is read from."""
        return {system.role: tuple(s.object_type for s in system.streams) for system in self.systems}

    def with_streams(self, *extra: StreamSpec) -> Catalog:
        """This catalog with more streams, each appended to its system (a new system needs its SystemSpec)."""
        homeless = [stream.key for stream in extra if stream.role not in self._systems]
        if homeless:
            raise ValueError(f"{', '.join(homeless)}: no system has that role; declare its SystemSpec first")
        return Catalog(
            tuple(
                replace(system, streams=(*system.streams, *(s for s in extra if s.role == system.role)))
                for system in self.systems
            )
        )
