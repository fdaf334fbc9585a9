"""The marts against contract section 5, recomputed independently in pandas from the landing CSVs.

The expected numbers come from the raw order CSVs (not the Parquet, not the model SQL) and the
budget CSVs the ingest wrote; money is exact (Decimal) and rounded half away from zero.
"""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pipeline_common.config import load_pipeline_config
from tests.plugins.warehouse import BuiltWarehouse, dbt_build

ORACLE = "raw_data/DWH/Oracle"
NET_STATUSES = {"COMPLETED", "SHIPPED"}
CENT = Decimal("0.01")


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def read_landing_orders(landing: Path, market: str) -> pd.DataFrame:
    frames = []
    for path in sorted((landing / market / ORACLE / "ingest_orders").glob("*/ingest_orders_*.csv")):
        frame = pd.read_csv(path, dtype={"unit_price": str, "product_sku": str}, encoding="utf-8-sig")
        frame["file_date"] = dt.datetime.strptime(path.stem.rsplit("_", 1)[-1], "%Y%m%d").date()
        frames.append(frame)
    orders = pd.concat(frames, ignore_index=True)
    orders["market"] = market
    orders["order_date"] = pd.to_datetime(orders["order_date"]).dt.date
    orders["line_value"] = [Decimal(p) * q for p, q in zip(orders["unit_price"], orders["quantity"], strict=True)]
    return orders


def latest_lines(orders: pd.DataFrame) -> pd.DataFrame:
    """Contract: per (market, order_line_id) the row of the latest file date wins."""
    ordered = orders.sort_values(["file_date"], kind="stable")
    return ordered.drop_duplicates(["market", "order_line_id"], keep="last")


@pytest.fixture(scope="module")
def expected(built_warehouse: BuiltWarehouse) -> dict[str, pd.DataFrame]:
    config = load_pipeline_config()
    markets = [d.market for d in config.datasets if d.dataset == "ingest_orders"]
    raw = pd.concat([read_landing_orders(built_warehouse.landing, m) for m in markets], ignore_index=True)
    lines = latest_lines(raw)
    lines["counted"] = lines["status"].isin(NET_STATUSES)

    budget_dir = built_warehouse.data_dir / "raw" / "budget"
    fx = pd.concat(pd.read_csv(p, dtype=str) for p in budget_dir.glob("exchange_rates_*.csv"))
    rate = {(r.currency, dt.date.fromisoformat(r.month)): Decimal(r.gbp_per_unit) for r in fx.itertuples()}
    budget = pd.concat(pd.read_csv(p, dtype=str) for p in budget_dir.glob("daily_sales_budget_*.csv"))
    budget = budget[budget["budget_gbp"].notna()]
    budget_by_day: dict[tuple[dt.date, str], Decimal] = {}
    for r in budget.itertuples():
        key = (dt.date.fromisoformat(r.budget_date), r.market)
        budget_by_day[key] = budget_by_day.get(key, Decimal(0)) + Decimal(r.budget_gbp)

    new_names = pd.read_csv(built_warehouse.landing / "UK" / ORACLE / "ingest_new_names" / "ingest_new_names.csv")
    new_by_day = new_names.groupby("first_order_date").size().to_dict()

    summary_rows, exec_rows = [], []
    for (day, market, channel, currency), group in lines.groupby(["order_date", "market", "channel", "currency"]):
        sold = group[group["counted"]]
        local = sum(sold["line_value"], Decimal(0))
        summary_rows.append({
            "order_date": day, "market": market, "channel": channel,
            "orders": sold["order_id"].nunique(), "order_lines": len(sold), "units": int(sold["quantity"].sum()),
            "net_sales_local": money(local), "currency": currency,
            "net_sales_gbp": money(local * rate[(currency, day.replace(day=1))]),
        })
    for (day, market), group in lines.groupby(["order_date", "market"]):
        sold = group[group["counted"]]
        gbp = sum((v * rate[(c, day.replace(day=1))] for v, c in zip(sold["line_value"], sold["currency"],
                                                                     strict=True)), Decimal(0))
        net, plan = money(gbp), money(budget_by_day.get((day, market), Decimal(0)))
        exec_rows.append({
            "order_date": day, "market": market, "net_sales_gbp": net, "budget_gbp": plan,
            "variance_gbp": net - plan,
            "variance_pct": None if plan == 0 else round(float((net - plan) / plan), 4),
            "orders": sold["order_id"].nunique(), "units": int(sold["quantity"].sum()),
            "new_customers": int(new_by_day.get(day.isoformat(), 0)) if market == "UK" else None,
        })
    return {"raw": raw, "lines": lines, "summary": pd.DataFrame(summary_rows), "executive": pd.DataFrame(exec_rows)}


def table(duckdb_path: Path, name: str) -> pd.DataFrame:
    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        return con.execute(f"select * from {name}").df()


def as_records(frame: pd.DataFrame, key: list[str]) -> dict[tuple, dict]:
    records = {}
    for row in frame.to_dict("records"):
        clean = {k: (None if (not isinstance(v, str | Decimal) and pd.isna(v)) else v) for k, v in row.items()}
        for k, v in clean.items():
            if isinstance(v, pd.Timestamp):
                clean[k] = v.date()
        records[tuple(clean[k] for k in key)] = clean
    return records


def test_int_orders_summary_daily_matches_independent_computation(built_warehouse, expected):
    actual = table(built_warehouse.duckdb_path, "int_orders_summary_daily")
    key = ["order_date", "market", "channel"]
    assert list(actual.columns) == ["order_date", "market", "channel", "orders", "order_lines", "units",
                                    "net_sales_local", "currency", "net_sales_gbp"]
    got, want = as_records(actual, key), as_records(expected["summary"], key)
    assert got.keys() == want.keys()
    assert len(want) > 4 * 4 * 5  # every market and channel on most days: the comparison is not vacuous
    for k in want:
        for column in ["orders", "order_lines", "units", "currency"]:
            assert got[k][column] == want[k][column], (k, column)
        for column in ["net_sales_local", "net_sales_gbp"]:
            assert Decimal(str(got[k][column])) == want[k][column], (k, column)


def test_qi_executive_daily_sales_matches_independent_computation(built_warehouse, expected):
    actual = table(built_warehouse.duckdb_path, "qi_executive_daily_sales")
    key = ["order_date", "market"]
    assert list(actual.columns) == ["order_date", "market", "net_sales_gbp", "budget_gbp", "variance_gbp",
                                    "variance_pct", "orders", "units", "new_customers"]
    got, want = as_records(actual, key), as_records(expected["executive"], key)
    assert got.keys() == want.keys()
    for k, row in want.items():
        for column in ["net_sales_gbp", "budget_gbp", "variance_gbp"]:
            assert Decimal(str(got[k][column])) == row[column], (k, column)
        for column in ["orders", "units", "new_customers"]:
            assert got[k][column] == row[column], (k, column)
        if row["variance_pct"] is None:
            assert got[k]["variance_pct"] is None, k
        else:
            assert got[k]["variance_pct"] == pytest.approx(row["variance_pct"], abs=1e-9), k
    uk_new = [r["new_customers"] for k, r in got.items() if k[1] == "UK"]
    assert sum(uk_new) > 0, "the sample has new names; the count must reach the mart"
    assert all(r["new_customers"] is None for k, r in got.items() if k[1] != "UK")


def test_new_customers_has_one_meaning_and_the_uk_mart_counts_new_customers_buying(built_warehouse, expected):
    """`new_customers` (executive) counts every new name of the day; the UK mart's per-segment count
    is named `new_customers_buying`: new names with a completed or shipped line that day."""
    with duckdb.connect(str(built_warehouse.duckdb_path), read_only=True) as con:
        named = con.execute(
            "select table_name from information_schema.columns where column_name = 'new_customers'"
        ).fetchall()
    assert named == [("qi_executive_daily_sales",)]

    lines = expected["lines"]
    sold = lines[(lines["market"] == "UK") & lines["counted"]]
    new_names = pd.read_csv(built_warehouse.landing / "UK" / ORACLE / "ingest_new_names" / "ingest_new_names.csv")
    first_order = {int(r.customer_id): dt.date.fromisoformat(r.first_order_date) for r in new_names.itertuples()}
    buying: dict[dt.date, set[int]] = {}
    for row in sold.itertuples():
        if first_order.get(int(row.customer_id)) == row.order_date:
            buying.setdefault(row.order_date, set()).add(int(row.customer_id))

    uk_mart = table(built_warehouse.duckdb_path, "uk_commercial_customer_daily")
    per_day = uk_mart.groupby("order_date")["new_customers_buying"].sum()
    executive = {k[0]: r["new_customers"] for k, r in as_records(expected["executive"], ["order_date", "market"]).items()
                 if k[1] == "UK"}
    assert {pd.Timestamp(d).date(): int(n) for d, n in per_day.items()} == {
        day: len(buying.get(day, set())) for day in executive
    }
    assert all(len(buying.get(day, set())) <= n for day, n in executive.items())
    assert sum(len(v) for v in buying.values()) > 0


def test_latest_file_wins_per_order_line(built_warehouse, expected):
    raw = expected["raw"]
    uk = raw[raw["market"] == "UK"]
    changed = uk.groupby("order_line_id").filter(lambda g: g["status"].nunique() > 1)
    assert not changed.empty, "the sample must re-issue lines with a new status for this test to mean anything"
    latest = changed.sort_values("file_date").groupby("order_line_id").tail(1).set_index("order_line_id")
    with duckdb.connect(str(built_warehouse.duckdb_path), read_only=True) as con:
        staged = con.execute(
            "select order_line_id, status, _file_date from stg_uk_orders where order_line_id in "
            f"({', '.join(str(i) for i in latest.index)})"
        ).df().set_index("order_line_id")
        assert con.execute("select count(*) from stg_uk_orders").fetchone()[0] == uk["order_line_id"].nunique()
    assert len(staged) == len(latest)
    for line_id, row in latest.iterrows():
        assert staged.loc[line_id, "status"] == row["status"], line_id
        assert staged.loc[line_id, "_file_date"].date() == row["file_date"], line_id


def test_missing_budget_gives_zero_budget_and_null_variance_pct(built_warehouse, tmp_path):
    """Drop every budget row of one UK day: budget 0, variance = net sales, variance_pct null."""
    data_dir = tmp_path / "data"
    shutil.copytree(built_warehouse.data_dir / "raw", data_dir / "raw")
    with duckdb.connect(str(built_warehouse.duckdb_path), read_only=True) as con:
        day = con.execute("select max(order_date) from qi_executive_daily_sales where market = 'UK'").fetchone()[0]
    budget_file = next((data_dir / "raw" / "budget").glob("daily_sales_budget_*.csv"))
    budget = pd.read_csv(budget_file, dtype=str)
    dropped = (budget["budget_date"] == day.isoformat()) & (budget["market"] == "UK")
    assert dropped.sum() > 0
    budget[~dropped].to_csv(budget_file, index=False)

    duckdb_path = data_dir / "warehouse" / "analytics.duckdb"
    done = dbt_build(data_dir, duckdb_path)
    assert done.returncode == 0, done.stdout[-3000:]
    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        net, plan, variance, pct = con.execute(
            "select net_sales_gbp, budget_gbp, variance_gbp, variance_pct from qi_executive_daily_sales "
            "where market = 'UK' and order_date = ?", [day]
        ).fetchone()
    assert plan == 0 and net > 0
    assert variance == net
    assert pct is None
