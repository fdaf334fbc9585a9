"""The budget workbook sensor: runs the budget ingest (and the models and exports built on it) when
this year's workbook changes.

Metadata only, never downloads: the SharePoint drive item's eTag through Microsoft Graph when
SharePoint is configured (pipeline_common.sharepoint), else the local copy's size and mtime in
`$LANDING_DIR/sharepoint/`. The cursor holds the version last seen, so each version triggers once.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from orchestration.budget.assets import GROUP as BUDGET_GROUP
from orchestration.clock import business_today
from orchestration.resources import DUCKDB_RUN_TAG
from orchestration.schedules.selection import asset_selection
from orchestration.sensor_support import TRIGGER_TAG, source_problem
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


def budget_workbook_signature(year: int) -> tuple[str, str | None]:
    """(where, version) of this year's workbook: the SharePoint drive item's eTag (metadata only, no
    download) when SharePoint is configured, else the local copy's size and mtime; version None if absent."""
    settings = sharepoint_settings()
    name = budget_workbook_name(year)
    if settings is not None:
        version = workbook_version(settings, name)
        return f"SharePoint '{settings.file_path(name)}'", (f"etag={version.etag}" if version else None)
    path = budget_workbook_path(year)
    return str(path), local_signature(path)


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
            where, signature = budget_workbook_signature(year)
        except ScriptError as exc:
            return source_problem(context, exc)
        if signature is None:
            return dg.SkipReason(f"no budget workbook at {where}")
        if signature == context.cursor:
            return dg.SkipReason(f"{name} unchanged")
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
