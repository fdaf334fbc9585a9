"""README "Operations": every asset that opens the DuckDB file is in pool `duckdb` (limit 1 from
dagster.yaml), so two manual materializations started together (here the warehouse backup and a
Tableau export, from two `dagster asset materialize` processes on one instance) never hold the
warehouse at the same time: one step runs after the other."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster._core.events import DagsterEventType

REPO = Path(__file__).resolve().parents[1]
ASSETS = ["warehouse_backup", "tableau_executive_daily_sales"]
pytestmark = pytest.mark.scenario  # two `dagster asset materialize` processes (docs/testing.md tiers)


def _step_window(instance: dg.DagsterInstance, run_id: str) -> tuple[float, float]:
    """When the run's asset step (the one in the pool; its checks run as steps of their own) ran."""
    records = [r for r in instance.all_logs(run_id) if r.dagster_event and r.step_key in ASSETS]
    starts = [r.timestamp for r in records if r.dagster_event.event_type == DagsterEventType.STEP_START]
    ends = [r.timestamp for r in records if r.dagster_event.event_type == DagsterEventType.STEP_SUCCESS]
    assert len(starts) == len(ends) == 1, [(r.step_key, r.dagster_event.event_type_value) for r in records]
    return starts[0], ends[0]


@pytest.mark.timeout(400)
def test_two_manual_materializations_of_duckdb_assets_run_one_after_the_other(export_warehouse, dagster_home):
    with duckdb.connect(str(export_warehouse)) as con:  # big enough that the backup takes a while
        con.execute("CREATE TABLE padding AS SELECT range AS id, md5(range::VARCHAR) AS c FROM range(3000000)")
    with dg.DagsterInstance.get():  # create the instance's storage once, not in both processes at once
        pass
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "dagster", "asset", "materialize", "--select", asset,
             "-m", "orchestration.definitions"],
            cwd=REPO, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for asset in ASSETS
    ]
    outputs = [p.communicate(timeout=280)[0] for p in processes]
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-3000:]

    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
        assert len(runs) == 2 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
        (first_start, first_end), (second_start, second_end) = sorted(_step_window(instance, r.run_id) for r in runs)
    assert first_end <= second_start, "both steps held the warehouse at the same time"
    assert len(list((Path(os.environ["DATA_DIR"]) / "warehouse" / "backup").glob("analytics_2*"))) == 1
    assert (Path(os.environ["DATA_DIR"]) / "exports" / "executive_daily_sales.hyper").is_file()
