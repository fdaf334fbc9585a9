"""The committed per-market dbt staging matches pipeline.yaml, and a new market is a config edit."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from pipeline_common.config import load_pipeline_config, parse_pipeline_config

REPO_ROOT = Path(__file__).resolve().parents[1]
GENERATOR = REPO_ROOT / "scripts" / "dev" / "generate_dbt_staging.py"


def load_generator():
    from scripts.dev import generate_dbt_staging

    return generate_dbt_staging


def test_committed_staging_is_in_sync_with_pipeline_yaml():
    done = subprocess.run([sys.executable, str(GENERATOR), "--check"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"run python scripts/dev/generate_dbt_staging.py\n{done.stdout}{done.stderr}"


def test_every_configured_dataset_has_a_staging_model_and_source():
    config = load_pipeline_config()
    for entry in config.datasets:
        folder = REPO_ROOT / "dbt" / "models" / "staging" / entry.market.lower()
        name = f"stg_{entry.market.lower()}_{entry.dataset.removeprefix('ingest_')}"
        assert (folder / f"{name}.sql").is_file(), name
        sources = yaml.safe_load((folder / f"_{entry.market.lower()}__sources.yml").read_text(encoding="utf-8"))
        tables = {t["name"] for s in sources["sources"] if s["name"] == entry.market for t in s["tables"]}
        assert entry.dataset in tables


def test_adding_a_market_in_config_generates_its_staging_and_removes_stale_files(tmp_path):
    generator = load_generator()
    raw = yaml.safe_load((REPO_ROOT / "pipeline.yaml").read_text(encoding="utf-8"))
    raw["markets"]["FR"] = {"currency": "EUR"}
    raw["datasets"].append({"market": "FR", "dataset": "ingest_orders"})
    raw["datasets"] = [d for d in raw["datasets"] if d["market"] != "JP"]
    raw["markets"].pop("JP")
    config_file = tmp_path / "pipeline.yaml"
    config_file.write_text(yaml.safe_dump(raw), encoding="utf-8")
    config = parse_pipeline_config(config_file)

    dbt_dir = tmp_path / "dbt"
    shutil.copytree(REPO_ROOT / "dbt" / "models", dbt_dir / "models")
    shutil.copytree(REPO_ROOT / "dbt" / "macros", dbt_dir / "macros")
    problems = generator.out_of_sync(config, dbt_dir)
    assert "missing: models/staging/fr/stg_fr_orders.sql" in problems
    assert "stale: models/staging/jp/stg_jp_orders.sql" in problems

    generator.write(config, dbt_dir)
    assert generator.out_of_sync(config, dbt_dir) == []
    fr_models = yaml.safe_load((dbt_dir / "models/staging/fr/_fr__models.yml").read_text(encoding="utf-8"))
    currency_tests = [t for c in fr_models["models"][0]["columns"] if c["name"] == "currency"
                      for t in c["data_tests"] if isinstance(t, dict)]
    assert currency_tests == [{"accepted_values": {"arguments": {"values": ["EUR"]}}}]
    assert not list((dbt_dir / "models/staging/jp").glob("*.sql"))
    assert (dbt_dir / "models/staging/budget/stg_budget_daily_sales.sql").is_file()  # hand-written: kept
    assert '"FR": {"currency": "EUR"}' in (dbt_dir / "macros/generated/pipeline_config.sql").read_text()


def test_prepare_dbt_refuses_a_project_out_of_sync_with_the_config(tmp_path, monkeypatch):
    raw = yaml.safe_load((REPO_ROOT / "pipeline.yaml").read_text(encoding="utf-8"))
    raw["markets"]["FR"] = {"currency": "EUR"}
    raw["datasets"].append({"market": "FR", "dataset": "ingest_orders"})
    config_file = tmp_path / "pipeline.yaml"
    config_file.write_text(yaml.safe_dump(raw), encoding="utf-8")
    monkeypatch.setenv("PIPELINE_CONFIG", str(config_file))
    done = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "prepare_dbt.py")], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 78
    assert "missing: models/staging/fr/stg_fr_orders.sql" in done.stderr
    assert "generate_dbt_staging.py" in done.stderr
