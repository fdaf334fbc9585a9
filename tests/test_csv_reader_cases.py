"""The strict CSV reader's checks, in-process, one class of bad file at a time (the sync's view of the same
files is tests/test_sync_bad_input.py; this file calls the reader itself, so the mutation script sees it).

Classes, each with the exact message the contract's "bad input" section asks for (blob, line, column):
the header (empty file, not UTF-8, not a CSV row, duplicate or missing columns, longer than a parse block);
a header with no rows; each contract type's exact text (a curated list of accepted and refused spellings,
checked against a pure-Python oracle written here, and generated files where the first bad cell in file
order must be named); overlong values and lines; quoting (stray quotes, a file cut inside quotes); wrong
column counts; invalid UTF-8. The diagnosis that names the line when the typed read fails is checked
against the same expected messages, and the reference scan (its last word) must agree with them.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.plugins.azurite import ORDERS_HEADER, csv_text, orders_rows
from tests.test_sync_bad_input import BLOB_1, CASES

DAY = dt.date(2026, 11, 19)
BLOB = BLOB_1
EXPECTED = {  # the contract's wording of each type
    "integer": "an integer",
    "date": "a date YYYY-MM-DD",
    "timestamp": "a timestamp YYYY-MM-DD HH:MM:SS",
    "decimal": "a decimal with at most 2 places (18 digits)",
    "string": "UTF-8 text",
}
COLUMN_OF = {"integer": "quantity", "date": "order_date", "timestamp": "order_ts", "decimal": "unit_price"}

# Spellings of each type, as exports write them, with the contract's verdict (True: accepted).
SPELLINGS: dict[str, list[tuple[str, bool]]] = {
    "integer": [("0", True), ("42", True), ("-7", True), ("9223372036854775807", True),
                ("-9223372036854775808", True), ("9223372036854775808", False), ("-9223372036854775809", False), ("0x10", False), ("1e2", False),
                ("7.5", False), ("+5", False), (" 5", False), ("5 ", False), ("-", False), ("--5", False),
                ("NA", False), ("NULL", False), ("nan", False), ("1_000", False), ("١٢", False), ("5-", False),
                ("-0x10", False)],
    "date": [("2026-11-19", True), ("2024-02-29", True), ("2026-02-30", False), ("2026-02-29", False),
             ("19/11/2026", False), (" 2026-11-19", False), ("2026-11-19 ", False), ("2026-11-19 00:00:00", False),
             ("20261119", False), ("2026-1-19", False), ("2026-13-01", False), ("NA", False)],
    "timestamp": [("2026-11-19 10:00:00", True), ("2026-11-19 23:59:59", True), ("2026-11-19T10:00:00", False),
                  ("2026-11-19 25:00:00", False), ("2026-11-19 10:00", False), ("2026-11-19", False),
                  ("2026-11-19 10:00:00+01:00", False), ("2026-11-19 10:00:00.5", False), ("2026-11-19 10:60:00", False),
                  (" 2026-11-19 10:00:0", False)],
    "decimal": [("0", True), ("9.99", True), ("-1.25", True), ("12.5", True), ("-3", True), ("100", True),
                ("9999999999999999.99", True), ("-9999999999999999.99", True), ("10000000000000000", False),
                ("-10000000000000000", False), ("9.999", False), ("9.990", False), ("1.5.0", False),
                ("1.", False), (".5", False), ("-.5", False), ("N/A", False), ("1e2", False), ("+1.00", False),
                ("1_50", False), ("0x1", False), ("-", False), ("- 1", False), ("1 ", False)],
}


def _oracle_accepts(value: str, kind: str) -> bool:
    """The contract's text of each type, read in plain Python (independent of the reader)."""
    patterns = {"integer": r"-?[0-9]+", "date": r"[0-9]{4}-[0-9]{2}-[0-9]{2}",
                "timestamp": r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}",
                "decimal": r"-?[0-9]+(\.[0-9]{1,2})?"}
    if re.fullmatch(patterns[kind], value) is None:
        return False
    try:
        if kind == "integer":
            return -(2**63) <= int(value) <= 2**63 - 1
        if kind == "date":
            dt.date.fromisoformat(value)
        elif kind == "timestamp":
            dt.datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
        else:
            return abs(decimal.Decimal(value)) < 10**16
    except ValueError:
        return False
    return True


def _columns() -> dict[str, str]:
    from pipeline_common.config import load_pipeline_config

    return load_pipeline_config().dataset_type("ingest_orders").column_types


def _write(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "orders.csv"
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def _refused(path: Path) -> str:
    from azure_sync.csv_reader import BadFileError, read_strict_csv

    with pytest.raises(BadFileError) as caught:
        read_strict_csv(path, BLOB, _columns())
    return str(caught.value)


def _refused_by_the_fast_path(path: Path) -> str:
    """The refusal of the one typed read alone, without the diagnosis that takes over when it fails (on a large
    file the diagnosis's last word is a line-by-line Python scan): a fault of a kind the fast path checks must
    be named by the fast path itself."""
    from azure_sync.csv_reader import BadFileError, _read

    with pytest.raises(BadFileError) as caught:
        _read(path.read_bytes(), BLOB, _columns(), True)
    return str(caught.value)


def _with(line: int, column: str, value: str, rows: int = 12) -> list[list[str]]:
    cells = orders_rows(DAY, rows)
    cells[line - 2][ORDERS_HEADER.index(column)] = value
    return cells


@pytest.mark.parametrize("case", list(CASES))
def test_each_bad_file_of_the_sync_cases_is_refused_with_its_message(tmp_path, case) -> None:
    make_content, message = CASES[case]
    assert _refused(_write(tmp_path, make_content())) == message


@pytest.mark.parametrize("kind", list(SPELLINGS))
def test_the_curated_spellings_agree_with_the_oracle(kind) -> None:
    """The verdicts written above are the contract's, and the plain-Python oracle reads them the same way."""
    assert [(v, _oracle_accepts(v, kind)) for v, _ in SPELLINGS[kind]] == SPELLINGS[kind]


@pytest.mark.parametrize(("kind", "value", "accepted"),
                         [(k, v, ok) for k, spellings in SPELLINGS.items() for v, ok in spellings])
def test_each_spelling_of_each_type_is_accepted_or_refused_by_the_contract(tmp_path, kind, value, accepted) -> None:
    from azure_sync.csv_reader import read_strict_csv

    column = COLUMN_OF[kind]
    path = _write(tmp_path, csv_text(ORDERS_HEADER, _with(5, column, value)))
    if accepted:
        read = read_strict_csv(path, BLOB, _columns()).table.column(column).to_pylist()[3]
        expected = {"integer": int, "date": dt.date.fromisoformat, "decimal": decimal.Decimal,
                    "timestamp": lambda v: dt.datetime.strptime(v, "%Y-%m-%d %H:%M:%S")}[kind](value)
        assert read == expected
    else:
        assert _refused(path) == f"{BLOB} line 5, column {column!r}: expected {EXPECTED[kind]}, got {value!r}"
        assert _refused_by_the_fast_path(path) == _refused(path)


@st.composite
def _typed_files(draw):
    """Orders files where some typed cells carry curated spellings (accepted or not) or are empty."""
    rows = draw(st.integers(2, 15))
    cells = orders_rows(DAY, rows)
    placed = draw(st.lists(st.tuples(st.integers(0, rows - 1), st.sampled_from(sorted(COLUMN_OF))), max_size=6))
    for row, kind in placed:
        cells[row][ORDERS_HEADER.index(COLUMN_OF[kind])] = draw(st.sampled_from([*SPELLINGS[kind], ("", True)]))[0]
    return cells, draw(st.sampled_from(["\n", "\r\n"]))


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(generated=_typed_files())
def test_the_first_refused_cell_in_file_order_is_named_by_every_reading(tmp_path_factory, generated) -> None:
    """The typed read, the diagnosis and the plain-Python reference scan name the same first bad cell."""
    from azure_sync.csv_reader import _first_bad_cell, _reference_scan, diagnose, read_strict_csv

    cells, newline = generated
    kinds = _columns()
    bad = [(line, name, row[ORDERS_HEADER.index(name)]) for line, row in enumerate(cells, start=2)
           for name in ORDERS_HEADER if kinds[name] != "string" and row[ORDERS_HEADER.index(name)] != ""
           and not _oracle_accepts(row[ORDERS_HEADER.index(name)], kinds[name])]  # an empty cell is read as null
    content = csv_text(ORDERS_HEADER, cells, newline=newline).encode("utf-8")
    path = tmp_path_factory.mktemp("typed") / "orders.csv"
    path.write_bytes(content)
    if not bad:
        table = read_strict_csv(path, BLOB, kinds).table
        quantities, prices = ([r[ORDERS_HEADER.index(name)] for r in cells] for name in ("quantity", "unit_price"))
        assert table.column("quantity").to_pylist() == [int(v) if v else None for v in quantities]
        assert table.column("unit_price").to_pylist() == [decimal.Decimal(v) if v else None for v in prices]
        assert diagnose(content, BLOB, kinds, "E" * 400) == (
            f"{BLOB}: the file could not be read as CSV ({'E' * 300}...); no single line could be named")
        assert _first_bad_cell(content, BLOB, kinds) is None
        return
    line, name, value = bad[0]
    message = f"{BLOB} line {line}, column {name!r}: expected {EXPECTED[kinds[name]]}, got {value!r}"
    assert _refused(path) == message
    assert _refused_by_the_fast_path(path) == message
    assert diagnose(content, BLOB, kinds, "parser message") == message
    assert _reference_scan(content, BLOB, kinds) == message
    assert _first_bad_cell(content, BLOB, kinds) == message  # the vectorised finder on its own, as on a large file


@pytest.mark.parametrize(("content", "message"), [
    ("\n\n", "line 1: the file is empty; expected a header row"),
    ("\ufeff" + ",".join(ORDERS_HEADER) + "\n", "line 2: the file has a header but no data rows"),
    (",".join(ORDERS_HEADER) + "\n", "line 2: the file has a header but no data rows"),
    (",".join(ORDERS_HEADER), "line 2: the file has a header but no data rows"),  # no final line break
    (",".join(ORDERS_HEADER) + "\r", "line 2: the file has a header but no data rows"),
    (",".join(ORDERS_HEADER) + "\r\n\r\n\n", "line 2: the file has a header but no data rows"),
    (",".join([*ORDERS_HEADER, "quantity", "status"]) + "\n1\n", "line 1: duplicate column(s) 'quantity', 'status'"),
    (",".join(h for h in ORDERS_HEADER if h not in ("quantity", "status")) + "\n1\n",
     "line 1, column 'quantity': missing column(s) 'quantity', 'status'"),
    (",".join(ORDERS_HEADER).encode("utf-8") + b",caf\xe9\n", "line 1: the header is not UTF-8 text"),
    ('order_id,"order_line_id\n1,2\n', "line 1: the header is not a CSV row (unexpected end of data)"),
    (",".join(ORDERS_HEADER).replace("order_line_id", 'order"_line_id') + "\n1\n",
     "line 1, column 'order_line_id': missing column(s) 'order_line_id' (found unknown column(s) 'order\"_line_id' - renamed?)"),
    # two columns renamed: both named, in header order
    (",".join(ORDERS_HEADER).replace("quantity", "qty").replace("status", "state") + "\n1\n",
     "line 1, column 'quantity': missing column(s) 'quantity', 'status' (found unknown column(s) 'qty', 'state' - renamed?)"),
    # a trailing space is part of the name, also on the last column of the header line
    (",".join(ORDERS_HEADER) + " \n1\n",
     "line 1, column 'status': missing column(s) 'status' (found unknown column(s) 'status ' - renamed?)"),
])
def test_each_header_fault_is_named_on_line_1(tmp_path, content, message) -> None:
    refused = _refused(_write(tmp_path, content))
    assert refused == f"{BLOB} {message}"


def test_a_header_longer_than_half_a_parse_block_is_refused(tmp_path) -> None:
    header = ",".join([*ORDERS_HEADER, "x" * 600_000])
    assert _refused(_write(tmp_path, header + "\n1\n")) == f"{BLOB} line 1: the header is longer than 524,288 bytes"
    assert _refused(_write(tmp_path, header)) == f"{BLOB} line 1: the header is longer than 524,288 bytes"


def test_a_header_with_a_bom_and_crlf_reads_and_extra_columns_are_dropped(tmp_path) -> None:
    from azure_sync.csv_reader import read_strict_csv

    rows = [[*row, "gold"] for row in orders_rows(DAY, 3)]
    text = "\ufeff" + csv_text([*ORDERS_HEADER, "loyalty_tier"], rows, newline="\r\n")
    parsed = read_strict_csv(_write(tmp_path, text), BLOB, _columns())
    assert parsed.table.column_names == ORDERS_HEADER
    assert parsed.dropped_columns == ["loyalty_tier"]
    assert parsed.table.column("status").to_pylist() == [r[-2] for r in rows]
    assert [parsed.line_of_row(i) for i in range(3)] == [2, 3, 4]


@pytest.mark.parametrize("size", [65_537, 200_000])
def test_a_value_over_64_kib_is_refused_naming_line_column_and_size(tmp_path, size) -> None:
    cells = _with(7, "channel", "W" * size)
    assert _refused(_write(tmp_path, csv_text(ORDERS_HEADER, cells))) == (
        f"{BLOB} line 7, column 'channel': a value of {size:,} bytes (at most 65,536 allowed)")


def test_a_value_of_exactly_64_kib_is_kept(tmp_path) -> None:
    from azure_sync.csv_reader import read_strict_csv

    cells = _with(7, "channel", "W" * 65_536)
    table = read_strict_csv(_write(tmp_path, csv_text(ORDERS_HEADER, cells)), BLOB, _columns()).table
    assert len(table.column("channel")[5].as_py()) == 65_536


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_line_longer_than_half_a_parse_block_is_named_by_the_diagnosis(tmp_path, newline) -> None:
    from azure_sync.csv_reader import _first_overlong_line, _reference_scan, diagnose

    cells = orders_rows(DAY, 6)
    cells[3][ORDERS_HEADER.index("product_sku")] = "S" * 1_100_000
    content = csv_text(ORDERS_HEADER, cells, newline=newline)
    length = len(",".join(cells[3]))
    message = f"{BLOB} line 5: the line is {length:,} bytes long (at most 524,288 allowed)"
    assert _refused(_write(tmp_path, content)) == (  # the typed read takes it; its overlong value is refused
        f"{BLOB} line 5, column 'product_sku': a value of 1,100,000 bytes (at most 65,536 allowed)")
    assert diagnose(content.encode(), BLOB, _columns(), "x") == message
    assert _reference_scan(content.encode(), BLOB, _columns()) == message
    assert _first_overlong_line(content.encode(), BLOB) == message  # the vectorised finder on its own
    assert _first_overlong_line(csv_text(ORDERS_HEADER, orders_rows(DAY, 6)).encode(), BLOB) is None


@pytest.mark.parametrize(("line", "value", "why"), [
    (4, 'SKU"1', "a stray '\"' (a quote may only enclose a whole value; write it as \"\" inside one)"),
    (6, '"SKU"1', "a stray '\"' (a quote may only enclose a whole value; write it as \"\" inside one)"),
    (3, 'S"K"U', "a stray '\"' (a quote may only enclose a whole value; write it as \"\" inside one)"),
    (9, '"SKU', "a quoted value is not closed on its line (a line break inside quotes, or the file is cut)"),
    (2, '"a""b', "a quoted value is not closed on its line (a line break inside quotes, or the file is cut)"),
])
def test_each_quoting_fault_names_its_line_and_column(tmp_path, line, value, why) -> None:
    cells = _with(line, "product_sku", value)
    for row in cells[line - 1:]:  # later values properly quoted: only the faulty line is to be named
        row[ORDERS_HEADER.index("product_sku")] = '"' + row[ORDERS_HEADER.index("product_sku")] + '"'
    path = _write(tmp_path, csv_text(ORDERS_HEADER, cells))
    assert _refused(path) == _refused_by_the_fast_path(path) == f"{BLOB} line {line}, column 'product_sku': {why}"


def test_a_file_cut_inside_a_quoted_last_value_is_refused(tmp_path) -> None:
    cells = orders_rows(DAY, 5)
    text = csv_text(ORDERS_HEADER, cells).rstrip("\n")
    cut = text[: text.rindex(",") + 1] + '"COMPLET'
    assert _refused(_write(tmp_path, cut)) == (
        f"{BLOB} line 6, column 'status': a quoted value is not closed on its line "
        "(a line break inside quotes, or the file is cut)")


def test_a_quote_right_after_the_bom_opens_the_first_value(tmp_path) -> None:
    from azure_sync.csv_reader import read_strict_csv

    header = ",".join(f'"{name}"' for name in ORDERS_HEADER)
    text = "\ufeff" + header + "\n" + "\n".join(",".join(f'"{c}"' if i == 5 else c for i, c in enumerate(r))
                                                for r in orders_rows(DAY, 3)) + "\n"
    table = read_strict_csv(_write(tmp_path, text), BLOB, _columns()).table
    assert table.column("product_sku").to_pylist() == [r[5] for r in orders_rows(DAY, 3)]


@pytest.mark.parametrize(("line", "delta", "expected"), [(3, 1, 12), (8, -1, 10), (13, 2, 13)])
def test_a_line_with_the_wrong_number_of_cells_is_named(tmp_path, line, delta, expected) -> None:
    from azure_sync.csv_reader import _first_malformed_row, diagnose

    cells = orders_rows(DAY, 12)
    cells[line - 2] = cells[line - 2] + ["x"] * delta if delta > 0 else cells[line - 2][:delta]
    content = csv_text(ORDERS_HEADER, cells)
    message = f"{BLOB} line {line}: expected 11 columns, got {expected}"
    assert _refused(_write(tmp_path, content)) == message
    assert diagnose(content.encode(), BLOB, _columns(), "x") == message
    assert _first_malformed_row(content.encode(), BLOB) == message  # the vectorised finder on its own
    assert _first_malformed_row(csv_text(ORDERS_HEADER, orders_rows(DAY, 12)).encode(), BLOB) is None


def test_the_reference_scan_names_each_kind_of_broken_line() -> None:
    from azure_sync.csv_reader import _reference_scan

    columns = _columns()
    good = csv_text(ORDERS_HEADER, orders_rows(DAY, 4)).encode()
    lines = good.split(b"\n")
    assert _reference_scan(good, BLOB, columns) is None
    assert _reference_scan(b"\xef\xbb\xbf" + good.replace(b"\n", b"\r\n"), BLOB, columns) is None
    broken = b"\n".join([*lines[:2], lines[2].replace(b"SKU", b"S\xffU"), *lines[3:]])
    assert _reference_scan(broken, BLOB, columns) == (f"{BLOB} line 3, column 'product_sku': expected UTF-8 text, "
                                                      "got 'S\\\\xffU-001'")
    broken = b"\n".join([*lines[:3], lines[3].replace(b"SKU", b"S\rU"), *lines[4:]])
    assert _reference_scan(broken, BLOB, columns) == f"{BLOB} line 4: a carriage return inside the line"
    broken = b"\n".join([*lines[:3], lines[3].replace(b"SKU", b'"S"U'), *lines[4:]])
    assert _reference_scan(broken, BLOB, columns).startswith(f"{BLOB} line 4: not a CSV row (")
    broken = b"\n".join([*lines[:4], lines[4] + b",extra", *lines[5:]])
    assert _reference_scan(broken, BLOB, columns) == f"{BLOB} line 5: expected 11 columns, got 12"
    blank_first = b"\n\n" + good
    broken = b"\n".join([*lines[:2], lines[2].replace(b",TV,", b",,"), *lines[3:]])
    assert _reference_scan(blank_first, BLOB, columns) is None and _reference_scan(broken, BLOB, columns) is None


def test_shown_values_are_clipped_at_60_characters(tmp_path) -> None:
    value = "9" * 59 + "x" * 41
    refused = _refused(_write(tmp_path, csv_text(ORDERS_HEADER, _with(4, "quantity", value))))
    assert refused == (f"{BLOB} line 4, column 'quantity': expected an integer, got "
                       f"'{value[:60]}... (100 characters)'")
    refused = _refused(_write(tmp_path, csv_text(ORDERS_HEADER, _with(4, "quantity", "x" * 60))))
    assert refused.endswith(f"got '{'x' * 60}'")


def test_an_empty_typed_cell_is_a_null_but_NA_is_not(tmp_path) -> None:
    from azure_sync.csv_reader import read_strict_csv

    table = read_strict_csv(_write(tmp_path, csv_text(ORDERS_HEADER, _with(3, "quantity", ""))), BLOB, _columns()).table
    assert table.column("quantity").to_pylist()[1] is None
    table = read_strict_csv(_write(tmp_path, csv_text(ORDERS_HEADER, _with(3, "channel", ""))), BLOB, _columns()).table
    assert table.column("channel").to_pylist()[1] is None
    for value in ("true", "false", "TRUE"):
        table = read_strict_csv(_write(tmp_path, csv_text(ORDERS_HEADER, _with(3, "channel", value))), BLOB,
                                _columns()).table
        assert table.column("channel").to_pylist()[1] == value


@pytest.mark.parametrize(("kind", "value", "accepted"),
                         [(k, v, ok) for k, spellings in SPELLINGS.items() for v, ok in spellings])
def test_the_diagnosis_and_the_reference_scan_read_each_spelling_as_the_contract(kind, value, accepted) -> None:
    from azure_sync.csv_reader import _reference_scan, diagnose

    column = COLUMN_OF[kind]
    content = csv_text(ORDERS_HEADER, _with(5, column, value)).encode("utf-8")
    message = None if accepted else f"{BLOB} line 5, column {column!r}: expected {EXPECTED[kind]}, got {value!r}"
    assert _reference_scan(content, BLOB, _columns()) == message
    if message is not None:
        assert diagnose(content, BLOB, _columns(), "parser message") == message


@pytest.mark.parametrize("length", [10, 300, 301])
def test_a_file_no_finder_can_fault_is_refused_quoting_the_parser_clipped_to_300_characters(length) -> None:
    from azure_sync.csv_reader import diagnose

    content = csv_text(ORDERS_HEADER, orders_rows(DAY, 3)).encode("utf-8")
    parser = ("P" * length)
    shown = parser if length <= 300 else parser[:300] + "..."
    assert diagnose(content, BLOB, _columns(), parser) == (
        f"{BLOB}: the file could not be read as CSV ({shown}); no single line could be named")


def test_the_reference_scan_reads_past_blank_lines() -> None:
    from azure_sync.csv_reader import _reference_scan

    cells = _with(6, "quantity", "x")
    lines = csv_text(ORDERS_HEADER, cells).split("\n")
    lines[2:2] = ["", "\r"]  # blank lines (one a bare CR) after line 2 push line 6 to line 8
    assert _reference_scan("\n".join(lines).encode(), BLOB, _columns()) == (
        f"{BLOB} line 8, column 'quantity': expected an integer, got 'x'")


@pytest.mark.parametrize("shift", [-40, -1, 0, 1, 40])
def test_a_quoted_line_break_near_a_parse_block_boundary_is_named(tmp_path, shift) -> None:
    """Class: a file larger than one parse block (1 MiB) whose quoted line break falls near the boundary,
    where the parser itself fails: the file is still refused naming the line and the column."""
    rows = orders_rows(DAY, 1200)
    for row in rows:
        row[5] = "S" * 900
    position, index = len(",".join(ORDERS_HEADER)) + 1, 0
    while position + len(",".join(rows[index])) + 1 <= 1 << 20:
        position += len(",".join(rows[index])) + 1
        index += 1
    before = (1 << 20) - position - len(",".join(rows[index][:5])) - 2 + shift
    rows[index][5] = '"' + "S" * before + "\n" + "T" * 50 + '"'
    assert _refused(_write(tmp_path, csv_text(ORDERS_HEADER, rows))) == (
        f"{BLOB} line {index + 2}, column 'product_sku': a quoted value is not closed on its line "
        "(a line break inside quotes, or the file is cut)")


@st.composite
def _quoted_files_with_one_fault(draw):
    """Rows whose text values are quoted as exports do (first or last column, commas, "" inside, empty),
    then one line with a quoting fault in one text column: a stray quote (odd or even count) or an opening
    quote never closed on its line."""
    text_columns = [i for i, name in enumerate(ORDERS_HEADER) if _columns()[name] == "string"]
    rows = orders_rows(DAY, draw(st.integers(2, 8)))
    for row in rows:
        for i in text_columns:
            if draw(st.booleans()):
                row[i] = '"' + draw(st.sampled_from([row[i], f"{row[i]}, x", f'say ""{row[i]}""', "", '""'])
                                    ).replace('"', '""') + '"'
    faulty = draw(st.integers(0, len(rows) - 1))
    rows[faulty] = orders_rows(DAY, len(rows))[faulty]  # the faulty line's other values plain
    column = draw(st.sampled_from(text_columns))
    value = draw(st.sampled_from(['AB"C', 'A"B"C', '"A"B', 'A""', '"ABC', '"A,B']))
    rows[faulty][column] = value
    header = [f'"{name}"' if draw(st.booleans()) else name for name in ORDERS_HEADER]
    bom = draw(st.booleans())
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    return rows, faulty, column, value, header, bom, newline


@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(generated=_quoted_files_with_one_fault())
def test_a_quoting_fault_after_legally_quoted_lines_is_named_exactly(tmp_path_factory, generated) -> None:
    rows, faulty, column, value, header, bom, newline = generated
    text = ("\ufeff" if bom else "") + csv_text(header, rows, newline=newline)
    path = tmp_path_factory.mktemp("quoted") / "orders.csv"
    path.write_bytes(text.encode("utf-8"))
    unclosed = value.startswith('"') and value.count('"') % 2 == 1
    why = ("a quoted value is not closed on its line (a line break inside quotes, or the file is cut)" if unclosed
           else "a stray '\"' (a quote may only enclose a whole value; write it as \"\" inside one)")
    assert _refused(path) == _refused_by_the_fast_path(path) == (
        f"{BLOB} line {faulty + 2}, column {ORDERS_HEADER[column]!r}: {why}")


@pytest.mark.parametrize("final_break", [True, False])
@pytest.mark.parametrize("broken", [1, 2])
def test_a_quoted_value_over_a_line_break_is_refused_with_or_without_a_final_line_break(tmp_path, final_break,
                                                                                         broken) -> None:
    """Class: one or more quoted values that run over a line break (the parser reads each as one value, so
    the rows no longer match the lines), in a file that ends with a line break or not."""
    cells = orders_rows(DAY, 6)
    for line in (3, 5)[:broken]:
        cells[line - 2][ORDERS_HEADER.index("product_sku")] = '"SKU\nbroken"'
    text = csv_text(ORDERS_HEADER, cells)
    assert _refused(_write(tmp_path, text if final_break else text.rstrip("\n"))) == (
        f"{BLOB} line 3, column 'product_sku': a quoted value is not closed on its line "
        "(a line break inside quotes, or the file is cut)")


@pytest.mark.parametrize("end", ["\n", "", '"'])
@pytest.mark.parametrize(("line", "delta"), [(3, 1), (6, -2)])
def test_a_wrong_number_of_cells_among_legally_quoted_values_is_named_by_the_count(tmp_path, line, delta,
                                                                                   end) -> None:
    """Class: a file with quotes, all legal, whose parse fails for another reason: the quoting check finds
    nothing and the line with the wrong number of cells is named. The file ends with a line break, or
    without one after an empty last cell or after a quoted last cell (a quote among the last bytes)."""
    cells = orders_rows(DAY, 8)
    for row in cells:
        row[ORDERS_HEADER.index("product_sku")] = '"' + row[ORDERS_HEADER.index("product_sku")] + ', boxed"'
    if end != "\n":
        cells[-1][-2:] = ['"GBP"', ""] if end == "" else ["GBP", '"SHIPPED"']
    cells[line - 2] = cells[line - 2] + ["x"] * delta if delta > 0 else cells[line - 2][:delta]
    text = csv_text(ORDERS_HEADER, cells)
    assert _refused(_write(tmp_path, text if end == "\n" else text[:-1])) == (
        f"{BLOB} line {line}: expected 11 columns, got {11 + delta}")


def test_a_line_of_exactly_half_a_parse_block_is_not_overlong_but_one_byte_more_is() -> None:
    """The limit is inclusive: the diagnosis and the reference scan agree (the long line's text is spread over
    extra columns the contract does not declare, each under the csv module's field limit)."""
    from azure_sync.csv_reader import _reference_scan, diagnose

    header = [*ORDERS_HEADER, *(f"note{i}" for i in range(6))]
    cells = [[*row, *([""] * 6)] for row in orders_rows(DAY, 3)]
    for length, overlong in ((524_288, False), (524_289, True)):
        cells[1][-6:] = [""] * 6
        cells[1][-6:] = ["S" * ((length - len(",".join(cells[1]))) // 6)] * 6
        cells[1][-1] += "S" * (length - len(",".join(cells[1])))
        content = csv_text(header, cells).encode("utf-8")
        message = f"{BLOB} line 3: the line is {length:,} bytes long (at most 524,288 allowed)" if overlong else None
        assert _reference_scan(content, BLOB, _columns()) == message
        assert diagnose(content, BLOB, _columns(), "p") == (
            message or f"{BLOB}: the file could not be read as CSV (p); no single line could be named")


@pytest.mark.parametrize(("extra", "first"), [('no"te', False), ('a"b"c', False), ('no""te', False),
                                             ('x"y', True), ('x""', True)])
def test_a_quoting_fault_in_the_header_names_line_1_without_a_column(tmp_path, extra, first) -> None:
    """Class: a quoting fault in the name of a column the contract does not declare (the declared ones are all
    there, so the header itself is accepted): line 1 is named, and no column (the faulty text is the name)."""
    rows = orders_rows(DAY, 3)
    if first:  # the undeclared column first: its quote is the file's second byte
        text = csv_text([extra, *ORDERS_HEADER], [["x", *row] for row in rows])
    else:
        text = csv_text([*ORDERS_HEADER, extra], [[*row, "x"] for row in rows])
    assert _refused(_write(tmp_path, text)) == (
        f"{BLOB} line 1: a stray '\"' (a quote may only enclose a whole value; write it as \"\" inside one)")


STRAY = "a stray '\"' (a quote may only enclose a whole value; write it as \"\" inside one)"
UNCLOSED = "a quoted value is not closed on its line (a line break inside quotes, or the file is cut)"


@pytest.mark.parametrize(("value", "why"), [('"12', UNCLOSED), ('1"2', STRAY), ('"1"2', STRAY)])
def test_a_quoting_fault_in_the_first_column_is_named(tmp_path, value, why) -> None:
    cells = _with(4, "order_id", value)
    assert _refused(_write(tmp_path, csv_text(ORDERS_HEADER, cells))) == f"{BLOB} line 4, column 'order_id': {why}"


@pytest.mark.parametrize(("value", "why"), [('x"y', STRAY), ('"x', UNCLOSED)])
def test_a_quoting_fault_in_a_cell_past_the_header_names_no_column(tmp_path, value, why) -> None:
    """Class: a line with more cells than the header whose extra cell breaks the quoting: the quoting fault
    is named (it comes first), and no column, since the cell has none."""
    cells = orders_rows(DAY, 5)
    cells[2] = [*cells[2], value]
    assert _refused(_write(tmp_path, csv_text(ORDERS_HEADER, cells))) == f"{BLOB} line 4: {why}"


@pytest.mark.parametrize("value", ['SKU"1', '"SKU"1', 'S"K"U', '"SKU', '"a""b', 'A""'])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_quoting_fault_in_the_last_cell_of_a_file_without_a_final_line_break_is_named(tmp_path, value,
                                                                                         newline) -> None:
    """Class: the faulty value is the very last bytes of the file (no line break after it), after lines whose
    text values are legally quoted."""
    cells = orders_rows(DAY, 4)
    for row in cells:
        row[ORDERS_HEADER.index("channel")] = f'"{row[ORDERS_HEADER.index("channel")]}"'
    cells[-1][-1] = value
    text = csv_text(ORDERS_HEADER, cells, newline=newline)[: -len(newline)]
    why = UNCLOSED if value.startswith('"') and value.count('"') % 2 else STRAY
    assert _refused(_write(tmp_path, text)) == f"{BLOB} line 5, column 'status': {why}"


@pytest.mark.parametrize("blank_lines", [0, 3])
def test_a_wrong_number_of_cells_past_the_first_parse_block_is_named(tmp_path, blank_lines) -> None:
    """Class: a file larger than one parse block (1 MiB, read by several threads) with blank lines before the
    faulty line: the line is named as an editor numbers it."""
    from azure_sync.csv_reader import _first_malformed_row

    rows = orders_rows(DAY, 3000)
    for row in rows:
        row[ORDERS_HEADER.index("product_sku")] = "S" * 400
    rows[2900] = rows[2900][:-1]
    lines = csv_text(ORDERS_HEADER, rows).split("\n")
    lines[5:5] = [""] * blank_lines
    content = "\n".join(lines)
    assert len(content) > 1 << 20
    message = f"{BLOB} line {2902 + blank_lines}: expected 11 columns, got 10"
    assert _refused(_write(tmp_path, content)) == message
    assert _first_malformed_row(content.encode(), BLOB) == message


@pytest.mark.parametrize(("bad_bytes_line", "short_line", "named"), [
    (3, 6, "line 3, column 'product_sku': expected UTF-8 text, got 'S\\\\xffU-001'"),
    (6, 3, "line 3: expected 11 columns, got 10"),
])
def test_a_file_not_utf8_with_a_short_line_is_named_by_the_reference_scan(tmp_path, bad_bytes_line, short_line,
                                                                          named) -> None:
    """Class: two faults the vectorised finders cannot both read (bytes that are not UTF-8 stop the line-count
    finder; the short line stops the cell finder's parse): the diagnosis goes on to the reference scan, which
    names the first of the two."""
    cells = orders_rows(DAY, 6)
    cells[short_line - 2] = cells[short_line - 2][:-1]
    lines = csv_text(ORDERS_HEADER, cells).encode("utf-8").split(b"\n")
    lines[bad_bytes_line - 1] = lines[bad_bytes_line - 1].replace(b"SKU", b"S\xffU")
    assert _refused(_write(tmp_path, b"\n".join(lines))) == f"{BLOB} {named}"


@pytest.mark.parametrize("column", ["quantity", "order_date"])
def test_a_bad_cell_on_the_last_line_after_blank_lines_is_named_by_its_editor_line(tmp_path, column) -> None:
    cells = _with(6, column, "x", rows=5)
    lines = csv_text(ORDERS_HEADER, cells).split("\n")
    lines[2:2] = ["", ""]
    kind = "an integer" if column == "quantity" else "a date YYYY-MM-DD"
    path = _write(tmp_path, "\n".join(lines))
    assert _refused(path) == _refused_by_the_fast_path(path) == f"{BLOB} line 8, column {column!r}: expected {kind}, got 'x'"


@pytest.mark.parametrize(("column", "uncastable", "malformed"), [
    ("order_date", "2026-02-30", " 2026-11-19"), ("quantity", "9223372036854775808", "x"),
    ("order_ts", "2026-11-19 25:00:00", "2026-11-19T10:00:00"), ("unit_price", "10000000000000000", "1.234")])
def test_a_value_of_the_right_form_that_does_not_cast_is_named_before_a_later_malformed_one(
        tmp_path, column, uncastable, malformed) -> None:
    """Class: in one column, a value written in the type's form that is no value of the type (a day that does not
    exist, past the type's range) on an earlier line than a value not in the form: the earlier one is named."""
    cells = _with(3, column, uncastable)
    cells[4][ORDERS_HEADER.index(column)] = malformed
    path = _write(tmp_path, csv_text(ORDERS_HEADER, cells))
    kind = {"order_date": "date", "quantity": "integer", "order_ts": "timestamp", "unit_price": "decimal"}[column]
    assert _refused(path) == _refused_by_the_fast_path(path) == (
        f"{BLOB} line 3, column {column!r}: expected {EXPECTED[kind]}, got {uncastable!r}")


@pytest.mark.parametrize(("column", "other", "malformed"), [
    ("quantity", "-7", "0x10"), ("quantity", "", "0x10"), ("unit_price", "-1.25", "+1.00"), ("unit_price", "", "9.990"),
    ("unit_price", "-3", ".5"), ("order_ts", "", "2026-11-19 10:00"), ("order_date", "", "2026-02-30")])
def test_a_value_of_the_wrong_form_is_named_whatever_else_its_column_holds(tmp_path, column, other, malformed) -> None:
    """Class: a value the type's cast would take but the contract refuses (hex, a sign or a missing digit, a third
    decimal place, a timestamp without seconds), in a column that also holds negative values or empty cells on
    earlier lines: the malformed value is named, the others are not."""
    cells = _with(3, column, other)
    cells[4][ORDERS_HEADER.index(column)] = malformed
    kind = {"quantity": "integer", "unit_price": "decimal", "order_ts": "timestamp", "order_date": "date"}[column]
    path = _write(tmp_path, csv_text(ORDERS_HEADER, cells))
    assert _refused(path) == f"{BLOB} line 6, column {column!r}: expected {EXPECTED[kind]}, got {malformed!r}"


@pytest.mark.parametrize("column", sorted(COLUMN_OF.values()))
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_typed_column_empty_on_every_line_is_read_as_empty_values(tmp_path, column, newline) -> None:
    """Class: a typed column no line fills (the value rules, not the reader, decide whether it may be empty)."""
    from azure_sync.csv_reader import read_strict_csv

    cells = orders_rows(DAY, 4)
    for row in cells:
        row[ORDERS_HEADER.index(column)] = ""
    table = read_strict_csv(_write(tmp_path, csv_text(ORDERS_HEADER, cells, newline=newline)), BLOB, _columns()).table
    assert table.column(column).to_pylist() == [None] * 4
    assert table.column("order_id").to_pylist() == [int(r[0]) for r in cells]


@pytest.mark.parametrize(("rest", "line"), [(" \n", 2), (" ", 2), ("X", 2), ("X\n", 2), ("\r\nX\r\n", 3), ("\n\nX", 4)])
def test_a_line_after_the_header_holding_only_a_space_or_one_character_is_a_row(tmp_path, rest, line) -> None:
    """Class: what follows the header is more than line breaks, however little: it is a row (here with the wrong
    number of cells), not a header-only file."""
    assert _refused(_write(tmp_path, ",".join(ORDERS_HEADER) + "\n" + rest)) == (
        f"{BLOB} line {line}: expected 11 columns, got 1")


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize(("length", "accepted"), [(524_287, True), (524_288, False)])
def test_the_header_limit_counts_its_text_without_the_line_break(tmp_path, newline, length, accepted) -> None:
    """The header's limit (one byte under half a parse block) is on its text: a CRLF line break does not count."""
    from azure_sync.csv_reader import read_strict_csv

    header = [*ORDERS_HEADER, *(f"note{i}" for i in range(6))]
    header[-6:] = [name + "n" * ((length - len(",".join(header))) // 6) for name in header[-6:]]
    header[-1] += "n" * (length - len(",".join(header)))
    assert len(",".join(header)) == length
    path = _write(tmp_path, csv_text(header, [[*row, *[""] * 6] for row in orders_rows(DAY, 3)], newline=newline))
    if accepted:
        table = read_strict_csv(path, BLOB, _columns()).table
        assert table.column_names == ORDERS_HEADER and table.num_rows == 3
    else:
        assert _refused(path) == f"{BLOB} line 1: the header is longer than 524,288 bytes"


def _quoted_status(cells: list[list[str]]) -> list[list[str]]:
    for row in cells:
        row[-1] = f'"{row[-1]}"'
    return cells


@pytest.mark.parametrize("final_break", [True, False])
def test_a_quoted_last_value_before_a_doubled_carriage_return_is_read(tmp_path, final_break) -> None:
    """Class: a CRLF file whose line breaks were converted once more (\\r\\r\\n, as a text-mode write on Windows does)
    with the last value of each line quoted: the extra \\r ends the line, the quote is no stray one; a later fault
    in such a file is the one named."""
    from azure_sync.csv_reader import read_strict_csv

    cells = _quoted_status(orders_rows(DAY, 5))
    text = csv_text(ORDERS_HEADER, cells, newline="\r\r\n")
    text = text if final_break else text.removesuffix("\r\n")
    table = read_strict_csv(_write(tmp_path, text), BLOB, _columns()).table
    assert table.column("status").to_pylist() == [r[-1].strip('"') for r in cells]
    cells[3][ORDERS_HEADER.index("quantity")] = "x"
    assert _refused(_write(tmp_path, csv_text(ORDERS_HEADER, cells, newline="\r\r\n"))) == (
        f"{BLOB} line 5, column 'quantity': expected an integer, got 'x'")
    cells[3][-3:] = cells[3][-2:]  # a cell missing: the parse fails and that line is named (before: a stray quote, line 2)
    assert _refused(_write(tmp_path, csv_text(ORDERS_HEADER, cells, newline="\r\r\n"))) == (
        f"{BLOB} line 5: expected 11 columns, got 10")


@pytest.mark.parametrize(("line", "why"), [
    ("\r\r", "line 4: a carriage return inside the line"),
    ("1,10,2026-11-19,2026-11-19 00:00:00,1000,SKU-000,TV,1,0.00,GBP,SHIPPED\r"
     "2,20,2026-11-19,2026-11-19 01:01:07,1001,SKU-001,WEB,2,0.37,GBP,CANCELLED",
     "line 4: a carriage return inside the line"),
    ('1,10,2026-11-19,2026-11-19 00:00:00,1000,SKU-000,TV,1,0.00,GBP,"SHIPPED"\rX',
     "line 4, column 'status': a stray '\"' (a quote may only enclose a whole value; write it as \"\" inside one)"),
])
def test_a_carriage_return_inside_a_line_of_a_quoted_file_is_named(tmp_path, line, why) -> None:
    """Class: in a file with quoted values, a bare \\r the parser takes for a line break: a line of two \\r (which
    the parser skips), a line the \\r splits into two whole rows, a quoted value with more text after a \\r."""
    cells = _quoted_status(orders_rows(DAY, 5))
    lines = csv_text(ORDERS_HEADER, cells).split("\n")
    lines.insert(3, line)
    assert _refused(_write(tmp_path, "\n".join(lines))) == f"{BLOB} {why}"
