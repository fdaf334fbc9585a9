"""The whole code location loads, and its shape (assets with their deps, groups, pools and retry policies,
check specs with blocking and deps, jobs, schedules, sensors) is
snapshot-tested: a change to the graph shows up as a reviewed diff of tests/snapshots/definitions.json.

Refresh after an intended change: UPDATE_SNAPSHOTS=1 scripts/test.sh tests/test_definitions_snapshot.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg
import pytest

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"


def _shape() -> dict:
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        checks = {
            c.name: {"blocking": graph.get(c).blocking,
                     "deps": sorted(k.to_user_string() for k in graph.get(c).parent_entity_keys)}
            for c in graph.asset_check_keys if c.asset_key == key
        }
        shape = {"group": node.group_name, "checks": checks,
                 "deps": sorted(k.to_user_string() for k in node.parent_keys)}
        if node.is_executable:  # what runs it: the pools it takes and how its op is retried
            retry = node.assets_def.op.retry_policy
            shape["pools"] = sorted(node.pools or ())
            shape["retry_policy"] = None if retry is None else {
                "max_retries": retry.max_retries, "delay": retry.delay,
                "backoff": retry.backoff.value if retry.backoff else None,
                "jitter": retry.jitter.value if retry.jitter else None}
        assets[key.to_user_string()] = shape
    schedules = {
        s.name: {"job": s.job_name, "cron": s.cron_schedule, "timezone": s.execution_timezone,
                 "default_status": s.default_status.value}
        for s in defs.schedules
    }
    job_defs = [j for j in defs.resolve_all_job_defs() if not j.name.startswith("__")]
    jobs = sorted(j.name for j in job_defs)
    # Each asset job's selection: a selection that silently grows (a backup in every sensor run) is a diff.
    selections = {
        j.name: sorted(k.to_user_string() for k in j.asset_layer.selected_asset_keys)
        for j in job_defs if j.asset_layer.selected_asset_keys
    }
    sensors = sorted(s.name for s in defs.sensors)
    sensor_jobs = {s.name: s.job_name for s in defs.sensors if s.has_jobs}
    return {"assets": assets, "jobs": jobs, "job_selections": selections, "schedules": schedules,
            "sensors": sensors, "sensor_jobs": sensor_jobs}


@pytest.fixture(scope="module")
def shape() -> dict:
    return _shape()


def test_definitions_match_snapshot(shape):
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(json.dumps(shape, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    assert SNAPSHOT.exists(), "no snapshot yet: run with UPDATE_SNAPSHOTS=1 and review the file"
    assert shape == json.loads(SNAPSHOT.read_text(encoding="utf-8"))


def test_sensor_runs_never_take_the_warehouse_backup(shape):
    assert shape["sensor_jobs"], "the arrival sensors target jobs of their own"
    for sensor, job in shape["sensor_jobs"].items():
        assert "warehouse_backup" not in shape["job_selections"][job], sensor
    assert "warehouse_backup" in shape["job_selections"]["uk_morning_refresh_with_backup"]
    assert shape["sensor_jobs"]["de_orders_arrival_sensor"] == "de_orders_arrival_job"
    assert "de_orders_azure" in shape["job_selections"]["de_orders_arrival_job"]
    assert "uk_orders_azure" not in shape["job_selections"]["de_orders_arrival_job"]
    assert "tableau_executive_daily_sales" in shape["job_selections"]["de_orders_arrival_job"]


def test_contract_names_are_present(shape):
    for name in ["uk_orders_azure", "de_orders_azure", "it_orders_azure", "jp_orders_azure", "uk_products_sku",
                 "uk_new_names", "uk_scv", "daily_sales_budget_exchange_ingest", "stg_uk_orders",
                 "int_orders_summary_daily", "qi_executive_daily_sales", "tableau_executive_daily_sales",
                 "daily_sales_tableau_export"]:
        assert name in shape["assets"], name
    assert shape["assets"]["uk_orders_azure"]["group"] == "azure_ingestion_orders"
    assert shape["assets"]["uk_products_sku"]["group"] == "azure_ingestion_reference"
    assert shape["assets"]["daily_sales_budget_exchange_ingest"]["group"] == "budget_ingestion"
    assert shape["assets"]["tableau_executive_daily_sales"]["group"] == "export"
    crons = {s["job"]: s["cron"] for s in shape["schedules"].values()}
    assert crons["ingest_azure_qi_job"] == "15 15 * * *"
    assert crons["daily_sales_flow_job"] == "45 15 * * *"
    assert crons["uk_morning_refresh_with_backup"] == "15 7 * * *"
    assert crons["ingest_scv_job"] == "0 16 1-3 * *"
    assert {s["timezone"] for s in shape["schedules"].values()} == {"Europe/London"}


def test_lineage_from_orders_to_the_executive_extract_is_unbroken():
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    upstream = graph.get(dg.AssetKey("tableau_executive_daily_sales")).parent_keys
    seen, frontier = set(), set(upstream)
    while frontier:
        key = frontier.pop()
        seen.add(key)
        frontier |= set(graph.get(key).parent_keys) - seen
    for market in ["uk", "de", "it", "jp"]:
        assert dg.AssetKey(f"{market}_orders_azure") in seen
        assert dg.AssetKey(f"stg_{market}_orders") in seen
    assert dg.AssetKey("daily_sales_budget_exchange_ingest") in seen
