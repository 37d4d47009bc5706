"""The improvement domain is plain Python: no database, broker, web or telemetry imports."""

from __future__ import annotations

import ast
from pathlib import Path

import services.improvement.domain as domain

INFRASTRUCTURE = ("pymongo", "aiokafka", "fastapi", "starlette", "opentelemetry", "httpx", "shared.storage")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_domain_module_imports_infrastructure():
    modules = sorted(Path(domain.__file__).parent.glob("*.py"))
    assert len(modules) >= 9
    for module in modules:
        bad = {name for name in imported_modules(module) if name.startswith(INFRASTRUCTURE)}
        assert not bad, f"{module.name} imports {bad}"
