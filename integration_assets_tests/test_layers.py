"""The house plan holds: imports go only down the floors, never sideways between slices, never in a cycle."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import integration_assets
import integration_sandbox

# Lowest floor first. A module may import its own slice and any slice on a lower floor.
FLOORS: tuple[tuple[str, ...], ...] = (
    ("core",),
    ("systems",),
    ("mapping",),
    ("canonical",),
    ("reconciliation", "monitoring", "writeback"),
    ("definitions",),
    ("forkserver",),
    ("quickstart",),
)


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int

    def __str__(self) -> str:
        return f"{self.source}:{self.line} imports {self.target}"


def modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package at `root`."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> Iterator[Edge]:
    """Every import of a known module in the file, function-level and TYPE_CHECKING ones included."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            candidates = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in known:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                yield Edge(name, candidate, node.lineno)


def graph(root: Path) -> list[Edge]:
    found = modules(root)
    return [edge for name, path in found.items() for edge in imports(name, path, set(found))]


def slice_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def floor_of(module: str) -> int:
    part = slice_of(module)
    for floor, slices in enumerate(FLOORS):
        if part in slices:
            return floor
    raise AssertionError(f"{module} is on no floor: add its slice to FLOORS")


def system_of(module: str) -> str | None:
    """The system package a module belongs to (`crm` for systems.crm.streams), None outside them."""
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "systems" and parts[2] not in SYSTEMS_FLOOR else None


SYSTEMS_FLOOR = {"definitions"}  # modules of systems/ itself: they gather every system (the catalog is its __init__)


def wrong_way(edges: list[Edge]) -> list[str]:
    """Imports of a higher floor, of another slice on the same floor, or of one system by another."""
    found = []
    for edge in edges:
        source, target = slice_of(edge.source), slice_of(edge.target)
        if source is None or target is None:
            continue
        if source == target:
            systems = system_of(edge.source), system_of(edge.target)
            if None not in systems and systems[0] != systems[1]:
                found.append(f"{edge} (another system)")
            continue
        if floor_of(edge.target) > floor_of(edge.source):
            found.append(f"{edge} (upward)")
        elif floor_of(edge.target) == floor_of(edge.source):
            found.append(f"{edge} (sideways)")
    return found


def cycles(edges: list[Edge]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    successors: dict[str, set[str]] = {}
    for edge in edges:
        successors.setdefault(edge.source, set()).add(edge.target)
        successors.setdefault(edge.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(successors[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(successors):
        if node not in index:
            visit(node)
    return groups


PACKAGE = Path(integration_assets.__file__).parent
SANDBOX = Path(integration_sandbox.__file__).parent


def test_imports_only_go_down_the_floors() -> None:
    assert wrong_way(graph(PACKAGE)) == []


@pytest.mark.parametrize("root", [PACKAGE, SANDBOX], ids=["integration_assets", "integration_sandbox"])
def test_no_import_cycles(root: Path) -> None:
    assert cycles(graph(root)) == []


# What the sandbox may use of the engine: the YAML loader whose errors name file, line and entry.
SANDBOX_MAY_IMPORT = {"integration_assets.core.config"}


def test_the_sandbox_needs_nothing_of_the_engine_but_its_config_loader() -> None:
    reaching = []
    for name, path in modules(SANDBOX).items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            reaching += [
                f"{name}:{node.lineno} {n}"
                for n in names
                if n.split(".")[0] == "integration_assets" and n not in SANDBOX_MAY_IMPORT
            ]
    assert reaching == []


def test_the_walker_sees_a_cycle_and_an_upward_import(tmp_path: Path) -> None:
    """Run against a deliberate cycle (core ↔ monitoring) to see that the checks above can fail."""
    package = tmp_path / "integration_assets"
    for folder in ("core", "monitoring"):
        (package / folder).mkdir(parents=True)
        (package / folder / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "core" / "policies.py").write_text("def f():\n    from integration_assets.monitoring import alerts\n")
    (package / "monitoring" / "alerts.py").write_text("from ..core.policies import f\n")
    for role in ("crm", "billing"):
        (package / "systems" / role).mkdir(parents=True)
        (package / "systems" / role / "__init__.py").write_text("")
    (package / "systems" / "__init__.py").write_text("from integration_assets.systems import billing, crm\n")
    (package / "systems" / "crm" / "writes.py").write_text("from integration_assets.systems.billing import x\n")
    edges = graph(package)
    assert cycles(edges) == [["integration_assets.core.policies", "integration_assets.monitoring.alerts"]]
    assert wrong_way(edges) == [
        "integration_assets.core.policies:2 imports integration_assets.monitoring.alerts (upward)",
        "integration_assets.systems.crm.writes:1 imports integration_assets.systems.billing (another system)",
    ]
