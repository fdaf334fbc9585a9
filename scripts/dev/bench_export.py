"""Benchmark the Tableau export: the project's DuckDB -> Parquet -> Hyper build against two baselines.

In one run, on one generated mart-like DuckDB table (default 6,000,000 rows: date, text,
integers, decimal money), it times (1) the export script's own build function, (2) a
row-by-row `Inserter` load fed from a DuckDB cursor, and (3) a bare Hyper `external()` load
of the same Parquet. Every timing includes starting Hyper. All three extracts are checked to
hold the same rows. Last stdout line: JSON.
Usage: python scripts/dev/bench_export.py [--rows N] [--repeat N] [--work-dir DIR] [--skip-row-by-row]
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import duckdb
import psutil

REPO_ROOT = Path(__file__).resolve().parents[2]

from create_hyper_files.duckdb_to_tableau_server import build_extract  # noqa: E402
from create_hyper_files.hyper_builder import start_hyper  # noqa: E402
from create_hyper_files.warehouse_reader import PARQUET_OPTIONS, quote_literal  # noqa: E402
from pipeline_common.script_support import ArgumentParser  # noqa: E402  (wrong arguments exit 78)
from tableauhyperapi import (  # noqa: E402
    Connection,
    CreateMode,
    Inserter,
    SqlType,
    TableDefinition,
    TableName,
    escape_string_literal,
)

TABLE = "bench_daily_sales"
TARGET_SPEEDUP_VS_ROW_BY_ROW = 10.0
TARGET_RATIO_VS_BARE_PARQUET = 1.2
BATCH_ROWS = 100_000

# A mart-like table: many days x markets x channels x SKUs, with money as DECIMAL(18,2).
GENERATE_SQL = f"""
CREATE OR REPLACE TABLE {TABLE} AS
SELECT
    DATE '2024-01-01' + (i % 730)::INTEGER AS order_date,
    ['UK', 'DE', 'IT', 'JP'][(i % 4) + 1] AS market,
    ['TV', 'WEB', 'APP', 'PHONE'][(hash(i) % 4)::BIGINT + 1] AS channel,
    'SKU-' || lpad((hash(i * 7) % 20000)::VARCHAR, 6, '0') AS product_sku,
    (hash(i * 13) % 5000000)::BIGINT AS customer_id,
    (1 + hash(i * 17) % 40)::INTEGER AS units,
    (1 + hash(i * 19) % 12)::BIGINT AS orders,
    ((hash(i * 23) % 2000000) / 100.0)::DECIMAL(18, 2) AS net_sales_gbp,
    ((hash(i * 29) % 2000000) / 100.0)::DECIMAL(18, 2) AS budget_gbp
FROM range({{rows}}) r(i)
"""

HYPER_COLUMNS = [
    TableDefinition.Column("order_date", SqlType.date()),
    TableDefinition.Column("market", SqlType.text()),
    TableDefinition.Column("channel", SqlType.text()),
    TableDefinition.Column("product_sku", SqlType.text()),
    TableDefinition.Column("customer_id", SqlType.big_int()),
    TableDefinition.Column("units", SqlType.int()),
    TableDefinition.Column("orders", SqlType.big_int()),
    TableDefinition.Column("net_sales_gbp", SqlType.numeric(18, 2)),
    TableDefinition.Column("budget_gbp", SqlType.numeric(18, 2)),
]


def generate(warehouse: Path, rows: int) -> None:
    with duckdb.connect(str(warehouse)) as con:
        con.execute(GENERATE_SQL.format(rows=rows))


def project_path(warehouse: Path, out_dir: Path, log: logging.Logger) -> Path:
    """The export script's own build: DuckDB COPY to Parquet, Hyper loads it, replace the target."""
    return build_extract(warehouse, [TABLE], "bench_project", out_dir, 30.0, log).hyper_path


def copy_to_parquet(warehouse: Path, parquet: Path) -> None:
    """A bare DuckDB COPY of the table, with the export's Parquet options."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute(f"COPY {TABLE} TO {quote_literal(parquet.as_posix())} ({PARQUET_OPTIONS})")


def bare_parquet_load(parquet: Path, out_dir: Path, name: str = "bench_bare") -> Path:
    """Only Hyper: CREATE TABLE AS SELECT * FROM external(<the same Parquet>)."""
    target = out_dir / f"{name}.hyper"
    with start_hyper(out_dir / "hyper_logs_bare") as hyper:
        with Connection(hyper.endpoint, str(target), CreateMode.CREATE_AND_REPLACE) as connection:
            connection.execute_command('CREATE SCHEMA "Extract"')
            connection.execute_command(
                'CREATE TABLE "Extract"."Extract" AS (SELECT * FROM '
                f"external({escape_string_literal(str(parquet))}, FORMAT => 'parquet'))"
            )
    return target


def minimal_parquet_path(warehouse: Path, out_dir: Path) -> Path:
    """The least any Parquet route can do: a bare DuckDB COPY, then the bare Hyper load.

    Shows what the project's extras (name validation, casts, atomic replace, backup) cost on
    top of the unavoidable Parquet write.
    """
    parquet = out_dir / "bench_minimal.parquet"
    copy_to_parquet(warehouse, parquet)
    try:
        return bare_parquet_load(parquet, out_dir, "bench_minimal")
    finally:
        parquet.unlink(missing_ok=True)


def row_by_row_load(warehouse: Path, out_dir: Path) -> Path:
    """The classic pattern: fetch rows from DuckDB into Python and push them through an Inserter."""
    target = out_dir / "bench_rows.hyper"
    definition = TableDefinition(TableName("Extract", "Extract"), HYPER_COLUMNS)
    with duckdb.connect(str(warehouse), read_only=True) as con, start_hyper(out_dir / "hyper_logs_rows") as hyper:
        with Connection(hyper.endpoint, str(target), CreateMode.CREATE_AND_REPLACE) as connection:
            connection.catalog.create_schema("Extract")
            connection.catalog.create_table(definition)
            cursor = con.execute(f"SELECT * FROM {TABLE}")
            with Inserter(connection, definition) as inserter:
                while batch := cursor.fetchmany(BATCH_ROWS):
                    inserter.add_rows(batch)
                inserter.execute()
    return target


def extract_fingerprint(path: Path, work_dir: Path) -> tuple[int, str]:
    with start_hyper(work_dir) as hyper, Connection(hyper.endpoint, str(path)) as connection:
        count, money = connection.execute_list_query(
            'SELECT COUNT(*), SUM(net_sales_gbp) FROM "Extract"."Extract"'
        )[0]
    return int(count), str(money)


def timed(call: Callable[[], Path]) -> tuple[float, Path]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=6_000_000, help="rows in the generated table (default 6M)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of the project path and the bare load, interleaved; best and median reported")
    parser.add_argument("--work-dir", type=Path, help="where to put the files (default: a temp dir, removed)")
    parser.add_argument("--skip-row-by-row", action="store_true", help="skip the slow Inserter baseline")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, work: Path) -> dict:
    log = logging.getLogger("bench_export")
    warehouse = work / "bench.duckdb"
    out_dir = work / "exports"
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"generating {args.rows:,} rows ...", flush=True)
    generate(warehouse, args.rows)
    parquet = work / "same.parquet"
    copy_to_parquet(warehouse, parquet)

    project_times: list[float] = []
    bare_times: list[float] = []
    minimal_times: list[float] = []
    outputs: dict[str, Path] = {}
    for attempt in range(1, args.repeat + 1):
        seconds, outputs["project"] = timed(lambda: project_path(warehouse, out_dir, log))
        project_times.append(seconds)
        seconds, outputs["bare_parquet"] = timed(lambda: bare_parquet_load(parquet, out_dir))
        bare_times.append(seconds)
        seconds, outputs["minimal_parquet_path"] = timed(lambda: minimal_parquet_path(warehouse, out_dir))
        minimal_times.append(seconds)
        print(
            f"run {attempt}: project {project_times[-1]:.2f} s, bare Parquet load {bare_times[-1]:.2f} s, "
            f"bare COPY + load {minimal_times[-1]:.2f} s",
            flush=True,
        )
    row_seconds = None
    if not args.skip_row_by_row:
        print("row-by-row Inserter baseline ...", flush=True)
        row_seconds, outputs["row_by_row"] = timed(lambda: row_by_row_load(warehouse, out_dir))
        print(f"row-by-row {row_seconds:.2f} s", flush=True)

    fingerprints = {name: extract_fingerprint(path, work / "hyper_logs_check") for name, path in outputs.items()}
    if len(set(fingerprints.values())) != 1 or next(iter(fingerprints.values()))[0] != args.rows:
        raise SystemExit(f"extracts differ: {fingerprints}")

    project_best, bare_best = min(project_times), min(bare_times)
    result = {
        "rows": args.rows,
        "machine": f"{platform.system()} {platform.machine()}, {psutil.cpu_count(logical=True)} logical cores",
        "project_seconds_best": round(project_best, 2),
        "project_seconds_median": round(statistics.median(project_times), 2),
        "bare_parquet_seconds_best": round(bare_best, 2),
        "bare_parquet_seconds_median": round(statistics.median(bare_times), 2),
        "project_vs_bare_parquet_ratio": round(project_best / bare_best, 2),
        "project_vs_bare_parquet_ratio_median": round(statistics.median(project_times) / statistics.median(bare_times), 2),
        "bare_copy_and_load_seconds_best": round(min(minimal_times), 2),
        "project_vs_bare_copy_and_load_ratio": round(project_best / min(minimal_times), 2),
    }
    if row_seconds is not None:
        result["row_by_row_seconds"] = round(row_seconds, 2)
        result["speedup_vs_row_by_row"] = round(row_seconds / project_best, 1)
        result["meets_10x_vs_row_by_row"] = row_seconds / project_best >= TARGET_SPEEDUP_VS_ROW_BY_ROW
    result["meets_1_2x_of_bare_parquet"] = project_best / bare_best <= TARGET_RATIO_VS_BARE_PARQUET
    return result


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.work_dir:
        args.work_dir.mkdir(parents=True, exist_ok=True)
        result = run(args, args.work_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="bench_export_") as tmp:
            result = run(args, Path(tmp))
    for key, value in result.items():
        print(f"{key:>40}: {value}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
