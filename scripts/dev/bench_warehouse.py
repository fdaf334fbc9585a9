"""Benchmark the warehouse: the project's `dbt build` against a plain DuckDB script making the same two marts.

Both run in one invocation on the same ingest output (default: 4 markets x 30 days x 50,000
lines, generated and synced with the project's own scripts), and the plain script's marts
are compared with dbt's so the two really compute the same thing. Last stdout line: JSON.
Usage: python scripts/dev/bench_warehouse.py [--data-dir DIR] [--rows-per-day N] [--days N] [--runs N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = REPO_ROOT / "bat_file_data_refresh" / "python"

from orchestration.warehouse.project import dbt_executable  # noqa: E402
from pipeline_common.config import load_pipeline_config  # noqa: E402
from pipeline_common.script_support import ArgumentParser  # noqa: E402  (wrong arguments exit 78)

AS_OF = dt.date(2026, 11, 20)
MARTS = {"int_orders_summary_daily": ["order_date", "market", "channel"],
         "qi_executive_daily_sales": ["order_date", "market"]}


def _env(data_dir: Path, landing: Path, duckdb_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "SHAREPOINT_"))}
    env.update(DATA_DIR=str(data_dir), LANDING_DIR=str(landing), DUCKDB_PATH=str(duckdb_path))
    return env


def _run(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(args, env=env, cwd=REPO_ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:3])} failed (exit {done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")


def prepare_data(data_dir: Path, days: int, rows_per_day: int) -> None:
    """Generate the landing tree and run the real sync and budget ingest into data_dir/raw."""
    from scripts import generate_sample_data

    landing = data_dir / "landing"
    summary = generate_sample_data.generate(landing, AS_OF, days, rows_per_day, seed=42)
    env = _env(data_dir, landing, data_dir / "warehouse" / "analytics.duckdb")
    for entry in load_pipeline_config().datasets:
        _run([sys.executable, str(SCRIPTS / "azure_sync" / "sync_azure.py"), "--market", entry.market,
              "--dataset", entry.dataset, "--as-of", AS_OF.isoformat(), "--days-back", str(max(days, 100))], env)
    for year in summary["budget_years"]:
        _run([sys.executable, str(SCRIPTS / "sharepoint_budget" / "daily_sales_ingest.py"), "--year", str(year)], env)


def _dbt_env(data_dir: Path, duckdb_path: Path) -> dict[str, str]:
    env = _env(data_dir, data_dir / "landing", duckdb_path)
    env["DBT_TARGET_PATH"] = str(duckdb_path.parent / "dbt_target")
    env["DBT_LOG_PATH"] = str(duckdb_path.parent / "dbt_logs")
    return env


def prepare_dbt(data_dir: Path, duckdb_path: Path) -> None:
    """Untimed `dbt parse`, as scripts/prepare_dbt.py does at install time (Dagster reuses its partial parse)."""
    _run([dbt_executable(), "parse", "--project-dir", "dbt", "--profiles-dir", "dbt"], _dbt_env(data_dir, duckdb_path))


def time_dbt(data_dir: Path, duckdb_path: Path) -> float:
    duckdb_path.unlink(missing_ok=True)
    start = time.perf_counter()
    _run([dbt_executable(), "build", "--project-dir", "dbt", "--profiles-dir", "dbt"], _dbt_env(data_dir, duckdb_path))
    return time.perf_counter() - start


BASELINE_SQL = """
create temp table lines as
select market, order_id, order_date, channel, currency, quantity, quantity * unit_price as line_value,
       status in ('COMPLETED', 'SHIPPED') as counted
from (
    select *, row_number() over (partition by market, order_line_id
                                 order by _file_date desc, _source_blob desc) as rn
    from (
        {orders}
    )
)
where rn = 1;

create temp table fx as
select upper(currency) as currency, cast(month as date) as month, cast(gbp_per_unit as decimal(18, 10)) as rate
from read_csv('{raw}/budget/exchange_rates_*.csv', header = true, all_varchar = true);

create table int_orders_summary_daily as
select d.order_date, d.market, d.channel, d.orders, d.order_lines, d.units,
       cast(round(d.local, 2) as decimal(18, 2)) as net_sales_local, d.currency,
       cast(round(d.local * fx.rate, 2) as decimal(18, 2)) as net_sales_gbp
from (
    select order_date, market, channel, currency,
           count(distinct order_id) filter (where counted) as orders,
           count(*) filter (where counted) as order_lines,
           cast(coalesce(sum(quantity) filter (where counted), 0) as bigint) as units,
           coalesce(sum(line_value) filter (where counted), 0) as local
    from lines group by all
) d
left join fx on fx.currency = d.currency and fx.month = date_trunc('month', d.order_date);

create table qi_executive_daily_sales as
with s as (
    select l.order_date, l.market,
           sum(l.line_value * fx.rate) filter (where l.counted) as gbp,
           count(distinct l.order_id) filter (where l.counted) as orders,
           coalesce(sum(l.quantity) filter (where l.counted), 0) as units
    from lines l left join fx on fx.currency = l.currency and fx.month = date_trunc('month', l.order_date)
    group by all
),
b as (
    select cast(budget_date as date) as budget_date, market, sum(cast(budget_gbp as decimal(18, 2))) as budget
    from read_csv('{raw}/budget/daily_sales_budget_*.csv', header = true, all_varchar = true)
    group by all
),
n as (
    select first_order_date, count(*) as new_customers
    from (select distinct on (customer_id) customer_id, first_order_date
          from read_parquet('{raw}/UK/ingest_new_names/**/*.parquet')
          order by customer_id, _file_date desc)
    group by all
),
r as (
    select s.order_date, s.market,
           cast(round(coalesce(s.gbp, 0), 2) as decimal(18, 2)) as net_sales_gbp,
           cast(round(coalesce(b.budget, 0), 2) as decimal(18, 2)) as budget_gbp,
           s.orders, s.units,
           case when s.market = 'UK' then coalesce(n.new_customers, 0) end as new_customers
    from s
    left join b on b.budget_date = s.order_date and b.market = s.market
    left join n on n.first_order_date = s.order_date
)
select order_date, market, net_sales_gbp, budget_gbp,
       cast(net_sales_gbp - budget_gbp as decimal(18, 2)) as variance_gbp,
       case when budget_gbp <> 0 then round(cast(net_sales_gbp - budget_gbp as double) / cast(budget_gbp as double), 4) end as variance_pct,
       cast(orders as bigint) as orders, cast(units as bigint) as units, cast(new_customers as bigint) as new_customers
from r;
"""


def baseline_sql(raw: Path, markets: list[str]) -> str:
    raw_posix = raw.resolve().as_posix()
    orders = "\n        union all by name\n        ".join(
        f"select '{m}' as market, * from read_parquet('{raw_posix}/{m}/ingest_orders/**/*.parquet', union_by_name = true)"
        for m in markets
    )
    return BASELINE_SQL.format(orders=orders, raw=raw_posix)


def time_baseline(data_dir: Path, duckdb_path: Path) -> float:
    markets = [d.market for d in load_pipeline_config().datasets if d.dataset == "ingest_orders"]
    sql = baseline_sql(data_dir / "raw", markets)
    duckdb_path.unlink(missing_ok=True)
    start = time.perf_counter()
    with duckdb.connect(str(duckdb_path)) as con:
        con.execute(sql)
    return time.perf_counter() - start


def compare(dbt_db: Path, baseline_db: Path) -> int:
    """Rows that differ between the two warehouses' marts (0 means the same numbers)."""
    differing = 0
    with duckdb.connect(str(dbt_db), read_only=True) as con:
        con.execute(f"attach '{baseline_db.as_posix()}' as base (read_only)")
        for table in MARTS:
            for a, b in ((table, f"base.{table}"), (f"base.{table}", table)):
                differing += con.execute(f"select count(*) from (select * from {a} except select * from {b})").fetchone()[0]
    return differing


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path,
                        help="a DATA_DIR whose raw/ holds the ingest output (prepared there first when raw/ is missing)")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rows-per-day", type=int, default=50_000, help="order lines per market and weekday")
    parser.add_argument("--runs", type=int, default=3, help="paired runs (dbt, then plain DuckDB); median ratio")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench_warehouse_") as scratch:
        data_dir = args.data_dir or Path(scratch) / "data"
        if not (data_dir / "raw").is_dir():
            start = time.perf_counter()
            prepare_data(data_dir, args.days, args.rows_per_day)
            print(f"prepared ingest output in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        work = Path(scratch) / "warehouses"
        dbt_db = work / "dbt" / "analytics.duckdb"
        base_db = work / "plain" / "analytics.duckdb"
        dbt_db.parent.mkdir(parents=True)
        base_db.parent.mkdir(parents=True)
        prepare_dbt(data_dir, dbt_db)
        dbt_times, base_times = [], []
        for _ in range(args.runs):
            dbt_times.append(time_dbt(data_dir, dbt_db))
            base_times.append(time_baseline(data_dir, base_db))
        with duckdb.connect(str(dbt_db), read_only=True) as con:
            rows = con.execute("select count(*) from int_orders").fetchone()[0]
        differing = compare(dbt_db, base_db)
    # Each run times both sides back to back, so its ratio shares the machine's load; report the median.
    ratios = [d / b for d, b in zip(dbt_times, base_times, strict=True)]
    summary = {
        "order_lines": rows, "dbt_build_s": round(min(dbt_times), 2), "plain_duckdb_s": round(min(base_times), 2),
        "ratio": round(statistics.median(ratios), 2), "runs": args.runs,
        "ratio_per_run": [round(r, 2) for r in ratios], "differing_mart_rows": differing,
    }
    print(json.dumps(summary))
    return 0 if differing == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
