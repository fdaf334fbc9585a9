"""Benchmark a year on the desktop: the flow at 365 days of history against 30 days, side by side in one run.

For each history length (default 30 and 365 days, at the same daily volume: 4 markets x 50,000 order
lines per weekday), on generated data, every step a separate process tree whose wall time and **peak
memory** (the sum of the resident memory of the step's process and all its descendants, sampled every
50 ms with psutil; and the largest single process) are measured:

  history   the year's files synced once into raw Parquet (`sync_batch.py --days-back N`: the one-off
            load of a year of history; the daily sync window stays pipeline.yaml's days_back);
  (a)       cold flow through Dagster (`run_flow.py`): no warehouse yet, every raw file built;
  backup    first (full) warehouse backup of the cold state (orchestration/maintenance/warehouse_backup.py);
  (c)       warm daily flow through Dagster: one new orders file per market (median of --runs);
  backup+1  the next day's backup after the warm flow: incremental, its new bytes = backup disk per day;
  restore   the newest backup restored into a new DuckDB file, compared table by table (every row,
            multiset-exact) with the warehouse it was taken from;
  rebuild   the weekly full rebuild (`dbt build --full-refresh`, what jobs.warehouse_full_rebuild runs).

At the shortest length also (d) the warm stages by hand and (e) the floor (scripts/bench_flow.py), so
the 30-day ratios c/d, c/e, c/a come from the same run. Disk: the warehouse file, the backups (hard
links counted once) and the Dagster home. Prints a table and, last, one JSON line. The resource limits of
pipeline.yaml applies to every step (DuckDB memory_limit/threads/temp_directory, below-normal priority).

Usage: python scripts/dev/bench.py year [--days 30 365] [--rows-per-day N] [--runs N] [--keep DIR]
       [--landing-cache DIR [--generate-only]]
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from scripts.dev import bench_flow as bf

from orchestration.maintenance.warehouse_backup import disk_used
from pipeline_common.config import load_pipeline_config, memory_bytes, today_in
from pipeline_common.script_support import ArgumentParser

REPO_ROOT = bf.REPO_ROOT
SCRIPTS = bf.SCRIPTS
GB = 10**9


# ---------------------------------------------------------------- measuring a process tree

def measure(args: list[str], env: dict[str, str], cwd: Path = REPO_ROOT) -> dict[str, float]:
    """Run `args`; its wall time, the peak of its whole tree's RSS and the largest single process's."""
    start = time.perf_counter()
    process = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    peak_tree = peak_one = 0
    loads: list[float] = []  # the machine's 1-minute load average (not on Windows): how busy the PC was
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak_tree, peak_one
        try:
            root = psutil.Process(process.pid)
        except psutil.Error:
            return
        while not stop.is_set():
            total = 0
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                break
            for proc in procs:
                try:
                    rss = proc.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                peak_one = max(peak_one, rss)
            peak_tree = max(peak_tree, total)
            if hasattr(os, "getloadavg"):
                loads.append(os.getloadavg()[0])
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = process.communicate()
    elapsed = time.perf_counter() - start
    stop.set()
    sampler.join()
    text = out.decode("utf-8", "replace")
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, args[:4]))} failed (exit {process.returncode}):\n{text[-4000:]}")
    return {"seconds": elapsed, "peak_tree_bytes": peak_tree, "peak_process_bytes": peak_one,
            "load_max": max(loads, default=-1.0), "output": text}


def folder_bytes(path: Path) -> int:
    """Disk used by a file or a folder (hard links once): the backup module's own measure."""
    if path.is_file():
        return path.stat().st_size
    return disk_used([path]) if path.exists() else 0


BACKUP_SNIPPET = """
import json, sys
from pathlib import Path
from orchestration.maintenance.warehouse_backup import backup_warehouse
from pipeline_common.resource_limits import duckdb_settings, lower_current_process
lower_current_process()
path = backup_warehouse(Path(sys.argv[1]), Path(sys.argv[2]), keep=7, settings=duckdb_settings("backup"))
manifest = json.loads((path / "manifest.json").read_text())
print(json.dumps({"path": str(path), "bytes_written": manifest["bytes_written"], "bytes_linked": manifest["bytes_linked"]}))
"""

RESTORE_SNIPPET = """
import sys
from pathlib import Path
from orchestration.maintenance.warehouse_backup import restore_warehouse
from pipeline_common.resource_limits import duckdb_settings, lower_current_process
lower_current_process()
restore_warehouse(Path(sys.argv[1]), Path(sys.argv[2]), settings=duckdb_settings("backup"))
"""


# ---------------------------------------------------------------- one history length

def generated_landing(cache: Path, as_of: dt.date, days: int, rows_per_day: int) -> Path:
    """The generated landing tree for (as_of, days, rows) in `cache`, generated once (untimed data preparation)."""
    from scripts import generate_sample_data as gen

    full = cache / f"landing_{as_of:%Y%m%d}_{days}d_{rows_per_day}r"
    if not (full / ".complete").exists():
        partial = full.with_name(full.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        gen.generate(partial, as_of, days + 1, rows_per_day, seed=bf.SEED)
        (partial / ".complete").write_text("")
        shutil.rmtree(full, ignore_errors=True)
        partial.rename(full)
    return full


def link_landings(work: Path, full: Path, as_of: dt.date) -> tuple[Path, Path, list[str]]:
    """As bench_flow.prepare_landing, from an existing full tree: the cold tree lacks as_of's orders files."""
    from scripts import generate_sample_data as gen

    new_blobs = [gen.daily_blob_path(market, bf.ORDERS, as_of) for market in bf.orders_markets()]
    cold, warm = work / "landing_cold", work / "landing_warm"
    for tree, skip in ((cold, set(new_blobs)), (warm, set())):
        for path in full.rglob("*"):
            rel = path.relative_to(full).as_posix()
            if path.is_file() and rel not in skip and rel != ".complete":
                target = tree / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(path, target)
                except OSError:
                    shutil.copy2(path, target)
    return cold, warm, new_blobs


def one_length(work: Path, days: int, rows_per_day: int, runs: int, with_floor: bool,
               cache: Path | None = None) -> dict:
    as_of = today_in(load_pipeline_config().timezone) - dt.timedelta(days=1)
    cold_as_of = as_of - dt.timedelta(days=1)
    started = time.perf_counter()
    if cache is not None:
        cold_landing, warm_landing, new_blobs = link_landings(
            work, generated_landing(cache, as_of, days, rows_per_day), as_of)
    else:
        cold_landing, warm_landing, new_blobs = bf.prepare_landing(work, as_of, days, rows_per_day)
    generated = time.perf_counter() - started
    bench = bf.Bench(work)
    bench.reset(None)
    bench.prepare_dbt(cold_landing)
    print(f"[{days} days] generated {days + 1} days x {rows_per_day} lines per market in {generated:.0f} s",
          file=sys.stderr)
    steps: dict[str, dict] = {}
    python = sys.executable

    def step(name: str, args: list[str], landing: Path) -> dict:
        result = measure(args, bench.env(landing))
        steps[name] = {k: v for k, v in result.items() if k != "output"}
        print(f"[{days} days] {name:<10} {result['seconds']:8.2f} s  peak tree "
              f"{result['peak_tree_bytes'] / GB:5.2f} GB  largest process {result['peak_process_bytes'] / GB:5.2f} GB"
              f"  load max {result['load_max']:.1f}", file=sys.stderr)
        return result

    # history: the year's files into raw Parquet (one-off), then the cold flow through Dagster
    step("history", [python, str(SCRIPTS / "azure_sync" / "sync_batch.py"), "--as-of", cold_as_of.isoformat(),
                     "--days-back", str(days + 1)], cold_landing)
    flow = [python, str(REPO_ROOT / "scripts" / "run_flow.py"), "--log-level", "WARNING", "--rows", "0"]
    step("a", [*flow, "--as-of", cold_as_of.isoformat()], cold_landing)
    warm_start = work / "warm_start"
    shutil.rmtree(warm_start, ignore_errors=True)
    shutil.copytree(bench.data, warm_start, copy_function=shutil.copy2)
    warehouse_bytes_cold = bench.duckdb_path.stat().st_size

    backups = work / "backups"
    shutil.rmtree(backups, ignore_errors=True)
    first = step("backup", [python, "-c", BACKUP_SNIPPET, str(bench.duckdb_path), str(backups)], cold_landing)
    first_info = json.loads(first["output"].strip().splitlines()[-1])

    warm_times = []
    for rep in range(runs):
        bench.reset(warm_start)
        result = step("c", [*flow, "--as-of", as_of.isoformat()], warm_landing)
        warm_times.append(result["seconds"])
    steps["c"]["runs"] = warm_times
    steps["c"]["seconds"] = statistics.median(warm_times)
    warehouse_bytes = bench.duckdb_path.stat().st_size

    time.sleep(1.1)  # the next backup's timestamp differs (one per second)
    second = step("backup+1", [python, "-c", BACKUP_SNIPPET, str(bench.duckdb_path), str(backups)], warm_landing)
    second_info = json.loads(second["output"].strip().splitlines()[-1])
    restored = work / "restored.duckdb"
    step("restore", [python, "-c", RESTORE_SNIPPET, second_info["path"], str(restored)], warm_landing)
    tables = bf.model_tables(bench.duckdb_path)
    all_tables = _all_tables(bench.duckdb_path)
    restore_identical = all_tables == _all_tables(restored) and \
        fingerprints(bench.duckdb_path, all_tables) == fingerprints(restored, all_tables)
    restored.unlink(missing_ok=True)
    with bf.duckdb.connect(str(bench.duckdb_path), read_only=True) as con:
        order_lines = con.execute("select count(*) from int_orders").fetchone()[0]

    # the weekly full rebuild, from the warm state; then its tables against the warm flow's
    from orchestration.warehouse.project import dbt_executable

    flow_db = work / "flow_after_warm.duckdb"
    shutil.copy2(bench.duckdb_path, flow_db)
    step("rebuild", [dbt_executable(), "build", "--project-dir", "dbt", "--profiles-dir", "dbt", "--quiet",
                     "--full-refresh"], warm_landing)
    model_entries = [t for t in all_tables if t.split(":")[0].split(".", 1)[1] in tables]
    rebuild_equal = fingerprints(flow_db, model_entries, skip_bookkeeping=True) == \
        fingerprints(bench.duckdb_path, model_entries, skip_bookkeeping=True)
    flow_db.unlink()

    result = {
        "days": days, "rows_per_day": rows_per_day, "order_lines": order_lines, "generate_s": round(generated, 1),
        "steps": {k: {kk: (round(vv, 2) if isinstance(vv, float) else vv) for kk, vv in v.items()}
                  for k, v in steps.items()},
        "warehouse_bytes": warehouse_bytes, "warehouse_bytes_cold": warehouse_bytes_cold,
        "backup_full_bytes": first_info["bytes_written"], "backup_day_bytes": second_info["bytes_written"],
        "backups_disk_bytes": folder_bytes(backups), "dagster_home_bytes": folder_bytes(bench.home),
        "raw_bytes": folder_bytes(bench.data / "raw"),
        "restore_identical": restore_identical, "restore_tables": len(all_tables),
        "flow_equals_full_rebuild": rebuild_equal,
    }
    if with_floor:
        d_times, e_times = [], []
        for rep in range(runs):
            bench.reset(warm_start)
            d_times.append(bench.by_hand(warm_landing, as_of))
            bench.reset(warm_start)
            e_times.append(bf.floor(bench.data, warm_landing, new_blobs, as_of, bench.duckdb_path))
        result["d_s"] = round(statistics.median(d_times), 2)
        result["e_s"] = round(statistics.median(e_times), 2)
        print(f"[{days} days] d (by hand) {d_times}  e (floor) {e_times}", file=sys.stderr)
    return result


def _all_tables(path: Path) -> list[str]:
    """Every table, bookkeeping ones included, with its schema, and its column names and types."""
    with bf.duckdb.connect(str(path), read_only=True) as con:
        return [f"{schema}.{table}: {columns}" for schema, table, columns in con.execute(
            "select schema_name, table_name, string_agg(column_name || ' ' || data_type, ', ' order by column_index) "
            "from duckdb_columns() where database_name = current_database() group by all order by 1, 2").fetchall()]


def fingerprints(path: Path, tables: list[str], skip_bookkeeping: bool = False) -> dict[str, tuple[int, str]]:
    """Per table: its row count and the sum of a 64-bit hash of every row (order-free, multiplicity-exact).

    One scan per table instead of EXCEPT ALL both ways (at 73M lines that is minutes and gigabytes);
    two tables with equal fingerprints differ only by a hash collision. `skip_bookkeeping` leaves out
    columns starting with '_' (load times and the like, which differ between two builds of the same data).
    """
    result = {}
    with bf.duckdb.connect(str(path), read_only=True) as con:
        for entry in tables:
            name, columns = entry.split(": ", 1) if ": " in entry else (entry.rstrip(":"), "")
            schema, table = name.split(".", 1)
            names = [c.split(" ", 1)[0] for c in columns.split(", ") if c]
            if skip_bookkeeping:
                names = [c for c in names if not c.startswith("_")]
            row_hash = "hash(" + ", ".join(f'"{c}"' for c in names) + ")" if names else "0"
            result[name] = tuple(con.execute(
                f'select count(*), cast(sum(cast({row_hash} as hugeint)) as varchar) from "{schema}"."{table}"'
            ).fetchone())
    return result


# ---------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, nargs="+", default=[30, 365],
                        help="history lengths in days, shortest first (default 30 365)")
    parser.add_argument("--rows-per-day", type=int, default=50_000, help="order lines per market and weekday")
    parser.add_argument("--runs", type=int, default=1, help="warm flow repetitions per length (median)")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary folder)")
    parser.add_argument("--landing-cache", type=Path,
                        help="generate the landing trees into this folder once and reuse them (untimed preparation)")
    parser.add_argument("--generate-only", action="store_true", help="fill --landing-cache and stop")
    args = parser.parse_args(argv)
    lengths = sorted(args.days)
    if args.generate_only:
        if args.landing_cache is None:
            parser.error("--generate-only needs --landing-cache")
        as_of = today_in(load_pipeline_config().timezone) - dt.timedelta(days=1)
        for days in lengths:
            started = time.perf_counter()
            print(generated_landing(args.landing_cache, as_of, days, args.rows_per_day),
                  f"{time.perf_counter() - started:.0f} s")
        return 0
    limits = load_pipeline_config().resource_limits
    with tempfile.TemporaryDirectory(prefix="bench_year_") as scratch:
        root = args.keep or Path(scratch)
        results = []
        for index, days in enumerate(lengths):
            work = root / f"days_{days}"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            results.append(one_length(work, days, args.rows_per_day, args.runs, with_floor=index == 0,
                                      cache=args.landing_cache))
            # each length's figures as soon as they are measured (a longer length may not finish)
            print(f"[{days} days] result {json.dumps(results[-1])}", file=sys.stderr, flush=True)
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)  # the disk a year of data takes, back before the next

    short, long = results[0], results[-1]
    print(f"\nmachine: {os.cpu_count()} logical CPUs, {psutil.virtual_memory().total / GB:.1f} GB RAM; "
          f"resource limits: step_memory {limits.step_memory}, dbt {limits.dbt.memory_limit}/{limits.dbt.threads} threads, exporter "
          f"{limits.exporter.memory_limit}, backup {limits.backup.memory_limit}, priority {limits.priority}")
    header = "| step | " + " | ".join(f"{r['days']} days: s | peak tree GB | largest GB" for r in results) + " |"
    print(header)
    for name in ("history", "a", "backup", "c", "backup+1", "restore", "rebuild"):
        cells = []
        for r in results:
            s = r["steps"][name]
            cells.append(f"{s['seconds']:.2f} | {s['peak_tree_bytes'] / GB:.2f} | {s['peak_process_bytes'] / GB:.2f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    for r in results:
        print(f"  {r['days']} days: {r['order_lines']:,} order lines; warehouse {r['warehouse_bytes'] / GB:.2f} GB, "
              f"raw {r['raw_bytes'] / GB:.2f} GB, backups {r['backups_disk_bytes'] / GB:.2f} GB (full "
              f"{r['backup_full_bytes'] / GB:.3f} GB, a day {r['backup_day_bytes'] / GB:.3f} GB), Dagster home "
              f"{r['dagster_home_bytes'] / 10**6:.1f} MB; restore identical: {r['restore_identical']}; "
              f"flow equals full rebuild: {r['flow_equals_full_rebuild']}")
    peak = max(s["peak_tree_bytes"] for r in results for s in r["steps"].values())
    limit = max(memory_bytes(b.memory_limit) for b in (limits.dbt, limits.exporter, limits.backup))
    targets = {
        "warm_long_over_short": round(long["steps"]["c"]["seconds"] / short["steps"]["c"]["seconds"], 2),
        "rebuild_long_s": long["steps"]["rebuild"]["seconds"],
        "peak_tree_gb_long": round(max(s["peak_tree_bytes"] for s in long["steps"].values()) / GB, 2),
        "peak_tree_gb": round(peak / GB, 2),
        "largest_duckdb_limit_gb": round(limit / GB, 2),
        "step_memory_gb": round(memory_bytes(limits.step_memory) / GB, 2),
        "every_step_under_step_memory": peak <= memory_bytes(limits.step_memory),
        "backup_day_over_warehouse": round(long["backup_day_bytes"] / long["warehouse_bytes"], 4),
        "c_d_short": round(short["steps"]["c"]["seconds"] / short["d_s"], 2),
        "c_e_short": round(short["steps"]["c"]["seconds"] / short["e_s"], 2),
        "c_a_short": round(short["steps"]["c"]["seconds"] / short["steps"]["a"]["seconds"], 2),
        "c_a_long": round(long["steps"]["c"]["seconds"] / long["steps"]["a"]["seconds"], 2),
    }
    print("  targets: " + json.dumps(targets))
    print(json.dumps({"lengths": results, "targets": targets}))
    ok = all(r["restore_identical"] and r["flow_equals_full_rebuild"] for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
