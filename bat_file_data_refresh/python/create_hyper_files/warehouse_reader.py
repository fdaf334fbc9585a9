"""Read warehouse tables out of DuckDB as Parquet that Hyper can load natively.

Validates table names
against the catalog before any SQL is built, and casts the few DuckDB types Hyper or
Tableau cannot take into the nearest type a Tableau user expects.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipeline_common.script_support import BadDataError

PARQUET_OPTIONS = "FORMAT parquet, COMPRESSION uncompressed, DICTIONARY_SIZE_LIMIT 1"
"""Temporary Parquet for Hyper: plain, uncompressed pages cost the least CPU to write (DuckDB) and
to read (Hyper); on 6M rows zstd cost ~1.4 s more CPU in total. The file is deleted right after."""

HYPER_MAX_DECIMAL_PRECISION = 18
BIGINT_MAX = 2**63 - 1

# Types Hyper reads from DuckDB's Parquet as the type a Tableau user expects.
_NATIVE_TYPES = {"BOOLEAN", "SMALLINT", "INTEGER", "BIGINT", "DOUBLE", "VARCHAR", "DATE", "TIMESTAMP", "TIME"}
# Types with a lossless widening Hyper reads.
_WIDENED_TYPES = {
    "TINYINT": "SMALLINT",
    "UTINYINT": "SMALLINT",
    "USMALLINT": "INTEGER",
    "UINTEGER": "BIGINT",
    "FLOAT": "DOUBLE",
    "TIMESTAMP_S": "TIMESTAMP",
    "TIMESTAMP_MS": "TIMESTAMP",
    "TIMESTAMP_NS": "TIMESTAMP",
    # Wall-clock time in the session time zone (the pipeline's business time zone).
    "TIMESTAMP WITH TIME ZONE": "TIMESTAMP",
}
# Integers wider than BIGINT (e.g. DuckDB's sum() of INTEGER is HUGEINT): BIGINT when the data fits.
_WIDE_INTEGER_TYPES = {"HUGEINT", "UHUGEINT", "UBIGINT"}
_DECIMAL_RE = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$")


@dataclass(frozen=True)
class TableRef:
    """A validated warehouse table: its schema, its name, and the name asked for."""

    schema: str
    name: str

    @property
    def sql(self) -> str:
        return f"{quote_identifier(self.schema)}.{quote_identifier(self.name)}"


@dataclass(frozen=True)
class ExportedTable:
    table: TableRef
    parquet_path: Path
    rows: int
    casts: dict[str, str]


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _catalog(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    return con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_catalog = current_database() ORDER BY table_schema, table_name"
    ).fetchall()


def resolve_tables(con: duckdb.DuckDBPyConnection, requested: Sequence[str]) -> list[TableRef]:
    """Match each requested name (`table` or `schema.table`) to exactly one warehouse table."""
    catalog = _catalog(con)
    resolved: list[TableRef] = []
    problems: list[str] = []
    for wanted in requested:
        schema, _, name = wanted.rpartition(".")
        matches = [
            TableRef(s, t) for s, t in catalog
            if t.lower() == name.lower() and (not schema or s.lower() == schema.lower())
        ]
        if len(matches) > 1:
            exact = [m for m in matches if m.name == name and m.schema == "main"] or [
                m for m in matches if m.name == name
            ]
            matches = exact if len(exact) == 1 else matches
        if len(matches) == 1:
            resolved.append(matches[0])
        elif not matches:
            known = sorted({t for _, t in catalog} | {f"{s}.{t}" for s, t in catalog})
            close = difflib.get_close_matches(wanted, known, n=5, cutoff=0.6)
            hint = f"; did you mean: {', '.join(close)}" if close else ""
            problems.append(f"unknown table {wanted!r}{hint}")
        else:
            options = ", ".join(f"{m.schema}.{m.name}" for m in matches)
            problems.append(f"table name {wanted!r} is ambiguous; qualify it with its schema: {options}")
    names = [r.name for r in resolved]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.append(f"table(s) listed twice: {', '.join(duplicates)}")
    if problems:
        raise BadDataError(f"{'; '.join(problems)} (warehouse has {len(catalog)} tables)")
    return resolved


def _columns(con: duckdb.DuckDBPyConnection, table: TableRef) -> list[tuple[str, str]]:
    return con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ? "
        "ORDER BY ordinal_position",
        [table.schema, table.name],
    ).fetchall()


def _needs_range_check(data_type: str) -> bool:
    match = _DECIMAL_RE.match(data_type)
    wide_decimal = bool(match) and int(match.group(1)) > HYPER_MAX_DECIMAL_PRECISION
    return wide_decimal or data_type in _WIDE_INTEGER_TYPES


def _max_abs(con: duckdb.DuckDBPyConnection, table: TableRef, columns: list[str]) -> dict[str, float]:
    if not columns:
        return {}
    exprs = ", ".join(f"max(abs({quote_identifier(c)}::DOUBLE))" for c in columns)
    row = con.execute(f"SELECT {exprs} FROM {table.sql}").fetchone() or ()
    return {c: float(v or 0.0) for c, v in zip(columns, row, strict=True)}


def target_type(data_type: str, max_abs: float | None = None) -> str | None:
    """The type to cast a DuckDB column to before Hyper reads it, or None when it loads as is."""
    if data_type in _NATIVE_TYPES:
        return None
    if data_type in _WIDENED_TYPES:
        return _WIDENED_TYPES[data_type]
    if data_type in _WIDE_INTEGER_TYPES:
        return "BIGINT" if (max_abs or 0.0) <= BIGINT_MAX else "DOUBLE"
    match = _DECIMAL_RE.match(data_type)
    if match:
        precision, scale = int(match.group(1)), int(match.group(2))
        if precision <= HYPER_MAX_DECIMAL_PRECISION:
            return None
        # Keep money as NUMERIC with its scale while the values fit 18 digits; else DOUBLE.
        integer_digits = HYPER_MAX_DECIMAL_PRECISION - scale
        if integer_digits > 0 and (max_abs or 0.0) < 10.0**integer_digits:
            return f"DECIMAL({HYPER_MAX_DECIMAL_PRECISION},{scale})"
        return "DOUBLE"
    # UUID, JSON, ENUM, INTERVAL, BIT, BLOB, nested types and anything newer: text.
    return "VARCHAR"


def plan_casts(con: duckdb.DuckDBPyConnection, table: TableRef) -> tuple[list[str], dict[str, str]]:
    """SELECT expressions for the table's columns and the casts applied (column -> 'FROM -> TO')."""
    columns = _columns(con, table)
    ranges = _max_abs(con, table, [c for c, t in columns if _needs_range_check(t)])
    exprs: list[str] = []
    casts: dict[str, str] = {}
    for column, data_type in columns:
        target = target_type(data_type, ranges.get(column))
        quoted = quote_identifier(column)
        if target is None:
            exprs.append(quoted)
        else:
            exprs.append(f"CAST({quoted} AS {target}) AS {quoted}")
            casts[column] = f"{data_type} -> {target}"
    return exprs, casts


def export_parquet(con: duckdb.DuckDBPyConnection, table: TableRef, target: Path) -> ExportedTable:
    """COPY one table (with casts where needed) to a Parquet file; DuckDB does the work vectorised."""
    exprs, casts = plan_casts(con, table)
    source = f"(SELECT {', '.join(exprs)} FROM {table.sql})" if casts else table.sql
    try:
        result = con.execute(f"COPY {source} TO {quote_literal(target.as_posix())} ({PARQUET_OPTIONS})").fetchone()
    except duckdb.ConversionException as exc:
        raise BadDataError(f"table {table.schema}.{table.name}: a value does not fit its export type: {exc}") from None
    rows = int(result[0]) if result else 0
    return ExportedTable(table=table, parquet_path=target, rows=rows, casts=casts)


def prepare_session(con: duckdb.DuckDBPyConnection, timezone: str) -> None:
    """Session settings for the export.

    TIMESTAMPTZ columns become wall-clock timestamps in `timezone` (the business time zone). Row
    order means nothing in an extract, so DuckDB may write the Parquet in parallel, unordered.
    """
    con.execute(f"SET TimeZone = {quote_literal(timezone)}")
    con.execute("SET preserve_insertion_order = false")
