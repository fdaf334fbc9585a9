"""sync_batch.py (the `azure_sync` step): several datasets in one process, each exactly as sync_azure.py
syncs it; a bad dataset fails the batch with its contract exit code without costing the others
their Parquet or, under Dagster, their materializations."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq

from tests.plugins.azurite import LandingTree, run_sync_script

AS_OF = dt.date(2026, 11, 20)
BATCH_SCRIPT = Path(__file__).resolve().parents[1] / "bat_file_data_refresh" / "python" / "azure_sync" / "sync_batch.py"


def run_batch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(BATCH_SCRIPT), *args], capture_output=True, text=True, timeout=300,
                          check=False, env={**os.environ, **(env or {})})


def json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def parquet_tables(root: Path, market: str) -> dict[str, list[dict]]:
    folder = root / "raw" / market / "ingest_orders"
    return {p.name: pq.read_table(p).to_pylist() for p in sorted(folder.rglob("*.parquet"))}


def write_bad_uk_file(landing: LandingTree) -> None:
    """A UK file for AS_OF whose line 3 has quantity 0 (value rule: an integer >= 1)."""
    good = landing.write_orders("UK", AS_OF, rows=3).read_text(encoding="utf-8").splitlines()
    cells = good[2].split(",")
    cells[7] = "0"
    good[2] = ",".join(cells)
    landing.write(f"UK/raw_data/DWH/Oracle/ingest_orders/{AS_OF:%Y}/ingest_orders_{AS_OF:%Y%m%d}.csv",
                  "\n".join(good) + "\n")


def test_batch_writes_what_the_single_dataset_script_writes(sync_landing: LandingTree, isolated_env: Path, tmp_path):
    for market in ("UK", "JP"):
        for offset in range(3):
            sync_landing.write_orders(market, AS_OF - dt.timedelta(days=offset), rows=4 + offset)
    window = ["--as-of", AS_OF.isoformat(), "--days-back", "3"]
    batch = run_batch("--datasets", "UK:ingest_orders", "JP:ingest_orders", *window)
    assert batch.returncode == 0, batch.stderr

    lines = json_lines(batch.stdout)
    assert [(line.get("market"), line.get("dataset")) for line in lines[:2]] == [
        ("UK", "ingest_orders"), ("JP", "ingest_orders")]
    assert lines[0] == {"market": "UK", "dataset": "ingest_orders", "files_listed": 3, "files_synced": 3,
                        "files_skipped": 0, "files_failed": 0, "rows_loaded": 4 + 5 + 6}
    assert lines[-1]["datasets"] == 2 and lines[-1]["datasets_failed"] == 0
    assert lines[-1]["files_synced"] == 6 and lines[-1]["rows_loaded"] == 2 * (4 + 5 + 6)

    by_hand = tmp_path / "by_hand"
    by_hand.mkdir()
    for market in ("UK", "JP"):
        single = run_sync_script("--market", market, "--dataset", "ingest_orders", *window, env={"DATA_DIR": str(by_hand)})
        assert single.returncode == 0, single.stderr
        assert parquet_tables(isolated_env, market) == parquet_tables(by_hand, market)
        assert len(parquet_tables(isolated_env, market)) == 3

    again = run_batch("--datasets", "UK:ingest_orders", "JP:ingest_orders", *window)
    assert again.returncode == 0
    assert json_lines(again.stdout)[-1]["files_skipped"] == 6  # incremental, as the single script


def test_a_bad_dataset_fails_the_batch_with_65_and_the_others_still_sync(sync_landing: LandingTree, isolated_env: Path):
    write_bad_uk_file(sync_landing)
    sync_landing.write_orders("DE", AS_OF, rows=5)
    batch = run_batch("--datasets", "UK:ingest_orders", "DE:ingest_orders", "--as-of", AS_OF.isoformat(),
                      "--days-back", "1")
    assert batch.returncode == 65
    uk, de, last = json_lines(batch.stdout)
    assert uk["error"]["code"] == 65 and "line 3" in uk["error"]["message"] and "quantity" in uk["error"]["message"]
    assert "error" not in de and de["files_synced"] == 1
    assert last["failed"] == ["UK/ingest_orders"] and last["error"]["code"] == 65
    assert "UK/ingest_orders (exit 65)" in batch.stderr
    assert len(parquet_tables(isolated_env, "DE")) == 1
    assert parquet_tables(isolated_env, "UK") == {}
    leftovers = [p for p in isolated_env.rglob("*") if p.is_file() and p.name.startswith(".")]
    assert leftovers == []


def test_an_unknown_dataset_stops_the_batch_before_any_work(sync_landing: LandingTree, isolated_env: Path):
    sync_landing.write_orders("UK", AS_OF, rows=2)
    batch = run_batch("--datasets", "UK:ingest_orders", "FR:ingest_orders", "--as-of", AS_OF.isoformat())
    assert batch.returncode == 78
    assert "FR" in json_lines(batch.stdout)[-1]["error"]["message"]
    assert not (isolated_env / "raw" / "UK").exists()


def test_malformed_dataset_argument_is_a_configuration_error(isolated_env: Path):
    batch = run_batch("--datasets", "UK-ingest_orders")
    assert batch.returncode == 78
    assert "expected MARKET:DATASET" in batch.stderr


def test_under_dagster_the_good_dataset_is_materialized_and_the_step_fails_without_retry(
    sync_landing: LandingTree, isolated_env: Path,
):
    from orchestration.definitions import defs

    write_bad_uk_file(sync_landing)
    sync_landing.write_orders("DE", AS_OF, rows=5)
    job = defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection={dg.AssetKey("uk_orders_azure"), dg.AssetKey("de_orders_azure")})
    result = job.execute_in_process(
        run_config={"ops": {"azure_sync": {"config": {"as_of": AS_OF.isoformat(), "days_back": 1}}}},
        raise_on_error=False,
    )
    assert not result.success
    materialized = {e.asset_key.to_user_string(): e.event_specific_data.materialization
                    for e in result.get_asset_materialization_events()}
    assert set(materialized) == {"de_orders_azure"}
    assert materialized["de_orders_azure"].metadata["rows_loaded"].value == 5
    [failure] = [e for e in result.all_events if e.is_step_failure]
    message = failure.event_specific_data.error.message
    assert "rejected bad input (exit 65)" in message and "UK/ingest_orders" in message and "line 3" in message
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    # the failed dataset is still checked in the same step: its freshness check tells the team it is late
    checks = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    assert not checks[("uk_orders_azure", "source_is_current")].passed
    assert checks[("de_orders_azure", "parquet_schema_matches_contract")].passed
