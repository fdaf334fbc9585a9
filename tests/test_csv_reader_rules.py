"""The strict CSV reader's quoting rules, in-process (the sync's command line is tests/test_sync_bad_input.py's).

Class: quoted values, as exports write them: a quoted value may hold commas and doubled quotes, lines may be
separated by LF or CRLF, blank lines between rows are skipped, the last line may lack its line break; a
quoted value that runs over a line break is refused naming the line and the column. Generated files are
checked against Python's csv module as the oracle.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.plugins.azurite import ORDERS_HEADER, orders_rows

DAY = dt.date(2026, 11, 19)
BLOB = "UK/raw_data/DWH/Oracle/ingest_orders/2026/ingest_orders_20261119.csv"
SKU = ORDERS_HEADER.index("product_sku")


def _read(path: Path):
    from azure_sync.csv_reader import read_strict_csv
    from pipeline_common.config import load_pipeline_config

    return read_strict_csv(path, BLOB, load_pipeline_config().dataset_type("ingest_orders").column_types)


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


@settings(max_examples=50, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    skus=st.lists(st.text(alphabet=st.sampled_from('ABC-1, "x'), min_size=1, max_size=12), min_size=1, max_size=6),
    quote_all=st.booleans(),
    newline=st.sampled_from(["\n", "\r\n"]),
    blank_lines=st.lists(st.integers(1, 6), max_size=2),
    final_newline=st.booleans(),
)
def test_quoted_values_are_read_as_the_csv_module_reads_them(tmp_path_factory, skus, quote_all, newline, blank_lines,
                                                               final_newline) -> None:
    rows = orders_rows(DAY, len(skus))
    lines = [",".join(ORDERS_HEADER)]
    for row, sku in zip(rows, skus):
        cells = [_quote(c) if quote_all and i not in (0, 1, 7, 8) else c for i, c in enumerate(row)]
        cells[SKU] = _quote(sku) if (quote_all or any(ch in sku for ch in ',"')) else sku
        lines.append(",".join(cells))
    for position in sorted(blank_lines, reverse=True):  # blank lines between rows (never before the header)
        lines.insert(min(position, len(lines)), "")
    text = newline.join(lines) + (newline if final_newline else "")
    path = tmp_path_factory.mktemp("csv") / "orders.csv"
    path.write_bytes(text.encode("utf-8"))

    expected = [r[SKU] for r in csv.reader(io.StringIO(text, newline="")) if r][1:]  # the oracle
    table = _read(path).table
    assert table.column("product_sku").to_pylist() == expected == skus
    assert table.num_rows == len(skus)


@pytest.mark.parametrize(("newline", "line"), [("\n", 3), ("\r\n", 3)])
def test_a_quoted_value_over_a_line_break_is_refused_naming_the_line(tmp_path, newline, line) -> None:
    from azure_sync.csv_reader import BadFileError

    rows = orders_rows(DAY, 4)
    rows[line - 2][SKU] = f'"SKU{newline}broken"'
    path = tmp_path / "orders.csv"
    path.write_bytes(newline.join([",".join(ORDERS_HEADER), *(",".join(r) for r in rows)]).encode("utf-8") + b"\n")
    with pytest.raises(BadFileError) as caught:
        _read(path)
    assert str(caught.value) == (f"{BLOB} line {line}, column 'product_sku': a quoted value is not closed on its line "
                                 "(a line break inside quotes, or the file is cut)")
