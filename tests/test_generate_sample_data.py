"""The sample data generator: contract paths and columns, realism rules, determinism, budget workbook."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from openpyxl import load_workbook

from pipeline_common.config import load_pipeline_config
from tests.plugins.sample_data import (
    GENERATOR_PATH,
    SAMPLE_AS_OF,
    SAMPLE_DAYS,
    SAMPLE_ROWS_PER_DAY,
    load_generator,
)

ORACLE = "raw_data/DWH/Oracle"
SAMPLE_START = SAMPLE_AS_OF - dt.timedelta(days=SAMPLE_DAYS - 1)


def _orders_glob(root: Path, market: str) -> str:
    return (root / market / ORACLE / "ingest_orders" / "*" / "ingest_orders_*.csv").as_posix()


def _orders(root: Path, market: str) -> duckdb.DuckDBPyConnection:
    """A connection with view `o`: every orders file of the market, all columns as text, plus file_day."""
    con = duckdb.connect()
    con.execute(
        f"create view o as select *, regexp_extract(filename, '(\\d{{8}})\\.csv$', 1) as file_day, "
        f"strptime(regexp_extract(filename, '(\\d{{8}})\\.csv$', 1), '%Y%m%d')::date::varchar as file_date "
        f"from read_csv('{_orders_glob(root, market)}', filename=true, all_varchar=true)"
    )
    return con


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple:
    return con.execute(sql).fetchone()


def test_every_configured_file_is_at_its_contract_path(sample_landing: Path) -> None:
    config = load_pipeline_config()
    days = [SAMPLE_START + dt.timedelta(days=i) for i in range(SAMPLE_DAYS)]
    expected: set[str] = set()
    for entry in config.datasets:
        cadence = config.dataset_type(entry.dataset).cadence
        base = f"{entry.market}/{ORACLE}/{entry.dataset}"
        if cadence == "reference":
            expected.add(f"{base}/{entry.dataset}.csv")
        elif cadence == "daily":
            expected |= {f"{base}/{d:%Y}/{entry.dataset}_{d:%Y%m%d}.csv" for d in days}
        else:
            months = {d.replace(day=1) for d in days}
            expected |= {f"{base}/{m:%Y}/{entry.dataset}_{m:%Y%m%d}.csv" for m in months}
    expected.add(f"sharepoint/Daily Sales Budget {SAMPLE_AS_OF.year}.xlsx")
    found = {p.relative_to(sample_landing).as_posix() for p in sample_landing.rglob("*") if p.is_file()}
    assert found == expected


def test_csv_headers_match_the_configured_columns(sample_landing: Path) -> None:
    config = load_pipeline_config()
    for path in sample_landing.rglob("*.csv"):
        dataset = path.relative_to(sample_landing).parts[4]
        header = path.read_text(encoding="utf-8").splitlines()[0]
        assert header.split(",") == [f'"{c}"' for c in config.dataset_type(dataset).columns], path


def test_orders_values_follow_the_contract(sample_landing: Path) -> None:
    config = load_pipeline_config()
    for market, spec in config.markets.items():
        con = _orders(sample_landing, market)
        bad = _one(
            con,
            "select count(*) from o where channel not in ('TV','WEB','APP','PHONE')"
            " or status not in ('COMPLETED','SHIPPED','CANCELLED','RETURNED')"
            f" or currency <> '{spec.currency}'"
            " or not regexp_full_match(order_date, '\\d{4}-\\d{2}-\\d{2}')"
            " or not regexp_full_match(order_ts, '\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2}')"
            " or left(order_ts, 10) <> order_date"
            " or not regexp_full_match(unit_price, '\\d+\\.\\d{2}')"
            " or try_cast(quantity as integer) is null or cast(quantity as integer) < 1",
        )[0]
        assert bad == 0, market
        sizes = _one(
            con,
            "select min(n), max(n) from (select order_id, count(*) n from o where order_date = file_date group by 1)",
        )
        assert sizes[0] == 1 and 2 <= sizes[1] <= 4


def test_order_line_ids_are_unique_per_market_across_days(sample_landing: Path) -> None:
    con = _orders(sample_landing, "DE")
    # Within its own order day, each line appears once; any repeat is a later re-issue.
    lines, distinct = _one(con, "select count(*), count(distinct order_line_id) from o where order_date = file_date")
    assert lines == distinct
    repeated = _one(con, "select count(*) from (select order_line_id from o group by 1 having count(*) > 1)")[0]
    assert repeated > 0


def test_reissued_lines_repeat_an_earlier_line_with_a_newer_status(sample_landing: Path) -> None:
    con = _orders(sample_landing, "UK")
    pairs = con.execute(
        """
        select a.order_line_id, a.status as old_status, b.status as new_status,
               datediff('day', strptime(a.file_day, '%Y%m%d'), strptime(b.file_day, '%Y%m%d')) as age,
               (a.order_id, a.order_date, a.order_ts, a.customer_id, a.product_sku, a.quantity, a.unit_price)
                 = (b.order_id, b.order_date, b.order_ts, b.customer_id, b.product_sku, b.quantity, b.unit_price)
                 as same_line
        from o a join o b on a.order_line_id = b.order_line_id and a.file_day < b.file_day
        """
    ).fetchall()
    assert pairs, "no re-issued lines"
    assert all(same for *_, same in pairs)
    assert all(1 <= age <= 7 for *_, age, _ in pairs)
    assert all(old != new for _, old, new, *_ in pairs)
    transitions = {(old, new) for _, old, new, *_ in pairs}
    assert ("SHIPPED", "COMPLETED") in transitions
    assert transitions <= {("SHIPPED", "COMPLETED"), ("SHIPPED", "RETURNED"), ("COMPLETED", "RETURNED")}


def test_weekend_days_have_more_lines_than_weekdays(sample_landing: Path) -> None:
    con = _orders(sample_landing, "IT")
    per_day = con.execute("select order_date, count(distinct order_line_id) from o group by 1").fetchall()
    weekend = [n for d, n in per_day if dt.date.fromisoformat(d).weekday() >= 5]
    weekday = [n for d, n in per_day if dt.date.fromisoformat(d).weekday() < 5]
    assert min(weekend) > max(weekday)
    assert 1.2 < (sum(weekend) / len(weekend)) / (sum(weekday) / len(weekday)) < 1.6


def test_status_mix_is_mostly_completed_or_shipped(sample_landing: Path) -> None:
    con = _orders(sample_landing, "UK")
    shares = dict(con.execute("select status, count(*) * 1.0 / sum(count(*)) over () from o group by 1").fetchall())
    assert shares["COMPLETED"] + shares["SHIPPED"] > 0.85
    assert 0 < shares["CANCELLED"] < 0.1 and 0 < shares["RETURNED"] < 0.1


def test_prices_are_in_market_currency_levels(sample_landing: Path) -> None:
    def median_price(market: str) -> float:
        return _one(_orders(sample_landing, market), "select median(unit_price::double) from o")[0]

    jp = _orders(sample_landing, "JP")
    assert _one(jp, "select count(*) from o where unit_price::double % 1 <> 0")[0] == 0
    assert 120 < median_price("JP") / median_price("UK") < 260
    assert 1.05 < median_price("DE") / median_price("UK") < 1.3


def test_order_skus_exist_in_the_products_file(sample_landing: Path) -> None:
    products = sample_landing / "UK" / ORACLE / "ingest_products_sku" / "ingest_products_sku.csv"
    con = duckdb.connect()
    count = _one(con, f"select count(*), count(distinct category) from read_csv('{products.as_posix()}')")
    assert count[0] == 200 and count[1] >= 5
    orphans = _one(
        con,
        f"select count(*) from read_csv('{_orders_glob(sample_landing, 'UK')}') o "
        f"anti join read_csv('{products.as_posix()}') p using (product_sku)",
    )[0]
    assert orphans == 0


def test_new_names_are_consistent_with_orders(sample_landing: Path) -> None:
    names = sample_landing / "UK" / ORACLE / "ingest_new_names" / "ingest_new_names.csv"
    con = _orders(sample_landing, "UK")
    rows = con.execute(
        f"select n.first_order_date::varchar, f.first_day from read_csv('{names.as_posix()}', all_varchar=true) n "
        "left join (select customer_id, min(order_date) as first_day from o group by 1) f using (customer_id)"
    ).fetchall()
    assert len(rows) > SAMPLE_DAYS
    assert all(first == day for first, day in rows)
    assert len({first for first, _ in rows}) == SAMPLE_DAYS  # new customers every day


def test_scv_has_segments_and_two_decimal_values(sample_landing: Path) -> None:
    path = sample_landing / "UK" / ORACLE / "ingest_scv" / "2026" / "ingest_scv_20261101.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) > 100
    con = duckdb.connect()
    stats = _one(
        con,
        f"select count(distinct segment), min(lifetime_orders::int), "
        f"bool_and(regexp_full_match(lifetime_value_gbp, '\\d+\\.\\d{{2}}')) "
        f"from read_csv('{path.as_posix()}', all_varchar=true)",
    )
    assert stats[0] >= 3 and int(stats[1]) >= 1 and stats[2]


def test_budget_workbook_structure(sample_landing: Path) -> None:
    path = sample_landing / "sharepoint" / f"Daily Sales Budget {SAMPLE_AS_OF.year}.xlsx"
    workbook = load_workbook(path, read_only=True)
    rows = list(workbook["Budget"].iter_rows(values_only=True))
    header_index = next(i for i, r in enumerate(rows) if r[0] == "Market")
    assert header_index > 0  # title rows above the header
    header = rows[header_index]
    assert header[1] == "Channel"
    assert header[2] == dt.datetime(SAMPLE_AS_OF.year, 1, 1) and len(header) == 2 + 365
    body = rows[header_index + 1 :]
    assert {r[0] for r in body} == set(load_pipeline_config().markets)
    assert sum(1 for r in body if r[1] == "Total") == len(load_pipeline_config().markets)
    assert any(v is None for r in body for v in r[2:])
    fx = list(workbook["Exchange"].iter_rows(values_only=True))
    fx_header = next(r for r in fx if r[0] == "Currency")
    assert list(fx_header[1:]) == [dt.datetime(SAMPLE_AS_OF.year, m, 1) for m in range(1, 13)]
    rates = {r[0]: r[1:] for r in fx if r[0] in ("GBP", "EUR", "JPY")}
    assert set(rates["GBP"]) == {1}
    assert all(0.75 < r < 0.95 for r in rates["EUR"]) and len(set(rates["EUR"])) > 1
    assert all(0.004 < r < 0.0065 for r in rates["JPY"])


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    generator = load_generator()
    as_of = dt.date(2026, 1, 3)  # the window crosses a year: two budget workbooks
    first = generator.generate(tmp_path / "a", as_of, 4, 120, 11, ["UK", "JP"])
    generator.generate(tmp_path / "b", as_of, 4, 120, 11, ["UK", "JP"])
    generator.generate(tmp_path / "c", as_of, 4, 120, 12, ["UK", "JP"])
    assert {"sharepoint/Daily Sales Budget 2025.xlsx", "sharepoint/Daily Sales Budget 2026.xlsx"} <= set(
        first["paths"]
    )
    assert not (tmp_path / "a" / "DE").exists()
    for relative in first["paths"]:
        assert (tmp_path / "a" / relative).read_bytes() == (tmp_path / "b" / relative).read_bytes(), relative
    orders = "UK/raw_data/DWH/Oracle/ingest_orders/2026/ingest_orders_20260103.csv"
    assert (tmp_path / "a" / orders).read_bytes() != (tmp_path / "c" / orders).read_bytes()


def test_cli_prints_a_json_summary_last(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(GENERATOR_PATH), "--days", "2", "--rows-per-day", "50", "--as-of", "2026-03-02",
         "--out", str(tmp_path / "landing"), "--markets", "JP"],
        capture_output=True, text=True, check=True, timeout=120,
    )
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["as_of"] == "2026-03-02" and list(summary["order_rows"]) == ["JP"]
    assert summary["order_rows"]["JP"] >= 100
    assert (tmp_path / "landing" / "JP" / ORACLE / "ingest_orders" / "2026" / "ingest_orders_20260301.csv").is_file()


def test_rows_per_day_scales_the_volume(sample_landing: Path) -> None:
    own_lines = _one(_orders(sample_landing, "UK"), "select count(*) from o where order_date = file_date")[0]
    assert SAMPLE_ROWS_PER_DAY * SAMPLE_DAYS * 0.95 < own_lines < SAMPLE_ROWS_PER_DAY * SAMPLE_DAYS * 1.3


@pytest.mark.azurite
def test_upload_creates_the_container_and_never_prints_the_connection_string(tmp_path: Path, azurite) -> None:
    import os
    import uuid

    from azure.storage.blob import BlobServiceClient

    container = f"generator-{uuid.uuid4().hex[:10]}"  # does not exist yet: --upload creates it
    env = {**os.environ, "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string, "AZURE_CONTAINER": container}
    result = subprocess.run(
        [sys.executable, str(GENERATOR_PATH), "--days", "1", "--rows-per-day", "20", "--as-of", "2026-02-01",
         "--out", str(tmp_path / "landing"), "--markets", "UK", "--upload"],
        capture_output=True, text=True, env=env, check=True, timeout=300,
    )
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    local = {p.relative_to(tmp_path / "landing").as_posix() for p in (tmp_path / "landing").rglob("*") if p.is_file()}
    with BlobServiceClient.from_connection_string(azurite.connection_string) as service:
        names = {b.name for b in service.get_container_client(container).list_blobs()}
    assert summary["uploaded"] == len(local) and names == local
    assert "AccountKey" not in result.stdout + result.stderr
