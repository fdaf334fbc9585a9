"""Sentinel control queries (pipeline.yaml `alerts.sentinels`) as asset checks on the marts.

Query contract: each sentinel's SQL returns the offending rows; no rows = pass. `$threshold`
in the SQL is bound to the sentinel's threshold. The checks read the warehouse READ-ONLY, in
the "duckdb" pool, after the mart they attach to has been built; the asset_check_alert_sensor
sends their failures to the sentinel's route.
"""


import datetime as dt
import decimal
import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
from dagster import AssetCheckExecutionContext
import duckdb

from orchestration.resources import DUCKDB_POOL
from pipeline_common.config import Alerts, Sentinel
from pipeline_common.settings import duckdb_path
from pipeline_common import warehouse_lock
from pipeline_common.script_support import ConfigurationError

LOCK_WAIT_SECONDS = 20.0
MAX_ROWS_IN_METADATA = 50

log = logging.getLogger(__name__)


def connect_read_only(path: Path, timeout_seconds: float = LOCK_WAIT_SECONDS) -> duckdb.DuckDBPyConnection:
    """Open the warehouse read-only with the exporter's rule (pipeline_common.warehouse_lock):
    while a writer (dbt) holds the lock, back off and retry for up to `timeout_seconds`.

    A missing warehouse or any other error fails the check at once; a lock that outlasts the
    wait fails it with DuckDB's message, and the run's retry policy may try again.
    """
    try:
        return warehouse_lock.connect_read_only(path, timeout_seconds, log, sleep=lambda s: time.sleep(s))
    except warehouse_lock.WarehouseLockedError as exc:
        raise dg.Failure(str(exc)) from None
    except ConfigurationError as exc:
        raise dg.Failure(str(exc), allow_retries=False) from None


def _plain(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def run_sentinel(con: duckdb.DuckDBPyConnection, sentinel: Sentinel) -> list[dict[str, Any]]:
    """The offending rows of one sentinel, as plain JSON-able dicts."""
    params = {"threshold": sentinel.threshold} if sentinel.threshold is not None else None
    cursor = con.execute(sentinel.sql, params) if params else con.execute(sentinel.sql)
    columns = [d[0] for d in cursor.description]
    return [{c: _plain(v) for c, v in zip(columns, row)} for row in cursor.fetchall()]


def sentinel_result(sentinel: Sentinel, rows: list[dict[str, Any]]) -> dg.AssetCheckResult:
    markets = sorted({str(r["market"]) for r in rows if r.get("market") is not None})
    metadata: dict[str, Any] = {
        "offending_rows": len(rows),
        "markets": ", ".join(markets) or "none",
        "rows": dg.MetadataValue.json(rows[:MAX_ROWS_IN_METADATA]),
    }
    if sentinel.threshold is not None:
        metadata["threshold"] = sentinel.threshold
    description = sentinel.description or sentinel.name
    if rows:
        description = f"{description}: {len(rows)} offending row(s), market(s) {', '.join(markets) or '-'}"
    return dg.AssetCheckResult(
        asset_key=dg.AssetKey(sentinel.asset),
        check_name=sentinel.name,
        passed=not rows,
        severity=dg.AssetCheckSeverity(sentinel.severity),
        description=description,
        metadata=metadata,
    )


def check_spec(sentinel: Sentinel) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        name=sentinel.name,
        asset=dg.AssetKey(sentinel.asset),
        description=sentinel.description or f"sentinel {sentinel.name}",
        metadata={"route": sentinel.route, "severity": sentinel.severity},
    )


def build_sentinel_checks(alerts: Alerts) -> Sequence[dg.AssetChecksDefinition]:
    if not alerts.sentinels:
        return []
    by_key = {dg.AssetCheckKey(dg.AssetKey(s.asset), s.name): s for s in alerts.sentinels}

    @dg.multi_asset_check(
        name="sentinel_checks",
        specs=[check_spec(s) for s in alerts.sentinels],
        can_subset=True,
        pool=DUCKDB_POOL,
        description="Sentinel control queries over the warehouse (pipeline.yaml alerts.sentinels).",
    )
    def sentinel_checks(context: AssetCheckExecutionContext) -> Iterator[dg.AssetCheckResult]:
        selected = [by_key[key] for key in by_key if key in context.selected_asset_check_keys]
        con = connect_read_only(duckdb_path())
        try:
            for sentinel in selected:
                rows = run_sentinel(con, sentinel)
                context.log.info(f"sentinel {sentinel.name}: {len(rows)} offending row(s)")
                yield sentinel_result(sentinel, rows)
        finally:
            con.close()

    return [sentinel_checks]
