"""The first tick of the budget sensor knows what was already ingested (issue 26, item 2).

Class: a workbook version the budget ingest already read, whoever ran it (the demo, a by-hand run,
a scheduled run; a local file or SharePoint), or that a migrated history's instance shows as
materialized after the workbook last changed, starts no run, even with no cursor yet; any other
version starts exactly one. The ingest is the real script; the sensor is evaluated on a real
instance. The end-to-end case (a real server after the demo) is in test_e2e_first_start.py.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from orchestration.budget import arrival
from pipeline_common.config import load_pipeline_config
from tests.plugins.frozen_clock import frozen_clock, frozen_clock_env
from tests.plugins.sample_data import SAMPLE_AS_OF

REPO = Path(__file__).resolve().parents[1]
INGEST = REPO / "bat_file_data_refresh" / "python" / "sharepoint_budget" / "daily_sales_ingest.py"
CONFIG = load_pipeline_config()
NOW = dt.datetime.combine(SAMPLE_AS_OF, dt.time(9, 0), ZoneInfo("Europe/London"))
WORKBOOK = f"Daily Sales Budget {SAMPLE_AS_OF.year}.xlsx"


@dg.asset(name="daily_sales_budget_exchange_ingest", group_name="budget_ingestion")
def budget() -> None:
    """Stands in for the budget asset."""


@pytest.fixture
def sensor(tmp_path):
    """tick() evaluates the budget sensor like the daemon: the cursor it returned is the next tick's."""
    sensor = arrival.build_budget_workbook_sensor(CONFIG, dg.DefaultSensorStatus.RUNNING)
    defs = dg.Definitions(assets=[budget], sensors=[sensor])
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.DagsterInstance.local_temp(str(home)) as instance, frozen_clock(NOW, tick=True):
        state = {"cursor": None, "skip": None}

        def tick() -> list[dg.RunRequest]:
            data = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=state["cursor"], definitions=defs))
            state["cursor"] = data.cursor if data.cursor is not None else state["cursor"]
            state["skip"] = data.skip_message
            return list(data.run_requests or [])

        tick.instance = instance
        tick.state = state
        yield tick


@pytest.fixture
def landing(sample_landing, tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "landing"
    (folder / "sharepoint").mkdir(parents=True)
    shutil.copy2(sample_landing / "sharepoint" / WORKBOOK, folder / "sharepoint" / WORKBOOK)
    monkeypatch.setenv("LANDING_DIR", str(folder))
    return folder


def run_ingest() -> None:
    done = subprocess.run([sys.executable, str(INGEST)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **frozen_clock_env(NOW)})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def change(path: Path) -> None:
    """Saved again with other bytes, a second later (as Excel does)."""
    path.write_bytes(path.read_bytes() + b"\0")
    later = path.stat().st_mtime_ns + 10**9
    os.utime(path, ns=(later, later))


def test_a_local_workbook_the_ingest_read_starts_no_run_on_the_first_tick(sensor, landing):
    run_ingest()  # the demo's (or a by-hand) ingest
    assert sensor() == []
    assert "already ingested" in sensor.state["skip"]
    assert sensor.state["cursor"] is not None  # seeded: the next ticks compare with it
    assert sensor() == []
    change(landing / "sharepoint" / WORKBOOK)
    [request] = sensor()
    assert request.tags["trigger_file"] == WORKBOOK
    assert sensor() == []


def test_a_workbook_saved_again_after_the_ingest_starts_a_run_on_the_first_tick(sensor, landing):
    run_ingest()
    change(landing / "sharepoint" / WORKBOOK)
    assert len(sensor()) == 1


def test_an_unchanged_workbook_copied_again_is_recognised_after_the_next_ingest(sensor, landing):
    """Same bytes, new file time: the ingest keeps its outputs and records the version it saw."""
    run_ingest()
    path = landing / "sharepoint" / WORKBOOK
    later = path.stat().st_mtime_ns + 10**9
    os.utime(path, ns=(later, later))
    run_ingest()  # a scheduled run: workbook unchanged, outputs kept
    assert sensor() == []


def test_a_sharepoint_version_the_ingest_downloaded_starts_no_run(sensor, microsoft365, sample_landing, isolated_env):
    microsoft365.put(f"Budget/{WORKBOOK}", (sample_landing / "sharepoint" / WORKBOOK).read_bytes())
    run_ingest()
    assert sensor() == []
    assert "already ingested" in sensor.state["skip"]
    microsoft365.put(f"Budget/{WORKBOOK}", (sample_landing / "sharepoint" / WORKBOOK).read_bytes() + b"\0")
    assert len(sensor()) == 1


def _materialize_budget(instance: dg.DagsterInstance) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="daily_sales_budget_exchange_ingest"))


def test_a_migrated_history_without_the_ingest_record_is_read_from_the_instance(sensor, landing):
    """No record (a history from before it, or the data folder not migrated): a materialization of
    the budget asset after the workbook last changed means this version was ingested."""
    path = landing / "sharepoint" / WORKBOOK
    earlier = int((NOW - dt.timedelta(days=1)).timestamp() * 1e9)
    os.utime(path, ns=(earlier, earlier))
    _materialize_budget(sensor.instance)
    assert sensor() == []
    assert "materialized" in sensor.state["skip"]
    change(path)  # saved after that materialization
    os.utime(path, ns=(int(NOW.timestamp() * 1e9) + 3600 * 10**9,) * 2)
    assert len(sensor()) == 1


def test_a_materialization_older_than_the_workbook_does_not_hold_it(sensor, landing):
    _materialize_budget(sensor.instance)
    path = landing / "sharepoint" / WORKBOOK
    later = int((dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)).timestamp() * 1e9)
    os.utime(path, ns=(later, later))
    assert len(sensor()) == 1


def test_the_ingest_record_outranks_the_instance(sensor, landing):
    """The record names the version read: a newer workbook runs even when a materialization is newer still."""
    run_ingest()
    change(landing / "sharepoint" / WORKBOOK)
    _materialize_budget(sensor.instance)  # e.g. a budget run that failed to read the new file
    assert len(sensor()) == 1
