"""The `warehouse_backup` asset: a consistent, timestamped copy of the DuckDB warehouse, made under
the duckdb pool.

DuckDB copies the database itself (`COPY FROM DATABASE` into a fresh file) rather than the file
being copied byte by byte, so the backup is a checkpointed, openable database even if the WAL
held recent changes. The pool (limit 1) keeps dbt and the exporters out while it runs.
"""

import datetime as dt
from pathlib import Path

import dagster as dg
import duckdb

from orchestration.schedules.selection import OPS_GROUP, WAREHOUSE_BACKUP_ASSET, export_asset_names
from orchestration.resources import DUCKDB_POOL
from pipeline_common.stamped_backups import prune_stamped, stamped_path
from pipeline_common.config import PipelineConfig
from pipeline_common.files import prune, replace
from pipeline_common.settings import data_dir, duckdb_path


def backup_dir() -> Path:
    return data_dir() / "warehouse" / "backup"


def backup_warehouse(source: Path, target_dir: Path, keep: int, now: dt.datetime | None = None) -> Path:
    """Copy `source` into `target_dir/<stem>_<YYYYmmdd_HHMMSS>.duckdb`; keep the newest `keep` copies."""
    if not source.is_file():
        raise FileNotFoundError(f"no warehouse at {source}: build it first (daily_sales_flow_job)")
    target_dir.mkdir(parents=True, exist_ok=True)
    final = stamped_path(target_dir, source.stem, ".duckdb", now)
    partial = target_dir / f".{final.name}.partial"
    prune(target_dir.glob(".*.partial*"))  # a killed earlier backup; never a visible backup
    try:
        _copy_database(source, partial)
        replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)
        Path(f"{partial}.wal").unlink(missing_ok=True)
    prune_stamped(target_dir, source.stem, ".duckdb", keep)  # one open in a DuckDB client waits
    return final


def _copy_database(source: Path, target: Path) -> None:
    with duckdb.connect(":memory:") as con:
        con.execute("ATTACH ? AS backup_source (READ_ONLY)", [str(source)])
        con.execute("ATTACH ? AS backup_target", [str(target)])
        con.execute("COPY FROM DATABASE backup_source TO backup_target")
        con.execute("DETACH backup_target")  # checkpoints and closes the new file before the rename


def build_backup_asset(config: PipelineConfig) -> dg.AssetsDefinition:
    keep = config.jobs.backups_kept

    @dg.asset(
        name=WAREHOUSE_BACKUP_ASSET,
        group_name=OPS_GROUP,
        deps=export_asset_names(config),
        pool=DUCKDB_POOL,
        kinds={"duckdb"},
        description=f"Timestamped copy of the warehouse in $DATA_DIR/warehouse/backup (newest {keep} kept).",
    )
    def warehouse_backup(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        try:
            path = backup_warehouse(duckdb_path(), backup_dir(), keep)
        except FileNotFoundError as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        context.log.info(f"warehouse backed up to {path}")
        return dg.MaterializeResult(
            metadata={"backup_path": str(path), "size_bytes": path.stat().st_size, "kept": keep}
        )

    return warehouse_backup
