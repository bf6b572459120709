"""The layers of docs/architecture.md, enforced: who may import whom.

Every import counts, also those inside functions (deferred for start-up time, they are still
dependencies). Lowest first: base modules, core (pure), artifact and oci, services, workflows,
cli.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "falcopkg"

# layer -> the falcopkg packages it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "core": ("falcopkg.oci", "falcopkg.services", "falcopkg.workflows", "falcopkg.cli"),
    "artifact": ("falcopkg.services", "falcopkg.workflows", "falcopkg.cli"),
    "oci": ("falcopkg.artifact", "falcopkg.services", "falcopkg.workflows", "falcopkg.cli"),
    "services": ("falcopkg.workflows", "falcopkg.cli"),
    "workflows": ("falcopkg.cli", "click"),
}
BASE_FORBIDDEN = (
    "falcopkg.core",
    "falcopkg.oci",
    "falcopkg.services",
    "falcopkg.workflows",
    "falcopkg.cli",
)
BASE_MODULES = (
    "archive",
    "errors",
    "defaults",
    "digests",
    "durations",
    "text",
    "fsutil",
    "paths",
    "retry",
    "tomlfile",
)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _violations(path: Path, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        name
        for name in _imports(path)
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    )


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_above_it(layer: str) -> None:
    problems = {
        str(path.relative_to(PACKAGE)): bad
        for path in sorted((PACKAGE / layer).rglob("*.py"))
        if (bad := _violations(path, FORBIDDEN[layer]))
    }
    assert not problems


@pytest.mark.parametrize("module", BASE_MODULES)
def test_base_modules_import_no_layer(module: str) -> None:
    assert not _violations(PACKAGE / f"{module}.py", BASE_FORBIDDEN)


def test_the_sync_fast_path_modules_import_only_the_standard_library_at_the_top() -> None:
    """workflows.noop and workflows.project run on every no-op sync."""
    for name in ("noop.py", "project.py"):
        tree = ast.parse((PACKAGE / "workflows" / name).read_text(encoding="utf-8"))
        top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
        modules = {a.name for n in top if isinstance(n, ast.Import) for a in n.names}
        modules |= {n.module or "" for n in top if isinstance(n, ast.ImportFrom)}
        third_party = {
            m
            for m in modules
            if m.split(".")[0] in ("click", "requests", "yaml", "tomlkit", "semver")
        }
        assert not third_party, (name, third_party)
