"""Orders arrival sensors: start a market's ingestion (and what depends on it, up to the Tableau
exports) when a recent orders file lands. (The budget workbook's sensor is the budget domain's:
orchestration/budget/arrival.py.)

Listing only, never downloads: the sync's own source (pipeline_common.source_container: Azure Blob
with the sync's credentials when configured, else the local landing folder). The cursor (JSON:
file -> ETag, or size+mtime locally)
makes each file version trigger exactly once; a changed file triggers again; a file the sync
already holds in that version (same ETag in its state file) triggers nothing. Sensor runs do the
least work: their own jobs never include the warehouse backup, run in process like the scheduled
jobs, and say in their tags which market and file started them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path

import dagster as dg

from orchestration.clock import business_today
from orchestration.resources import DUCKDB_RUN_TAG
from orchestration.schedules.selection import asset_selection
from orchestration.sensor_support import TRIGGER_TAG, arrival_sensor_status, source_problem
from pipeline_common.blob_paths import daily_blob_name
from pipeline_common.config import JobSelection, PipelineConfig
from pipeline_common.script_support import ScriptError
from pipeline_common.source_container import find_blob

ORDERS_DATASET = "ingest_orders"
WATCHED_DAYS = 3
"""File dates watched: today, yesterday (the one due this morning) and the day before (a late re-delivery)."""
VERSION_TAG = "pipeline/file_version"
MAX_ATTEMPTS = 3
"""Runs per file version: a run that died (worker killed, PC restarted) is requested again, up to this."""
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def list_signatures(blob_name: str) -> dict[str, str]:
    """{blob name: version signature} for the blobs named `blob_name` (0 or 1 of them).

    Raises ScriptError (configuration or transient) with a message fit for the sensor's tick.
    """
    found = find_blob(blob_name, listing_only=True)
    return {found[0].name: found[1]} if found else {}


def synced_etag(market: str, dataset: str, blob_name: str) -> str | None:
    """The ETag (local: size-mtime) the sync recorded for `blob_name`, when its Parquet file still exists."""
    from pipeline_common.settings import raw_dir

    raw = raw_dir()
    try:
        state = json.loads((raw / "_state" / market / f"{dataset}.json").read_text(encoding="utf-8"))
        entry = state["blobs"][blob_name]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    output = entry.get("output")
    if not output or not (raw / Path(*str(output).split("/"))).is_file():
        return None
    return str(entry.get("etag"))


def same_version(signature: str, etag: str | None) -> bool:
    """Does a listing signature (`etag=X`, or local `size=S;mtime_ns=M`) name the version the sync holds?"""
    if etag is None:
        return False
    if signature.startswith("etag="):
        return signature.removeprefix("etag=") == etag
    parts = dict(part.split("=", 1) for part in signature.split(";") if "=" in part)
    return f"{parts.get('size')}-{parts.get('mtime_ns')}" == etag


def arrival_job_name(market: str) -> str:
    return f"{market.lower()}_orders_arrival_job"


def build_orders_arrival_job(config: PipelineConfig, market: str):
    """The market's daily ingestion and everything downstream up to the exports, never the backup."""
    return dg.define_asset_job(
        name=arrival_job_name(market),
        selection=asset_selection(config, JobSelection(cadences=["daily"], markets=[market], downstream=True)),
        description=f"Started by {market.lower()}_orders_arrival_sensor: {market} orders, the models and exports built on them.",
        tags={DUCKDB_RUN_TAG: "true", "market": market},
        executor_def=dg.in_process_executor,
    )


def rejected_version(market: str, dataset: str, blob_name: str, signature: str) -> bool:
    """Did the last sync reject exactly this version of the file (bad data: re-running cannot help)?"""
    from pipeline_common.settings import raw_dir

    try:
        outcome = json.loads((raw_dir() / "_state" / market / f"{dataset}.last_sync.json").read_text(encoding="utf-8"))
        problem = outcome["files"][blob_name]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return problem.get("problem") == "rejected" and same_version(signature, problem.get("etag"))


def worth_another_run(instance: dg.DagsterInstance, market: str, name: str, signature: str, attempts: int) -> bool:
    """A file already requested is requested again only when its run ended without syncing it and not
    because the file is bad: the worker died, the PC restarted, the run was canceled."""
    if attempts >= MAX_ATTEMPTS:
        return False
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"trigger_file": name, VERSION_TAG: signature}), limit=1)
    if not runs or runs[0].status not in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED):
        return False
    return not rejected_version(market, ORDERS_DATASET, name, signature)


def run_in_flight(instance: dg.DagsterInstance, market: str) -> dg.DagsterRun | None:
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"market": market}, statuses=IN_FLIGHT), limit=1)
    return runs[0] if runs else None


def build_orders_arrival_sensor(
    config: PipelineConfig, market: str, default_status: dg.DefaultSensorStatus
) -> dg.SensorDefinition:
    asset = config.asset_name(market, ORDERS_DATASET)
    job = build_orders_arrival_job(config, market)

    @dg.sensor(
        name=f"{market.lower()}_orders_arrival_sensor",
        job=job,
        default_status=default_status,
        minimum_interval_seconds=config.alerts.arrival_sensors.minimum_interval_seconds,
        description=(
            f"Runs {asset} and what depends on it (no warehouse backup) when a {market} orders file of the "
            f"last {WATCHED_DAYS} days arrives or changes and the sync does not hold that version yet."
        ),
    )
    def orders_arrival_sensor(context: dg.SensorEvaluationContext):
        today = business_today()
        days = [today - dt.timedelta(days=n) for n in range(WATCHED_DAYS)]
        blobs = {daily_blob_name(market, ORDERS_DATASET, day): day for day in days}
        state = json.loads(context.cursor) if context.cursor else {}
        # Only the watched days matter, so older entries are dropped and the cursor stays small.
        # seen: file -> {"sig": version, "attempts": runs requested for that version}
        seen = {name: _entry(value) for name, value in state.get("seen", {}).items() if name in blobs}
        try:
            listed = {name: sig for blob in blobs for name, sig in list_signatures(blob).items()}
        except ScriptError as exc:
            return source_problem(context, exc)
        todo: dict[str, str] = {}
        held = 0
        for name, sig in listed.items():
            entry = seen.get(name)
            if same_version(sig, synced_etag(market, ORDERS_DATASET, name)):
                seen[name] = {"sig": sig, "attempts": entry["attempts"] if entry and entry["sig"] == sig else 0}
                held += 1  # already synced (e.g. by the demo or a scheduled run): nothing to do
            elif entry is None or entry["sig"] != sig:
                todo[name] = sig
            elif worth_another_run(context.instance, market, name, sig, entry["attempts"]):
                todo[name] = sig
        cursor = json.dumps({"day": today.isoformat(), "seen": seen})
        if not todo:
            note = f" ({held} already synced)" if held else ""
            return dg.SensorResult(skip_reason=f"no new or changed {market} orders file{note}", cursor=cursor)
        busy = run_in_flight(context.instance, market)
        if busy is not None:
            # Those files stay as they were in the cursor, so they trigger once that run has finished.
            return dg.SensorResult(skip_reason=f"{market}: run {busy.run_id} is {busy.status.value}; waiting", cursor=cursor)
        newest = max(todo, key=lambda name: blobs[name])  # one run syncs the whole window
        day, sig = blobs[newest], todo[newest]
        previous = seen.get(newest)
        attempt = previous["attempts"] + 1 if previous and previous["sig"] == sig else 1
        for name, version in todo.items():
            before = seen.get(name)
            seen[name] = {"sig": version, "attempts": (before["attempts"] if before and before["sig"] == version else 0)}
        seen[newest] = {"sig": sig, "attempts": attempt}
        what = "arrived" if previous is None else ("changed" if previous["sig"] != sig else f"retried (attempt {attempt})")
        request = dg.RunRequest(
            run_key=f"{newest}@{sig}" + (f"#{attempt}" if attempt > 1 else ""),
            tags={
                "market": market, "trigger_file": newest, DUCKDB_RUN_TAG: "true", VERSION_TAG: sig,
                TRIGGER_TAG: f"{market} orders file for {day} {what}",
            },
        )
        return dg.SensorResult(run_requests=[request], cursor=json.dumps({"day": today.isoformat(), "seen": seen}))

    return orders_arrival_sensor


def _entry(value: object) -> dict:
    """A cursor entry; older cursors held the bare signature."""
    if isinstance(value, dict):
        return {"sig": str(value.get("sig")), "attempts": int(value.get("attempts", 1))}
    return {"sig": str(value), "attempts": 1}


def build_arrival_sensors(config: PipelineConfig) -> Sequence[dg.SensorDefinition]:
    status = arrival_sensor_status(config)
    markets = [d.market for d in config.datasets if d.dataset == ORDERS_DATASET]
    return [build_orders_arrival_sensor(config, m, status) for m in markets]
