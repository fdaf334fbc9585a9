"""Parse the `Daily Sales Budget {YYYY}.xlsx` workbook (contract section 4) into two long Arrow tables.

Every rejection names the sheet and the cell (`Budget!D14: expected a number, got 'n/a'`), so the
person who owns the workbook knows exactly what to fix.
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.worksheet.formula import ArrayFormula, DataTableFormula

from pipeline_common.script_support import BadDataError

BUDGET_SHEET = "Budget"
EXCHANGE_SHEET = "Exchange"
CHANNELS = ("TV", "WEB", "APP", "PHONE")
TOTAL_LABELS = {"TOTAL", "GRAND TOTAL"}
_DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH_RE = re.compile(r"^\d{4}-\d{2}$")
_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
# Contract section 4: digits, an optional leading '-', an optional '.' decimal point, optional ','
# thousands separators in groups of three. '1,234.50' is 1234.50; '1.234,50' is an error, never 1.23.
BUDGET_MAX_ABS_GBP = 1e12
"""A day's budget for one market and channel beyond GBP 1 trillion is a keying error (a pasted id, 1e16);
it also keeps every sum within the warehouse's decimal(18, 2)."""
RATE_MAX = 1e6
"""GBP per unit of a currency: no currency is worth a million pounds; a larger number is a keying error."""

_PLAIN_NUMBER_RE = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+")
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # a Compound File: an encrypted OOXML or an old .xls
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")
_RESAVE_HINT = "open it in Excel, save it again (File > Save As > Excel Workbook) and re-run"

BUDGET_SCHEMA = pa.schema(
    [("budget_date", pa.date32()), ("market", pa.string()), ("channel", pa.string()),
     ("budget_gbp", pa.decimal128(18, 2))]
)
EXCHANGE_SCHEMA = pa.schema(
    [("currency", pa.string()), ("month", pa.date32()), ("gbp_per_unit", pa.decimal128(18, 8))]
)


@dataclass(frozen=True)
class ParsedWorkbook:
    budget: pa.Table
    exchange: pa.Table


def cell_ref(sheet: str, row: int, column: int) -> str:
    """`Budget!D14` from 1-based row and column numbers."""
    return f"{sheet}!{get_column_letter(column)}{row}"


def _shown(value: Any) -> str:
    return "blank" if _is_blank(value) else repr(value if not isinstance(value, dt.datetime) else value.isoformat())


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _label(value: Any) -> str:
    return "" if value is None else str(value).strip().upper()


# --- headers -------------------------------------------------------------------------------------


def _header_date(sheet: str, row: int, column: int, value: Any, monthly: bool) -> dt.date:
    """An Excel date cell, or a `YYYY-MM-DD` (`YYYY-MM` for monthly headers) string."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = value.strip() if isinstance(value, str) else None
    try:
        if text and _DAY_RE.match(text):
            return dt.date.fromisoformat(text)
        if text and monthly and _MONTH_RE.match(text):
            return dt.date.fromisoformat(text + "-01")
    except ValueError:
        pass
    wanted = "an Excel date or 'YYYY-MM'" if monthly else "an Excel date or 'YYYY-MM-DD'"
    raise BadDataError(f"{cell_ref(sheet, row, column)}: expected {wanted} header, got {_shown(value)}")


def _date_headers(
    sheet: str, row: int, cells: Sequence[Any], first_column: int, year: int, monthly: bool
) -> list[dt.date]:
    """The date headers from `first_column` on; trailing blanks end the table."""
    values = list(cells[first_column - 1 :])
    while values and _is_blank(values[-1]):
        values.pop()
    dates: list[dt.date] = []
    seen: dict[dt.date, int] = {}
    for offset, value in enumerate(values):
        column = first_column + offset
        day = _header_date(sheet, row, column, value, monthly)
        if monthly:
            day = day.replace(day=1)
        if day.year != year:
            raise BadDataError(f"{cell_ref(sheet, row, column)}: date {day.isoformat()} is not in {year}")
        if day in seen:
            first = get_column_letter(seen[day])
            raise BadDataError(f"{cell_ref(sheet, row, column)}: date {day.isoformat()} repeats column {first}")
        seen[day] = column
        dates.append(day)
    if not dates:
        raise BadDataError(f"{cell_ref(sheet, row, first_column)}: expected date headers, found none")
    return dates


def _find_header(sheet: str, rows: list[tuple[Any, ...]], label: str) -> int:
    """0-based index of the first row whose first cell is `label` (title rows may stand above)."""
    for index, cells in enumerate(rows):
        if cells and isinstance(cells[0], str) and cells[0].strip().lower() == label.lower():
            return index
    last = max(len(rows), 1)
    raise BadDataError(f"{sheet}!A1:A{last}: no header row (a row whose first cell is '{label}')")


# --- values --------------------------------------------------------------------------------------


def _numbers(sheet: str, row: int, first_column: int, cells: Sequence[Any], limit: float = BUDGET_MAX_ABS_GBP) -> np.ndarray:
    """Cell values as floats, NaN where blank; rejects text, booleans, dates and numbers beyond +-`limit`
    (or not finite) with the cell named."""
    values = _cell_numbers(sheet, row, first_column, cells)
    beyond = np.flatnonzero(~np.isnan(values) & ~(np.abs(values) <= limit))
    if len(beyond):
        offset = int(beyond[0])
        raise BadDataError(f"{cell_ref(sheet, row, first_column + offset)}: expected a number within "
                           f"+-{limit:,.0f}, got {_shown(cells[offset])}")
    return values


def _cell_numbers(sheet: str, row: int, first_column: int, cells: Sequence[Any]) -> np.ndarray:
    if all(v is None or (type(v) in (int, float)) for v in cells):
        return np.array(cells, dtype=float)
    out = np.full(len(cells), np.nan)
    for offset, value in enumerate(cells):
        if _is_blank(value):
            continue
        number = _as_number(value)
        if number is None:
            ref = cell_ref(sheet, row, first_column + offset)
            raise BadDataError(f"{ref}: expected a number, got {_shown(value)}")
        out[offset] = number
    return out


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        if not _PLAIN_NUMBER_RE.fullmatch(text):
            return None
        return float(text.replace(",", ""))
    return None


def _row_cells(row: tuple[Any, ...], width: int) -> list[Any]:
    cells = list(row[:width])
    return cells + [None] * (width - len(cells))


def _reject_values_beyond(sheet: str, row: int, cells: Sequence[Any], width: int) -> None:
    for offset, value in enumerate(cells[width:]):
        if not _is_blank(value):
            ref = cell_ref(sheet, row, width + offset + 1)
            raise BadDataError(f"{ref}: value {_shown(value)} in a column without a date header")


# --- sheets --------------------------------------------------------------------------------------


def _sheet_rows(workbook: Any, sheet: str, source: str) -> list[tuple[Any, ...]]:
    if sheet not in workbook.sheetnames:
        raise BadDataError(f"{sheet}!A1: sheet '{sheet}' not found in {source} (sheets: {', '.join(workbook.sheetnames)})")
    worksheet = workbook[sheet]
    # The <dimension ref> Excel stores is a hint that other writers leave stale ("A1" or "A1:E12" while
    # the data reaches NC24); read-only openpyxl would stop there. Recompute it from the cells.
    worksheet.reset_dimensions()
    return list(worksheet.iter_rows(values_only=True))


def _first_uncached_formula(formulas: Any, sheet: str, values: list[tuple[Any, ...]]) -> str | None:
    """`Budget!D14` of the first formula cell that has no cached value (the file was never recalculated)."""
    worksheet = formulas[sheet]
    worksheet.reset_dimensions()
    for row_index, row in enumerate(worksheet.iter_rows(values_only=True)):
        cached = values[row_index] if row_index < len(values) else ()
        for column_index, value in enumerate(row):
            formula = isinstance(value, (ArrayFormula, DataTableFormula)) or (
                isinstance(value, str) and value.startswith("="))  # plain, shared (expanded) or array (CSE)
            if formula and (
                column_index >= len(cached) or cached[column_index] is None
            ):
                return cell_ref(sheet, row_index + 1, column_index + 1)
    return None


def parse_budget(rows: list[tuple[Any, ...]], year: int, markets: Iterable[str]) -> pa.Table:
    """Wide Budget sheet -> (budget_date, market, channel, budget_gbp); blank cells produce no row."""
    sheet = BUDGET_SHEET
    known = sorted(markets)
    header_index = _find_header(sheet, rows, "Market")
    header_row = header_index + 1
    header = list(rows[header_index])
    if len(header) < 2 or _label(header[1]) != "CHANNEL":
        got = header[1] if len(header) > 1 else None
        raise BadDataError(f"{cell_ref(sheet, header_row, 2)}: expected 'Channel', got {_shown(got)}")
    dates = _date_headers(sheet, header_row, header, 3, year, monthly=False)
    width = 2 + len(dates)
    day_numbers = np.array([(d - dt.date(1970, 1, 1)).days for d in dates], dtype=np.int32)

    seen: dict[tuple[str, str], int] = {}
    parts: list[tuple[np.ndarray, str, str, np.ndarray]] = []
    keyed_rows = 0
    for index in range(header_index + 1, len(rows)):
        row = index + 1
        cells = _row_cells(rows[index], max(width, len(rows[index])))
        if all(_is_blank(v) for v in cells):
            continue
        market, channel = _label(cells[0]), _label(cells[1])
        if channel in TOTAL_LABELS or market in TOTAL_LABELS:
            continue
        _check_keys(sheet, row, market, channel, cells, known, seen)
        _reject_values_beyond(sheet, row, cells, width)
        values = _numbers(sheet, row, 3, cells[2:width])
        present = ~np.isnan(values)
        parts.append((day_numbers[present], market, channel, values[present]))
        keyed_rows += 1

    if not any(len(part[0]) for part in parts):
        what = "no market rows" if keyed_rows == 0 else "market rows but no budget values"
        raise BadDataError(
            f"{cell_ref(sheet, header_row + 1, 1)}: the sheet has a header but {what}; "
            "an empty Budget sheet would erase the year's budget, so nothing was written"
        )
    return _budget_table(parts)


def _check_keys(
    sheet: str, row: int, market: str, channel: str, cells: Sequence[Any], known: list[str],
    seen: dict[tuple[str, str], int],
) -> None:
    if not market:
        raise BadDataError(f"{cell_ref(sheet, row, 1)}: expected a market, got blank")
    if market not in known:
        raise BadDataError(f"{cell_ref(sheet, row, 1)}: unknown market {cells[0]!r}; known: {', '.join(known)}")
    if channel not in CHANNELS:
        raise BadDataError(
            f"{cell_ref(sheet, row, 2)}: unknown channel {_shown(cells[1])}; expected one of {', '.join(CHANNELS)}"
        )
    key = (market, channel)
    if key in seen:
        raise BadDataError(
            f"{cell_ref(sheet, row, 1)}: duplicate row for ({market}, {channel}); first at row {seen[key]}"
        )
    seen[key] = row


def _budget_table(parts: list[tuple[np.ndarray, str, str, np.ndarray]]) -> pa.Table:
    if not parts:
        return BUDGET_SCHEMA.empty_table()
    days = np.concatenate([p[0] for p in parts])
    sizes = [len(p[0]) for p in parts]
    table = pa.table(
        {
            "budget_date": pa.array(days).cast(pa.date32()),
            "market": pa.array(np.repeat([p[1] for p in parts], sizes).astype(object), pa.string()),
            "channel": pa.array(np.repeat([p[2] for p in parts], sizes).astype(object), pa.string()),
            "budget_gbp": pa.array(np.round(np.concatenate([p[3] for p in parts]), 2)).cast(pa.decimal128(18, 2)),
        },
        schema=BUDGET_SCHEMA,
    )
    return table.sort_by([("budget_date", "ascending"), ("market", "ascending"), ("channel", "ascending")])


def parse_exchange(rows: list[tuple[Any, ...]], year: int, required: Iterable[str]) -> pa.Table:
    """Exchange sheet -> (currency, month, gbp_per_unit); GBP is 1 (added when the sheet omits it)."""
    sheet = EXCHANGE_SHEET
    header_index = _find_header(sheet, rows, "Currency")
    header_row = header_index + 1
    months = _date_headers(sheet, header_row, list(rows[header_index]), 2, year, monthly=True)
    width = 1 + len(months)
    rates: dict[str, np.ndarray] = {}
    seen: dict[str, int] = {}
    for index in range(header_index + 1, len(rows)):
        row = index + 1
        cells = _row_cells(rows[index], max(width, len(rows[index])))
        if all(_is_blank(v) for v in cells):
            continue
        currency = _label(cells[0])
        if not _CURRENCY_RE.match(currency):
            raise BadDataError(f"{cell_ref(sheet, row, 1)}: expected a currency code like 'EUR', got {_shown(cells[0])}")
        if currency in seen:
            raise BadDataError(f"{cell_ref(sheet, row, 1)}: duplicate row for {currency}; first at row {seen[currency]}")
        seen[currency] = row
        _reject_values_beyond(sheet, row, cells, width)
        values = _numbers(sheet, row, 2, cells[1:width], limit=RATE_MAX)
        _check_rates(sheet, row, currency, values)
        rates[currency] = values
    missing = sorted(set(required) - set(rates) - {"GBP"})
    if missing:
        raise BadDataError(f"{sheet}!A{header_row + 1}: no row for currency {', '.join(missing)}")
    rates.setdefault("GBP", np.ones(len(months)))
    return _exchange_table(rates, months)


def _check_rates(sheet: str, row: int, currency: str, values: np.ndarray) -> None:
    for offset in np.flatnonzero(~np.isnan(values) & (values <= 0)):
        raise BadDataError(f"{cell_ref(sheet, row, 2 + int(offset))}: rate must be above 0, got {float(values[offset]):g}")
    if currency == "GBP":
        for offset in np.flatnonzero(~np.isnan(values) & (values != 1.0)):
            raise BadDataError(f"{cell_ref(sheet, row, 2 + int(offset))}: GBP must be 1, got {float(values[offset]):g}")


def _exchange_table(rates: dict[str, np.ndarray], months: list[dt.date]) -> pa.Table:
    month_numbers = np.array([(m - dt.date(1970, 1, 1)).days for m in months], dtype=np.int32)
    currencies, days, values = [], [], []
    for currency in sorted(rates):
        present = ~np.isnan(rates[currency])
        currencies += [currency] * int(present.sum())
        days.append(month_numbers[present])
        values.append(rates[currency][present])
    table = pa.table(
        {
            "currency": pa.array(currencies, pa.string()),
            "month": pa.array(np.concatenate(days)).cast(pa.date32()),
            "gbp_per_unit": pa.array(np.round(np.concatenate(values), 8)).cast(pa.decimal128(18, 8)),
        },
        schema=EXCHANGE_SCHEMA,
    )
    return table.sort_by([("currency", "ascending"), ("month", "ascending")])


def parse_workbook(path: Path, year: int, markets: Iterable[str], currencies: Iterable[str]) -> ParsedWorkbook:
    """Both sheets, fully validated; raises BadDataError naming sheet and cell on the first problem.

    Whatever is wrong with the file itself (encrypted, an old .xls, a cut download, a corrupt zip
    member or sheet XML), the result is a BadDataError that says which, never a parser exception.
    """
    _reject_non_xlsx(path)
    try:
        budget_rows, exchange_rows = _read_sheets(path)
    except BadDataError:
        raise
    except Exception as exc:  # noqa: BLE001 - zlib.error, XML ParseError, KeyError...: the file is broken
        raise BadDataError(
            f"{path.name}: the workbook is corrupt ({type(exc).__name__}: {str(exc)[:200]}); {_RESAVE_HINT}"
        ) from None
    return ParsedWorkbook(
        budget=parse_budget(budget_rows, year, markets),
        exchange=parse_exchange(exchange_rows, year, currencies),
    )


def _reject_non_xlsx(path: Path) -> None:
    with path.open("rb") as handle:
        head = handle.read(8)
    if head == _OLE_MAGIC:
        if _ENCRYPTED_PACKAGE in path.read_bytes():
            raise BadDataError(
                f"{path.name}: the workbook is password-protected (encrypted), so it cannot be read; ask its "
                "owner to remove the password (File > Info > Protect Workbook > Encrypt with Password) and save it"
            )
        raise BadDataError(f"{path.name}: this is an old-format .xls workbook; save it as .xlsx (Excel Workbook)")
    if not head.startswith(b"PK"):
        raise BadDataError(f"{path.name}: not an .xlsx workbook (the file is not a zip package); {_RESAVE_HINT}")


def _read_sheets(path: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException) as exc:
        raise BadDataError(f"{path.name}: not a readable .xlsx workbook ({exc}); {_RESAVE_HINT}") from None
    try:
        budget_rows = _sheet_rows(workbook, BUDGET_SHEET, path.name)
        exchange_rows = _sheet_rows(workbook, EXCHANGE_SHEET, path.name)
    finally:
        workbook.close()
    # data_only gives a formula's cached result, and None when the file was never calculated (saved
    # by a script, not Excel): such a cell would silently read as blank, so it is an error instead.
    formulas = load_workbook(path, read_only=True, data_only=False)
    try:
        for sheet, rows in ((BUDGET_SHEET, budget_rows), (EXCHANGE_SHEET, exchange_rows)):
            ref = _first_uncached_formula(formulas, sheet, rows)
            if ref is not None:
                raise BadDataError(
                    f"{ref}: a formula without a calculated value (the workbook was saved without "
                    "calculating); open it in Excel and save it, then re-run"
                )
    finally:
        formulas.close()
    return budget_rows, exchange_rows
