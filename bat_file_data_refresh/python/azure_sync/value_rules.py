"""Value rules checked at sync (contract section 3), read from the declared schema in pipeline.yaml.

Each column's declaration (pipeline_common.config.Column) says whether it may be empty, its bounds,
its allowed values, whether it must be the market's currency or not after the file date, its
longest text; the dataset type's `grain` must be unique within one file (a duplicate names both
lines). Each violation rejects the file, naming blob, line, column and value. All checks are
vectorised; only the first violation in file order is located and reported.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from azure_sync.csv_reader import BadFileError, ParsedFile, show_value
from pipeline_common.config import Column, DatasetType

Mask = Callable[[], "pa.ChunkedArray | pa.Array"]


@dataclass(frozen=True)
class Violation:
    row: int  # 0-based data row
    column: str
    message: str


def _first_false(mask: pa.ChunkedArray | pa.Array) -> int | None:
    """Index of the first row where `mask` is false, else None. A null (a rule on a missing value) passes."""
    row = pc.index(mask, False).as_py()
    return None if row < 0 else row


def _value_at(table: pa.Table, column: str, row: int) -> str:
    value = table.column(column)[row].as_py()
    return show_value(None if value is None else str(value))


def _number(value: Decimal, column: Column) -> pa.Scalar:
    """A declared bound as a scalar of the column's own type (the config keeps it within that type)."""
    if column.type == "integer":
        return pa.scalar(int(value))  # int64: the bound is a whole number within int64
    return pa.scalar(value, pa.decimal128(18, 2))


def _shown(value: Decimal) -> str:
    return f"{value:,}"


def column_rules(column: Column, values: pa.ChunkedArray, market_currency: str,
                 file_date: dt.date | None) -> list[tuple[Mask, str]]:
    """(mask: true where the value is fine, what was expected) for each rule the column declares.
    A null passes every rule but `nullable: false` (it is reported as an empty value there)."""
    rules: list[tuple[Mask, str]] = []
    if not column.nullable:
        rules.append((lambda: pc.is_valid(values), "expected a value (the column may not be empty)"))
    if column.type in ("integer", "decimal"):
        low, high = column.bounds
        kind = "an integer" if column.type == "integer" else "a number"
        if column.min is not None:
            rules.append((lambda: pc.greater_equal(values, _number(low, column)), f"expected {kind} >= {_shown(low)}"))
        if column.max is not None:
            rules.append((lambda: pc.less_equal(values, _number(high, column)), f"expected {kind} <= {_shown(high)}"))
    if column.allowed:
        allowed = pa.array([*column.allowed, None])  # a null matches the null: is_in gives false, not null, for it
        rules.append((lambda: pc.is_in(values, allowed), f"expected one of {', '.join(column.allowed)}"))
    if column.market_currency:
        rules.append((lambda: pc.equal(values, market_currency), f"expected the market's currency {market_currency!r}"))
    if column.max_length is not None:
        rules.append((lambda: pc.less_equal(pc.utf8_length(values), column.max_length),
                      f"expected at most {column.max_length} characters"))
    if column.not_after_file_date and file_date is not None:
        rules.append((lambda: pc.less_equal(values, pa.scalar(file_date)),
                      f"expected a date not after the file date {file_date.isoformat()}"))
    return rules


def check_values(parsed: ParsedFile, blob: str, kind: DatasetType, market_currency: str,
                 file_date: dt.date | None) -> None:
    """Raise BadFileError for the first (in file order) row that breaks a declared rule."""
    table = parsed.table
    found: list[Violation] = []
    for name, column in kind.columns.items():
        values = table.column(name)
        for mask, expected in column_rules(column, values, market_currency, file_date):
            row = _first_false(mask())
            if row is not None:
                found.append(Violation(row, name, f"{expected}, got {_value_at(table, name, row)}"))
    duplicate = first_duplicate(table, kind.grain)
    if duplicate is not None:
        first, second = duplicate
        if len(kind.grain) == 1:
            key = f"value {table.column(kind.grain[0])[second].as_py()}"
        else:
            key = "key " + ", ".join(f"{name}={_value_at(table, name, second)}" for name in kind.grain)
        found.append(Violation(second, kind.grain[0], f"duplicate {key} (first on line {parsed.line_of_row(first)})"))
    if not found:
        return
    worst = min(found, key=lambda violation: violation.row)
    raise BadFileError(f"{blob} line {parsed.line_of_row(worst.row)}, column {worst.column!r}: {worst.message}")


def _codes(values: pa.ChunkedArray) -> np.ndarray:
    """An integer per row, equal for equal values (nulls one code of their own)."""
    if pa.types.is_integer(values.type) and values.null_count == 0:
        return values.to_numpy()
    return pc.dictionary_encode(values.combine_chunks(), null_encoding="encode").indices.to_numpy()


def first_duplicate(table: pa.Table, grain: list[str]) -> tuple[int, int] | None:
    """(first row, repeating row) of the earliest repeat of a grain key, else None."""
    if len(grain) == 1:
        ids = _codes(table.column(grain[0]))
        if bool(np.all(ids[1:] > ids[:-1])):  # true for fewer than two rows too
            return None  # ascending, as exports write them: unique without hashing
        keys = ids
    else:
        stacked = np.stack([_codes(table.column(name)) for name in grain], axis=1)
        _, keys = np.unique(stacked, axis=0, return_inverse=True)  # 1-D (numpy 2.0.1 on)
    if len(np.unique(keys)) == len(keys):
        return None
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    repeats = np.flatnonzero(ordered[1:] == ordered[:-1]) + 1  # positions in `order` that repeat the one before
    earliest = int(order[repeats].min())
    first = int(np.flatnonzero(keys == keys[earliest])[0])
    return first, earliest
