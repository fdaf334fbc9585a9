"""sync_azure.py against the faults of issue 10: value rules, quoting, size, position, path layout, arguments.

All file faults run in ONE sync: each fault replaces a different day's good file. The run must exit
65, name every fault by blob, line and column, keep every earlier Parquet byte-identical, still sync
the good day, leave no temporary file, and never print a traceback.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.plugins.azurite import ORDERS_HEADER, LandingTree, csv_text, orders_blob_name, orders_rows, run_sync_script

AS_OF = dt.date(2026, 11, 20)
BLOCK_BYTES = 1 << 20  # the CSV reader's parse block: a fault exactly on its boundary must still be named
BOUNDARY_LINE = 11_000
ROWS = 20


def _rows(day: dt.date) -> list[list[str]]:
    return orders_rows(day, ROWS)


def _set(rows: list[list[str]], line: int, column: str, value: str) -> list[list[str]]:
    """Put `value` in `column` on editor line `line` (line 1 is the header)."""
    rows[line - 2][ORDERS_HEADER.index(column)] = value
    return rows


def _cell(day: dt.date, line: int, column: str, value: str) -> str:
    return csv_text(ORDERS_HEADER, _set(_rows(day), line, column, value))


def _quoted_line_break_at(day: dt.date, offset: int) -> str:
    """Line BOUNDARY_LINE holds a quoted value whose line break sits exactly at byte `offset`."""
    rows = orders_rows(day, BOUNDARY_LINE + 500)
    sku = ORDERS_HEADER.index("product_sku")
    before = csv_text(ORDERS_HEADER, rows[: BOUNDARY_LINE - 2])
    line = rows[BOUNDARY_LINE - 2]
    prefix = before + ",".join(line[:sku]) + ',"SKU'
    assert len(prefix) < offset, "not enough rows before the boundary"
    line[sku] = '"SKU' + "X" * (offset - len(prefix)) + '\nY"'
    text = before + ",".join(line) + "\n" + csv_text(ORDERS_HEADER, rows[BOUNDARY_LINE - 1:]).split("\n", 1)[1]
    assert text.encode()[offset:offset + 1] == b"\n"
    return text


def _cut_inside_quotes(day: dt.date) -> str:
    text = _cell(day, ROWS + 1, "status", '"COMPLETED"').rstrip("\n")
    return text[: -len('LETED"')]  # ends in  ,"COMP


def _cut_mid_line(day: dt.date) -> str:
    return csv_text(ORDERS_HEADER, _rows(day)).rstrip("\n").rsplit(",", 6)[0]


# name -> (content for a day, expected message tail after "<blob> ")
FAULTS: dict[str, tuple[Callable[[dt.date], str], Callable[[dt.date], str]]] = {
    "a 5 MB field": (
        lambda d: _cell(d, 12, "product_sku", "A" * 5_000_000),
        lambda d: "line 12: the line is 5,000,",
    ),
    "a 100 kB value": (
        lambda d: _cell(d, 5, "product_sku", "B" * 100_000),
        lambda d: "line 5, column 'product_sku': a value of 100,000 bytes (at most 65,536 allowed)",
    ),
    "quoted line break on the parser's block boundary": (
        lambda d: _quoted_line_break_at(d, BLOCK_BYTES),
        lambda d: f"line {BOUNDARY_LINE}, column 'product_sku': a quoted value is not closed on its line",
    ),
    "quoted line break one byte after the block boundary": (
        lambda d: _quoted_line_break_at(d, BLOCK_BYTES + 1),
        lambda d: f"line {BOUNDARY_LINE}, column 'product_sku': a quoted value is not closed on its line",
    ),
    "quoted line break mid-file": (
        lambda d: _cell(d, 9, "product_sku", '"SKU\n1"'),
        lambda d: "line 9, column 'product_sku': a quoted value is not closed on its line",
    ),
    "file cut inside an open quoted last field": (
        _cut_inside_quotes,
        lambda d: f"line {ROWS + 1}, column 'status': a quoted value is not closed on its line",
    ),
    "stray quote inside a value": (
        lambda d: _cell(d, 4, "product_sku", 'SKU"1'),
        lambda d: "line 4, column 'product_sku': a stray '\"'",
    ),
    "text after a closing quote": (
        lambda d: _cell(d, 6, "channel", '"WEB"X'),
        lambda d: "line 6, column 'channel': a stray '\"'",
    ),
    "file cut in the middle of a line": (
        _cut_mid_line,
        lambda d: f"line {ROWS + 1}: expected 11 columns, got 5",
    ),
    "header only": (
        lambda d: csv_text(ORDERS_HEADER, []),
        lambda d: "line 2: the file has a header but no data rows",
    ),
    "duplicate order_line_id": (
        lambda d: _cell(d, 9, "order_line_id", "30"),
        lambda d: "line 9, column 'order_line_id': duplicate value 30 (first on line 4)",
    ),
    "negative quantity": (
        lambda d: _cell(d, 6, "quantity", "-2"),
        lambda d: "line 6, column 'quantity': expected an integer >= 1, got '-2'",
    ),
    "zero quantity": (
        lambda d: _cell(d, 3, "quantity", "0"),
        lambda d: "line 3, column 'quantity': expected an integer >= 1, got '0'",
    ),
    "empty quantity": (
        lambda d: _cell(d, 8, "quantity", ""),
        lambda d: "line 8, column 'quantity': expected a value (the column may not be empty), got an empty value",
    ),
    "negative price": (
        lambda d: _cell(d, 10, "unit_price", "-1.00"),
        lambda d: "line 10, column 'unit_price': expected a number >= 0, got '-1.00'",
    ),
    "another market's currency": (
        lambda d: _cell(d, 11, "currency", "EUR"),
        lambda d: "line 11, column 'currency': expected the market's currency 'GBP', got 'EUR'",
    ),
    "unknown status": (
        lambda d: _cell(d, 12, "status", "COMPLET"),
        lambda d: "line 12, column 'status': expected one of COMPLETED, SHIPPED, CANCELLED, RETURNED, got 'COMPLET'",
    ),
    "unknown channel": (
        lambda d: _cell(d, 13, "channel", "web"),
        lambda d: "line 13, column 'channel': expected one of TV, WEB, APP, PHONE, got 'web'",
    ),
    "order_date after the file date": (
        lambda d: _cell(d, 7, "order_date", (d + dt.timedelta(days=1)).isoformat()),
        lambda d: f"line 7, column 'order_date': expected a date not after the file date {d.isoformat()}, "
                  f"got '{(d + dt.timedelta(days=1)).isoformat()}'",
    ),
    "first of two rule breaks wins": (
        lambda d: csv_text(ORDERS_HEADER, _set(_set(_rows(d), 15, "quantity", "0"), 5, "currency", "JPY")),
        lambda d: "line 5, column 'currency': expected the market's currency 'GBP', got 'JPY'",
    ),
}
FAULT_DAYS = {name: AS_OF - dt.timedelta(days=1 + index) for index, name in enumerate(FAULTS)}
DAYS_BACK = len(FAULTS) + 1


def _parquet(data_dir: Path, day: dt.date) -> Path:
    return data_dir / "raw" / "UK" / "ingest_orders" / f"{day:%Y}" / f"ingest_orders_{day:%Y%m%d}.parquet"


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]


def _sync(*extra: str):
    return run_sync_script("--market", "UK", "--dataset", "ingest_orders", "--days-back", str(DAYS_BACK),
                           "--as-of", AS_OF.isoformat(), *extra)


def test_every_fault_is_named_and_nothing_is_lost(sync_landing: LandingTree, isolated_env: Path) -> None:
    for day in [AS_OF, *FAULT_DAYS.values()]:
        sync_landing.write_orders("UK", day, rows=ROWS)
    first = _sync()
    assert first.returncode == 0, first.stderr
    before = {name: _parquet(isolated_env, day).read_bytes() for name, day in FAULT_DAYS.items()}

    for name, day in FAULT_DAYS.items():
        sync_landing.write(orders_blob_name("UK", day), FAULTS[name][0](day))
    sync_landing.write_orders("UK", AS_OF, rows=ROWS + 3)  # the good day changed too: it must still sync
    result = _sync()

    assert result.returncode == 65, result.stderr
    assert "Traceback" not in result.stderr
    missing = []
    for name, day in FAULT_DAYS.items():
        expected = f"{orders_blob_name('UK', day)} {FAULTS[name][1](day)}"
        if expected not in result.stderr:
            missing.append(f"{name}: {expected}")
    assert not missing, "\n".join(missing) + "\n---\n" + result.stderr[-6000:]
    changed = [name for name, day in FAULT_DAYS.items() if _parquet(isolated_env, day).read_bytes() != before[name]]
    assert changed == []
    assert pq.read_table(_parquet(isolated_env, AS_OF)).num_rows == ROWS + 3
    assert _leftovers(isolated_env / "raw") == []
    summary = result.summary
    assert summary["error"]["code"] == 65
    assert (summary["files_synced"], summary["files_failed"], summary["rows_loaded"]) == (1, len(FAULTS), ROWS + 3)


# --- path layout (contract section 3) ---------------------------------------------------------------


def test_misplaced_and_undated_files_are_ignored_and_counted(sync_landing: LandingTree, isolated_env: Path) -> None:
    day = dt.date(2026, 1, 2)
    good = sync_landing.write_orders("UK", day, rows=322)
    args = ("--market", "UK", "--dataset", "ingest_orders", "--days-back", "5", "--as-of", day.isoformat())
    assert run_sync_script(*args).returncode == 0
    parquet = _parquet(isolated_env, day)
    good_bytes = parquet.read_bytes()

    stray = "UK/raw_data/DWH/Oracle/ingest_orders/2025/ingest_orders_20260102.csv"
    undated = "UK/raw_data/DWH/Oracle/ingest_orders/2026/ingest_orders_20261399.csv"
    sync_landing.write(stray, csv_text(ORDERS_HEADER, orders_rows(day, 1)))
    sync_landing.write(undated, csv_text(ORDERS_HEADER, orders_rows(day, 2)))
    result = run_sync_script(*args)

    assert result.returncode == 0, result.stderr
    assert parquet.read_bytes() == good_bytes, "a stray file must never replace the correctly placed day"
    assert result.summary["files_ignored"] == 2
    assert result.summary["files_synced"] == 0 and result.summary["files_skipped"] == 1
    assert f"{stray} (a file dated 2026-01-02 in year folder 2025)" in result.stderr
    assert f"{undated} (20261399 is not a real date)" in result.stderr
    assert "WARNING" in result.stderr
    assert good.is_file()


def test_a_clean_run_has_the_contracts_summary_keys(sync_landing: LandingTree) -> None:
    sync_landing.write_orders("UK", AS_OF, rows=3)
    result = run_sync_script("--market", "UK", "--dataset", "ingest_orders", "--days-back", "1",
                             "--as-of", AS_OF.isoformat())
    assert result.returncode == 0
    assert list(result.summary) == ["market", "dataset", "files_listed", "files_synced", "files_skipped",
                                    "files_failed", "rows_loaded"]


# --- arguments --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--days-back", "10000000"), "--days-back must be between 1 and 3660, got 10000000"),
        (("--days-back", "0"), "--days-back must be between 1 and 3660, got 0"),
        (("--as-of", "0001-01-05"), "--as-of 0001-01-05 is too early"),
    ],
)
def test_out_of_range_arguments_are_configuration_errors(args: tuple[str, ...], message: str,
                                                         sync_landing: LandingTree) -> None:
    result = run_sync_script("--market", "UK", "--dataset", "ingest_orders", *args)
    assert result.returncode == 78, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
