"""Export warehouse tables (or one read-only query) to a Tableau .hyper extract and publish it.

DuckDB writes each table to Parquet, Hyper loads the Parquet natively, the extract replaces
$DATA_DIR/exports/{NAME}.hyper in one step, a timestamped backup is kept, and the extract is
published (Overwrite) when Tableau is configured. The pipeline's own extract names (and so their
Tableau data source names) are reserved for its Dagster export assets: the script accepts one only
inside a Dagster run of that asset (the Pipes context names it), never from a flag. Analysts list
tables, query, dry-run and write elsewhere (`--out` a folder or a .hyper file). Contract section 6.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from create_hyper_files.extract_backups import backup_extract, prune_backups
from create_hyper_files.hyper_builder import build_hyper, hyper_table_names
from create_hyper_files.progress import Progress
from create_hyper_files.publish_lock import exclusive_lock
from create_hyper_files.tableau_publisher import (
    guard_client_logs,
    publish_extract,
    tableau_settings,
)
from create_hyper_files.warehouse_reader import (
    QuerySource,
    TableRef,
    count_rows,
    describe,
    export_parquet,
    list_tables,
    plan_casts,
    prepare_session,
    resolve_tables,
    validate_query,
)
from pipeline_common.config import DEFAULT_TIMEZONE, ConfigError, Export, load_for_script, load_pipeline_config
from pipeline_common.script_support import (
    ArgumentParser,
    BadDataError,
    ConfigurationError,
    disk_full_error,
    io_error,
    print_summary,
    script_run,
)
from pipeline_common.files import replace, reserved_name_problem
from pipeline_common.leftovers import remove_stale, temp_name
from pipeline_common.settings import duckdb_path, env, exports_dir
from pipeline_common.warehouse_lock import connect_read_only

SCRIPT_NAME = "duckdb_to_tableau_server"
LOCK_TIMEOUT_ENV_VAR = "EXPORT_LOCK_TIMEOUT_SECONDS"
DEFAULT_LOCK_TIMEOUT_SECONDS = 120.0
PUBLISH_LOCK_TIMEOUT_ENV_VAR = "EXPORT_PUBLISH_LOCK_TIMEOUT_SECONDS"
DEFAULT_PUBLISH_LOCK_TIMEOUT_SECONDS = 1800.0
PUBLISH_LOCK_NAME = ".publish.lock"
BUILD_DIR_PREFIX = ".build-"
MAX_NAME_CHARS = 100  # a file name and a Tableau data source name: long enough, never past path limits

SCRIPT = "bat_file_data_refresh/python/create_hyper_files/duckdb_to_tableau_server.py"
EXAMPLES = f"""\
examples:
  # from the repo root (on Windows: .venv\\Scripts\\python and backslashes)
  # what is in the warehouse: every table, its rows and columns
  .venv/bin/python {SCRIPT} --list

  # one mart, ad hoc, built locally only: $DATA_DIR/exports/uk_check.hyper
  .venv/bin/python {SCRIPT} --tables uk_commercial_customer_daily --name uk_check --no-publish

  # rows and columns you choose, from one read-only query (a single SELECT or WITH)
  .venv/bin/python {SCRIPT} --name uk_last_week --no-publish \\
      --sql "SELECT order_date, net_sales_gbp, budget_gbp FROM qi_executive_daily_sales
             WHERE market = 'UK' AND order_date >= current_date - 7"

  # see what would be built (tables or query, rows, columns), write and publish nothing
  .venv/bin/python {SCRIPT} --tables qi_executive_daily_sales int_orders_summary_daily \\
      --name sales_pack --dry-run

  # write somewhere else: C:/Users/me/extracts/sales_pack.hyper (and its backups there)
  .venv/bin/python {SCRIPT} --tables qi_executive_daily_sales --name sales_pack --out C:/Users/me/extracts

  # write exactly this file (its folder must exist; a file already there goes to backup/ beside it)
  .venv/bin/python {SCRIPT} --tables qi_executive_daily_sales --name uk_week --out C:/Users/me/uk_week.hyper

reserved names: the pipeline's own extracts (pipeline.yaml `exports`, e.g. executive_daily_sales)
and their Tableau data sources are built and published by their Dagster assets only, inside a
Dagster run of that asset; by hand the CLI refuses those names (and their files), so an ad-hoc
extract never replaces a production extract or its Tableau data source.

exit codes: 0 ok, 65 bad input (unknown table, a reserved name, a query that is not one SELECT or
that fails, a value that does not fit), 74 cannot write the output, 75 transient (warehouse
locked, Tableau unreachable; retry later), 78 configuration (arguments, Tableau project,
sign-in, half-set TABLEAU_* variables).
"""


@dataclass(frozen=True)
class BuildResult:
    hyper_path: Path
    rows: dict[str, int]
    casts: dict[str, dict[str, str]]
    columns: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    """Per table: (column, type as the extract holds it: DuckDB's, or the Tableau cast's target)."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(
        prog="duckdb_to_tableau_server.py",
        description=(
            "Export DuckDB warehouse tables, or one read-only query, from DUCKDB_PATH (opened\n"
            "read-only) to $DATA_DIR/exports/NAME.hyper, keep a backup in $DATA_DIR/exports/backup/,\n"
            "and publish it to Tableau Server (Overwrite) when TABLEAU_SERVER_URL, TABLEAU_SITE_ID,\n"
            "TABLEAU_PAT_NAME, TABLEAU_PAT_SECRET and TABLEAU_PROJECT are set."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--tables", nargs="+", metavar="T",
                      help="warehouse tables or views (`name` or `schema.name`); see --list")
    what.add_argument("--sql", metavar="QUERY",
                      help='one read-only SELECT or WITH query; the extract is "Extract"."Extract"')
    what.add_argument("--list", action="store_true",
                      help="list the warehouse tables and views you can export, with row counts and columns, then exit")
    parser.add_argument("--name", help="extract and data source name (letters, digits, _ and -)")
    parser.add_argument("--no-publish", action="store_true", help="build and back up only")
    parser.add_argument("--dry-run", action="store_true",
                        help="validate and print what would be built; write and publish nothing")
    parser.add_argument("--out", type=Path, metavar="PATH",
                        help="a folder (existing, or a path not ending in .hyper): write NAME.hyper and its backups "
                        "there; a path ending in .hyper: write that file (its folder must exist; a file already "
                        "there is kept in backup/ beside it). Default $DATA_DIR/exports")
    parser.add_argument(
        "--lock-timeout", type=float, metavar="SECONDS",
        default=float(env(LOCK_TIMEOUT_ENV_VAR) or DEFAULT_LOCK_TIMEOUT_SECONDS),
        help=f"how long to wait while another process locks the warehouse "
             f"(env {LOCK_TIMEOUT_ENV_VAR}; default {DEFAULT_LOCK_TIMEOUT_SECONDS:.0f})",
    )
    args = parser.parse_args(argv)
    if args.list:
        extra = [flag for flag, value in (("--name", args.name), ("--out", args.out), ("--dry-run", args.dry_run),
                                          ("--no-publish", args.no_publish)) if value]
        if extra:
            parser.error(f"--list takes no {', '.join(extra)}")
        return args
    if not args.tables and args.sql is None:
        parser.error("one of --tables, --sql or --list is required")
    if args.sql is not None and not args.sql.strip():
        parser.error("--sql: the query is empty")
    if not args.name:
        parser.error("--name is required with --tables or --sql")
    if not args.name.replace("_", "").replace("-", "").isalnum() or args.name[0] in "-_":
        parser.error(f"--name {args.name!r}: use letters, digits, '_' and '-' (it becomes a file name)")
    if len(args.name) > MAX_NAME_CHARS:
        parser.error(f"--name is {len(args.name)} characters long; at most {MAX_NAME_CHARS} (it becomes a file "
                     "and data source name)")
    reserved = reserved_name_problem(args.name)
    if reserved:
        parser.error(f"--name {args.name!r}: {reserved}")
    return args


def pipeline_exports() -> dict[str, Export]:
    """The pipeline's own extracts by name (case-folded: Windows file names and Tableau ignore case)."""
    config = load_for_script(needed_for="cannot tell the pipeline's reserved extract names")
    return {export.name.casefold(): export for export in config.exports}


def dagster_assets(run_ctx: Any) -> list[str]:
    """The assets of the Dagster run this process serves (its Pipes context), or [] when run by hand."""
    if run_ctx.pipes is None:
        return []
    try:
        return list(run_ctx.pipes.asset_keys)
    except Exception:  # noqa: BLE001  (a Pipes context with no asset in scope, e.g. an op)
        return []


def rebuild_command(asset: str) -> str:
    """The command that rebuilds a production extract through Dagster, recorded in the project's home."""
    if os.name == "nt":
        return (f"set \"DAGSTER_HOME=%CD%\\dagster_home\" && .venv\\Scripts\\dagster asset materialize "
                f"-m orchestration.definitions --select {asset}")
    return f"DAGSTER_HOME=$PWD/dagster_home .venv/bin/dagster asset materialize -m orchestration.definitions --select {asset}"


def check_name(name: str, assets: Sequence[str], tables: Sequence[str] | None = None,
               target: Path | None = None) -> None:
    """An ad-hoc extract must never replace a production extract (its file or its published data source).

    `assets`: the Dagster assets this process runs for (dagster_assets); a reserved name is accepted
    only for its own export asset, and then only with the tables pipeline.yaml gives it.
    """
    exports = pipeline_exports()
    export = exports.get(name.casefold())
    if export is None and target is not None and _same_path(target.parent, exports_dir()):
        export = exports.get(target.stem.casefold())  # --out $DATA_DIR/exports/<reserved>.hyper
    if export is None:
        return
    if export.asset not in assets:
        raise BadDataError(
            f"--name {name!r}{f' (--out {target})' if target is not None and name.casefold() != export.name.casefold() else ''} "
            f"is reserved: it is the pipeline's extract {export.name!r} and its Tableau data source, built and "
            f"published only by the Dagster asset {export.asset!r}, inside a Dagster run of that asset "
            f"(pipeline.yaml exports). For an ad-hoc extract choose another name (e.g. {export.name}_adhoc). "
            f"To rebuild the production extract, materialize {export.asset} in the Dagster UI (Assets > "
            f"{export.asset} > Materialize), or from the repo root: {rebuild_command(export.asset)}"
        )
    if [t.casefold() for t in tables or []] != [t.casefold() for t in export.tables]:
        # Even inside its own asset's run, the extract is exactly what pipeline.yaml says.
        raise BadDataError(
            f"--name {export.name}: the extract is --tables {' '.join(export.tables)} "
            f"(pipeline.yaml exports, asset {export.asset!r}), not "
            f"{'--tables ' + ' '.join(tables) if tables else 'a --sql query'}"
        )


def _same_path(a: Path, b: Path) -> bool:
    try:
        return os.path.normcase(a.resolve()) == os.path.normcase(b.resolve())
    except OSError:
        return False


@dataclass(frozen=True)
class Target:
    """Where the extract goes: its folder (build files, backup/), its file, and its backups' name."""

    folder: Path
    hyper_path: Path
    backup_name: str
    own_file: bool  # --out ends in .hyper: an existing file there is backed up before it is replaced


def output_target(out: Path | None, name: str) -> Target:
    """--out as contract section 6 reads it: a folder (existing, or not ending in .hyper) or the extract's file."""
    if out is None:
        folder = exports_dir()
        return Target(folder, folder / f"{name}.hyper", name, own_file=False)
    path = Path(os.path.abspath(out.expanduser()))
    if path.suffix.lower() == ".hyper" and not path.is_dir():
        if not path.parent.is_dir():
            raise ConfigurationError(
                f"--out {out}: the folder {path.parent} does not exist; create it first (a path ending in .hyper "
                "is the extract's own file), or give a folder"
            )
        return Target(path.parent, path, path.stem, own_file=True)
    return Target(path, path / f"{name}.hyper", name, own_file=False)


def business_timezone() -> str:
    try:
        return load_pipeline_config().timezone
    except ConfigError:
        return DEFAULT_TIMEZONE


def _resolve_sources(con, tables: Sequence[str] | None, query: str | None) -> list[TableRef | QuerySource]:
    if query is not None:
        return [validate_query(con, query)]
    return list(resolve_tables(con, tables or []))


def _source_name(source: TableRef | QuerySource) -> str:
    return source.name


def build_extract(
    warehouse: Path, tables: Sequence[str] | None, name: str, out_dir: Path, lock_timeout: float,
    log: logging.Logger, timezone: str = DEFAULT_TIMEZONE, query: str | None = None,
    progress: Progress | None = None, target: Path | None = None,
    keep_previous: Callable[[Path], None] | None = None,
) -> BuildResult:
    """Warehouse tables or a query -> Parquet (DuckDB) -> out_dir/{name}.hyper (or `target`), replaced in
    one step; `keep_previous(target)` runs first when a file is already there."""
    progress = progress or Progress(None, enabled=False)
    con = connect_read_only(warehouse, lock_timeout, log)
    work_dir: Path | None = None
    try:
        # Validate before anything is created: a wrong name or query leaves no folder behind.
        sources = _resolve_sources(con, tables, query)
        prepare_session(con, timezone)
        work_dir = _make_work_dir(out_dir, name)
        exported = []
        columns: dict[str, list[tuple[str, str]]] = {}
        for i, source in enumerate(sources):
            label = f"reading {'the query' if isinstance(source, QuerySource) else source.name} from DuckDB"
            with progress.stage(label, detail=lambda: _percent(con)) as done:
                item = export_parquet(con, source, work_dir / f"{i}.parquet")
                done(f"{item.rows:,} rows")
            exported.append(item)
            columns[item.table.name] = [(c, item.casts[c].split(" -> ")[1] if c in item.casts else t)
                                        for c, t in describe(con, source.sql)]
    except BaseException as exc:
        if work_dir is not None:
            shutil.rmtree(work_dir, ignore_errors=True)
        full = disk_full_error(work_dir or out_dir, exc) if isinstance(exc, Exception) else None
        if full is not None:  # DuckDB says IOException; the operator needs "disk full" and the free space
            raise full from None
        raise
    finally:
        con.close()  # release the warehouse before the (slower) Hyper load
    try:
        staged = work_dir / f"{name}.hyper"
        with progress.stage(f"loading {sum(e.rows for e in exported):,} rows into Hyper") as done:
            loaded = build_hyper(staged, {e.table.name: e.parquet_path for e in exported}, work_dir / "hyper_logs")
            done(f"{staged.stat().st_size:,} bytes")
        for item in exported:
            if loaded[item.table.name] != item.rows:
                raise BadDataError(
                    f"{item.table.name}: Hyper loaded {loaded[item.table.name]} rows, DuckDB exported {item.rows}"
                )
        target = target or out_dir / f"{name}.hyper"
        if keep_previous is not None and target.exists():
            keep_previous(target)
        replace(staged, target)  # Windows: Tableau Desktop may hold the old extract open
        return BuildResult(
            hyper_path=target,
            rows={e.table.name: e.rows for e in exported},
            casts={e.table.name: e.casts for e in exported if e.casts},
            columns=columns,
        )
    except Exception as exc:
        # Hyper says "growing the database file failed" for a full disk, when creating the file or
        # (inside the BadDataError of a failed load) when writing a data block: both are 74, not 65.
        full = disk_full_error(staged, exc)
        if full is not None:
            raise full from None
        raise
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def _make_work_dir(out_dir: Path, name: str) -> Path:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        # The work dir sits beside the target so the final os.replace never crosses file systems; its
        # name carries this process's identity, so a killed run's folder is removed by the next run.
        work_dir = out_dir / temp_name(f"{BUILD_DIR_PREFIX.lstrip('.')}{name}", "")
        work_dir.mkdir()
        return work_dir
    except OSError as exc:
        raise io_error(out_dir, exc) from None


def remove_leftovers(out_dir: Path, log: logging.Logger) -> None:
    """Build folders and partial backups that killed exports left (their process is gone)."""
    removed = remove_stale(out_dir, [BUILD_DIR_PREFIX]) + remove_stale(out_dir / "backup", ["."])
    if removed:
        log.info(f"removed {len(removed)} build folder(s)/partial file(s) left by an interrupted export: "
                 + ", ".join(path.name for path in removed))


def _percent(con) -> str:
    done = con.query_progress()
    return f"{done:.0f}%" if done is not None and done >= 0 else ""


def _publish(result: BuildResult, name: str, log: logging.Logger, handlers: list[logging.Handler]) -> str | None:
    settings = tableau_settings()
    if settings is None:
        log.info("Tableau publishing skipped: TABLEAU_SERVER_URL, TABLEAU_SITE_ID, TABLEAU_PAT_NAME, "
                 "TABLEAU_PAT_SECRET and TABLEAU_PROJECT are not set")
        return None
    guard_client_logs(settings.pat_secret, *handlers)
    lock_timeout = float(env(PUBLISH_LOCK_TIMEOUT_ENV_VAR) or DEFAULT_PUBLISH_LOCK_TIMEOUT_SECONDS)
    # A PAT allows one session at a time: publishes from parallel runs queue on this lock.
    with exclusive_lock(result.hyper_path.parent / PUBLISH_LOCK_NAME, lock_timeout, log):
        published = publish_extract(result.hyper_path, name, settings, log)
    log.info(f"published {name} to Tableau project {settings.project!r} (content URL {published.content_url})")
    return published.content_url


def list_warehouse(warehouse: Path, lock_timeout: float, log: logging.Logger, out: TextIO) -> dict[str, Any]:
    """--list: every table an analyst may export (not the internal bookkeeping), rows, columns; the reserved names."""
    con = connect_read_only(warehouse, lock_timeout, log)
    try:
        tables = list_tables(con)
    finally:
        con.close()
    out.write(f"{warehouse}: {len(tables)} tables\n")
    width = max((len(t.display) for t in tables), default=0)
    for table in tables:
        out.write(f"\n{table.display.ljust(width)}  {table.rows:>12,} rows\n")
        out.write("".join(f"    {column}  {data_type}\n" for column, data_type in table.columns))
    reserved = sorted(pipeline_exports().values(), key=lambda e: e.name)
    if reserved:
        out.write("\nreserved extract names (built by Dagster): "
                  + ", ".join(f"{e.name} ({e.asset})" for e in reserved) + "\n")
    out.flush()
    return {"tables": {table.display: table.rows for table in tables}}


def dry_run(args: argparse.Namespace, where: Target, log: logging.Logger, out: TextIO) -> dict[str, Any]:
    """--dry-run: what would be built, from the warehouse as it is now; nothing is written."""
    con = connect_read_only(duckdb_path(), args.lock_timeout, log)
    try:
        sources = _resolve_sources(con, args.tables, args.sql)
        prepare_session(con, business_timezone())
        plan = []
        for source in sources:
            columns = describe(con, source.sql)
            _, casts = plan_casts(con, source)
            plan.append((source, count_rows(con, source), columns, casts))
    finally:
        con.close()
    target = where.hyper_path
    hyper_names = hyper_table_names([_source_name(s) for s in sources])
    out.write(f"dry run: would build {target} (nothing is written)\n")
    for source, rows, columns, casts in plan:
        what = f"query: {source.query}" if isinstance(source, QuerySource) else f"table {source.schema}.{source.name}"
        out.write(f'  "Extract"."{hyper_names[_source_name(source)]}" <- {what}\n')
        out.write(f"    {rows:,} rows, {len(columns)} columns\n")
        for column, data_type in columns:
            cast = f"  (as {casts[column].split(' -> ')[1]} for Tableau)" if column in casts else ""
            out.write(f"      {column}  {data_type}{cast}\n")
    settings = None if args.no_publish else tableau_settings()
    if args.no_publish:
        out.write("  publish: no (--no-publish)\n")
    elif settings is None:
        out.write("  publish: no (TABLEAU_* not set)\n")
    else:
        out.write(f"  publish: would overwrite data source {args.name!r} in Tableau project {settings.project!r}\n")
    out.flush()
    summary: dict[str, Any] = {
        "name": args.name,
        "tables": {_source_name(source): rows for source, rows, _, _ in plan},
        "hyper_path": str(target),
        "published": False,
        "dry_run": True,
        "columns": {_source_name(source): dict(columns) for source, _, columns, _ in plan},
    }
    if args.sql is not None:
        summary["sql"] = plan[0][0].query
    return summary


def run(argv: Sequence[str] | None, run_ctx: Any) -> dict[str, Any]:
    log: logging.Logger = run_ctx.log
    args = parse_args(argv)
    if args.list:
        return list_warehouse(duckdb_path(), args.lock_timeout, log, sys.stdout)
    where = output_target(args.out, args.name)
    check_name(args.name, dagster_assets(run_ctx), args.tables, where.hyper_path)
    out_dir = where.folder
    if args.dry_run:
        return dry_run(args, where, log, sys.stdout)
    progress = Progress.for_terminal(run_ctx.under_dagster)
    remove_leftovers(out_dir, log)

    def keep_previous(existing: Path) -> None:  # --out FILE.hyper: never silently lose what was there
        kept = backup_extract(existing, out_dir / "backup", where.backup_name)
        log.info(f"the existing {existing.name} is kept as {kept}")

    result = build_extract(duckdb_path(), args.tables, args.name, out_dir, args.lock_timeout, log,
                           business_timezone(), query=args.sql, progress=progress, target=where.hyper_path,
                           keep_previous=keep_previous if where.own_file else None)
    for table, casts in result.casts.items():
        log.info(f"{table}: cast for Hyper/Tableau: {casts}")
    size = result.hyper_path.stat().st_size
    log.info(f"built {result.hyper_path} ({size} bytes): {result.rows}")
    if not where.own_file:
        backup = backup_extract(result.hyper_path, out_dir / "backup", args.name)
        log.info(f"backup {backup.name} kept")
    pruned = prune_backups(out_dir / "backup", where.backup_name, log=log)
    if pruned:
        log.info(f"{len(pruned)} older backup(s) of {where.backup_name} deleted")
    content_url = None
    if args.no_publish:
        log.info("Tableau publishing skipped: --no-publish")
    else:
        with progress.stage(f"publishing {args.name} to Tableau Server") as done:
            content_url = _publish(result, args.name, log, list(log.handlers))
            done("published" if content_url else "skipped (not configured)")
    metadata: dict[str, Any] = {f"rows_{table}": rows for table, rows in result.rows.items()}
    metadata.update(hyper_size_bytes=size, published=content_url is not None, hyper_path=str(result.hyper_path))
    metadata["dagster/column_schema"] = column_schema_metadata(result.columns)
    if content_url is not None:
        metadata["tableau_content_url"] = content_url
    run_ctx.report_materialization(metadata)
    summary: dict[str, Any] = {"name": args.name, "tables": result.rows, "hyper_path": str(result.hyper_path),
                               "published": content_url is not None}
    if args.sql is not None:
        summary["sql"] = args.sql.strip()
    return summary


def column_schema_metadata(columns: dict[str, list[tuple[str, str]]]) -> dict[str, Any]:
    """The extract's columns and types for the asset's Columns tab (Pipes `table_schema` metadata); the
    columns of a several-table extract are named `table.column`."""
    qualify = len(columns) > 1
    return {"type": "table_schema", "raw_value": {"columns": [
        {"name": f"{table}.{column}" if qualify else column, "type": data_type}
        for table, table_columns in columns.items() for column, data_type in table_columns
    ]}}


def main(argv: Sequence[str] | None = None) -> int:
    with script_run(SCRIPT_NAME) as run_ctx:
        try:
            summary = run(argv, run_ctx)
        except (ConfigError, ValueError) as exc:
            raise ConfigurationError(str(exc)) from None
        print_summary(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
