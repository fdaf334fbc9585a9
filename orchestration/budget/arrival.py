"""The budget workbook sensor: runs the budget ingest (and the models and exports built on it) when
this year's workbook changes.

Metadata only, never downloads: the SharePoint drive item's eTag through Microsoft Graph when
SharePoint is configured (pipeline_common.sharepoint), else the local copy's size and mtime in
`$LANDING_DIR/sharepoint/`. The cursor holds the version last seen, so each version triggers once.
A version the budget ingest already read starts nothing, even on the sensor's very first tick (no
cursor yet): the ingest's record names the version it read (pipeline_common.budget_record); for a
history from before that record, a materialization of the budget asset after the workbook last
changed stands for it. So the first start on a home where the demo or a by-hand flow ran starts no run.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg

from orchestration.budget.assets import ASSET_NAME as BUDGET_ASSET
from orchestration.budget.assets import GROUP as BUDGET_GROUP
from orchestration.clock import business_today
from orchestration.resources import DUCKDB_RUN_TAG
from orchestration.schedules.selection import asset_selection
from orchestration.sensor_support import TRIGGER_TAG, source_problem
from pipeline_common.budget_record import output_sizes, read_record
from pipeline_common.config import JobSelection, PipelineConfig
from pipeline_common.script_support import ScriptError
from pipeline_common.settings import sharepoint_budget_dir
from pipeline_common.sharepoint.settings import sharepoint_settings
from pipeline_common.sharepoint.workbook import workbook_version
from pipeline_common.source_container import local_signature


def build_budget_arrival_job(config: PipelineConfig):
    return dg.define_asset_job(
        name="budget_workbook_arrival_job",
        selection=asset_selection(config, JobSelection(groups=[BUDGET_GROUP], downstream=True)),
        description="Started by budget_workbook_sensor: the budget ingest, the models and exports built on it.",
        tags={DUCKDB_RUN_TAG: "true"},
        executor_def=dg.in_process_executor,
    )


def budget_workbook_name(year: int) -> str:
    return f"Daily Sales Budget {year}.xlsx"


def budget_workbook_path(year: int) -> Path:
    return sharepoint_budget_dir() / budget_workbook_name(year)


def budget_workbook_state(year: int) -> tuple[str, str | None, float | None]:
    """(where, version, last modified as a POSIX timestamp) of this year's workbook: the version is the
    SharePoint drive item's eTag (metadata only, no download) when SharePoint is configured, else the
    local copy's size and mtime; None when the workbook is absent."""
    settings = sharepoint_settings()
    name = budget_workbook_name(year)
    if settings is not None:
        version = workbook_version(settings, name)
        if version is None:
            return f"SharePoint '{settings.file_path(name)}'", None, None
        return f"SharePoint '{settings.file_path(name)}'", f"etag={version.etag}", _timestamp(version.last_modified)
    path = budget_workbook_path(year)
    signature = local_signature(path)
    return str(path), signature, (path.stat().st_mtime if signature else None)


def _timestamp(iso: str) -> float | None:
    try:
        return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def budget_version_held(instance: dg.DagsterInstance, year: int, signature: str, modified: float | None) -> str | None:
    """Why this workbook version needs no run (the budget ingest already read it), or None.

    The ingest's record names the version it read; a record without one (written before it did) or
    no record at all (a migrated history) falls back to the instance: a materialization of the budget
    asset after the workbook last changed has read this version.
    """
    record = read_record(year)
    if record is not None and record.get("source_version") and record.get("output_sizes") == output_sizes(year):
        return "the budget ingest's record holds it" if record["source_version"] == signature else None
    event = instance.get_latest_materialization_event(dg.AssetKey(BUDGET_ASSET))
    if event is not None and modified is not None and event.timestamp > modified:
        when = dt.datetime.fromtimestamp(event.timestamp, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        return f"{BUDGET_ASSET} was materialized at {when}, after the workbook last changed"
    return None


def build_budget_workbook_sensor(config: PipelineConfig, default_status: dg.DefaultSensorStatus) -> dg.SensorDefinition:
    @dg.sensor(
        name="budget_workbook_sensor",
        job=build_budget_arrival_job(config),
        default_status=default_status,
        minimum_interval_seconds=max(config.alerts.arrival_sensors.minimum_interval_seconds, 60),
        description="Runs the budget ingest and everything downstream when this year's budget workbook changes "
        "(SharePoint drive item eTag, or the local copy).",
    )
    def budget_workbook_sensor(context: dg.SensorEvaluationContext):
        year = business_today().year
        name = budget_workbook_name(year)
        try:
            where, signature, modified = budget_workbook_state(year)
        except ScriptError as exc:
            return source_problem(context, exc)
        if signature is None:
            return dg.SkipReason(f"no budget workbook at {where}")
        if signature == context.cursor:
            return dg.SkipReason(f"{name} unchanged")
        held = budget_version_held(context.instance, year, signature, modified)
        if held is not None:  # e.g. the first tick after the demo: remember the version, start nothing
            return dg.SensorResult(skip_reason=f"{name}: this version is already ingested ({held})", cursor=signature)
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=f"{name}@{signature}",
                    tags={"trigger_file": name, DUCKDB_RUN_TAG: "true", TRIGGER_TAG: f"budget workbook {name} changed"},
                )
            ],
            cursor=signature,
        )

    return budget_workbook_sensor
