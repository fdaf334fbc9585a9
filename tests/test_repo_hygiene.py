"""What a fresh clone relies on: pinned requirements, a complete .env.example, CRLF rules, ignores."""

from __future__ import annotations

import re
import subprocess

from pipeline_common.config import load_pipeline_config
from pipeline_common.settings import repo_root

ROOT = repo_root()
CONTRACT_VARIABLES = [
    "DATA_DIR", "LANDING_DIR", "AZURE_STORAGE_CONNECTION_STRING", "AZURE_CONTAINER", "DUCKDB_PATH",
    "AZURE_STORAGE_ACCOUNT_URL", "AZURE_STORAGE_SAS_TOKEN", "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET",
    "SHAREPOINT_SITE_URL", "SHAREPOINT_CLIENT_ID", "SHAREPOINT_CLIENT_SECRET", "SHAREPOINT_BUDGET_FOLDER",
    "SHAREPOINT_TENANT_ID", "SHAREPOINT_CERTIFICATE_PATH", "SHAREPOINT_CERTIFICATE_THUMBPRINT",
    "SHAREPOINT_CERTIFICATE_PASSWORD",
    "TABLEAU_SERVER_URL", "TABLEAU_SITE_ID", "TABLEAU_PAT_NAME", "TABLEAU_PAT_SECRET", "TABLEAU_PROJECT",
]


def _requirement_lines(name: str) -> list[str]:
    lines = (ROOT / name).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith(("#", "-r"))]


def test_requirements_are_pinned_and_dbt_core_below_1_12():
    lines = _requirement_lines("requirements.txt") + _requirement_lines("requirements-dev.txt")
    unpinned = [line for line in lines if "==" not in line]
    assert unpinned == []
    pins = dict(line.split("==") for line in lines)
    major, minor = (int(part) for part in pins["dbt-core"].split(".")[:2])
    assert (major, minor) < (1, 12)
    for package in ["dagster", "dagster-webserver", "dagster-dbt", "dbt-duckdb", "duckdb", "pyarrow",
                    "azure-storage-blob", "office365-rest-python-client", "openpyxl", "tableauhyperapi",
                    "tableauserverclient"]:
        assert package in pins, f"{package} missing from requirements.txt"


def test_env_example_lists_every_contract_variable_without_real_secrets():
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    names = set(re.findall(r"^([A-Z_]+)=", text, flags=re.MULTILINE))
    missing = [name for name in CONTRACT_VARIABLES if name not in names]
    assert missing == []
    for variable in load_pipeline_config().alerts.routes.values():
        assert variable in names, f"alert route variable {variable} missing from .env.example"
    # Copying it to .env changes nothing until a value is filled in: every assignment is empty.
    assigned = re.findall(r"^([A-Z_]+)=(.*)$", text, flags=re.MULTILINE)
    assert [name for name, value in assigned if value.strip()] == []


def test_gitattributes_keeps_windows_scripts_crlf():
    rules = (ROOT / ".gitattributes").read_text(encoding="utf-8")
    for pattern in ("*.bat", "*.ps1"):
        assert re.search(rf"^{re.escape(pattern)}\s.*eol=crlf", rules, re.MULTILINE), pattern
    tracked = subprocess.run(
        ["git", "ls-files", "--eol", "*.bat", "*.ps1"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert tracked, "no .bat/.ps1 tracked"
    for line in tracked:
        assert "w/crlf" in line, f"not CRLF in the work tree: {line}"


def test_gitignore_covers_data_venv_dagster_home_and_dbt_target():
    ignored = subprocess.run(
        ["git", "check-ignore", "data/x.parquet", ".venv/x", "dagster_home/runs.db", "dbt/target/manifest.json", ".env"],
        cwd=ROOT, capture_output=True, text=True,
    ).stdout.split()
    assert ignored == ["data/x.parquet", ".venv/x", "dagster_home/runs.db", "dbt/target/manifest.json", ".env"]


def test_no_merge_conflict_markers_are_committed():
    """Several branches land here; a merge that kept `<<<<<<<` blocks would ship broken docs or code."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    marker = re.compile(r"^(<{7}|>{7})( |$)|^={7}$", re.M)
    found = []
    for name in tracked:
        path = ROOT / name
        if path.suffix in {".parquet", ".xlsx", ".hyper", ".duckdb", ".png"} or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        found += [f"{name}:{text.count(chr(10), 0, m.start()) + 1}" for m in marker.finditer(text)]
    assert found == []
