"""sync_azure.py on bad input: the file is rejected with blob, line and column; nothing else is lost.

Each case first syncs a good file for day 1, then replaces it with a broken version and adds a good
file for day 2. The run must exit 65, name the problem exactly, keep day 1's Parquet byte-identical,
leave no temporary files, and still sync day 2. The cases run the script's main in-process (they test
the rules); a few of them also run the real command line (exit code, stderr, no traceback).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.plugins.azurite import (
    ORDERS_HEADER, LandingTree, csv_text, orders_blob_name, orders_rows, run_sync_in_process, run_sync_script,
)

DAY_1 = dt.date(2026, 11, 19)
DAY_2 = dt.date(2026, 11, 20)
ARGS = ("--market", "UK", "--dataset", "ingest_orders", "--days-back", "2", "--as-of", DAY_2.isoformat())
BLOB_1 = orders_blob_name("UK", DAY_1)


def _rows() -> list[list[str]]:
    return orders_rows(DAY_1, 20)


def _set(rows: list[list[str]], line: int, column: str, value: str) -> list[list[str]]:
    """Put `value` in `column` on editor line `line` (line 1 is the header)."""
    rows[line - 2][ORDERS_HEADER.index(column)] = value
    return rows


def _without(column: str) -> str:
    keep = [i for i, name in enumerate(ORDERS_HEADER) if name != column]
    return csv_text([ORDERS_HEADER[i] for i in keep], [[row[i] for i in keep] for row in _rows()])


def _renamed(column: str, new_name: str) -> str:
    return csv_text([new_name if name == column else name for name in ORDERS_HEADER], _rows())


def _cell(line: int, column: str, value: str, newline: str = "\n") -> str:
    return csv_text(ORDERS_HEADER, _set(_rows(), line, column, value), newline=newline)


def _extra_cell_on(line: int) -> str:
    rows = _rows()
    rows[line - 2].append("surprise")
    return csv_text(ORDERS_HEADER, rows)


def _blank_lines_then_bad_cell() -> str:
    lines = csv_text(ORDERS_HEADER, _set(_rows(), 9, "customer_id", "12a")).split("\n")
    lines[3:3] = ["", ""]  # two empty lines after line 3 push the bad row from line 9 to line 11
    return "\n".join(lines)


def _two_bad_cells() -> str:
    return csv_text(ORDERS_HEADER, _set(_set(_rows(), 12, "order_id", "x"), 6, "unit_price", "1.5.0"))


def _invalid_utf8() -> bytes:
    text = csv_text(ORDERS_HEADER, _set(_rows(), 8, "product_sku", "PLACEHOLDER"))
    return text.encode("utf-8").replace(b"PLACEHOLDER", b"SKU-\xff\xfe")


CASES: dict[str, tuple[Callable[[], str | bytes], str]] = {
    "missing column": (
        lambda: _without("quantity"),
        f"{BLOB_1} line 1, column 'quantity': missing column(s) 'quantity'",
    ),
    "renamed column": (
        lambda: _renamed("unit_price", "price"),
        f"{BLOB_1} line 1, column 'unit_price': missing column(s) 'unit_price' "
        "(found unknown column(s) 'price' - renamed?)",
    ),
    "unparseable integer": (
        lambda: _cell(14, "quantity", "x"),
        f"{BLOB_1} line 14, column 'quantity': expected an integer, got 'x'",
    ),
    "decimal in integer column": (
        lambda: _cell(3, "order_id", "7.5"),
        f"{BLOB_1} line 3, column 'order_id': expected an integer, got '7.5'",
    ),
    "unparseable date": (
        lambda: _cell(5, "order_date", "2026-02-30"),
        f"{BLOB_1} line 5, column 'order_date': expected a date YYYY-MM-DD, got '2026-02-30'",
    ),
    "date in wrong format": (
        lambda: _cell(2, "order_date", "19/11/2026"),
        f"{BLOB_1} line 2, column 'order_date': expected a date YYYY-MM-DD, got '19/11/2026'",
    ),
    "unparseable timestamp": (
        lambda: _cell(21, "order_ts", "2026-11-19 25:00:00"),
        f"{BLOB_1} line 21, column 'order_ts': expected a timestamp YYYY-MM-DD HH:MM:SS, got '2026-11-19 25:00:00'",
    ),
    "timestamp with zone": (
        lambda: _cell(4, "order_ts", "2026-11-19T10:00:00+01:00"),
        f"{BLOB_1} line 4, column 'order_ts': expected a timestamp YYYY-MM-DD HH:MM:SS, got '2026-11-19T10:00:00+01:00'",
    ),
    "decimal with three places": (
        lambda: _cell(7, "unit_price", "9.999"),
        f"{BLOB_1} line 7, column 'unit_price': expected a decimal with at most 2 places (18 digits), got '9.999'",
    ),
    "garbage decimal": (
        lambda: _cell(10, "unit_price", "N/A"),
        f"{BLOB_1} line 10, column 'unit_price': expected a decimal with at most 2 places (18 digits), got 'N/A'",
    ),
    "too many cells on a line": (
        lambda: _extra_cell_on(8),
        f"{BLOB_1} line 8: expected 11 columns, got 12",
    ),
    "line numbers count blank lines": (
        _blank_lines_then_bad_cell,
        f"{BLOB_1} line 11, column 'customer_id': expected an integer, got '12a'",
    ),
    "line numbers with CRLF": (
        lambda: _cell(16, "quantity", "two", newline="\r\n"),
        f"{BLOB_1} line 16, column 'quantity': expected an integer, got 'two'",
    ),
    "first bad line wins": (
        _two_bad_cells,
        f"{BLOB_1} line 6, column 'unit_price': expected a decimal with at most 2 places (18 digits), got '1.5.0'",
    ),
    "invalid UTF-8": (
        _invalid_utf8,
        f"{BLOB_1} line 8, column 'product_sku': expected UTF-8 text, got 'SKU-\\\\xff\\\\xfe'",
    ),
    "empty file": (
        lambda: "",
        f"{BLOB_1} line 1: the file is empty; expected a header row",
    ),
}



def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]


CLI_CASES = ["first bad line wins", "invalid UTF-8", "empty file"]  # one of each kind, through the real script


@pytest.mark.parametrize("case", list(CASES))
def test_bad_file_is_rejected_and_loses_nothing(case: str, sync_landing: LandingTree, isolated_env: Path) -> None:
    _rejected_and_nothing_lost(case, sync_landing, isolated_env, run_sync_in_process)


@pytest.mark.parametrize("case", CLI_CASES)
def test_bad_file_is_rejected_by_the_command_line(case: str, sync_landing: LandingTree, isolated_env: Path) -> None:
    _rejected_and_nothing_lost(case, sync_landing, isolated_env, run_sync_script)


def _rejected_and_nothing_lost(case: str, sync_landing: LandingTree, isolated_env: Path, run_sync_script) -> None:
    make_content, message = CASES[case]
    sync_landing.write_orders("UK", DAY_1, rows=20)
    first = run_sync_script(*ARGS)
    assert first.returncode == 0, first.stderr
    day_1_parquet = isolated_env / "raw" / "UK" / "ingest_orders" / "2026" / "ingest_orders_20261119.parquet"
    good_bytes = day_1_parquet.read_bytes()

    sync_landing.write(BLOB_1, make_content())
    sync_landing.write_orders("UK", DAY_2, rows=7)
    result = run_sync_script(*ARGS)

    assert result.returncode == 65, result.stderr
    assert message in result.stderr, result.stderr
    assert day_1_parquet.read_bytes() == good_bytes
    assert _leftovers(isolated_env / "raw") == []
    assert pq.read_table(day_1_parquet.with_name("ingest_orders_20261120.parquet")).num_rows == 7
    summary = result.summary
    error = summary.pop("error")
    assert error["code"] == 65 and message in error["message"]
    assert summary == {"market": "UK", "dataset": "ingest_orders", "files_listed": 2, "files_synced": 1,
                              "files_skipped": 0, "files_failed": 1, "rows_loaded": 7}
    assert "Traceback" not in result.stderr

    # still rejected next time (the old ETag is kept, so the broken file is retried, not skipped)
    again = run_sync_script(*ARGS)
    assert again.returncode == 65 and message in again.stderr
    assert (again.summary["files_failed"], again.summary["files_skipped"]) == (1, 1)


def test_extra_column_is_dropped_with_a_warning(sync_landing: LandingTree, isolated_env: Path) -> None:
    rows = [[*row, "x", "y"] for row in orders_rows(DAY_2, 6)]
    sync_landing.write(orders_blob_name("UK", DAY_2), csv_text([*ORDERS_HEADER, "loyalty_tier", "note"], rows))

    result = run_sync_in_process(*ARGS)

    assert result.returncode == 0, result.stderr
    assert f"{orders_blob_name('UK', DAY_2)}: unknown column(s) 'loyalty_tier', 'note' dropped" in result.stderr
    table = pq.read_table(isolated_env / "raw" / "UK" / "ingest_orders" / "2026" / "ingest_orders_20261120.parquet")
    assert table.column_names == [*ORDERS_HEADER, "_source_blob", "_file_date"]
    assert table.num_rows == 6


def test_columns_in_another_order_are_accepted(sync_landing: LandingTree, isolated_env: Path) -> None:
    order = list(reversed(ORDERS_HEADER))
    rows = [[row[ORDERS_HEADER.index(name)] for name in order] for row in orders_rows(DAY_2, 4)]
    sync_landing.write(orders_blob_name("UK", DAY_2), csv_text(order, rows))

    result = run_sync_in_process(*ARGS)

    assert result.returncode == 0, result.stderr
    table = pq.read_table(isolated_env / "raw" / "UK" / "ingest_orders" / "2026" / "ingest_orders_20261120.parquet")
    assert table.column_names[:11] == ORDERS_HEADER
    assert table.column("order_id").to_pylist() == [1, 2, 3, 4]


# --- the first faulty line is named, whichever kinds of fault a file holds -----------------------------------
# Class: two faults in one file, one the reader finds line by line before it parses (a stray or unclosed quote,
# a carriage return inside a line) and one found later (a cell that does not parse, a wrong cell count, a value
# rule, a duplicate key), on any two lines in either order: the message names the earlier line and its fault.

LINE_FAULTS = {  # found before parsing: (value for product_sku, what the message says)
    "stray quote": ('SK"U', "column 'product_sku': a stray '\"'"),
    "unclosed quote": ('"SKU', "column 'product_sku': a quoted value is not closed on its line"),
    "carriage return": ("SKU\rX", ": a carriage return inside the line"),
}
CELL_FAULTS = {  # found by the parse or the value rules: (column, value; None: an extra cell), what the message says
    "not an integer": (("quantity", "x"), "column 'quantity': expected an integer, got 'x'"),
    "not a date": (("order_date", "2026-13-01"), "column 'order_date': expected a date YYYY-MM-DD"),
    "quantity 0": (("quantity", "0"), "column 'quantity': expected an integer >= 1"),
    "another market's currency": (("currency", "EUR"), "column 'currency': expected the market's currency 'GBP'"),
    "duplicate order_line_id": (("order_line_id", "10"), "column 'order_line_id': duplicate value 10"),
    "an extra cell": (None, ": expected 11 columns, got 12"),
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(line_fault=st.sampled_from(sorted(LINE_FAULTS)), cell_fault=st.sampled_from(sorted(CELL_FAULTS)),
       lines=st.lists(st.integers(3, 21), min_size=2, max_size=2, unique=True))
def test_the_first_faulty_line_is_named_whatever_its_kind(sync_landing, isolated_env, line_fault, cell_fault, lines):
    """Line 2 holds order_line_id 10, so the duplicate fault is always on a later line."""
    line_at, cell_at = lines
    rows = _rows()
    value, line_message = LINE_FAULTS[line_fault]
    _set(rows, line_at, "product_sku", value)
    change, cell_message = CELL_FAULTS[cell_fault]
    if change is None:
        rows[cell_at - 2].append("surprise")
    else:
        _set(rows, cell_at, *change)
    sync_landing.write(BLOB_1, csv_text(ORDERS_HEADER, rows))

    result = run_sync_in_process(*ARGS)

    first, expected = (line_at, line_message) if line_at < cell_at else (cell_at, cell_message)
    assert result.returncode == 65, result.stderr
    message = result.summary["error"]["message"]
    named = message[message.index(BLOB_1):]
    assert named.startswith(f"{BLOB_1} line {first}") and expected in named, (line_fault, cell_fault, lines, message)


# Class: a value-rule fault (found last, on the parsed table) and a fault the reader finds by any other means (a
# byte that is not UTF-8 in a dropped extra column or in a contract column, a cell that does not parse, a wrong
# cell count, an over-long value), on any two lines in either order: the message names the earlier line.

VALUE_FAULTS = {  # (column, value), what the message says
    "quantity 0": (("quantity", "0"), "column 'quantity': expected an integer >= 1, got '0'"),
    "another market's currency": (("currency", "EUR"), "column 'currency': expected the market's currency 'GBP'"),
    "a status not in the list": (("status", "LOST"), "column 'status': expected one of"),
    "order_date after the file date": (("order_date", "2026-11-20"), "column 'order_date': expected a date not after"),
    "duplicate order_line_id": (("order_line_id", "10"), "column 'order_line_id': duplicate value 10 (first on line 2)"),
}
READER_FAULTS = {  # (column or None: an extra cell, value), what the message says
    "not UTF-8 in the extra column": (("note", "\x00BAD\x00"), "column 'note': expected UTF-8 text, got 'caf\\\\xe9'"),
    "not UTF-8 in a contract column": (("product_sku", "\x00BAD\x00"), "column 'product_sku': expected UTF-8 text"),
    "not an integer": (("quantity", "x"), "column 'quantity': expected an integer, got 'x'"),
    "an extra cell": (None, ": expected 12 columns, got 13"),
    "a value too long": (("product_sku", "K" * 70_000), "column 'product_sku': a value of 70,000 bytes"),
}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value_fault=st.sampled_from(sorted(VALUE_FAULTS)), reader_fault=st.sampled_from(sorted(READER_FAULTS)),
       lines=st.lists(st.integers(3, 21), min_size=2, max_size=2, unique=True))
def test_a_value_rule_above_any_other_fault_is_named(sync_landing, isolated_env, value_fault, reader_fault, lines):
    """An unknown extra column 'note' stands last; line 2 holds order_line_id 10."""
    value_at, reader_at = lines
    header, rows = [*ORDERS_HEADER, "note"], [[*row, "ok"] for row in _rows()]
    (column, value), value_message = VALUE_FAULTS[value_fault]
    rows[value_at - 2][header.index(column)] = value
    change, reader_message = READER_FAULTS[reader_fault]
    if change is None:
        rows[reader_at - 2].append("surprise")
    else:
        rows[reader_at - 2][header.index(change[0])] = change[1]
    sync_landing.write(BLOB_1, csv_text(header, rows).encode().replace(b"\x00BAD\x00", b"caf\xe9"))

    result = run_sync_in_process(*ARGS)

    first, expected = (value_at, value_message) if value_at < reader_at else (reader_at, reader_message)
    assert result.returncode == 65, result.stderr
    message = result.summary["error"]["message"]
    named = message[message.index(BLOB_1):]
    assert named.startswith(f"{BLOB_1} line {first}") and expected in named, (value_fault, reader_fault, lines, message[:300])


def test_the_command_line_names_a_value_rule_above_a_byte_that_is_not_utf8(sync_landing, isolated_env) -> None:
    """Through the real script: exit 65, the JSON line's error names the earlier line, no traceback, nothing written."""
    header, rows = [*ORDERS_HEADER, "note"], [[*row, "ok"] for row in _rows()]
    rows[9 - 2][-1] = "\x00BAD\x00"
    rows[4 - 2][ORDERS_HEADER.index("quantity")] = "0"
    sync_landing.write(BLOB_1, csv_text(header, rows).encode().replace(b"\x00BAD\x00", b"gold\xa0"))

    result = run_sync_script(*ARGS)

    assert result.returncode == 65, result.stderr
    expected = f"{BLOB_1} line 4, column 'quantity': expected an integer >= 1, got '0'"
    assert result.summary["error"] == {"code": 65, "message": result.summary["error"]["message"]}
    assert expected in result.summary["error"]["message"] and expected in result.stderr
    assert "Traceback" not in result.stderr
    assert not (isolated_env / "raw" / "UK" / "ingest_orders" / "2026" / "ingest_orders_20261119.parquet").exists()
    assert _leftovers(isolated_env / "raw") == []
