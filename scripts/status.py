"""Print the pipeline's state from the Dagster instance: per asset group, each asset's last materialization
(Europe/London), the status of its last run, failing checks, and whether the Tableau exports are fresh.

    python scripts/status.py [--dagster-home DIR]

Exit code 0 when every export was materialized since the start of the day of the latest 07:30
deadline (alerts.freshness_deadline in pipeline.yaml), 1 when an export is stale.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections import defaultdict
from pathlib import Path
from zoneinfo import ZoneInfo

from pipeline_common.script_support import ArgumentParser  # wrong arguments exit 78, not 2

REPO_ROOT = Path(__file__).resolve().parents[1]
EXIT_STALE = 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dagster-home", type=Path, default=None, help="default: $DAGSTER_HOME, else dagster_home/")
    return parser.parse_args(argv)


def freshness_window(now: dt.datetime, deadline: str) -> tuple[dt.datetime, dt.datetime]:
    """(start, deadline): an export is fresh when materialized since `start`, the midnight of the deadline's day."""
    hour, minute = (int(part) for part in deadline.split(":"))
    today_deadline = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    due = today_deadline if now >= today_deadline else today_deadline - dt.timedelta(days=1)
    return due.replace(hour=0, minute=0), due


def _fmt(timestamp: float | None, zone: ZoneInfo) -> str:
    if timestamp is None:
        return "never"
    return dt.datetime.fromtimestamp(timestamp, zone).strftime("%Y-%m-%d %H:%M %Z")


def asset_rows(instance, repo, zone: ZoneInfo) -> dict[str, list[dict]]:
    """Per group: one row per materializable asset (name, last materialization, run status, failing checks)."""
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

    graph = repo.asset_graph
    checks_by_asset = defaultdict(list)
    for check_key in graph.asset_check_keys:
        checks_by_asset[check_key.asset_key].append(check_key)
    latest_checks = instance.event_log_storage.get_latest_asset_check_execution_by_key(list(graph.asset_check_keys))
    failing_states = {AssetCheckExecutionRecordStatus.FAILED}
    groups: dict[str, list[dict]] = defaultdict(list)
    for key in sorted(graph.materializable_asset_keys, key=lambda k: k.to_user_string()):
        event = instance.get_latest_materialization_event(key)
        planned = instance.get_latest_planned_materialization_info(key)
        run = instance.get_run_by_id(planned.run_id) if planned else None
        failing = [
            check.name
            for check in checks_by_asset[key]
            if check in latest_checks and latest_checks[check].status in failing_states
        ]
        groups[graph.get(key).group_name or "default"].append(
            {
                "asset": key.to_user_string(),
                "materialized_ts": event.timestamp if event else None,
                "last_materialized": _fmt(event.timestamp if event else None, zone),
                "last_run": run.status.value if run else "-",
                "failing_checks": failing,
            }
        )
    return groups


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    home = args.dagster_home or (Path(os.environ["DAGSTER_HOME"]) if os.environ.get("DAGSTER_HOME") else REPO_ROOT / "dagster_home")
    os.environ["DAGSTER_HOME"] = str(home.resolve())

    import dagster as dg

    from orchestration.definitions import defs
    from pipeline_common.config import load_pipeline_config

    config = load_pipeline_config()
    zone = ZoneInfo(config.timezone)
    deadline = config.alerts.freshness_deadline
    with dg.DagsterInstance.get() as instance:
        groups = asset_rows(instance, defs.get_repository_def(), zone)
    for group in sorted(groups):
        print(f"\n[{group}]")
        for row in groups[group]:
            checks = f"  FAILING CHECKS: {', '.join(row['failing_checks'])}" if row["failing_checks"] else ""
            print(f"  {row['asset']:<40} {row['last_materialized']:<22} last run: {row['last_run']:<9}{checks}")

    start, due = freshness_window(dt.datetime.now(zone), deadline)
    by_asset = {row["asset"]: row for rows in groups.values() for row in rows}
    stale = []
    print(f"\nExports due by {due:%Y-%m-%d %H:%M %Z} (fresh = materialized since {start:%Y-%m-%d %H:%M}):")
    for export in config.exports:
        row = by_asset.get(export.asset)
        fresh = bool(row and row["materialized_ts"] and row["materialized_ts"] >= start.timestamp())
        print(f"  {export.asset:<40} {'fresh' if fresh else 'STALE'}")
        if not fresh:
            stale.append(export.asset)
    return EXIT_STALE if stale else 0


if __name__ == "__main__":
    sys.exit(main())
