"""Restore the DuckDB warehouse from one of its backups ($DATA_DIR/warehouse/backup/<stem>_<stamp>/).

    python scripts/restore_warehouse.py                 # the newest backup -> the warehouse (DUCKDB_PATH)
    python scripts/restore_warehouse.py --list          # the backups there are, newest last
    python scripts/restore_warehouse.py --backup data\\warehouse\\backup\\analytics_20261207_071912 --to C:\\tmp\\check.duckdb

The new file is built beside the target and swapped in only when complete, so a failed restore
leaves the old warehouse as it was. Stop Dagster (or pause its schedules) first: DuckDB cannot
replace a warehouse another process holds open. Exit codes (contract section 8): 0 restored,
78 no such backup or bad arguments, 74 the files could not be read or written, 75 the warehouse is
held by another process (try again when it is free).
"""

from __future__ import annotations

import sys
from pathlib import Path

from orchestration.maintenance.warehouse_backup import backup_dir, restore_warehouse, stamped_backups
from pipeline_common.resource_limits import duckdb_settings, lower_current_process
from pipeline_common.script_support import ArgumentParser
from pipeline_common.settings import duckdb_path
from pipeline_common.warehouse_lock import describe_lock, is_lock_error

EXIT_IO, EXIT_TRANSIENT, EXIT_CONFIG = 74, 75, 78


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backup", type=Path, help="a backup folder (default: the newest in the backup folder)")
    parser.add_argument("--to", type=Path, help="the DuckDB file to write (default: the warehouse, DUCKDB_PATH)")
    parser.add_argument("--list", action="store_true", help="list the backups and stop")
    args = parser.parse_args(argv)
    target = args.to or duckdb_path()
    folders = [p for p in stamped_backups(backup_dir(), duckdb_path().stem) if p.is_dir()]
    if args.list:
        for folder in folders:
            print(folder)
        return 0
    backup = args.backup or (folders[-1] if folders else None)
    if backup is None:
        print(f"no backup in {backup_dir()}", file=sys.stderr)
        return EXIT_CONFIG
    lower_current_process()
    try:
        restore_warehouse(backup, target, settings=duckdb_settings("backup"))
    except FileNotFoundError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_CONFIG
    except Exception as exc:  # noqa: BLE001 - DuckDB's and the OS's errors, each mapped to its exit code
        if is_lock_error(exc):
            print(describe_lock(target, exc), file=sys.stderr)
            return EXIT_TRANSIENT
        print(f"could not restore {backup} into {target}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_IO
    print(f"restored {backup} into {target}")
    return 0


if __name__ == "__main__":
    from pipeline_common.script_support import run_main  # listing the backups can fail too: 74, never a traceback

    raise SystemExit(run_main(main))
