"""Every dbt model's columns and their types on its materialization (the UI's Columns tab, complete).

The models' .yml files document some columns and declare no types, so the definitions alone would
show a few untyped columns. dagster-dbt's own `fetch_column_metadata` asks the warehouse while dbt
runs, which DuckDB's single-writer lock refuses. So the build's events are held until dbt has
exited, the warehouse is read once, read-only (information_schema.columns), and each model's
materialization carries `dagster/column_schema` with every column and its DuckDB type. Reading the
types never fails a build: if the warehouse cannot be read, the events go out as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import dagster as dg

from pipeline_common.settings import duckdb_path
from pipeline_common.warehouse_lock import connect_read_only

COLUMN_SCHEMA_KEY = "dagster/column_schema"
TABLE_NAME_KEY = "dagster/table_name"
READ_TIMEOUT_SECONDS = 10.0


def relation(table_name: str | None, fallback: str) -> tuple[str | None, str]:
    """(schema, table) of dagster-dbt's `dagster/table_name` (`db.schema.table`, maybe quoted)."""
    table_name = getattr(table_name, "value", table_name)  # a TextMetadataValue, or the raw string
    if not table_name:
        return None, fallback
    parts = [part.strip('"') for part in str(table_name).split(".")]
    return (parts[-2] if len(parts) >= 2 else None), parts[-1]


def warehouse_columns(log) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """{(schema, table) lower-cased: [(column, type), ...]} of the whole warehouse, in column order."""
    con = connect_read_only(duckdb_path(), READ_TIMEOUT_SECONDS, log)
    try:
        rows = con.execute(
            "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_catalog = current_database() ORDER BY table_schema, table_name, ordinal_position"
        ).fetchall()
    finally:
        con.close()
    found: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for schema, table, column, data_type in rows:
        found.setdefault((schema.lower(), table.lower()), []).append((column, data_type))
    return found


def with_column_schemas(context: dg.AssetExecutionContext, events: Iterable) -> Iterator:
    """The build's events, each model's Output with its column schema (when the warehouse can be read)."""
    events = list(events)
    if not any(isinstance(event, dg.Output) for event in events):  # nothing built (e.g. the file was locked)
        yield from events
        return
    try:
        columns = warehouse_columns(context.log)
    except Exception as exc:  # noqa: BLE001  (metadata only: the build's outcome stands)
        context.log.warning(f"column types not recorded this time: {exc}")
        columns = {}
    by_table: dict[str, list[list[tuple[str, str]]]] = {}
    for (_, table), cols in columns.items():
        by_table.setdefault(table, []).append(cols)
    for event in events:
        if isinstance(event, dg.Output) and columns:
            key = context.asset_key_for_output(event.output_name)
            spec = context.assets_def.specs_by_key.get(key)
            schema, table = relation((spec.metadata or {}).get(TABLE_NAME_KEY) if spec else None, key.path[-1])
            found = columns.get((schema.lower(), table.lower())) if schema else None
            if found is None and len(by_table.get(table.lower(), [])) == 1:
                found = by_table[table.lower()][0]
            if found:
                schema_value = dg.TableSchema(columns=[dg.TableColumn(name=c, type=t) for c, t in found])
                event = event.with_metadata({**(event.metadata or {}), COLUMN_SCHEMA_KEY: schema_value})
        yield event
