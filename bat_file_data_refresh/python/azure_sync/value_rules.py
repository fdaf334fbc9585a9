"""Value rules checked at sync (contract section 3): each violation rejects the file, naming blob, line, column and value.

The rules follow the column names of the contract, so they apply to every dataset that has
the column (today `ingest_orders`). All checks are vectorised; only the first violation in
file order is located and reported.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from azure_sync.csv_reader import BadFileError, ParsedFile, show_value

CHANNELS = ("TV", "WEB", "APP", "PHONE")
STATUSES = ("COMPLETED", "SHIPPED", "CANCELLED", "RETURNED")


@dataclass(frozen=True)
class Violation:
    row: int  # 0-based data row
    column: str
    message: str


def _first_false(mask: pa.ChunkedArray | pa.Array) -> int | None:
    """Index of the first row where `mask` is false or null (null: the value is missing)."""
    ok = pc.fill_null(mask, False)
    if pc.all(ok).as_py():
        return None
    return int(np.argmin(ok.to_numpy(zero_copy_only=False)))


def _value_at(table: pa.Table, column: str, row: int) -> str:
    value = table.column(column)[row].as_py()
    return show_value(None if value is None else str(value))


def check_values(parsed: ParsedFile, blob: str, market_currency: str, file_date: dt.date | None) -> None:
    """Raise BadFileError for the first (in file order) row that breaks a value rule."""
    table = parsed.table
    names = set(table.column_names)
    checks: list[tuple[str, Callable[[], pa.ChunkedArray], str]] = []
    if "quantity" in names:
        checks.append(("quantity", lambda: pc.greater_equal(table.column("quantity"), 1), "expected an integer >= 1"))
    if "unit_price" in names:
        checks.append(("unit_price", lambda: pc.greater_equal(table.column("unit_price"), pa.scalar(0, pa.decimal128(18, 2))),
                       "expected a price >= 0"))
    if "currency" in names:
        checks.append(("currency", lambda: pc.equal(table.column("currency"), market_currency),
                       f"expected the market's currency {market_currency!r}"))
    if "channel" in names:
        checks.append(("channel", lambda: pc.is_in(table.column("channel"), pa.array(CHANNELS)),
                       f"expected one of {', '.join(CHANNELS)}"))
    if "status" in names:
        checks.append(("status", lambda: pc.is_in(table.column("status"), pa.array(STATUSES)),
                       f"expected one of {', '.join(STATUSES)}"))
    if "order_date" in names and file_date is not None:
        checks.append(("order_date", lambda: pc.less_equal(table.column("order_date"), pa.scalar(file_date, pa.date32())),
                       f"expected a date not after the file date {file_date.isoformat()}"))
    if "order_line_id" in names:
        checks.append(("order_line_id", lambda: pc.is_valid(table.column("order_line_id")), "expected an integer"))

    found: list[Violation] = []
    for column, mask, expected in checks:
        row = _first_false(mask())
        if row is not None:
            found.append(Violation(row, column, f"{expected}, got {_value_at(table, column, row)}"))
    duplicate = _first_duplicate(table, "order_line_id") if "order_line_id" in names else None
    if duplicate is not None:
        first, second = duplicate
        value = table.column("order_line_id")[second].as_py()
        found.append(Violation(second, "order_line_id",
                               f"duplicate value {value} (first on line {parsed.line_of_row(first)})"))
    if not found:
        return
    worst = min(found, key=lambda violation: violation.row)
    raise BadFileError(f"{blob} line {parsed.line_of_row(worst.row)}, column {worst.column!r}: {worst.message}")


def _first_duplicate(table: pa.Table, column: str) -> tuple[int, int] | None:
    """(first row, repeating row) of the earliest repeat of a value in `column`, else None."""
    values = table.column(column)
    ids = values.to_numpy(zero_copy_only=False)
    if values.null_count == 0 and bool(np.all(ids[1:] > ids[:-1])):
        return None  # ascending, as exports write them: unique without hashing
    if pc.count_distinct(values).as_py() == len(values) - values.null_count:
        return None
    order = np.argsort(ids, kind="stable")
    ordered = ids[order]
    repeats = np.flatnonzero(ordered[1:] == ordered[:-1]) + 1  # positions in `order` that repeat the one before
    second = order[repeats]
    earliest = int(second.min())
    first = int(np.flatnonzero(ids == ids[earliest])[0])
    return first, earliest
