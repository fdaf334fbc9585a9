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
# Hyper's calendar, measured by loading DuckDB's Parquet into Hyper (tableauhyperapi 0.0.26963):
# dates and timestamps from 1 January 4713 BC, dates up to 31 December 294276 (DuckDB's timestamps
# end before that). 'infinity' and '-infinity' dates, and '-infinity' timestamps, do not load.
HYPER_FIRST_DAY = "4713-01-01 (BC)"
HYPER_LAST_DAY = "294276-12-31"
HYPER_CALENDAR = "1 January 4713 BC to 31 December 294276"
_DATE_TYPES = {"DATE"}
_TIMESTAMP_TYPES = {"TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "TIMESTAMP WITH TIME ZONE"}
# Integers wider than BIGINT (e.g. DuckDB's sum() of INTEGER is HUGEINT): BIGINT when the data fits.
_WIDE_INTEGER_TYPES = {"HUGEINT", "UHUGEINT", "UBIGINT"}
_DECIMAL_RE = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$")

MAX_TABLES_NAMED = 40
"""An unknown table with no near miss: up to this many warehouse tables are named in the error."""
_LINE_RE = re.compile(r"LINE (\d+):")

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
    table: TableRef | QuerySource
    parquet_path: Path
    rows: int
    casts: dict[str, str]


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# The incremental models' bookkeeping (dbt/macros/incremental.sql: _warehouse_files, _warehouse_changes,
# _warehouse_state): the pipeline's own tables, not data. `--list` does not show them, `--tables` refuses them.
INTERNAL_TABLE_PREFIX = "_warehouse_"


def is_internal(name: str) -> bool:
    return name.lower().startswith(INTERNAL_TABLE_PREFIX)


def _catalog(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """The tables and views an analyst may export (the internal bookkeeping tables left out)."""
    return [(schema, name) for schema, name in con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_catalog = current_database() ORDER BY table_schema, table_name"
    ).fetchall() if not is_internal(name)]


def display_name(schema: str, name: str, catalog: Sequence[tuple[str, str]]) -> str:
    """How a person types the table: its bare name when that is unique, else schema.name."""
    same_name = [s for s, t in catalog if t.lower() == name.lower()]
    return name if len(same_name) == 1 else f"{schema}.{name}"


def nearest_tables(wanted: str, catalog: Sequence[tuple[str, str]], n: int = 5) -> list[str]:
    """The closest table names, each once, spelt as they can be typed back (`name` or `schema.name`).

    A bare name that exists in one schema is offered bare; one in several schemas, qualified.
    """
    spellings: dict[str, list[str]] = {}
    if "." in wanted:
        for schema, name in catalog:
            spellings[f"{schema}.{name}".lower()] = [f"{schema}.{name}"]
    else:
        by_name: dict[str, list[tuple[str, str]]] = {}
        for schema, name in catalog:
            by_name.setdefault(name.lower(), []).append((schema, name))
        for key, tables in by_name.items():
            spellings[key] = [tables[0][1]] if len(tables) == 1 else [f"{s}.{t}" for s, t in tables]
    close = difflib.get_close_matches(wanted.lower(), list(spellings), n=n, cutoff=0.6)
    return list(dict.fromkeys(name for key in close for name in spellings[key]))


def resolve_tables(con: duckdb.DuckDBPyConnection, requested: Sequence[str]) -> list[TableRef]:
    """Match each requested name (`table` or `schema.table`) to exactly one warehouse table."""
    catalog = _catalog(con)
    resolved: list[TableRef] = []
    problems: list[str] = []
    for wanted in requested:
        schema, _, name = wanted.rpartition(".")
        if is_internal(name):
            problems.append(f"{wanted!r} is one of the pipeline's internal bookkeeping tables ({INTERNAL_TABLE_PREFIX}*), "
                            "not data to export")
            continue
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
            close = nearest_tables(wanted, catalog)
            if close:
                hint = f"; nearest: {', '.join(close)}"
            elif len(catalog) <= MAX_TABLES_NAMED:  # nothing close: a small warehouse is named in full
                hint = f"; the warehouse has: {', '.join(display_name(s, t, catalog) for s, t in catalog)}"
            else:
                hint = ""
            problems.append(f"unknown table {wanted!r}{hint}")
        else:
            options = ", ".join(f"{m.schema}.{m.name}" for m in matches)
            problems.append(f"table name {wanted!r} is ambiguous; qualify it with its schema: {options}")
    names = [r.name for r in resolved]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.append(f"table(s) listed twice: {', '.join(duplicates)}")
    if problems:
        raise BadDataError(f"{'; '.join(problems)} (`--list` shows the warehouse's {len(catalog)} tables)")
    return resolved


@dataclass(frozen=True)
class TableInfo:
    """One warehouse table for `--list`: how to type it, its row count and its columns."""

    schema: str
    name: str
    display: str
    rows: int
    columns: list[tuple[str, str]]


def list_tables(con: duckdb.DuckDBPyConnection) -> list[TableInfo]:
    catalog = _catalog(con)
    tables: list[TableInfo] = []
    for schema, name in catalog:
        ref = TableRef(schema, name)
        row = con.execute(f"SELECT count(*) FROM {ref.sql}").fetchone()
        tables.append(TableInfo(schema, name, display_name(schema, name, catalog), int(row[0]) if row else 0,
                                describe(con, ref.sql)))
    return tables


@dataclass(frozen=True)
class QuerySource:
    """An ad-hoc extract's read-only query (one SELECT or WITH statement)."""

    query: str
    name: str = "Extract"

    @property
    def sql(self) -> str:
        # On lines of their own: a trailing `-- comment` in the query must not swallow the bracket.
        return f"(\n{self.query}\n) AS {quote_identifier('query')}"


def validate_query(con: duckdb.DuckDBPyConnection, text: str) -> QuerySource:
    """One SELECT (or WITH ... SELECT) statement, parsed and bound by DuckDB itself.

    DuckDB's own parser decides what the text is, so comments, quoting and semicolons inside
    strings cannot smuggle a second statement past a hand-written check; DuckDB's message
    (with its LINE/caret position) is passed on as is.
    """
    try:
        statements = con.extract_statements(text)
    except duckdb.Error as exc:
        raise BadDataError(f"--sql: DuckDB cannot parse the query: {exc}") from None
    if len(statements) != 1:
        raise BadDataError(f"--sql: expected exactly one SELECT or WITH statement, got {len(statements)}")
    statement = statements[0]
    if statement.type != duckdb.StatementType.SELECT:
        kind = str(statement.type).rsplit(".", 1)[-1]
        raise BadDataError(
            f"--sql: only a read-only SELECT or WITH query can become an extract, not {kind}"
        )
    query = statement.query.strip().rstrip(";").strip()
    try:
        # LIMIT 0: DuckDB binds and plans the query but reads nothing. The query stands on lines of
        # its own, so DuckDB's LINE n / caret point into the analyst's text once n is shifted back.
        columns = [d[0] for d in con.execute(f"SELECT * FROM {QuerySource(query).sql} LIMIT 0").description]
    except duckdb.Error as exc:
        message = _LINE_RE.sub(lambda m: f"LINE {int(m.group(1)) - 1}:", str(exc))
        raise BadDataError(f"--sql: the query failed: {message}") from None
    names = [c.lower() for c in columns]
    duplicates = sorted({c for c in columns if names.count(c.lower()) > 1})
    if duplicates:
        raise BadDataError(
            f"--sql: column name(s) {', '.join(duplicates)} appear more than once; give each column its own "
            "name with AS (Tableau needs unique column names)"
        )
    return QuerySource(query)


def describe(con: duckdb.DuckDBPyConnection, source_sql: str) -> list[tuple[str, str]]:
    """(column, DuckDB type) of a table or a parenthesised query, in order."""
    rows = con.execute(f"DESCRIBE SELECT * FROM {source_sql}").fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]


def count_rows(con: duckdb.DuckDBPyConnection, source: TableRef | QuerySource) -> int:
    try:
        row = con.execute(f"SELECT count(*) FROM {source.sql}").fetchone()
    except duckdb.Error as exc:
        raise BadDataError(f"{_label(source)}: {exc}") from None
    return int(row[0]) if row else 0


def _label(source: TableRef | QuerySource) -> str:
    return "--sql: the query failed" if isinstance(source, QuerySource) else f"table {source.schema}.{source.name}"


def _needs_range_check(data_type: str) -> bool:
    match = _DECIMAL_RE.match(data_type)
    wide_decimal = bool(match) and int(match.group(1)) > HYPER_MAX_DECIMAL_PRECISION
    return wide_decimal or data_type in _WIDE_INTEGER_TYPES


def _max_abs(con: duckdb.DuckDBPyConnection, table: TableRef | QuerySource, columns: list[str]) -> dict[str, float]:
    if not columns:
        return {}
    exprs = ", ".join(f"max(abs({quote_identifier(c)}::DOUBLE))" for c in columns)
    row = con.execute(f"SELECT {exprs} FROM {table.sql}").fetchone() or ()
    return {c: float(v or 0.0) for c, v in zip(columns, row, strict=True)}


def _outside_calendar(data_type: str, value_sql: str) -> str | None:
    """SQL true where a date or timestamp value is one Hyper cannot store; None for other types."""
    if data_type in _DATE_TYPES:
        return f"({value_sql} < DATE '{HYPER_FIRST_DAY}' OR {value_sql} > DATE '{HYPER_LAST_DAY}')"
    if data_type in _TIMESTAMP_TYPES:
        return f"(CAST({value_sql} AS TIMESTAMP) < CAST(DATE '{HYPER_FIRST_DAY}' AS TIMESTAMP))"
    return None


def check_calendar(con: duckdb.DuckDBPyConnection, table: TableRef | QuerySource, columns: list[tuple[str, str]]) -> None:
    """Refuse dates and timestamps Hyper cannot store, naming the column, the rows and a value.

    Hyper would reject them half-way through the load, naming only a temporary Parquet file and a
    row group. One scan of the date columns instead, before anything is written.
    """
    checks = [(c, cond) for c, t in columns if (cond := _outside_calendar(t, quote_identifier(c)))]
    if not checks:
        return
    exprs = ", ".join(
        f"count(*) FILTER (WHERE {cond}), CAST(min({quote_identifier(c)}) FILTER (WHERE {cond}) AS VARCHAR), "
        f"CAST(max({quote_identifier(c)}) FILTER (WHERE {cond}) AS VARCHAR)"
        for c, cond in checks
    )
    row = con.execute(f"SELECT {exprs} FROM {table.sql}").fetchone() or ()
    problems = []
    for i, (column, _) in enumerate(checks):
        count, earliest, latest = row[3 * i: 3 * i + 3]
        if count:
            values = earliest if earliest == latest else f"{earliest} .. {latest}"
            problems.append(f"column {column!r}: {count} row(s) with a date Tableau cannot store ({values})")
    if problems:
        where = "--sql" if isinstance(table, QuerySource) else f"table {table.schema}.{table.name}"
        raise BadDataError(
            f"{where}: {'; '.join(problems)}. Tableau extracts hold dates from {HYPER_CALENDAR}; "
            "filter those rows out or replace the values (e.g. with NULL) in a --sql query"
        )


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


def plan_casts(con: duckdb.DuckDBPyConnection, table: TableRef | QuerySource) -> tuple[list[str], dict[str, str]]:
    """SELECT expressions for the source's columns and the casts applied (column -> 'FROM -> TO')."""
    columns = describe(con, table.sql)
    check_calendar(con, table, columns)
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


def export_parquet(con: duckdb.DuckDBPyConnection, table: TableRef | QuerySource, target: Path) -> ExportedTable:
    """COPY one table or query (with casts where needed) to a Parquet file; DuckDB does the work vectorised."""
    exprs, casts = plan_casts(con, table)
    if casts:
        source = f"(SELECT {', '.join(exprs)} FROM {table.sql})"
    elif isinstance(table, QuerySource):
        source = f"(SELECT * FROM {table.sql})"
    else:
        source = table.sql
    try:
        result = con.execute(f"COPY {source} TO {quote_literal(target.as_posix())} ({PARQUET_OPTIONS})").fetchone()
    except duckdb.ConversionException as exc:
        raise BadDataError(f"{_label(table)}: a value does not fit its export type: {exc}") from None
    except duckdb.IOException:
        raise
    except duckdb.Error as exc:
        if isinstance(table, QuerySource):  # a query can still fail at run time (a cast, a division)
            raise BadDataError(f"--sql: the query failed: {exc}") from None
        raise
    rows = int(result[0]) if result else 0
    return ExportedTable(table=table, parquet_path=target, rows=rows, casts=casts)


def prepare_session(con: duckdb.DuckDBPyConnection, timezone: str) -> None:
    """Session settings for the export.

    TIMESTAMPTZ columns become wall-clock timestamps in `timezone` (the business time zone). Row
    order means nothing in an extract, so DuckDB may write the Parquet in parallel, unordered.
    """
    con.execute(f"SET TimeZone = {quote_literal(timezone)}")
    con.execute("SET preserve_insertion_order = false")
