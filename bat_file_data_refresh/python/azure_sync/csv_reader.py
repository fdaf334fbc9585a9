"""Read one source CSV into an Arrow table with the contract's types, strictly.

The fast path is one typed `pyarrow.csv.read_csv`. Only when it fails does the slow path run: the
file is read again as raw bytes and each column is cast on its own, and a vectorised bisection finds
the first bad cell, so the error names the blob, the line (as an editor shows it) and the column.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

ARROW_TYPES: dict[str, pa.DataType] = {
    "integer": pa.int64(),
    "string": pa.string(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "decimal": pa.decimal128(18, 2),
}

EXPECTED_TEXT: dict[str, str] = {
    "integer": "an integer",
    "string": "UTF-8 text",
    "date": "a date YYYY-MM-DD",
    "timestamp": "a timestamp YYYY-MM-DD HH:MM:SS",
    "decimal": "a decimal with at most 2 places (18 digits)",
}

HEADER_PROBE_BYTES = 1 << 16
UTF8_BOM = b"\xef\xbb\xbf"
MAX_SHOWN_VALUE = 60


class BadFileError(Exception):
    """This file breaks the contract; the message names the blob, the line and the column."""


@dataclass
class ParsedFile:
    table: pa.Table
    dropped_columns: list[str] = field(default_factory=list)


def read_strict_csv(path: Path, blob: str, columns: dict[str, str], use_threads: bool = True) -> ParsedFile:
    """Parse `path` (the content of `blob`) against `columns` {name: contract type}; raise BadFileError."""
    header = _read_header(path, blob)
    _check_header(header, blob, columns)
    dropped = [name for name in header if name not in columns]
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(use_threads=use_threads),
            parse_options=pacsv.ParseOptions(newlines_in_values=False),
            convert_options=_convert_options(columns, {n: ARROW_TYPES[k] for n, k in columns.items()}),
        )
    except pa.ArrowInvalid as exc:
        raise BadFileError(_locate_error(path, blob, columns, str(exc))) from None
    return ParsedFile(table=table.select(list(columns)), dropped_columns=dropped)


def _convert_options(columns: dict[str, str], types: dict[str, pa.DataType]) -> pacsv.ConvertOptions:
    # Only an empty cell is null: 'NA', 'NULL', 'nan' in a number column are errors, not silent nulls.
    return pacsv.ConvertOptions(
        column_types=types,
        include_columns=list(columns),
        null_values=[""],
        strings_can_be_null=True,
        true_values=[],
        false_values=[],
    )


def _read_header(path: Path, blob: str) -> list[str]:
    with path.open("rb") as handle:
        probe = handle.read(HEADER_PROBE_BYTES)
    probe = probe.removeprefix(UTF8_BOM)
    first_line = probe.split(b"\n", 1)[0].rstrip(b"\r")
    if not first_line.strip():
        raise BadFileError(f"{blob} line 1: the file is empty; expected a header row")
    try:
        text = first_line.decode("utf-8")
    except UnicodeDecodeError:
        raise BadFileError(f"{blob} line 1: the header is not UTF-8 text") from None
    return next(csv.reader([text]))


def _check_header(header: list[str], blob: str, columns: dict[str, str]) -> None:
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise BadFileError(f"{blob} line 1: duplicate column(s) {', '.join(map(repr, duplicates))}")
    missing = [name for name in columns if name not in header]
    if missing:
        unknown = [name for name in header if name not in columns]
        hint = f" (found unknown column(s) {', '.join(map(repr, unknown))} - renamed?)" if unknown else ""
        raise BadFileError(f"{blob} line 1, column {missing[0]!r}: missing column(s) "
                           f"{', '.join(map(repr, missing))}{hint}")


# --- slow path: only for a file the typed read rejected ---------------------------------------------


def _locate_error(path: Path, blob: str, columns: dict[str, str], arrow_message: str) -> str:
    bad_row = _first_malformed_row(path, next(iter(columns)))  # the header check found every column
    if bad_row is not None:
        row_number, expected, actual = bad_row
        line = _physical_line(path, row_number)
        return f"{blob} line {line}: expected {expected} columns, got {actual}"
    raw = pacsv.read_csv(
        path,
        parse_options=pacsv.ParseOptions(newlines_in_values=False),
        convert_options=_convert_options(columns, {name: pa.binary() for name in columns}),
    )
    worst: tuple[int, str, str] | None = None  # (row index, column, message)
    for name, kind in columns.items():
        found = _first_bad_cell(raw.column(name).combine_chunks(), ARROW_TYPES[kind])
        if found is not None and (worst is None or found[0] < worst[0]):
            row, value = found
            worst = (row, name, f"expected {EXPECTED_TEXT[kind]}, got {_show(value)}")
    if worst is None:  # the typed parser and the casts disagree: still reject, with Arrow's words
        return f"{blob}: {arrow_message}"
    row, name, message = worst
    line = _physical_line(path, row + 2)  # row 0 is the first line after the header
    return f"{blob} line {line}, column {name!r}: {message}"


def _first_malformed_row(path: Path, any_column: str) -> tuple[int, int, int] | None:
    """(row number with header = 1, expected, actual) of the first line with a wrong column count."""
    found: list[tuple[int, int, int]] = []

    def handler(row: pacsv.InvalidRow) -> str:
        found.append((row.number, row.expected_columns, row.actual_columns))
        return "error"

    try:
        pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(use_threads=False),  # row numbers are only known single-threaded
            parse_options=pacsv.ParseOptions(newlines_in_values=False, invalid_row_handler=handler),
            convert_options=pacsv.ConvertOptions(column_types={any_column: pa.binary()}, include_columns=[any_column]),
        )
    except pa.ArrowInvalid:
        pass
    return found[0] if found else None


def _first_bad_cell(raw: pa.Array, target: pa.DataType) -> tuple[int, bytes] | None:
    """Index and raw value of the first cell that does not cast to `target`; bisection keeps it vectorised."""
    if _casts(raw, target):
        return None
    low, high = 0, len(raw)  # invariant: raw[low:high] holds the first bad cell
    while high - low > 1:
        middle = (low + high) // 2
        if _casts(raw.slice(low, middle - low), target):
            low = middle
        else:
            high = middle
    return low, raw[low].as_py()


def _casts(raw: pa.Array, target: pa.DataType) -> bool:
    try:
        text = pc.cast(raw, pa.string())  # validates UTF-8
        if target != pa.string():
            pc.cast(text, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def _physical_line(path: Path, row_number: int) -> int:
    """Editor line of the `row_number`-th non-empty line (header = 1), since the CSV reader skips blank lines."""
    data = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    newlines = np.flatnonzero(data == ord("\n"))
    starts = np.concatenate(([0], newlines + 1))
    ends = np.concatenate((newlines, [len(data)]))
    lengths = ends - starts
    last_byte = data[np.maximum(ends - 1, 0)] if len(data) else np.zeros(len(ends), dtype=np.uint8)
    content = lengths - ((lengths > 0) & (last_byte == ord("\r")))  # '\r\n' endings: '\r' is not content
    non_empty = np.flatnonzero(content > 0)
    if row_number - 1 < len(non_empty):
        return int(non_empty[row_number - 1]) + 1
    return row_number


def _show(value: bytes | None) -> str:
    if value is None:
        return "an empty value"
    text = value.decode("utf-8", errors="backslashreplace")
    if len(text) > MAX_SHOWN_VALUE:
        text = text[:MAX_SHOWN_VALUE] + "..."
    return repr(text)
