"""Benchmark the whole daily flow: through Dagster, the same stages by hand, and the floor of the day's work.

In one run, on generated data (default 4 markets x 30 days x 50,000 lines; `--scale` grows lines and
days), alternating and taking medians over `--runs` repetitions:

  (a) the cold flow through Dagster (`scripts/run_flow.py`: empty raw, no warehouse);
  (b) the same stages run by hand, cold (each sync, the budget ingest, `dbt build`, each export);
  (c) the warm daily flow through Dagster (state of a cold run plus one new orders file per market);
  (d) the warm stages by hand;
  (e) the floor: one plain process doing only the day's necessary work (the new CSVs to Parquet, an
      incremental DuckDB update of staging and of the marts' affected days, the two Hyper loads).

Prints each figure, the per-step times of the median flow runs from the Dagster event log, the
ratios a/b, c/d, c/e and c/a, checks that the flow's tables (and the floor's marts) equal a full
rebuild's, and ends with one JSON line. Every run uses the same DATA_DIR and DUCKDB_PATH, for which
the dbt manifest is prepared once (untimed), as on the desktop.

Usage: python scripts/dev/bench.py flow [--scale F] [--days N] [--rows-per-day N] [--runs N] [--keep DIR]
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = REPO_ROOT / "bat_file_data_refresh" / "python"

import duckdb  # noqa: E402

from pipeline_common.config import load_pipeline_config, today_in  # noqa: E402
from pipeline_common.script_support import ArgumentParser  # noqa: E402  (wrong arguments exit 78)

SEED = 42
ORDERS = "ingest_orders"
MARTS = ("int_orders_summary_daily", "qi_executive_daily_sales")
_RUN_ID_RE = re.compile(r"\(run ([0-9a-f-]{36})\)")


# ---------------------------------------------------------------- data

def orders_markets() -> list[str]:
    return [entry.market for entry in load_pipeline_config().datasets if entry.dataset == ORDERS]


def prepare_landing(work: Path, as_of: dt.date, days: int, rows_per_day: int) -> tuple[Path, Path, list[str]]:
    """Generate days+1 days ending at as_of; the cold tree lacks as_of's orders files, the warm one has them.

    Both trees share their files (hard links, else copies with their times), so the sync sees the same blobs.
    """
    from scripts import generate_sample_data as gen

    full = work / "landing_full"
    gen.generate(full, as_of, days + 1, rows_per_day, seed=SEED)
    new_blobs = [gen.daily_blob_path(market, ORDERS, as_of) for market in orders_markets()]
    cold, warm = work / "landing_cold", work / "landing_warm"
    for tree, skip in ((cold, set(new_blobs)), (warm, set())):
        for path in full.rglob("*"):
            if path.is_file() and path.relative_to(full).as_posix() not in skip:
                target = tree / path.relative_to(full)
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(path, target)
                except OSError:
                    shutil.copy2(path, target)
    return cold, warm, new_blobs


# ---------------------------------------------------------------- environment and commands

class Bench:
    def __init__(self, work: Path):
        self.work = work
        self.data = work / "data"  # one DATA_DIR for every run: the manifest is prepared for it once
        self.home = work / "dagster_home"
        self.home.mkdir(parents=True, exist_ok=True)

    @property
    def duckdb_path(self) -> Path:
        return self.data / "warehouse" / "analytics.duckdb"

    def env(self, landing: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AZURE_", "SHAREPOINT_", "TABLEAU_", "SLACK_", "DBT_", "DAGSTER_"))}
        env.update(DATA_DIR=str(self.data), LANDING_DIR=str(landing), DUCKDB_PATH=str(self.duckdb_path),
                   DAGSTER_HOME=str(self.home), PYTHONIOENCODING="utf-8")
        return env

    def run(self, args: list[str], landing: Path) -> str:
        done = subprocess.run(args, env=self.env(landing), cwd=REPO_ROOT, capture_output=True, text=True,
                              encoding="utf-8", errors="replace")
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(map(str, args[:4]))} failed (exit {done.returncode}):\n"
                             f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done.stdout

    def reset(self, snapshot: Path | None) -> None:
        """Empty DATA_DIR (cold), or restore it from a snapshot with file times kept (warm)."""
        shutil.rmtree(self.data, ignore_errors=True)
        if snapshot is None:  # no warehouse yet, only its folder (made by prepare_dbt.py at install time)
            self.duckdb_path.parent.mkdir(parents=True)
        else:
            shutil.copytree(snapshot, self.data, copy_function=shutil.copy2)

    # -- (a), (c): through Dagster
    def flow(self, landing: Path, as_of: dt.date) -> tuple[float, str]:
        start = time.perf_counter()
        out = self.run([sys.executable, str(REPO_ROOT / "scripts" / "run_flow.py"), "--as-of", as_of.isoformat(),
                        "--log-level", "WARNING", "--rows", "0"], landing)
        elapsed = time.perf_counter() - start
        match = _RUN_ID_RE.search(out)
        if not match or "SUCCESS" not in out:
            raise SystemExit(f"run_flow.py did not succeed:\n{out[-3000:]}")
        return elapsed, match.group(1)

    # -- (b), (d): the same stages by hand, one after the other
    def by_hand(self, landing: Path, as_of: dt.date) -> float:
        from orchestration.budget.assets import INGEST_SCRIPT
        from orchestration.exports.assets import EXPORT_SCRIPT
        from orchestration.warehouse.project import dbt_executable

        config = load_pipeline_config()
        python = sys.executable
        syncs = [
            [python, str(SCRIPTS / "azure_sync" / "sync_azure.py"), "--market", entry.market, "--dataset",
             entry.dataset, "--as-of", as_of.isoformat(), "--days-back", str(entry.days_back)]
            for entry in config.datasets
        ]
        dbt = [dbt_executable(), "build", "--project-dir", "dbt", "--profiles-dir", "dbt", "--quiet"]
        # The same extracts under a bench_ name: the pipeline's own names are reserved for its Dagster export
        # assets (the exporter refuses them by hand, exit 65); the work (query, Hyper file) is the same.
        exports = [[python, str(SCRIPTS / EXPORT_SCRIPT), "--tables", *export.tables, "--name", f"bench_{export.name}"]
                   for export in config.exports]
        start = time.perf_counter()
        for command in syncs:
            self.run(command, landing)
        budgets = [  # after the sync, as the asset plans them: from the synced orders
            [python, str(SCRIPTS / INGEST_SCRIPT), "--year", str(year)] + ([] if required else ["--skip-missing"])
            for year, required in self.budget_years(config)
        ]
        for command in [*budgets, dbt, *exports]:
            self.run(command, landing)
        return time.perf_counter() - start

    def budget_years(self, config) -> list[tuple[int, bool]]:
        """The budget asset's plan for this DATA_DIR: this year, and every year the synced orders reach back
        to whose budget outputs are not there yet (orchestration.budget.assets.year_plan)."""
        from orchestration.budget.assets import year_plan
        from pipeline_common.order_span import earliest_order_date

        raw = self.data / "raw"
        start = earliest_order_date(raw, list(config.markets))
        return year_plan(today_in(config.timezone), None, start.first_date if start else None,
                         lambda year: all((raw / "budget" / f"{name}_{year}.csv").exists()
                                          for name in ("daily_sales_budget", "exchange_rates")))

    def prepare_dbt(self, landing: Path) -> None:
        self.run([sys.executable, str(REPO_ROOT / "scripts" / "prepare_dbt.py")], landing)


# ---------------------------------------------------------------- (e) the floor

def floor(data_dir: Path, landing: Path, new_blobs: list[str], as_of: dt.date, duckdb_path: Path) -> float:
    """The day's necessary work in one process: new CSVs -> Parquet, incremental DuckDB update, two Hyper loads."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from create_hyper_files.hyper_builder import load_parquet, start_hyper

    config = load_pipeline_config()
    columns = config.dataset_type(ORDERS).column_types
    arrow_types = {"integer": pa.int64(), "string": pa.string(), "date": pa.date32(),
                   "timestamp": pa.timestamp("us"), "decimal": pa.decimal128(18, 2)}
    start = time.perf_counter()
    parquet_files: dict[str, Path] = {}
    for blob in new_blobs:
        market = blob.split("/", 1)[0]
        table = pacsv.read_csv(landing / blob, convert_options=pacsv.ConvertOptions(
            column_types={name: arrow_types[kind] for name, kind in columns.items()}))
        rows = table.num_rows
        table = table.append_column("_source_blob", pa.repeat(pa.scalar(blob), rows))
        table = table.append_column("_file_date", pa.repeat(pa.scalar(as_of, pa.date32()), rows))
        target = data_dir / "raw" / market / ORDERS / f"{as_of:%Y}" / f"{ORDERS}_{as_of:%Y%m%d}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, target)
        parquet_files[market] = target
    with duckdb.connect(str(duckdb_path)) as con:
        con.execute("create temp table affected (order_date date, market varchar)")
        for market, path in parquet_files.items():
            stg = f"stg_{market.lower()}_orders"
            typed = ", ".join(f"cast({name} as {_sql_type(kind)}) as {name}" for name, kind in columns.items())
            con.execute(f"create or replace temp table new_lines as select {typed}, '{market}' as market, "
                        f"_file_date, _source_blob from read_parquet('{path.as_posix()}')")
            con.execute(f"insert into affected select distinct order_date, market from new_lines union "
                        f"select distinct s.order_date, s.market from {stg} s semi join new_lines n using (order_line_id)")
            # The daily case: the new file is the newest, so its lines win over the ones they re-issue.
            con.execute(f"delete from {stg} where order_line_id in (select order_line_id from new_lines)")
            con.execute(f"insert into {stg} by name select * from new_lines")
        con.execute("create or replace temp table affected_days as select distinct * from affected")
        con.execute(FLOOR_MARTS_SQL.format(orders=" union all ".join(
            f"select * from stg_{m.lower()}_orders" for m in orders_markets())))
        exports = data_dir / "floor_exports"
        exports.mkdir(parents=True, exist_ok=True)
        parquet_by_mart = {}
        for mart in MARTS:
            parquet_by_mart[mart] = exports / f"{mart}.parquet"
            con.execute(f"copy {mart} to '{parquet_by_mart[mart].as_posix()}' (format parquet)")
    with start_hyper(exports / "hyper_logs") as hyper:
        for mart in MARTS:
            load_parquet(hyper, exports / f"{mart}.hyper", {mart: parquet_by_mart[mart]})
    return time.perf_counter() - start


def _sql_type(kind: str) -> str:
    return {"integer": "bigint", "string": "varchar", "date": "date", "timestamp": "timestamp",
            "decimal": "decimal(18, 2)"}[kind]


FLOOR_MARTS_SQL = """
create or replace temp table lines as
select o.order_date, o.market, o.channel, o.currency, o.order_id, o.quantity, o.unit_price,
       o.status in ('COMPLETED', 'SHIPPED') as counted
from ({orders}) o semi join affected_days a on a.order_date = o.order_date and a.market = o.market;

delete from int_orders_summary_daily t using affected_days a where t.order_date = a.order_date and t.market = a.market;
insert into int_orders_summary_daily by name
select d.order_date, d.market, d.channel, d.orders, d.order_lines, d.units,
       cast(round(d.local, 2) as decimal(18, 2)) as net_sales_local, d.currency,
       cast(round(d.local * fx.gbp_per_unit, 2) as decimal(18, 2)) as net_sales_gbp
from (
    select order_date, market, channel, currency,
           count(distinct order_id) filter (where counted) as orders,
           count(*) filter (where counted) as order_lines,
           cast(coalesce(sum(quantity) filter (where counted), 0) as bigint) as units,
           coalesce(sum(quantity * unit_price) filter (where counted), 0) as local
    from lines group by all
) d
left join stg_budget_exchange_rates fx on fx.currency = d.currency and fx.month = date_trunc('month', d.order_date);

delete from qi_executive_daily_sales t using affected_days a where t.order_date = a.order_date and t.market = a.market;
insert into qi_executive_daily_sales by name
with s as (
    select l.order_date, l.market, l.currency,
           count(distinct l.order_id) filter (where l.counted) as orders,
           coalesce(sum(l.quantity) filter (where l.counted), 0) as units,
           coalesce(sum(l.quantity * l.unit_price) filter (where l.counted), 0) as local
    from lines l group by all
),
g as (
    select s.order_date, s.market, sum(s.local * fx.gbp_per_unit) as gbp, sum(s.orders) as orders, sum(s.units) as units
    from s left join stg_budget_exchange_rates fx on fx.currency = s.currency and fx.month = date_trunc('month', s.order_date)
    group by all
),
b as (select budget_date, market, sum(budget_gbp) as budget from stg_budget_daily_sales group by all),
n as (select first_order_date, count(*) as new_customers from stg_uk_new_names group by all),
r as (
    select g.order_date, g.market,
           cast(round(g.gbp, 2) as decimal(18, 2)) as net_sales_gbp,
           cast(round(coalesce(b.budget, 0), 2) as decimal(18, 2)) as budget_gbp,
           g.orders, g.units,
           case when g.market = 'UK' then coalesce(n.new_customers, 0) end as new_customers
    from g
    left join b on b.budget_date = g.order_date and b.market = g.market
    left join n on n.first_order_date = g.order_date
)
select order_date, market, net_sales_gbp, budget_gbp,
       cast(net_sales_gbp - budget_gbp as decimal(18, 2)) as variance_gbp,
       case when budget_gbp <> 0 then round(cast(net_sales_gbp - budget_gbp as double) / cast(budget_gbp as double), 4) end as variance_pct,
       cast(orders as bigint) as orders, cast(units as bigint) as units, cast(new_customers as bigint) as new_customers
from r;
"""


# ---------------------------------------------------------------- checks and event log

def model_tables(path: Path) -> list[str]:
    """The warehouse's dbt tables (internal bookkeeping tables start with an underscore)."""
    with duckdb.connect(str(path), read_only=True) as con:
        return [row[0] for row in con.execute(
            "select table_name from information_schema.tables where table_schema = 'main' "
            "and table_type = 'BASE TABLE' and not starts_with(table_name, '_') order by 1").fetchall()]


def differing_rows(left: Path, right: Path, tables: list[str]) -> dict[str, int]:
    """Per table, the rows in one warehouse and not the other (both directions, multiset-exact)."""
    result = {}
    with duckdb.connect(str(left), read_only=True) as con:
        con.execute(f"attach '{right.as_posix()}' as other (read_only)")
        for table in tables:
            cols = ", ".join(f'"{c}"' for c in _columns(con, "other", table))
            a = f"select {cols} from main.{table}"
            b = f"select {cols} from other.main.{table}"
            result[table] = con.execute(
                f"select (select count(*) from ({a} except all {b})) + (select count(*) from ({b} except all {a}))"
            ).fetchone()[0]
    return result


def _columns(con: duckdb.DuckDBPyConnection, catalog: str, table: str) -> list[str]:
    return [row[0] for row in con.execute(
        "select column_name from information_schema.columns where table_catalog = ? and table_name = ? "
        "and not starts_with(column_name, '_') order by ordinal_position", [catalog, table]).fetchall()]


def step_times(home: Path, run_id: str) -> dict[str, float]:
    """Seconds per step of a run from its event log, plus the run's start and end overheads."""
    import dagster as dg

    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        with dg.DagsterInstance.get() as instance:
            records = instance.all_logs(run_id)
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous
    starts: dict[str, float] = {}
    times: dict[str, float] = {}
    run_start = run_end = None
    first_step = last_step = None
    for record in records:
        kind = record.dagster_event_type
        stamp = record.timestamp
        if kind == dg.DagsterEventType.RUN_START:
            run_start = stamp
        elif kind in (dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.RUN_FAILURE):
            run_end = stamp
        elif kind == dg.DagsterEventType.STEP_START:
            starts[record.step_key] = stamp
            first_step = stamp if first_step is None else min(first_step, stamp)
        elif kind in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE) and record.step_key in starts:
            times[record.step_key] = stamp - starts[record.step_key]
            last_step = stamp if last_step is None else max(last_step, stamp)
    if run_start is not None and first_step is not None:
        times["(run start -> first step)"] = first_step - run_start
    if run_end is not None and last_step is not None:
        times["(last step -> run end)"] = run_end - last_step
    return times


# ---------------------------------------------------------------- main

def median(values: list[float]) -> float:
    return statistics.median(values)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply lines per day and days (1: 50,000 x 30; 2 and 4 grow both)")
    parser.add_argument("--days", type=int, help="days of orders in the cold state (default 30 x scale)")
    parser.add_argument("--rows-per-day", type=int, help="order lines per market and weekday (default 50,000 x scale)")
    parser.add_argument("--runs", type=int, default=5, help="alternating repetitions; medians are reported")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary folder)")
    args = parser.parse_args(argv)
    days = args.days or max(2, round(30 * args.scale))
    rows_per_day = args.rows_per_day or max(100, round(50_000 * args.scale))
    # The newest file date is yesterday (London), so the budget asset's default years cover the data.
    as_of = today_in(load_pipeline_config().timezone) - dt.timedelta(days=1)
    cold_as_of = as_of - dt.timedelta(days=1)

    with tempfile.TemporaryDirectory(prefix="bench_flow_") as scratch:
        work = args.keep or Path(scratch)
        if args.keep:
            shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        cold_landing, warm_landing, new_blobs = prepare_landing(work, as_of, days, rows_per_day)
        bench = Bench(work)
        bench.reset(None)
        bench.prepare_dbt(cold_landing)
        print(f"prepared {days} days x {rows_per_day} lines per market in {time.perf_counter() - started:.1f} s",
              file=sys.stderr)

        warm_start = work / "warm_start"
        timings: dict[str, list[float]] = {k: [] for k in "abcde"}
        runs: dict[str, list[str]] = {"a": [], "c": []}
        for rep in range(args.runs):
            cold: list[tuple[str, Callable[[], None]]] = []

            def run_a() -> None:
                bench.reset(None)
                seconds, run_id = bench.flow(cold_landing, cold_as_of)
                timings["a"].append(seconds)
                runs["a"].append(run_id)
                if not warm_start.exists():
                    shutil.copytree(bench.data, warm_start, copy_function=shutil.copy2)

            def run_b() -> None:
                bench.reset(None)
                timings["b"].append(bench.by_hand(cold_landing, cold_as_of))

            def run_c() -> None:
                bench.reset(warm_start)
                seconds, run_id = bench.flow(warm_landing, as_of)
                timings["c"].append(seconds)
                runs["c"].append(run_id)

            def run_d() -> None:
                bench.reset(warm_start)
                timings["d"].append(bench.by_hand(warm_landing, as_of))

            def run_e() -> None:
                bench.reset(warm_start)
                timings["e"].append(floor(bench.data, warm_landing, new_blobs, as_of, bench.duckdb_path))

            cold = [("a", run_a), ("b", run_b)]
            warm = [("c", run_c), ("d", run_d)]
            if rep % 2:  # alternate the order within each pair so drift in machine load cancels out
                cold.reverse()
                warm.reverse()
            for name, step in [*cold, *warm, ("e", run_e)]:
                step()
                print(f"  run {rep + 1}/{args.runs} ({name}): {timings[name][-1]:.2f} s", file=sys.stderr)

        # Correctness: the floor's marts, then the warm flow's tables, against a full rebuild of the same raw data.
        floor_db = work / "floor.duckdb"
        shutil.copy2(bench.duckdb_path, floor_db)
        bench.reset(warm_start)
        bench.flow(warm_landing, as_of)
        flow_db = work / "flow.duckdb"
        shutil.copy2(bench.duckdb_path, flow_db)
        bench.duckdb_path.unlink()
        from orchestration.warehouse.project import dbt_executable

        bench.run([dbt_executable(), "build", "--project-dir", "dbt", "--profiles-dir", "dbt", "--quiet",
                   "--full-refresh"], warm_landing)
        tables = model_tables(bench.duckdb_path)
        flow_diff = differing_rows(flow_db, bench.duckdb_path, tables)
        floor_diff = differing_rows(floor_db, bench.duckdb_path, list(MARTS))
        with duckdb.connect(str(bench.duckdb_path), read_only=True) as con:
            order_lines = con.execute("select count(*) from int_orders").fetchone()[0]

        med = {k: median(v) for k, v in timings.items()}
        print(f"\n{len(orders_markets())} markets x {days} days x {rows_per_day} lines/day "
              f"({order_lines:,} order lines after the warm day); medians of {args.runs} runs")
        labels = {"a": "cold flow through Dagster", "b": "cold stages by hand", "c": "warm flow through Dagster",
                  "d": "warm stages by hand", "e": "floor (the day's necessary work)"}
        for key, label in labels.items():
            print(f"  ({key}) {label:<36} {med[key]:7.2f} s   runs: {', '.join(f'{t:.2f}' for t in timings[key])}")
        ratios = {"a/b": med["a"] / med["b"], "c/d": med["c"] / med["d"], "c/e": med["c"] / med["e"],
                  "c/a": med["c"] / med["a"]}
        print("  ratios: " + ", ".join(f"{k} = {v:.2f}" for k, v in ratios.items()))
        for key in ("a", "c"):
            run_id = runs[key][timings[key].index(sorted(timings[key])[len(timings[key]) // 2])]
            print(f"\n  per step, median run of ({key}) {labels[key]} (event log, run {run_id}):")
            steps = step_times(bench.home, run_id)
            for step, seconds in sorted(steps.items(), key=lambda item: -item[1]):
                print(f"    {step:<48} {seconds:6.2f} s")
        print(f"\n  flow vs full rebuild, differing rows per table: {flow_diff}")
        print(f"  floor vs full rebuild, differing mart rows: {floor_diff}")
        equal = not any(flow_diff.values())
        summary = {
            "markets": len(orders_markets()), "days": days, "rows_per_day": rows_per_day,
            "scale": None if args.days or args.rows_per_day else args.scale,
            "order_lines": order_lines, "runs": args.runs,
            **{f"{k}_s": round(v, 2) for k, v in med.items()},
            **{k.replace("/", "_"): round(v, 2) for k, v in ratios.items()},
            "flow_equals_full_rebuild": equal, "floor_equals_full_rebuild": not any(floor_diff.values()),
        }
        print(json.dumps(summary))
        return 0 if equal else 1


if __name__ == "__main__":
    raise SystemExit(main())
