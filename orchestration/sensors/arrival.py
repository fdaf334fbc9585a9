"""Arrival sensors: start a market's ingestion (and everything downstream) when today's orders
file lands, and the budget ingest when the current year's workbook changes.

Listing only, never downloads: Azure Blob `list_blobs` with the sync's own credentials (connection
string, SAS token or Entra ID: pipeline_common.azure_storage) when Azure is configured, else the
local landing folder. The budget sensor reads the SharePoint drive item's eTag through Microsoft
Graph when SharePoint is configured (pipeline_common.sharepoint_graph), else the local workbook's
size and mtime. The cursor makes each file version trigger exactly once; a changed file triggers again.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg

from orchestration.budget.assets import ASSET_NAME as BUDGET_ASSET
from orchestration.resources import DUCKDB_RUN_TAG
from pipeline_common.azure_storage import azure_storage_settings, listing
from pipeline_common.config import PipelineConfig
from pipeline_common.script_support import ConfigurationError, ScriptError
from pipeline_common.secrets import scrub
from pipeline_common.settings import landing_dir, sharepoint_budget_dir
from pipeline_common.sharepoint_graph import sharepoint_settings, workbook_version

LONDON = ZoneInfo("Europe/London")
ORDERS_DATASET = "ingest_orders"
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def london_today() -> dt.date:
    return dt.datetime.now(LONDON).date()


def daily_blob_name(market: str, dataset: str, day: dt.date) -> str:
    """Contract section 2: {MARKET}/raw_data/DWH/Oracle/{dataset}/{YYYY}/{dataset}_{YYYYMMDD}.csv"""
    return f"{market}/raw_data/DWH/Oracle/{dataset}/{day:%Y}/{dataset}_{day:%Y%m%d}.csv"


def _local_signature(path: Path) -> str | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return f"size={stat.st_size};mtime_ns={stat.st_mtime_ns}"


def list_signatures(blob_name: str) -> dict[str, str]:
    """{blob name: version signature} for the blobs named `blob_name` (0 or 1 of them).

    Raises ScriptError (configuration or transient) with a message fit for the sensor's tick.
    """
    storage = azure_storage_settings()
    if storage is not None:
        return {b.name: f"etag={b.etag}" for b in listing(storage)(blob_name) if b.name == blob_name}
    signature = _local_signature(landing_dir() / Path(*blob_name.split("/")))
    return {blob_name: signature} if signature else {}


def run_in_flight(instance: dg.DagsterInstance, market: str) -> dg.DagsterRun | None:
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"market": market}, statuses=IN_FLIGHT), limit=1)
    return runs[0] if runs else None


def build_orders_arrival_sensor(
    config: PipelineConfig, market: str, default_status: dg.DefaultSensorStatus
) -> dg.SensorDefinition:
    asset = config.asset_name(market, ORDERS_DATASET)

    @dg.sensor(
        name=f"{market.lower()}_orders_arrival_sensor",
        target=dg.AssetSelection.assets(asset).downstream(),
        default_status=default_status,
        minimum_interval_seconds=config.alerts.arrival_sensors.minimum_interval_seconds,
        description=f"Runs {asset} and everything downstream when today's {market} orders file arrives or changes.",
    )
    def orders_arrival_sensor(context: dg.SensorEvaluationContext):
        today = london_today()
        state = json.loads(context.cursor) if context.cursor else {}
        # Only today's files matter, so yesterday's entries are dropped and the cursor stays small.
        seen = state.get("seen", {}) if state.get("day") == today.isoformat() else {}
        blob = daily_blob_name(market, ORDERS_DATASET, today)
        try:
            listed = list_signatures(blob)
        except ScriptError as exc:
            return _source_problem(context, exc)
        changed = {name: sig for name, sig in listed.items() if seen.get(name) != sig}
        if not changed:
            return dg.SkipReason(f"no new or changed {market} orders file for {today}")
        busy = run_in_flight(context.instance, market)
        if busy is not None:
            # The cursor is left alone, so the file triggers once that run has finished.
            return dg.SkipReason(f"{market}: run {busy.run_id} is {busy.status.value}; waiting")
        requests = [
            dg.RunRequest(
                run_key=f"{name}@{sig}", tags={"market": market, "trigger_file": name, DUCKDB_RUN_TAG: "true"}
            )
            for name, sig in changed.items()
        ]
        seen.update(changed)
        return dg.SensorResult(run_requests=requests, cursor=json.dumps({"day": today.isoformat(), "seen": seen}))

    return orders_arrival_sensor


def _source_problem(context: dg.SensorEvaluationContext, exc: ScriptError) -> dg.SkipReason:
    """A source the sensor cannot read: transient trouble skips this tick; a configuration error fails it."""
    message = scrub(exc)
    if isinstance(exc, ConfigurationError):
        raise dg.DagsterError(message) from None  # a failed tick shows in the UI until the variable is fixed
    context.log.warning(message)
    return dg.SkipReason(f"source not reachable this time: {message}")


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
    return str(path), _local_signature(path)


def build_budget_workbook_sensor(config: PipelineConfig, default_status: dg.DefaultSensorStatus) -> dg.SensorDefinition:
    @dg.sensor(
        name="budget_workbook_sensor",
        target=dg.AssetSelection.assets(BUDGET_ASSET).downstream(),
        default_status=default_status,
        minimum_interval_seconds=max(config.alerts.arrival_sensors.minimum_interval_seconds, 60),
        description="Runs the budget ingest and everything downstream when this year's budget workbook changes "
        "(SharePoint drive item eTag, or the local copy).",
    )
    def budget_workbook_sensor(context: dg.SensorEvaluationContext):
        year = london_today().year
        try:
            where, signature = budget_workbook_signature(year)
        except ScriptError as exc:
            return _source_problem(context, exc)
        if signature is None:
            return dg.SkipReason(f"no budget workbook at {where}")
        if signature == context.cursor:
            return dg.SkipReason(f"{budget_workbook_name(year)} unchanged")
        name = budget_workbook_name(year)
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(run_key=f"{name}@{signature}", tags={"trigger_file": name, DUCKDB_RUN_TAG: "true"})
            ],
            cursor=signature,
        )

    return budget_workbook_sensor


def build_arrival_sensors(config: PipelineConfig) -> Sequence[dg.SensorDefinition]:
    running = config.alerts.arrival_sensors.running_by_default
    status = dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED
    markets = [d.market for d in config.datasets if d.dataset == ORDERS_DATASET]
    return [build_orders_arrival_sensor(config, m, status) for m in markets] + [
        build_budget_workbook_sensor(config, status)
    ]
