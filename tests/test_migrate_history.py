"""scripts/migrate_history.py on a real desktop history, and housekeeping on a Postgres instance.

The SQLite home is made by the demo's runner (scripts/run_flow.py runs the daily flow into
DAGSTER_HOME), plus schedule and sensor state set through the real code location as the UI would;
the destination is the session's PostgreSQL server, prepared the way serve.py prepares it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.events import DagsterEventType
from dagster._core.instance.ref import InstanceRef
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.scheduler.instigation import InstigatorStatus, SensorInstigatorData, TickData, TickStatus
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

from orchestration.maintenance.housekeeping import build_housekeeping, delete_old_runs
from pipeline_common.config import load_pipeline_config
from tests.plugins.lock_holder import holding_instance_lock

REPO = Path(__file__).resolve().parents[1]
MIGRATE = REPO / "scripts" / "migrate_history.py"
LOCATION = "retail_sales"  # the desktop's location name (workspace.yaml)
STOPPED_SCHEDULE = "ingest_scv_schedule"
CURSOR_SENSOR = "uk_orders_arrival_sensor"

pytestmark = pytest.mark.timeout(600)


def _open(home: Path) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))


def _set_instigator_state(instance: dg.DagsterInstance) -> None:
    """Stop one schedule and give one sensor a cursor and a tick, through the real code location."""
    origin = InProcessCodeLocationOrigin(
        loadable_target_origin=LoadableTargetOrigin(module_name="orchestration.definitions", working_directory=str(REPO)),
        location_name=LOCATION,
    )
    with origin.create_location(instance) as location:
        (repo,) = location.get_repositories().values()
        schedule = repo.get_schedule(STOPPED_SCHEDULE)
        instance.stop_schedule(schedule.get_remote_origin_id(), schedule.selector_id, schedule)
        sensor = repo.get_sensor(CURSOR_SENSOR)
        # A running-by-default sensor's state is stored by the daemon at its first tick, cursor included.
        state = instance.start_sensor(sensor).with_data(
            SensorInstigatorData(cursor="2026-11-20:etag-1", last_tick_timestamp=time.time(), sensor_type=sensor.sensor_type)
        )
        if instance.get_instigator_state(state.instigator_origin_id, state.selector_id) is None:
            instance.add_instigator_state(state)
        else:
            instance.update_instigator_state(state)
        instance.create_tick(
            TickData(
                instigator_origin_id=sensor.get_remote_origin_id(), instigator_name=CURSOR_SENSOR,
                instigator_type=InstigatorType.SENSOR, status=TickStatus.SKIPPED, timestamp=time.time(),
                selector_id=sensor.selector_id, skip_reason="no new UK orders file",
            )
        )


@pytest.fixture
def desktop_home(tmp_path, isolated_env, sample_landing) -> Path:
    home = tmp_path / "dagster_home"
    env = {**os.environ, "DAGSTER_HOME": str(home), "DATA_DIR": str(isolated_env), "LANDING_DIR": str(sample_landing)}
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "run_flow.py"), "--log-level", "WARNING"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=420,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with _open(home) as instance:
        _set_instigator_state(instance)
    return home


def _postgres_home(home: Path) -> Path:
    """A DAGSTER_HOME for the Postgres instance, written as serve.py writes it."""
    from scripts.postgres_instance import prepare_postgres_home

    return prepare_postgres_home(home)


def _migrate(env: dict[str, str], *args: str) -> tuple[int, dict, str]:
    result = subprocess.run([sys.executable, str(MIGRATE), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    lines = result.stdout.strip().splitlines()
    return result.returncode, json.loads(lines[-1]) if lines else {}, result.stdout + result.stderr


def test_desktop_history_moves_to_postgres_once_and_whole(tmp_path, desktop_home, postgres_server, postgres_db):
    env = {**os.environ, **postgres_server.environment(postgres_db)}
    env.pop("DAGSTER_HOME", None)
    to_home = _postgres_home(tmp_path / "dagster_home_postgres")
    args = ["--from-home", str(desktop_home), "--to-home", str(to_home)]

    with _open(desktop_home) as source:
        runs = source.get_run_records()
        events = [e for r in runs for e in source.all_logs(r.dagster_run.run_id)]
        materializations = [e for e in events if e.dagster_event_type == DagsterEventType.ASSET_MATERIALIZATION]
        checks = [e for e in events if e.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION]
        asset_keys = {e.dagster_event.asset_key for e in materializations}
        latest = {key: source.get_latest_materialization_event(key) for key in asset_keys}
        check_keys = list({e.dagster_event.event_specific_data.asset_check_key for e in checks})
        latest_checks = source.event_log_storage.get_latest_asset_check_execution_by_key(check_keys)
        states = source.all_instigator_state()
        # the run's captured stdout/stderr, as the UI reads them per log key
        (run_id,) = {r.dagster_run.run_id for r in runs}
        log_keys = [source.compute_log_manager.build_log_key_for_run(run_id, e.dagster_event.event_specific_data.file_key)
                    for e in events if e.dagster_event_type == DagsterEventType.LOGS_CAPTURED]
        captured = {tuple(key): source.compute_log_manager.get_log_data(key) for key in log_keys}
    assert len(runs) == 1 and materializations and checks and len(states) == 2
    assert captured and any(data.stdout or data.stderr for data in captured.values())

    # Dry run: the counts, and nothing written.
    code, dry, output = _migrate(env, *args, "--dry-run")
    assert code == 0, output
    assert dry["dry_run"] is True
    assert dry["runs"] == {"source": 1, "copied": 1, "already_there": 0, "skipped": 0}
    assert dry["events"]["copied"] == len(events)
    assert dry["asset_materializations"]["copied"] == len(materializations)
    assert dry["compute_logs"] == {"source": len(captured), "copied": len(captured), "already_there": 0, "skipped": 0}
    assert "would copy" in output
    assert not (to_home / "storage").exists() or not any((to_home / "storage").rglob("*.*"))
    assert postgres_server.query(postgres_db, "select count(*) from runs") == [(0,)]
    assert postgres_server.query(postgres_db, "select count(*) from event_logs") == [(0,)]

    # The migration: every record, with counts equal on both sides.
    code, first, output = _migrate(env, *args)
    assert code == 0, output
    assert first["runs"]["copied"] == 1 and first["events"]["copied"] == len(events)
    assert first["asset_materializations"]["copied"] == len(materializations)
    assert first["asset_check_results"]["copied"] == len(checks)
    assert first["instigator_states"]["copied"] == 2 and first["ticks"]["copied"] == 1
    assert first["compute_logs"]["copied"] == len(captured)
    assert postgres_server.query(postgres_db, "select count(*) from runs") == [(1,)]
    assert postgres_server.query(postgres_db, "select count(*) from event_logs") == [(len(events),)]

    # A second run copies nothing.
    code, second, output = _migrate(env, *args)
    assert code == 0, output
    assert all(count["copied"] == 0 for name, count in second.items() if isinstance(count, dict) and "copied" in count), second
    assert second["runs"]["already_there"] == 1 and second["events"]["already_there"] == len(events)
    assert second["compute_logs"]["already_there"] == len(captured)
    assert postgres_server.query(postgres_db, "select count(*) from event_logs") == [(len(events),)]

    # The new instance answers as the old one did: run times, latest materializations (what the
    # catalog and freshness read), check results, schedule and sensor state.
    os.environ.update(postgres_server.environment(postgres_db))
    try:
        with _open(to_home) as destination:
            (record,) = runs
            moved = destination.get_run_record_by_id(record.dagster_run.run_id)
            assert moved.dagster_run.status == record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
            assert (moved.create_timestamp, moved.start_time, moved.end_time) == (
                record.create_timestamp, record.start_time, record.end_time)
            executive = dg.AssetKey("qi_executive_daily_sales")
            assert executive in asset_keys
            for key, event in latest.items():
                again = destination.get_latest_materialization_event(key)
                assert (again.timestamp, again.run_id) == (event.timestamp, event.run_id), key
            assert destination.get_latest_materialization_event(executive).asset_materialization.metadata
            moved_checks = destination.event_log_storage.get_latest_asset_check_execution_by_key(check_keys)
            assert {k: v.status for k, v in moved_checks.items()} == {k: v.status for k, v in latest_checks.items()}
            by_name = {s.instigator_name: s for s in destination.all_instigator_state()}
            assert by_name[STOPPED_SCHEDULE].status == InstigatorStatus.STOPPED
            assert by_name[CURSOR_SENSOR].instigator_data.cursor == "2026-11-20:etag-1"
            sensor = by_name[CURSOR_SENSOR]
            (tick,) = destination.get_ticks(sensor.instigator_origin_id, sensor.selector_id)
            assert tick.status == TickStatus.SKIPPED and tick.skip_reason == "no new UK orders file"
            # each step's stdout/stderr, byte for byte, and complete (the UI stops polling for more)
            for key, data in captured.items():
                moved_log = destination.compute_log_manager.get_log_data(list(key))
                assert (moved_log.stdout, moved_log.stderr) == (data.stdout, data.stderr), key
                assert destination.compute_log_manager.is_capture_complete(list(key)), key
    finally:
        for name in postgres_server.environment(postgres_db):
            os.environ.pop(name, None)


def test_migration_refuses_a_running_desktop_and_names_missing_variables(tmp_path, postgres_server, postgres_db):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    env = {**os.environ, **postgres_server.environment(postgres_db)}
    with holding_instance_lock(home) as supervisor:  # the desktop's supervisor holds its home
        code, summary, output = _migrate(env, "--from-home", str(home))
    assert code == 78 and "stop Dagster on the desktop" in summary["error"]["message"]
    assert f"pid {supervisor.pid}" in summary["error"]["message"]

    env = {k: v for k, v in env.items() if k != "DAGSTER_POSTGRES_PASSWORD"}
    env["DAGSTER_POSTGRES_PASSWORD"] = ""
    code, summary, output = _migrate(env, "--from-home", str(home))
    assert code == 78 and "DAGSTER_POSTGRES_PASSWORD not set" in summary["error"]["message"]
    assert postgres_server.password not in output


@dg.op
def chatty(context) -> None:
    print("x" * 10_000)
    context.log.info("y" * 10_000)


@dg.job
def chatty_job() -> None:
    chatty()


def test_housekeeping_on_postgres_deletes_old_runs_and_skips_vacuum(tmp_path, monkeypatch, postgres_server, postgres_db):
    for name, value in postgres_server.environment(postgres_db).items():
        monkeypatch.setenv(name, value)
    home = _postgres_home(tmp_path / "home")
    with _open(home) as instance:
        old = [chatty_job.execute_in_process(instance=instance).run_id for _ in range(2)]
        time.sleep(1.1)
        cutoff = dt.datetime.now(dt.timezone.utc)
        time.sleep(1.1)
        new = chatty_job.execute_in_process(instance=instance).run_id

        assert sorted(delete_old_runs(instance, cutoff)) == sorted(old)

        remaining = {row[0] for row in postgres_server.query(postgres_db, "select distinct run_id from event_logs")}
        assert remaining == {new}
        job, _ = build_housekeeping(load_pipeline_config())
        result = job.execute_in_process(instance=instance)
        assert result.success
        (output,) = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
        metadata = {k: v.value for k, v in output.event_specific_data.metadata.items()}
        assert metadata == {"runs_deleted": 0, "compaction": "none (autovacuum)"}
    assert not list(home.rglob("*.db"))
