"""A fifth dataset type through pipeline.yaml alone: sync, dbt and an export, with no code edit.

The test writes a pipeline.yaml with one more dataset type (`ingest_returns`: its columns, bounds,
allowed values, grain and change-date column declared there and nowhere else) and one more
`datasets` entry, regenerates the dbt staging layer into a copy of the dbt project, generates the
landing files from the declaration (scripts/generate_sample_data.py), then runs the real sync, the
real `dbt build` of the new staging model (with its generated tests) and the real export CLI.
A broken file of the new type is then refused by the sync with the declared rule's message.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import yaml

from tests.plugins.warehouse import pipeline_env

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = REPO_ROOT / "bat_file_data_refresh" / "python"
AS_OF = dt.date(2026, 11, 20)

RETURNS = {
    "cadence": "daily",
    "asset_name": "{market}_returns_azure",
    "group": "azure_ingestion_orders",
    "grain": ["return_id"],
    "change_date": "return_date",
    "columns": {
        "return_id": {"type": "integer", "min": 1},
        "order_line_id": {"type": "integer", "min": 1},
        "return_date": {"type": "date", "not_after_file_date": True},
        "reason": {"type": "string", "allowed": ["DAMAGED", "WRONG_SIZE", "CHANGED_MIND"]},
        "refund": {"type": "decimal", "min": 0, "max": 5000},
    },
}


def _run(args: list[str], env: dict[str, str], cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=900)


def test_a_fifth_dataset_type_flows_through_sync_dbt_and_an_export(tmp_path):
    raw = yaml.safe_load((REPO_ROOT / "pipeline.yaml").read_text(encoding="utf-8"))
    raw["dataset_types"]["ingest_returns"] = RETURNS
    raw["datasets"].append({"market": "UK", "dataset": "ingest_returns", "days_back": 3})
    config_file = tmp_path / "pipeline.yaml"
    config_file.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")

    data_dir, landing = tmp_path / "data", tmp_path / "landing"
    duckdb_path = data_dir / "warehouse" / "analytics.duckdb"
    env = {**pipeline_env(data_dir, landing, duckdb_path), "PIPELINE_CONFIG": str(config_file)}

    dbt_dir = tmp_path / "dbt"
    shutil.copytree(REPO_ROOT / "dbt", dbt_dir, ignore=shutil.ignore_patterns("target", "logs", "*.duckdb"))
    done = _run([sys.executable, "-c",
                 "import sys, importlib.util as u; from pathlib import Path;"
                 "s = u.spec_from_file_location('g', sys.argv[1]); g = u.module_from_spec(s); s.loader.exec_module(g);"
                 "from pipeline_common.config import load_pipeline_config;"
                 "print(g.write(load_pipeline_config(), Path(sys.argv[2])))",
                 str(REPO_ROOT / "scripts" / "dev" / "generate_dbt_staging.py"), str(dbt_dir)], env)
    assert done.returncode == 0, done.stderr
    model_sql = dbt_dir / "models" / "staging" / "uk" / "stg_uk_returns.sql"
    assert model_sql.is_file(), done.stdout
    models = yaml.safe_load((dbt_dir / "models" / "staging" / "uk" / "_uk__models.yml").read_text(encoding="utf-8"))
    returns_model = next(m for m in models["models"] if m["name"] == "stg_uk_returns")
    assert {"within_bounds": {"name": "within_bounds_stg_uk_returns",
                              "arguments": {"bounds": {"return_id": ["1", None], "order_line_id": ["1", None],
                                                       "refund": ["0", "5000"]}}}} in returns_model["data_tests"]

    done = _run([sys.executable, str(REPO_ROOT / "scripts" / "generate_sample_data.py"), "--days", "3",
                 "--rows-per-day", "200", "--as-of", AS_OF.isoformat(), "--markets", "UK", "--out", str(landing)], env)
    assert done.returncode == 0, done.stderr
    returns_blob = landing / "UK/raw_data/DWH/Oracle/ingest_returns/2026/ingest_returns_20261120.csv"
    assert returns_blob.is_file()

    done = _run([sys.executable, str(SCRIPTS / "azure_sync" / "sync_azure.py"), "--market", "UK",
                 "--dataset", "ingest_returns", "--as-of", AS_OF.isoformat()], env)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["files_synced"] == 3 and summary["rows_loaded"] > 0, summary

    dbt_env = {**env, "DBT_TARGET_PATH": str(tmp_path / "dbt_target"), "DBT_LOG_PATH": str(tmp_path / "dbt_logs")}
    from orchestration.warehouse.project import dbt_executable

    done = _run([dbt_executable(), "build", "--project-dir", str(dbt_dir), "--profiles-dir", str(dbt_dir),
                 "--select", "stg_uk_returns"], dbt_env)
    assert done.returncode == 0, done.stdout[-4000:]
    assert "within_bounds_stg_uk_returns" in done.stdout  # the generated tests ran  # the generated tests ran
    with duckdb.connect(str(duckdb_path), read_only=True) as connection:
        rows, reasons, newest = connection.execute(
            "select count(*), list(distinct reason order by reason), max(return_date) from stg_uk_returns").fetchone()
    # The generated files of each day reuse the same return_ids: the grain keeps one row per id, the
    # newest file's (what the declaration's `grain` says), so the model holds the newest file's rows.
    newest_rows = len(returns_blob.read_text(encoding="utf-8").splitlines()) - 1
    assert summary["rows_loaded"] == 3 * newest_rows
    assert rows == newest_rows
    assert set(reasons) <= set(RETURNS["columns"]["reason"]["allowed"])
    assert newest == AS_OF

    out = tmp_path / "extracts"
    out.mkdir()
    done = _run([sys.executable, str(SCRIPTS / "create_hyper_files" / "duckdb_to_tableau_server.py"),
                 "--tables", "stg_uk_returns", "--name", "returns_check", "--no-publish", "--out", str(out)], env)
    assert done.returncode == 0, done.stderr
    export = json.loads(done.stdout.strip().splitlines()[-1])
    assert export["tables"] == {"stg_uk_returns": rows}
    assert (out / "returns_check.hyper").is_file()

    # The declaration is the rule: a refund above the declared max is refused, naming line and column.
    text = returns_blob.read_text(encoding="utf-8").splitlines()
    header = text[0].split(",")
    cells = text[3].split(",")
    cells[header.index('"refund"') if '"refund"' in header else header.index("refund")] = "5000.01"
    text[3] = ",".join(cells)
    returns_blob.write_text("\n".join(text) + "\n", encoding="utf-8")
    done = _run([sys.executable, str(SCRIPTS / "azure_sync" / "sync_azure.py"), "--market", "UK",
                 "--dataset", "ingest_returns", "--as-of", AS_OF.isoformat(), "--force"], env)
    assert done.returncode == 65, done.stderr
    assert "ingest_returns_20261120.csv line 4, column 'refund': expected a number <= 5,000, got '5000.01'" in done.stdout
