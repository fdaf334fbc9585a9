"""The README's lineage is the code location's real asset graph, and `dg` loads the same code location."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import yaml

REPO = Path(__file__).resolve().parents[1]
DG = Path(sys.executable).parent / ("dg.exe" if os.name == "nt" else "dg")
LINEAGE = re.compile(r"<!-- lineage:start.*?-->(.*?)<!-- lineage:end -->", re.S)
EDGE = re.compile(r"^\s*(\w+) --> (\w+)\s*$", re.M)
PARENTS_LINE = re.compile(r"^- `(\w+)` is built from (.+)$", re.M)


def _readme_lineage() -> str:
    [block] = LINEAGE.findall((REPO / "README.md").read_text(encoding="utf-8"))
    return block


def _real_edges() -> set[tuple[str, str]]:
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = graph.materializable_asset_keys
    return {
        (parent.to_user_string(), key.to_user_string())
        for key in keys for parent in graph.get(key).parent_keys if parent in keys
    }


def test_readme_lineage_diagram_is_the_asset_graph():
    block = _readme_lineage()
    drawn = set(EDGE.findall(block))
    real = _real_edges()
    assert drawn == real, (
        f"README lineage drifted: missing {sorted(real - drawn)}, extra {sorted(drawn - real)}; "
        "run .venv/bin/python scripts/dev/generate_lineage.py"
    )
    # the case: the executive mart's parents, not int_orders_summary_daily
    parents = {child: {p.strip("` ") for p in text.split(",")} for child, text in PARENTS_LINE.findall(block)}
    assert parents["qi_executive_daily_sales"] == {p for p, c in real if c == "qi_executive_daily_sales"}
    assert "int_orders_summary_daily" not in parents["qi_executive_daily_sales"]
    assert parents["tableau_executive_daily_sales"] == {"qi_executive_daily_sales"}


def test_lineage_check_fails_when_the_readme_drifts(tmp_path):
    readme = tmp_path / "README.md"
    text = (REPO / "README.md").read_text(encoding="utf-8")
    readme.write_text(text.replace("  int_orders --> qi_executive_daily_sales\n",
                                   "  int_orders_summary_daily --> qi_executive_daily_sales\n"), encoding="utf-8")
    script = [sys.executable, str(REPO / "scripts" / "dev" / "generate_lineage.py"), "--readme", str(readme)]
    drifted = subprocess.run([*script, "--check"], capture_output=True, text=True, timeout=300)
    assert drifted.returncode == 1 and "out of date" in drifted.stdout
    assert "int_orders_summary_daily --> qi_executive_daily_sales" in readme.read_text(encoding="utf-8")  # untouched


def _dg(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(DG), *args], cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def test_dg_check_defs_loads_the_code_location_and_fails_on_a_broken_config(tmp_path):
    ok = _dg("check", "defs")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "All definitions loaded successfully" in ok.stdout + ok.stderr

    raw = yaml.safe_load((REPO / "pipeline.yaml").read_text(encoding="utf-8"))
    raw["datasets"][0]["market"] = "FR"
    broken = tmp_path / "pipeline.yaml"
    broken.write_text(yaml.safe_dump(raw), encoding="utf-8")
    bad = _dg("check", "defs", env={"PIPELINE_CONFIG": str(broken)})
    assert bad.returncode != 0
    assert "unknown market 'FR'" in bad.stdout + bad.stderr


def test_dg_list_defs_lists_the_same_jobs_and_assets_as_the_definitions():
    from orchestration.definitions import defs

    listed = _dg("list", "defs", "--json")
    assert listed.returncode == 0, listed.stderr
    shown = json.loads(listed.stdout)
    # Dagster's own hidden jobs (sensor asset jobs, __ASSET_JOB) are not listed
    assert {job["name"] for job in shown["jobs"]} == {
        job.name for job in defs.resolve_all_job_defs() if not job.name.startswith("__")
    }
    assert {asset["asset_key"] for asset in shown["assets"]} == {
        key.to_user_string() for key in defs.resolve_asset_graph().materializable_asset_keys
    }


def test_every_way_to_start_names_the_same_code_location():
    workspace = yaml.safe_load((REPO / "workspace.yaml").read_text(encoding="utf-8"))
    [entry] = workspace["load_from"]
    import tomllib

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert entry["python_module"]["location_name"] == pyproject["tool"]["dg"]["project"]["code_location_name"]
    assert entry["python_module"]["location_name"] == pyproject["tool"]["dagster"]["code_location_name"]
    assert entry["python_module"]["module_name"] == pyproject["tool"]["dg"]["project"]["code_location_target_module"]
    assert isinstance(dg.AssetKey("x"), dg.AssetKey)  # dagster importable in the same interpreter as dg
