"""Dagster's public API only: no import of `dagster._…` or `dagster_shared` outside the one adapter module.

Private modules are what a Dagster upgrade silently breaks; `integration_assets/core/dagster_adapter.py` holds
every remaining non-public use, each naming the public API it waits for, so an upgrade breaks there or nowhere.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from integration_assets_tests.testing import PROJECT

SCANNED = ("integration_assets", "integration_sandbox", "integration_assets_tests", "scripts", "benchmarks")
ADAPTER = Path("integration_assets/core/dagster_adapter.py")


def _private(module: str) -> bool:
    parts = module.split(".")
    return (parts[0] == "dagster" and len(parts) > 1 and parts[1].startswith("_")) or parts[0] == "dagster_shared"


def private_imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, what) of every private Dagster import in the file, function-level and TYPE_CHECKING ones too."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _private(alias.name):
                    yield node.lineno, f"import {alias.name}"
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            if _private(node.module):
                yield node.lineno, f"from {node.module} import …"
            elif node.module == "dagster":
                for alias in node.names:
                    if alias.name.startswith("_"):
                        yield node.lineno, f"from dagster import {alias.name}"


def test_no_private_dagster_import_outside_the_adapter() -> None:
    found = [
        f"{path.relative_to(PROJECT)}:{line}: {what}"
        for folder in SCANNED
        for path in sorted((PROJECT / folder).rglob("*.py"))
        if path.relative_to(PROJECT) != ADAPTER
        for line, what in private_imports(path)
    ]
    assert not found, "private Dagster imports (move them to core/dagster_adapter.py):\n" + "\n".join(found)


def test_the_scan_sees_what_it_must(tmp_path: Path) -> None:
    """The scan itself: each form of private import is caught, public ones are not."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import dagster._core.events\nfrom dagster._utils import x\nfrom dagster_shared.utils import y\n"
        "from dagster import _check\nfrom dagster import asset\nimport dagster\n"
        "def f():\n    import dagster_shared\n"
    )
    assert [line for line, _ in private_imports(sample)] == [1, 2, 3, 4, 8]
    assert (PROJECT / ADAPTER).exists()
