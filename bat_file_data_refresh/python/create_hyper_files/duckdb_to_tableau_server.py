"""Export warehouse tables to a Tableau .hyper extract and publish it to Tableau Server.

DuckDB writes each table to Parquet, Hyper loads the Parquet natively, the extract replaces
$DATA_DIR/exports/{NAME}.hyper in one step, a timestamped backup is kept, and the extract is
published (Overwrite) when Tableau is configured. Contract section 6.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

from create_hyper_files.backups import backup_extract, prune_backups  # noqa: E402
from create_hyper_files.hyper_builder import build_hyper  # noqa: E402
from create_hyper_files.publish_lock import exclusive_lock  # noqa: E402
from create_hyper_files.tableau_publisher import (  # noqa: E402
    guard_client_logs,
    publish_extract,
    tableau_settings,
)
from create_hyper_files.warehouse_reader import (  # noqa: E402
    export_parquet,
    prepare_session,
    resolve_tables,
)
from pipeline_common.config import ConfigError, load_pipeline_config  # noqa: E402
from pipeline_common.script_support import (  # noqa: E402
    BadDataError,
    ConfigurationError,
    print_summary,
    script_run,
)
from pipeline_common.files import replace, reserved_name_problem  # noqa: E402
from pipeline_common.settings import duckdb_path, env, exports_dir  # noqa: E402
from pipeline_common.warehouse_lock import connect_read_only  # noqa: E402

SCRIPT_NAME = "duckdb_to_tableau_server"
LOCK_TIMEOUT_ENV_VAR = "EXPORT_LOCK_TIMEOUT_SECONDS"
DEFAULT_LOCK_TIMEOUT_SECONDS = 120.0
PUBLISH_LOCK_TIMEOUT_ENV_VAR = "EXPORT_PUBLISH_LOCK_TIMEOUT_SECONDS"
DEFAULT_PUBLISH_LOCK_TIMEOUT_SECONDS = 1800.0
PUBLISH_LOCK_NAME = ".publish.lock"
DEFAULT_TIMEZONE = "Europe/London"

EXAMPLES = """\
examples:
  # the executive extract, built and published (when TABLEAU_* are set)
  python bat_file_data_refresh/python/create_hyper_files/duckdb_to_tableau_server.py \\
      --tables qi_executive_daily_sales --name executive_daily_sales

  # any mart, ad hoc, built locally only: $DATA_DIR/exports/my_check.hyper
  python bat_file_data_refresh/python/create_hyper_files/duckdb_to_tableau_server.py \\
      --tables int_orders_summary_daily --name my_check --no-publish

  # several tables in one extract: "Extract"."<table>" each
  python bat_file_data_refresh/python/create_hyper_files/duckdb_to_tableau_server.py \\
      --tables qi_executive_daily_sales int_orders_summary_daily --name sales_pack

exit codes: 0 ok, 65 bad input (unknown table, a value that does not fit), 75 transient
(warehouse locked, Tableau unreachable; retry later), 78 configuration (Tableau project,
sign-in, half-set TABLEAU_* variables).
"""


@dataclass(frozen=True)
class BuildResult:
    hyper_path: Path
    rows: dict[str, int]
    casts: dict[str, dict[str, str]]


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        raise BadDataError(f"invalid arguments: {message}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = _ArgumentParser(
        description=(
            "Export DuckDB warehouse tables (DUCKDB_PATH, opened read-only) to\n"
            "$DATA_DIR/exports/NAME.hyper, keep a backup in $DATA_DIR/exports/backup/, and\n"
            "publish it to Tableau Server (Overwrite) when TABLEAU_SERVER_URL, TABLEAU_SITE_ID,\n"
            "TABLEAU_PAT_NAME, TABLEAU_PAT_SECRET and TABLEAU_PROJECT are set."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--tables", nargs="+", required=True, metavar="T",
                        help="warehouse tables or views (`name` or `schema.name`)")
    parser.add_argument("--name", required=True,
                        help="extract and data source name (letters, digits, _ and -)")
    parser.add_argument("--no-publish", action="store_true", help="build and back up only")
    parser.add_argument(
        "--lock-timeout", type=float, metavar="SECONDS",
        default=float(env(LOCK_TIMEOUT_ENV_VAR) or DEFAULT_LOCK_TIMEOUT_SECONDS),
        help=f"how long to wait while another process locks the warehouse "
             f"(env {LOCK_TIMEOUT_ENV_VAR}; default {DEFAULT_LOCK_TIMEOUT_SECONDS:.0f})",
    )
    args = parser.parse_args(argv)
    if not args.name.replace("_", "").replace("-", "").isalnum() or args.name[0] in "-_":
        raise BadDataError(f"--name {args.name!r}: use letters, digits, '_' and '-' (it becomes a file name)")
    reserved = reserved_name_problem(args.name)
    if reserved:
        raise ConfigurationError(f"--name {args.name!r}: {reserved}")
    return args


def business_timezone() -> str:
    try:
        return load_pipeline_config().timezone
    except ConfigError:
        return DEFAULT_TIMEZONE


def build_extract(
    warehouse: Path, tables: Sequence[str], name: str, out_dir: Path, lock_timeout: float,
    log: logging.Logger, timezone: str = DEFAULT_TIMEZONE,
) -> BuildResult:
    """Warehouse tables -> Parquet (DuckDB) -> out_dir/{name}.hyper (Hyper), replaced in one step."""
    out_dir.mkdir(parents=True, exist_ok=True)
    # The work dir sits beside the target so the final os.replace never crosses file systems.
    work_dir = Path(tempfile.mkdtemp(prefix=f".build-{name}-", dir=out_dir))
    try:
        con = connect_read_only(warehouse, lock_timeout, log)
        try:
            refs = resolve_tables(con, tables)
            prepare_session(con, timezone)
            exported = [export_parquet(con, ref, work_dir / f"{i}.parquet") for i, ref in enumerate(refs)]
        finally:
            con.close()  # release the warehouse before the (slower) Hyper load
        staged = work_dir / f"{name}.hyper"
        loaded = build_hyper(staged, {e.table.name: e.parquet_path for e in exported}, work_dir / "hyper_logs")
        for item in exported:
            if loaded[item.table.name] != item.rows:
                raise BadDataError(
                    f"{item.table.name}: Hyper loaded {loaded[item.table.name]} rows, DuckDB exported {item.rows}"
                )
        target = out_dir / f"{name}.hyper"
        replace(staged, target)  # Windows: Tableau Desktop may hold the old extract open
        return BuildResult(
            hyper_path=target,
            rows={e.table.name: e.rows for e in exported},
            casts={e.table.name: e.casts for e in exported if e.casts},
        )
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


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


def run(argv: Sequence[str] | None, run_ctx: Any) -> dict[str, Any]:
    log: logging.Logger = run_ctx.log
    args = parse_args(argv)
    out_dir = exports_dir()
    result = build_extract(duckdb_path(), args.tables, args.name, out_dir, args.lock_timeout, log,
                           business_timezone())
    for table, casts in result.casts.items():
        log.info(f"{table}: cast for Hyper/Tableau: {casts}")
    size = result.hyper_path.stat().st_size
    log.info(f"built {result.hyper_path} ({size} bytes): {result.rows}")
    backup = backup_extract(result.hyper_path, out_dir / "backup", args.name)
    pruned = prune_backups(out_dir / "backup", args.name, log=log)
    log.info(f"backup {backup.name} kept; {len(pruned)} older backup(s) deleted")
    content_url = None
    if args.no_publish:
        log.info("Tableau publishing skipped: --no-publish")
    else:
        content_url = _publish(result, args.name, log, list(log.handlers))
    metadata: dict[str, Any] = {f"rows_{table}": rows for table, rows in result.rows.items()}
    metadata.update(hyper_size_bytes=size, published=content_url is not None, hyper_path=str(result.hyper_path))
    if content_url is not None:
        metadata["tableau_content_url"] = content_url
    run_ctx.report_materialization(metadata)
    return {"name": args.name, "tables": result.rows, "hyper_path": str(result.hyper_path),
            "published": content_url is not None}


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
