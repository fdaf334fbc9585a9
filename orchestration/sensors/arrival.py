"""Arrival sensors: start a market's ingestion (and everything downstream) when today's orders
file lands, and the budget ingest when the current year's workbook changes.

Listing only, never downloads: Azure Blob `list_blobs` when AZURE_STORAGE_CONNECTION_STRING is
set, else the local landing folder. The cursor (JSON: file -> ETag, or size+mtime locally)
makes each file version trigger exactly once; a changed file triggers again.
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
from pipeline_common.config import PipelineConfig
from pipeline_common.settings import (
    azure_connection_string,
    azure_container,
    env,
    landing_dir,
    sharepoint_budget_dir,
)

LONDON = ZoneInfo("Europe/London")
ORDERS_DATASET = "ingest_orders"
SHAREPOINT_VARS = ("SHAREPOINT_SITE_URL", "SHAREPOINT_CLIENT_ID", "SHAREPOINT_CLIENT_SECRET", "SHAREPOINT_BUDGET_FOLDER")
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
    """{blob name: version signature} for the blobs named `blob_name` (0 or 1 of them)."""
    connection_string = azure_connection_string()
    if connection_string:
        from azure.storage.blob import BlobServiceClient

        service = BlobServiceClient.from_connection_string(connection_string)
        with service.get_container_client(azure_container()) as container:
            return {b.name: f"etag={b.etag}" for b in container.list_blobs(name_starts_with=blob_name) if b.name == blob_name}
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
        changed = {name: sig for name, sig in list_signatures(blob).items() if seen.get(name) != sig}
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


def sharepoint_configured() -> bool:
    return all(env(name) for name in SHAREPOINT_VARS)


def budget_workbook_path(year: int) -> Path:
    return sharepoint_budget_dir() / f"Daily Sales Budget {year}.xlsx"


def build_budget_workbook_sensor(config: PipelineConfig, default_status: dg.DefaultSensorStatus) -> dg.SensorDefinition:
    @dg.sensor(
        name="budget_workbook_sensor",
        target=dg.AssetSelection.assets(BUDGET_ASSET).downstream(),
        default_status=default_status,
        minimum_interval_seconds=max(config.alerts.arrival_sensors.minimum_interval_seconds, 60),
        description="Runs the budget ingest and everything downstream when this year's local budget workbook changes.",
    )
    def budget_workbook_sensor(context: dg.SensorEvaluationContext):
        if sharepoint_configured():
            return dg.SkipReason("SharePoint is configured: this sensor watches the local folder only (see docs/alerts.md)")
        path = budget_workbook_path(london_today().year)
        signature = _local_signature(path)
        if signature is None:
            return dg.SkipReason(f"no budget workbook at {path}")
        if signature == context.cursor:
            return dg.SkipReason(f"{path.name} unchanged")
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=f"{path.name}@{signature}", tags={"trigger_file": path.name, DUCKDB_RUN_TAG: "true"}
                )
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
