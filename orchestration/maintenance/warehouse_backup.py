"""The `warehouse_backup` asset: incremental, compressed backups of the DuckDB warehouse, made under
the duckdb pool, and their restore.

A backup is a folder `$DATA_DIR/warehouse/backup/<stem>_<YYYYmmdd_HHMMSS>/`:

- `manifest.json`: every table's and view's DDL, and per table its partitions (the ISO weeks of its
  first DATE column, named by the week's Monday, `2026-11-30`; one partition for a table without a
  DATE column) with row count and fingerprint;
- `<schema>.<table>/<partition>.parquet`: the rows, as zstd-compressed Parquet written by DuckDB.

A partition whose fingerprint (row count and the sum of a hash of every row: order-free and
multiplicity-exact) equals the newest earlier backup's is not written again but **hard-linked**
from it: a daily backup costs the weeks that changed (in the daily flow, the one or two weeks the
day's files re-issue lines into), not the whole history, and pruning an old backup frees only what no newer backup shares. Where the file
system cannot hard-link, the file is copied (the backup stays whole, only bigger).

The backup is written to a hidden `.<name>.partial` folder and renamed when complete, so a visible
backup is always whole. `restore_warehouse` builds a new DuckDB file from a backup (tables from
their DDL, rows from the Parquet, then the views) next to the target and swaps it in.
"""


import datetime as dt
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from orchestration.schedules.selection import OPS_GROUP, WAREHOUSE_BACKUP_ASSET, export_asset_names
from orchestration.resources import DUCKDB_POOL
from pipeline_common.stamped_backups import STAMP_FORMAT, stamped_path
from pipeline_common.resource_limits import duckdb_settings, lower_current_process
from pipeline_common.config import PipelineConfig
from pipeline_common.files import prune, replace
from pipeline_common.settings import data_dir, duckdb_path

MANIFEST = "manifest.json"
FORMAT_VERSION = 2  # 2: weekly partitions (1: monthly; restored the same way, never linked from)
WHOLE_TABLE = "all"


def backup_dir() -> Path:
    return data_dir() / "warehouse" / "backup"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def stamped_backups(target_dir: Path, stem: str) -> list[Path]:
    """Backups of `stem` in `target_dir`, oldest first: folders (this format) and `.duckdb` copies (older)."""
    pattern = re.compile(rf"^{re.escape(stem)}_(\d{{8}}_\d{{6}})(\.duckdb)?$")
    if not target_dir.is_dir():
        return []
    found = []
    for path in target_dir.iterdir():
        match = pattern.match(path.name)
        if match and (path.is_dir() == (match.group(2) is None)):
            found.append((match.group(1), path))
    return [path for _, path in sorted(found)]


def backup_warehouse(
    source: Path, target_dir: Path, keep: int, now: dt.datetime | None = None,
    settings: dict[str, Any] | None = None,
) -> Path:
    """Back `source` up into `target_dir/<stem>_<YYYYmmdd_HHMMSS>/`; keep the newest `keep` backups."""
    if not source.is_file():
        raise FileNotFoundError(f"no warehouse at {source}: build it first (daily_sales_flow_job)")
    target_dir.mkdir(parents=True, exist_ok=True)
    final = stamped_path(target_dir, source.stem, "", now)
    partial = target_dir / f".{final.name}.partial"
    for leftover in target_dir.glob(".*.partial*"):  # a killed earlier backup; never a visible backup
        shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else prune([leftover])
    previous = _newest_manifest(target_dir, source.stem)
    try:
        partial.mkdir()
        manifest = _write_backup(source, partial, previous, settings)
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        replace(partial, final)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    prune_backups(target_dir, source.stem, keep)
    return final


def prune_backups(target_dir: Path, stem: str, keep: int) -> list[Path]:
    """Delete all but the newest `keep` backups (best effort: a held file stays for the next prune)."""
    doomed = stamped_backups(target_dir, stem)[:-keep] if keep > 0 else stamped_backups(target_dir, stem)
    deleted = []
    for path in doomed:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            if not path.exists():
                deleted.append(path)
        else:
            deleted += prune([path])[0]
    return deleted


def _newest_manifest(target_dir: Path, stem: str) -> tuple[Path, dict[str, Any]] | None:
    for path in reversed(stamped_backups(target_dir, stem)):
        manifest = path / MANIFEST
        if path.is_dir() and manifest.is_file():
            try:
                return path, json.loads(manifest.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
    return None


def _partition_column(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> str | None:
    rows = con.execute(
        "select column_name from duckdb_columns() where database_name = 'src' and schema_name = ? "
        "and table_name = ? and data_type = 'DATE' order by column_index limit 1", [schema, table]).fetchall()
    return rows[0][0] if rows else None


def _key_expr(column: str | None) -> str:
    if column is None:
        return _lit(WHOLE_TABLE)
    # the ISO week (Monday to Sunday), named by its Monday: a year is about 53 partitions per table, and a
    # day's files, which re-issue lines up to a week back, change at most two of them
    return f"coalesce(strftime(date_trunc('week', {_q(column)}), '%Y-%m-%d'), 'null')"


def _write_backup(
    source: Path, folder: Path, previous: tuple[Path, dict[str, Any]] | None, settings: dict[str, Any] | None
) -> dict[str, Any]:
    prev_dir, prev = previous if previous else (None, {})
    same_engine = prev.get("duckdb") == duckdb.__version__ and prev.get("format") == FORMAT_VERSION
    prev_tables = {t["name"]: t for t in prev.get("tables", [])} if same_engine else {}
    manifest: dict[str, Any] = {"format": FORMAT_VERSION, "duckdb": duckdb.__version__, "source": source.name,
                                "tables": [], "views": [], "bytes_written": 0, "bytes_linked": 0}
    with duckdb.connect(":memory:", config=settings or {}) as con:
        con.execute(f"ATTACH {_lit(str(source))} AS src (READ_ONLY)")
        tables = con.execute(
            "select schema_name, table_name, sql from duckdb_tables() where database_name = 'src' "
            "and not temporary order by schema_name, table_name").fetchall()
        for schema, table, ddl in tables:
            name = f"{schema}.{table}"
            column = _partition_column(con, schema, table)
            columns = [row[0] for row in con.execute(
                "select column_name from duckdb_columns() where database_name = 'src' and schema_name = ? "
                "and table_name = ? order by column_index", [schema, table]).fetchall()]
            relation = f"src.{_q(schema)}.{_q(table)}"
            key = _key_expr(column)
            row_hash = f"hash({', '.join(_q(c) for c in columns)})" if columns else "0"
            parts = con.execute(
                f"select {key} as k, count(*), cast(sum(cast({row_hash} as hugeint)) as varchar) "
                f"from {relation} group by k order by k").fetchall()
            earlier = prev_tables.get(name)
            reusable = {}
            if earlier and earlier.get("ddl") == ddl and earlier.get("partition_column") == column:
                reusable = {p["key"]: p for p in earlier["parts"]}
            table_dir = folder / name
            table_dir.mkdir()
            entry = {"name": name, "schema": schema, "table": table, "ddl": ddl, "partition_column": column,
                     "columns": columns, "parts": []}
            changed = []
            for k, rows, fingerprint in parts:
                part = {"key": k, "rows": rows, "fingerprint": fingerprint, "file": f"{name}/{k}.parquet"}
                entry["parts"].append(part)
                old = reusable.get(k)
                if old and old["rows"] == rows and old["fingerprint"] == fingerprint and prev_dir is not None \
                        and _link_or_copy(prev_dir / old["file"], folder / part["file"]):
                    manifest["bytes_linked"] += (folder / part["file"]).stat().st_size
                else:
                    changed.append(k)
            if changed:
                _export_partitions(con, relation, columns, key, changed, table_dir)
                manifest["bytes_written"] += sum((table_dir / f"{k}.parquet").stat().st_size for k in changed)
            manifest["tables"].append(entry)
        manifest["views"] = [
            {"schema": schema, "name": view, "sql": sql} for schema, view, sql in con.execute(
                "select schema_name, view_name, sql from duckdb_views() where database_name = 'src' "
                "and not internal and not temporary order by schema_name, view_name").fetchall()]
        manifest["schemas"] = [row[0] for row in con.execute(
            "select schema_name from duckdb_schemas() where database_name = 'src' and not internal "
            "order by 1").fetchall()]
    return manifest


def _export_partitions(con: duckdb.DuckDBPyConnection, relation: str, columns: list[str], key: str,
                       changed: list[str], table_dir: Path) -> None:
    """One scan of the table writes every changed partition (hive folders), then each is renamed."""
    hive = table_dir / ".hive"
    selected = ", ".join(_q(c) for c in columns)
    wanted = ", ".join(_lit(k) for k in changed)
    con.execute(
        f"COPY (select {selected}, {key} as __part from {relation} where {key} in ({wanted})) "
        f"TO {_lit(str(hive))} (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (__part), OVERWRITE_OR_IGNORE)")
    for k in changed:
        files = sorted((hive / f"__part={k}").glob("*.parquet"))
        if len(files) == 1:
            files[0].rename(table_dir / f"{k}.parquet")
        else:  # several files for one partition: merge them into one
            globbed = _lit(str(hive / f"__part={k}" / "*.parquet"))
            con.execute(f"COPY (select {selected} from read_parquet({globbed})) "
                        f"TO {_lit(str(table_dir / f'{k}.parquet'))} (FORMAT parquet, COMPRESSION zstd)")
    shutil.rmtree(hive, ignore_errors=True)


def _link_or_copy(source: Path, target: Path) -> bool:
    if not source.is_file():
        return False
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
    return True


# ---------------------------------------------------------------- restore

def restore_warehouse(backup: Path, target: Path, settings: dict[str, Any] | None = None) -> Path:
    """Build `target` (a DuckDB file) from `backup` (a backup folder); the old target is replaced only
    when the new one is complete. Returns `target`."""
    manifest_file = backup / MANIFEST
    if not manifest_file.is_file():
        raise FileNotFoundError(f"{backup} is not a warehouse backup (no {MANIFEST})")
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.parent / f".{target.name}.restore"
    for leftover in (partial, Path(f"{partial}.wal")):
        leftover.unlink(missing_ok=True)
    try:
        with duckdb.connect(str(partial), config=settings or {}) as con:
            for schema in manifest.get("schemas", []):
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {_q(schema)}")
            for table in manifest["tables"]:
                con.execute(table["ddl"])
                files = [backup / part["file"] for part in table["parts"]]
                if files:
                    listed = ", ".join(_lit(str(f)) for f in files)
                    relation = f"{_q(table['schema'])}.{_q(table['table'])}"
                    con.execute(f"INSERT INTO {relation} BY NAME SELECT * FROM read_parquet([{listed}])")
                    expected = sum(part["rows"] for part in table["parts"])
                    got = con.execute(f"select count(*) from {relation}").fetchone()[0]
                    if got != expected:
                        raise ValueError(f"backup {backup}: {table['name']} restored {got} rows, expected {expected}")
            for view in manifest.get("views", []):
                con.execute(f"SET schema = {_lit(view['schema'])}")
                con.execute(view["sql"])
            con.execute("CHECKPOINT")
        replace(partial, target)
        Path(f"{target}.wal").unlink(missing_ok=True)
    finally:
        partial.unlink(missing_ok=True)
        Path(f"{partial}.wal").unlink(missing_ok=True)
    return target


def backup_bytes(path: Path) -> int:
    """Disk used by one backup folder on its own (every file, linked or not)."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def disk_used(paths: list[Path]) -> int:
    """Disk used by several folders together: a hard-linked file counts once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for root in paths:
        for f in root.rglob("*"):
            if f.is_file():
                st = f.stat()
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_size
    return total


def build_backup_asset(config: PipelineConfig) -> dg.AssetsDefinition:
    keep = config.jobs.backups_kept

    @dg.asset(
        name=WAREHOUSE_BACKUP_ASSET,
        group_name=OPS_GROUP,
        deps=export_asset_names(config),
        pool=DUCKDB_POOL,
        kinds={"duckdb"},
        description=(f"Incremental, compressed backup of the warehouse in $DATA_DIR/warehouse/backup (newest {keep} "
                     "kept; unchanged weeks are hard-linked from the previous backup)."),
    )
    def warehouse_backup(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        lower_current_process(config)  # the resource limits: below normal priority (pipeline.yaml resource_limits.priority)
        try:
            path = backup_warehouse(duckdb_path(), backup_dir(), keep, settings=duckdb_settings("backup", config))
        except FileNotFoundError as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        context.log.info(f"warehouse backed up to {path}")
        return dg.MaterializeResult(
            metadata={"backup_path": str(path), "size_bytes": backup_bytes(path),
                      "bytes_written": manifest["bytes_written"], "bytes_linked": manifest["bytes_linked"],
                      "kept": keep}
        )

    return warehouse_backup


__all__ = ["STAMP_FORMAT", "backup_dir", "backup_warehouse", "restore_warehouse", "build_backup_asset"]
