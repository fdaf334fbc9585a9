"""The budget workbook's rules (contract section 4), in-process on the parser: every rejection names the sheet
and the cell, every accepted sheet is read exactly. The CLI's exit codes and kept outputs are
tests/test_budget_ingest.py's; the dimension tag and Excel's formula kinds are
tests/test_workbook_as_excel_writes_it.py's.

Classes: the header row (where it stands, its labels, its dates: Excel dates or text, monthly on the Exchange
sheet, in the year, not repeated, trailing blanks ignored); the key cells (market, channel, currency: known,
any case, not repeated; Total rows skipped); the value cells (numbers, number text in the contract's one
format, blanks; text, booleans, dates, non-finite numbers and numbers beyond the bounds refused; nothing in a
column without a date); the rates (above 0, GBP exactly 1 and added when missing, every required currency);
the file itself (an old .xls, an encrypted package, not a zip, a broken zip, formulas never calculated).
Numbers are checked against an oracle written from the contract's wording, over generated text.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline_common.script_support import BadDataError

YEAR = 2026
MARKETS = ["UK", "DE", "IT", "JP"]
DAYS = [dt.date(YEAR, 3, 1) + dt.timedelta(days=i) for i in range(3)]
MONTHS = [dt.date(YEAR, m, 1) for m in (1, 2, 3)]
BUDGET_HEADER = ("Market", "Channel", *DAYS)
EXCHANGE_HEADER = ("Currency", *MONTHS)


def budget(rows, markets=MARKETS):
    from sharepoint_budget.workbook import parse_budget

    return [(r["budget_date"], r["market"], r["channel"], r["budget_gbp"])
            for r in parse_budget(rows, YEAR, markets).to_pylist()]


def exchange(rows, required=("EUR", "JPY")):
    from sharepoint_budget.workbook import parse_exchange

    return [(r["currency"], r["month"], r["gbp_per_unit"]) for r in parse_exchange(rows, YEAR, required).to_pylist()]


def refused(parse, rows, *args) -> str:
    with pytest.raises(BadDataError) as caught:
        parse(rows, *args)
    return str(caught.value)


# --- the Budget sheet ----------------------------------------------------------------------------------


def test_a_budget_sheet_is_read_long_sorted_and_rounded_to_pence() -> None:
    rows = [("Daily Sales Budget 2026",), (None,), (" market ", "channel", *DAYS),
            ("UK", "WEB", 1.005, None, 3), ("de", " tv ", "", "1,234.5", -2.25),
            ("Total", "", 99, 99, 99), ("UK", "Grand Total", 7, 7, 7), ("", None, "  ", None, None),
            ("JP", "PHONE", 0, None, None)]
    assert budget(rows) == [
        (DAYS[0], "JP", "PHONE", Decimal("0.00")),
        (DAYS[0], "UK", "WEB", Decimal("1.00")),  # 1.005 is 1.00499... as a float
        (DAYS[1], "DE", "TV", Decimal("1234.50")),
        (DAYS[2], "DE", "TV", Decimal("-2.25")),
        (DAYS[2], "UK", "WEB", Decimal("3.00")),
    ]


def test_header_dates_may_be_excel_dates_datetimes_or_iso_text_and_trailing_blanks_end_them() -> None:
    header = ("Market", "Channel", dt.datetime(YEAR, 3, 1, 0, 0), " 2026-03-02 ", DAYS[2], None, "  ")
    assert budget([header, ("UK", "TV", 1, 2, 3)]) == [
        (DAYS[0], "UK", "TV", Decimal("1.00")), (DAYS[1], "UK", "TV", Decimal("2.00")),
        (DAYS[2], "UK", "TV", Decimal("3.00"))]


@pytest.mark.parametrize(("header", "message"), [
    (("Market", "Channel", DAYS[0], "3rd Mar"),
     "Budget!D1: expected an Excel date or 'YYYY-MM-DD' header, got '3rd Mar'"),
    (("Market", "Channel", "2026-02-30"), "Budget!C1: expected an Excel date or 'YYYY-MM-DD' header, got '2026-02-30'"),
    (("Market", "Channel", "2026-03"), "Budget!C1: expected an Excel date or 'YYYY-MM-DD' header, got '2026-03'"),
    (("Market", "Channel", DAYS[0], None, DAYS[1]), "Budget!D1: expected an Excel date or 'YYYY-MM-DD' header, got blank"),
    (("Market", "Channel", 45000), "Budget!C1: expected an Excel date or 'YYYY-MM-DD' header, got 45000"),
    (("Market", "Channel", DAYS[0], dt.date(YEAR + 1, 1, 1)), "Budget!D1: date 2027-01-01 is not in 2026"),
    (("Market", "Channel", dt.datetime(YEAR - 1, 12, 31, 23, 0)), "Budget!C1: date 2025-12-31 is not in 2026"),
    (("Market", "Channel", DAYS[0], DAYS[1], "2026-03-01"), "Budget!E1: date 2026-03-01 repeats column C"),
    (("Market", "Channel", None, " "), "Budget!C1: expected date headers, found none"),
    (("Market", "Channel"), "Budget!C1: expected date headers, found none"),
    (("Market", "Region", DAYS[0]), "Budget!B1: expected 'Channel', got 'Region'"),
    (("Market",), "Budget!B1: expected 'Channel', got blank"),
])
def test_a_bad_budget_header_is_refused_naming_its_cell(header, message) -> None:
    assert refused(budget, [header, ("UK", "TV", 1, 2, 3)]) == message


def test_no_header_row_names_the_column_searched() -> None:
    rows = [("Budget 2026",), ("Region", "Channel", *DAYS), (1, "x"), ("UK", "TV", 1, 2, 3)]
    assert refused(budget, rows) == "Budget!A1:A4: no header row (a row whose first cell is 'Market')"
    assert refused(budget, []) == "Budget!A1:A1: no header row (a row whose first cell is 'Market')"
    assert refused(budget, [()]) == "Budget!A1:A1: no header row (a row whose first cell is 'Market')"


@pytest.mark.parametrize(("row", "message"), [
    (("FR", "TV", 1), "Budget!A3: unknown market 'FR'; known: DE, IT, JP, UK"),
    ((None, "TV", 1), "Budget!A3: expected a market, got blank"),
    (("  ", "TV", 1), "Budget!A3: expected a market, got blank"),
    (("UK", "FAX", 1), "Budget!B3: unknown channel 'FAX'; expected one of TV, WEB, APP, PHONE"),
    (("UK", None, 1), "Budget!B3: unknown channel blank; expected one of TV, WEB, APP, PHONE"),
    (("uk", "web", 1), "Budget!A3: duplicate row for (UK, WEB); first at row 2"),
    (("UK", "TV", "n/a"), "Budget!C3: expected a number, got 'n/a'"),
    (("UK", "TV", 1, True), "Budget!D3: expected a number, got True"),
    (("UK", "TV", 1, 2, dt.datetime(YEAR, 1, 1)), "Budget!E3: expected a number, got '2026-01-01T00:00:00'"),
    (("UK", "TV", dt.date(YEAR, 1, 1)), "Budget!C3: expected a number, got datetime.date(2026, 1, 1)"),
    (("UK", "TV", "1", float("-inf")), "Budget!D3: expected a number, got -inf"),
    (("UK", "TV", float("inf")), "Budget!C3: expected a number within +-1,000,000,000,000, got inf"),
    (("UK", "TV", 1, 1e12 + 1), "Budget!D3: expected a number within +-1,000,000,000,000, got 1000000000001.0"),
    (("UK", "TV", 1, "-1,000,000,000,001"), "Budget!D3: expected a number within +-1,000,000,000,000, "
                                            "got '-1,000,000,000,001'"),
    (("UK", "TV", 1, 2, 3, 4), "Budget!F3: value 4 in a column without a date header"),
    (("UK", "TV", None, None, None, None, " ", "x"), "Budget!H3: value 'x' in a column without a date header"),
])
def test_a_bad_budget_row_is_refused_naming_its_cell(row, message) -> None:
    assert refused(budget, [BUDGET_HEADER, ("UK", "WEB", 5, 5, 5), row]) == message


def test_values_at_the_bound_are_read() -> None:
    rows = [BUDGET_HEADER, ("UK", "TV", 1e12, -1e12, "1,000,000,000,000")]
    assert [v for *_, v in budget(rows)] == [Decimal("1000000000000.00"), Decimal("-1000000000000.00"),
                                             Decimal("1000000000000.00")]


@pytest.mark.parametrize(("rows", "what"), [
    ([BUDGET_HEADER], "no market rows"),
    ([BUDGET_HEADER, ("Total", None, 1, 2, 3), (None, None)], "no market rows"),
    ([BUDGET_HEADER, ("UK", "TV", None, "", " ")], "market rows but no budget values"),
])
def test_a_sheet_that_would_erase_the_year_is_refused(rows, what) -> None:
    assert refused(budget, [("title",)] + rows) == (
        f"Budget!A3: the sheet has a header but {what}; an empty Budget sheet would erase the year's budget, "
        "so nothing was written")


# --- number text: the contract's one format, against an oracle -----------------------------------------


def contract_number(text: str) -> float | None:
    """Contract section 4 in words: an optional '-', digits (with ',' between groups of exactly three, the
    first group 1-3 digits), then optionally '.' and digits; or '-'? '.' digits. Spaces around are ignored."""
    text = text.strip()
    sign, body = ("-", text[1:]) if text.startswith("-") else ("", text)
    whole, dot, fraction = body.partition(".")
    if dot and (not fraction.isdigit() or not fraction.isascii()):
        return None
    if whole:
        groups = whole.split(",")
        if not all(g.isascii() and g.isdigit() for g in groups):
            return None
        if len(groups) > 1 and (not 1 <= len(groups[0]) <= 3 or any(len(g) != 3 for g in groups[1:])):
            return None
    elif not dot:
        return None
    return float(sign + whole.replace(",", "") + (("." + fraction) if dot else ""))


NUMBER_TEXT = st.one_of(
    st.text(alphabet="0123456789,.- ", min_size=1, max_size=12),
    st.builds(lambda n, sep: f"{n:,}".replace(",", sep), st.integers(-10**9, 10**9), st.sampled_from([",", ".", ""])),
    st.builds(lambda n: f"{n:,.2f}", st.floats(-1e9, 1e9, allow_nan=False)),
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(text=NUMBER_TEXT)
def test_number_text_is_read_exactly_when_the_contract_allows_it(text) -> None:
    want = contract_number(text)
    rows = [BUDGET_HEADER, ("UK", "TV", text)]
    if want is None and text.strip():
        assert refused(budget, rows) == f"Budget!C2: expected a number, got {text!r}"
    elif want is None:
        assert "no budget values" in refused(budget, rows)
    else:
        assert budget(rows) == [(DAYS[0], "UK", "TV", Decimal(str(round(want, 2))).quantize(Decimal("0.01")))]


@settings(max_examples=100, deadline=None, derandomize=True)
@given(cells=st.lists(st.one_of(st.none(), st.integers(-10**6, 10**6), st.floats(-1e6, 1e6, allow_nan=False),
                                st.just("")), min_size=3, max_size=3))
def test_cells_of_numbers_and_blanks_are_read_whatever_their_python_type(cells) -> None:
    want = [(DAYS[i], "UK", "TV", Decimal(str(round(float(v), 2))).quantize(Decimal("0.01")))
            for i, v in enumerate(cells) if v is not None and v != ""]
    rows = [BUDGET_HEADER, ("UK", "TV", *cells)]
    if want:
        assert budget(rows) == want
    else:
        assert "no budget values" in refused(budget, rows)


# --- the Exchange sheet ---------------------------------------------------------------------------------


def test_an_exchange_sheet_is_read_sorted_with_gbp_added_as_one() -> None:
    rows = [("Rates",), ("currency", "2026-01", dt.datetime(YEAR, 2, 15), " 2026-03-01 ", None),
            ("jpy", 0.0051234567891, None, "0.0052"), ("EUR", 0.86, 0.87, 0.88), (None, "", None)]
    assert exchange(rows) == [
        ("EUR", MONTHS[0], Decimal("0.86000000")), ("EUR", MONTHS[1], Decimal("0.87000000")),
        ("EUR", MONTHS[2], Decimal("0.88000000")),
        ("GBP", MONTHS[0], Decimal("1.00000000")), ("GBP", MONTHS[1], Decimal("1.00000000")),
        ("GBP", MONTHS[2], Decimal("1.00000000")),
        ("JPY", MONTHS[0], Decimal("0.00512346")), ("JPY", MONTHS[2], Decimal("0.00520000")),
    ]


def test_a_gbp_row_of_ones_is_kept_as_given() -> None:
    rows = [EXCHANGE_HEADER, ("GBP", 1, None, "1.0"), ("EUR", 0.8, 0.8, 0.8), ("JPY", 0.005, 0.005, 0.005)]
    assert [(c, m) for c, m, _ in exchange(rows) if c == "GBP"] == [("GBP", MONTHS[0]), ("GBP", MONTHS[2])]


@pytest.mark.parametrize(("rows", "message"), [
    ([("Rate", *MONTHS)], "Exchange!A1:A1: no header row (a row whose first cell is 'Currency')"),
    ([("Currency", "Jan 2026")], "Exchange!B1: expected an Excel date or 'YYYY-MM' header, got 'Jan 2026'"),
    ([("Currency", "2026-13")], "Exchange!B1: expected an Excel date or 'YYYY-MM' header, got '2026-13'"),
    ([("Currency", "2025-12")], "Exchange!B1: date 2025-12-01 is not in 2026"),
    ([("Currency", MONTHS[0], dt.date(YEAR, 1, 20))], "Exchange!C1: date 2026-01-01 repeats column B"),
    ([("Currency",)], "Exchange!B1: expected date headers, found none"),
    ([EXCHANGE_HEADER, ("EURO", 1, 1, 1)], "Exchange!A2: expected a currency code like 'EUR', got 'EURO'"),
    ([EXCHANGE_HEADER, ("E1R", 1, 1, 1)], "Exchange!A2: expected a currency code like 'EUR', got 'E1R'"),
    ([EXCHANGE_HEADER, (None, 1, 1, 1)], "Exchange!A2: expected a currency code like 'EUR', got blank"),
    ([EXCHANGE_HEADER, ("EUR", 1, 1, 1), ("eur", 1, 1, 1)], "Exchange!A3: duplicate row for EUR; first at row 2"),
    ([EXCHANGE_HEADER, ("EUR", 1, 1, 1, 1)], "Exchange!E2: value 1 in a column without a date header"),
    ([EXCHANGE_HEADER, ("EUR", 1, "tbc", 1)], "Exchange!C2: expected a number, got 'tbc'"),
    ([EXCHANGE_HEADER, ("EUR", 1, 1, 1e6 + 1)], "Exchange!D2: expected a number within +-1,000,000, got 1000001.0"),
    ([EXCHANGE_HEADER, ("EUR", 1, -0.5, 1)], "Exchange!C2: rate must be above 0, got -0.5"),
    ([EXCHANGE_HEADER, ("EUR", 1, 1, 0)], "Exchange!D2: rate must be above 0, got 0"),
    ([EXCHANGE_HEADER, ("EUR", 1, 1, 1), ("GBP", 1, 1.1, 2)], "Exchange!C3: GBP must be 1, got 1.1"),
    ([EXCHANGE_HEADER, ("GBP", 1, 1, 0)], "Exchange!D2: rate must be above 0, got 0"),
    ([EXCHANGE_HEADER, ("GBP", 1, 1, 1)], "Exchange!A2: no row for currency EUR, JPY"),
    ([("title",), EXCHANGE_HEADER, ("JPY", 1, 1, 1), ("USD", 1, 1, 1)], "Exchange!A3: no row for currency EUR"),
])
def test_a_bad_exchange_sheet_is_refused_naming_its_cell(rows, message) -> None:
    assert refused(exchange, rows) == message


def test_a_rate_at_the_bound_is_read_and_gbp_is_never_required() -> None:
    rows = [EXCHANGE_HEADER, ("EUR", 1e6, None, None)]
    assert exchange(rows, required=("EUR", "GBP")) == [
        ("EUR", MONTHS[0], Decimal("1000000.00000000"))] + [("GBP", m, Decimal("1.00000000")) for m in MONTHS]


# --- the file ---------------------------------------------------------------------------------------------


def _workbook_bytes(budget_rows, exchange_rows) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Budget"
    for row in budget_rows:
        sheet.append(list(row))
    other = workbook.create_sheet("Exchange")
    for row in exchange_rows:
        other.append(list(row))
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


GOOD_BUDGET = [("Market", "Channel", "2026-03-01", "2026-03-02"), ("UK", "TV", 1, 2), ("DE", "WEB", 3, None)]
GOOD_EXCHANGE = [("Currency", "2026-01"), ("EUR", 0.8), ("JPY", 0.005)]


def _edit_sheet(data: bytes, number: int, edit) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == f"xl/worksheets/sheet{number}.xml":
                content = edit(content.decode("utf-8")).encode("utf-8")
            target.writestr(item, content)
    return out.getvalue()


def _with_formula(data: bytes, number: int, ref: str, cached: str | None) -> bytes:
    """Cell `ref` made a formula, with `cached` as its calculated value (None: never calculated)."""
    def edit(xml: str) -> str:
        pattern = re.compile(rf'<c r="{ref}"[^>]*?(?:/>|>.*?</c>)', re.S)
        value = "" if cached is None else f"<v>{cached}</v>"
        cell = f'<c r="{ref}"><f>1+1</f>{value}</c>'
        if pattern.search(xml):
            return pattern.sub(cell, xml, count=1)
        row = re.search(r"\d+", ref).group(0)
        return re.sub(rf'(<row r="{row}"[^>]*>.*?)(</row>)', lambda m: m.group(1) + cell + m.group(2), xml, count=1,
                      flags=re.S)
    return _edit_sheet(data, number, edit)


def _parse_file(tmp_path: Path, data: bytes):
    from sharepoint_budget.workbook import parse_workbook

    path = tmp_path / f"Daily Sales Budget {YEAR}.xlsx"
    path.write_bytes(data)
    return parse_workbook(path, YEAR, MARKETS, {"GBP", "EUR", "JPY"})


def test_a_calculated_formula_is_read_by_its_value_and_one_never_calculated_is_refused(tmp_path) -> None:
    data = _workbook_bytes(GOOD_BUDGET, GOOD_EXCHANGE)
    plain = _parse_file(tmp_path, data)
    assert plain.budget.num_rows == 3 and plain.exchange.num_rows == 3
    calculated = _parse_file(tmp_path, _with_formula(_with_formula(data, 1, "D3", "7"), 2, "B2", "0.5"))
    assert [float(v) for v in calculated.budget.column("budget_gbp").to_pylist()] == [3.0, 1.0, 7.0, 2.0]
    assert [float(v) for v in calculated.exchange.column("gbp_per_unit").to_pylist()] == [0.5, 1.0, 0.005]
    for number, ref, sheet in ((1, "C2", "Budget"), (1, "D3", "Budget"), (2, "B3", "Exchange"),
                               (1, "E2", "Budget")):  # E2: beyond the last cached cell of its row
        with pytest.raises(BadDataError) as caught:
            _parse_file(tmp_path, _with_formula(data, number, ref, None))
        assert str(caught.value) == (f"{sheet}!{ref}: a formula without a calculated value (the workbook was saved "
                                     "without calculating); open it in Excel and save it, then re-run")
    with pytest.raises(BadDataError, match=r"^Budget!D3: a formula"):  # the first in the Budget sheet wins
        _parse_file(tmp_path, _with_formula(_with_formula(data, 2, "B2", None), 1, "D3", None))


def test_a_missing_sheet_names_the_sheets_there_are(tmp_path) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.active.title = "Budget"
    workbook.create_sheet("Rates")
    out = io.BytesIO()
    workbook.save(out)
    with pytest.raises(BadDataError) as caught:
        _parse_file(tmp_path, out.getvalue())
    assert str(caught.value) == (f"Exchange!A1: sheet 'Exchange' not found in Daily Sales Budget {YEAR}.xlsx "
                                 "(sheets: Budget, Rates)")


OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the Compound File signature (published in [MS-CFB])


@pytest.mark.parametrize(("content", "message"), [
    (OLE + b"\0" * 100 + "EncryptedPackage".encode("utf-16-le") + b"\0" * 40,
     "the workbook is password-protected (encrypted), so it cannot be read; ask its owner to remove the password"),
    (OLE + b"\0" * 100 + b"Workbook", "this is an old-format .xls workbook; save it as .xlsx (Excel Workbook)"),
    (b"Market,Channel\nUK,TV\n", "not an .xlsx workbook (the file is not a zip package); open it in Excel, save it "
                                 "again (File > Save As > Excel Workbook) and re-run"),
    (b"", "not an .xlsx workbook (the file is not a zip package)"),
    (b"PK\x03\x04" + b"\0" * 60, "not a readable .xlsx workbook ("),
])
def test_a_file_that_is_not_a_readable_workbook_says_what_it_is(tmp_path, content, message) -> None:
    with pytest.raises(BadDataError) as caught:
        _parse_file(tmp_path, content)
    assert str(caught.value).startswith(f"Daily Sales Budget {YEAR}.xlsx: {message}")


def test_a_workbook_with_a_broken_sheet_is_corrupt_and_the_error_is_short(tmp_path) -> None:
    data = _edit_sheet(_workbook_bytes(GOOD_BUDGET, GOOD_EXCHANGE), 1, lambda xml: xml[: len(xml) // 2] + "x" * 500)
    with pytest.raises(BadDataError) as caught:
        _parse_file(tmp_path, data)
    message = str(caught.value)
    assert message.startswith(f"Daily Sales Budget {YEAR}.xlsx: the workbook is corrupt (")
    assert message.endswith("); open it in Excel, save it again (File > Save As > Excel Workbook) and re-run")
    assert len(message) < 400


# --- what the written files carry -------------------------------------------------------------------


def test_budget_values_carry_pence_and_rates_eight_places_as_written() -> None:
    """The CSV files hold the values' text: pence for budgets, 8 places for rates (rounded once, half away)."""
    assert [str(v) for *_, v in budget([BUDGET_HEADER, ("UK", "TV", 1, 2.5, "3")])] == ["1.00", "2.50", "3.00"]
    rates = exchange([EXCHANGE_HEADER, ("EUR", 0.0012345649, 0.8, 0.8), ("JPY", 0.005, 0.005, 0.005)])
    assert [str(r) for c, _, r in rates if c == "EUR"] == ["0.00123456", "0.80000000", "0.80000000"]


def test_a_channel_header_cell_that_is_wrong_is_quoted_even_when_it_ends_the_row() -> None:
    assert refused(lambda rows, *a: budget(rows), [("Market", "Chanel"), ("UK", "TV")]) == (
        "Budget!B1: expected 'Channel', got 'Chanel'")


def test_a_missing_budget_sheet_names_the_file_and_the_sheets_there_are(tmp_path) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.active.title = "Exchange"
    out = io.BytesIO()
    workbook.save(out)
    with pytest.raises(BadDataError) as caught:
        _parse_file(tmp_path, out.getvalue())
    assert str(caught.value) == (f"Budget!A1: sheet 'Budget' not found in Daily Sales Budget {YEAR}.xlsx "
                                 "(sheets: Exchange)")


def test_an_encrypted_workbook_says_where_excel_removes_the_password(tmp_path) -> None:
    with pytest.raises(BadDataError) as caught:
        _parse_file(tmp_path, OLE + b"\0" * 100 + "EncryptedPackage".encode("utf-16-le") + b"\0" * 40)
    assert str(caught.value) == (
        f"Daily Sales Budget {YEAR}.xlsx: the workbook is password-protected (encrypted), so it cannot be read; "
        "ask its owner to remove the password (File > Info > Protect Workbook > Encrypt with Password) and save it")


def test_a_corrupt_workbook_names_the_parser_error_and_its_text(tmp_path) -> None:
    data = _edit_sheet(_workbook_bytes(GOOD_BUDGET, GOOD_EXCHANGE), 1, lambda xml: xml[: len(xml) // 2] + "x" * 500)
    with pytest.raises(BadDataError) as caught:
        _parse_file(tmp_path, data)
    assert re.fullmatch(rf"Daily Sales Budget {YEAR}\.xlsx: the workbook is corrupt \(ParseError: no element found: "
                        r"line 1, column \d+\); open it in Excel, save it again \(File > Save As > Excel Workbook\) "
                        r"and re-run", str(caught.value)), str(caught.value)
