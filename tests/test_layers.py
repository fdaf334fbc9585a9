"""The code's layers, as the README and docs/where_things_are.md describe them: scripts -> orchestration ->
legacy script packages -> pipeline_common. No module imports from a layer above its own, also not inside a
function, and no Python file edits the import path: every import resolves through the installed packages."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LEGACY = REPO / "bat_file_data_refresh" / "python"
# Lower number = lower layer. A module may import its own layer or any lower one.
LAYERS = {
    "pipeline_common": 0,
    "azure_sync": 1, "create_hyper_files": 1, "sharepoint_budget": 1,
    "orchestration": 2,
    "scripts": 3,
}
ROOTS = {"pipeline_common": REPO / "pipeline_common", "orchestration": REPO / "orchestration", "scripts": REPO / "scripts",
         **{name: LEGACY / name for name in ("azure_sync", "create_hyper_files", "sharepoint_budget")}}


def _project_imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every project import in the file, at any depth (functions too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        found += [(node.lineno, name.split(".")[0]) for name in names if name.split(".")[0] in LAYERS]
    return found


def _modules() -> list[tuple[str, Path]]:
    return [(package, path) for package, root in ROOTS.items() for path in sorted(root.rglob("*.py"))]


@pytest.mark.parametrize(("package", "path"), _modules(), ids=lambda value: str(value).replace(str(REPO), "") if isinstance(value, Path) else value)
def test_no_module_imports_from_a_layer_above_it(package, path):
    upward = [f"{path.relative_to(REPO)}:{line} imports {name}" for line, name in _project_imports(path)
              if LAYERS[name] > LAYERS[package]]
    assert not upward, upward


def test_the_legacy_packages_do_not_import_each_other():
    legacy = {"azure_sync", "create_hyper_files", "sharepoint_budget"}
    crossing = [f"{path.relative_to(REPO)}:{line} imports {name}" for package, path in _modules() if package in legacy
                for line, name in _project_imports(path) if name in legacy and name != package]
    assert not crossing, crossing


def test_no_python_file_edits_sys_path():
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    offenders = []
    for name in files:
        tree = ast.parse((REPO / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name) and node.value.id == "sys":
                offenders.append(f"{name}:{node.lineno}")
    assert len(files) > 100 and not offenders, offenders


@pytest.mark.parametrize("module", ["pipeline_common.freshness", "azure_sync.sync_azure", "create_hyper_files.duckdb_to_tableau_server",
                                    "sharepoint_budget.daily_sales_ingest", "scripts.supervisor", "scripts.dev.bench"])
def test_every_package_imports_from_any_folder(module, tmp_path):
    """Installed packages, not paths: an import works with no project folder on the import path at all."""
    done = subprocess.run([sys.executable, "-I", "-c", f"import {module}"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
