"""The dbt project's set-up: the manifest is parsed once (not on every load), and a new market flows through."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml
from dagster_dbt import DbtProject

from orchestration.warehouse.project import dbt_executable
from orchestration.warehouse.resource import manifest_path
from pipeline_common.config import parse_pipeline_config
from tests.test_dbt_generated_staging import load_generator

REPO_ROOT = Path(__file__).resolve().parents[1]


def copy_dbt_project(target: Path) -> Path:
    shutil.copytree(REPO_ROOT / "dbt", target, ignore=shutil.ignore_patterns("target", "logs", ".user.yml"))
    return target


def test_missing_manifest_is_parsed_once_with_a_log_line_then_reused(tmp_path, caplog):
    project = DbtProject(project_dir=copy_dbt_project(tmp_path / "dbt"), profiles_dir=tmp_path / "dbt")
    assert not project.manifest_path.exists()
    with caplog.at_level(logging.WARNING, logger="orchestration.warehouse.project"):
        path = manifest_path(project)
    assert path.is_file()
    assert any("dbt manifest missing" in r.getMessage() for r in caplog.records)
    parsed_at = path.stat().st_mtime_ns
    caplog.clear()
    assert manifest_path(project) == path
    assert path.stat().st_mtime_ns == parsed_at  # a second load does not parse again
    assert not caplog.records


def test_a_market_added_in_config_reaches_the_cross_market_models(tmp_path):
    raw = yaml.safe_load((REPO_ROOT / "pipeline.yaml").read_text(encoding="utf-8"))
    raw["markets"]["FR"] = {"currency": "EUR"}
    raw["datasets"] += [{"market": "FR", "dataset": "ingest_orders"}, {"market": "FR", "dataset": "ingest_new_names"}]
    config_file = tmp_path / "pipeline.yaml"
    config_file.write_text(yaml.safe_dump(raw), encoding="utf-8")
    dbt_dir = copy_dbt_project(tmp_path / "dbt")
    load_generator().write(parse_pipeline_config(config_file), dbt_dir)

    done = subprocess.run(
        [dbt_executable(), "ls", "--project-dir", str(dbt_dir), "--profiles-dir", str(dbt_dir),
         "--resource-type", "model", "--select", "+qi_executive_daily_sales", "--output", "name"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    models = set(done.stdout.split())
    assert {"stg_fr_orders", "stg_fr_new_names", "stg_uk_orders", "int_orders"} <= models
    assert {"good_fr_orders", "good_fr_new_names"} <= models  # FR reaches them through its own gates
    compiled = subprocess.run(
        [dbt_executable(), "compile", "--project-dir", str(dbt_dir), "--profiles-dir", str(dbt_dir),
         "--select", "qi_executive_daily_sales", "--output", "text", "--quiet"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "DUCKDB_PATH": str(tmp_path / "w.duckdb")},
    )
    assert compiled.returncode == 0, compiled.stdout[-3000:]
    assert "when sales_gbp.market in ('FR', 'UK')" in compiled.stdout or \
        "when sales_gbp.market in ('UK', 'FR')" in compiled.stdout


def test_dbt_by_hand_creates_the_warehouse_folder_on_a_fresh_data_dir(tmp_path):
    # As the README runs it: from the repo root, DUCKDB_PATH unset, a DATA_DIR with no warehouse/ folder.
    data_dir = tmp_path / "fresh"
    data_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBT_", "DUCKDB_"))}
    env.update(DATA_DIR=str(data_dir), DUCKDB_PATH="", DBT_TARGET_PATH=str(tmp_path / "target"),
               DBT_LOG_PATH=str(tmp_path / "logs"))
    done = subprocess.run(
        [dbt_executable(), "debug", "--project-dir", "dbt", "--profiles-dir", "dbt"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert (data_dir / "warehouse" / "analytics.duckdb").is_file()


def test_an_empty_dbt_target_path_puts_each_runs_folder_under_dbt_target(tmp_path, monkeypatch):
    """DBT_TARGET_PATH="" is unset for dbt by hand and for the code location (dbt/target): each dbt call's own
    folder goes there too, never into dbt/ beside the models (where dagster-dbt put it: Path(""))."""
    from orchestration.warehouse.project import DBT_PROJECT_DIR
    from orchestration.warehouse.resource import warehouse_dbt_resource

    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DBT_TARGET_PATH", "")
    before = set(DBT_PROJECT_DIR.iterdir())
    invocation = warehouse_dbt_resource().cli(["parse", "--quiet"])
    try:
        invocation.wait()
        folder = Path(DBT_PROJECT_DIR, invocation.target_path).resolve()
        assert folder.parent == (DBT_PROJECT_DIR / "target").resolve(), folder
        assert (folder / "manifest.json").is_file()  # dbt wrote there
        assert set(DBT_PROJECT_DIR.iterdir()) == before  # and nothing beside the models
    finally:
        shutil.rmtree(Path(DBT_PROJECT_DIR, invocation.target_path), ignore_errors=True)
    assert os.environ["DBT_TARGET_PATH"] == ""  # the process's own environment is left as it was


def test_a_prepare_killed_half_way_is_tidied_by_the_next_and_a_live_ones_folder_kept(tmp_path):
    """`dbt parse` runs in a scratch folder inside dbt's target folder: kill -9 the prepare half-way and its
    folder stays; the next prepare removes it (its owner is gone), never a folder whose owner is alive."""
    import psutil

    from pipeline_common.leftovers import temp_name

    target = Path(os.environ["DBT_TARGET_PATH"])  # this test's own target folder (tests/conftest.py)
    env = {**os.environ, "DATA_DIR": str(tmp_path / "data")}  # other paths than the prepared ones: it parses
    prepare = [sys.executable, str(REPO_ROOT / "scripts" / "prepare_dbt.py")]
    first = subprocess.Popen(prepare, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(1200):
            if list(target.glob(".prepare-*")) or first.poll() is not None:
                break
            time.sleep(0.05)
        family = [psutil.Process(first.pid), *psutil.Process(first.pid).children(recursive=True)]
    finally:
        for member in family if first.poll() is None else []:
            member.kill()
        first.wait(timeout=60)
    killed = list(target.glob(".prepare-*"))
    assert killed, "the prepare finished before it could be killed half-way"
    live = target / temp_name("prepare-", "")  # a prepare of this (live) process
    live.mkdir()

    done = subprocess.run(prepare, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert list(target.glob(".prepare-*")) == [live]
    assert (target / "manifest.json").is_file()
