"""The budget workbook read as Excel (and other writers) really write it: the sheet XML is edited
the way real files differ from openpyxl's own output.

Classes: a stale or minimal `<dimension ref>` (never trusted: the cells decide how far the sheet
goes); formulas of every kind without a cached value (plain, shared, array/CSE) refused with the
cell; numbers beyond the declared bounds (a budget beyond GBP 1e12, 1e16, a rate beyond 1e6)
refused with the cell. A property test moves the dimension tag anywhere and asserts the parse never
changes.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline_common.script_support import BadDataError
from sharepoint_budget.workbook import parse_workbook
from tests.plugins.sample_data import load_generator

YEAR = 2026
MARKETS = ["UK", "DE", "IT", "JP"]
CURRENCIES = ["GBP", "EUR", "JPY"]


@pytest.fixture(scope="module")
def workbook_bytes() -> bytes:
    generator = load_generator()
    return generator.budget_workbook_bytes(42, YEAR, MARKETS, CURRENCIES, generator.build_catalog(42), 50)


def _edit_sheet(data: bytes, sheet_number: int, edit) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == f"xl/worksheets/sheet{sheet_number}.xml":
                content = edit(content.decode("utf-8")).encode("utf-8")
            target.writestr(item, content)
    return out.getvalue()


def _parse(tmp_path: Path, data: bytes):
    path = tmp_path / f"Daily Sales Budget {YEAR}.xlsx"
    path.write_bytes(data)
    return parse_workbook(path, YEAR, MARKETS, CURRENCIES)


def _set_cell(xml: str, ref: str, replacement: str) -> str:
    pattern = re.compile(rf'<c r="{ref}"[^>]*?(?:/>|>.*?</c>)', re.S)
    assert pattern.search(xml), ref
    return pattern.sub(replacement, xml, count=1)


@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ref=st.sampled_from(["A1", "A1:E12", "A1:B2", "C3:D4", "A1:XFD1048576", None]))
def test_the_dimension_tag_is_never_trusted(workbook_bytes, tmp_path_factory, ref):
    honest = _parse(tmp_path_factory.mktemp("honest"), workbook_bytes)

    def restate(xml: str) -> str:
        if ref is None:
            return re.sub(r"<dimension [^>]*/>", "", xml)
        return re.sub(r'<dimension ref="[^"]*"', f'<dimension ref="{ref}"', xml)

    edited = _edit_sheet(_edit_sheet(workbook_bytes, 1, restate), 2, restate)
    parsed = _parse(tmp_path_factory.mktemp("stale"), edited)
    assert parsed.budget.num_rows == honest.budget.num_rows > 1000
    assert parsed.budget.equals(honest.budget)
    assert parsed.exchange.equals(honest.exchange)


@pytest.mark.parametrize("formula", [
    '<f t="array" ref="D6">SUM(E6:F6)</f>',                # array (CSE) formula, never calculated
    '<f t="shared" ref="D6:D7" si="0">SUM(E6:F6)</f>',    # master of a shared formula
    "<f>SUM(E6:F6)</f>",                                 # plain
])
def test_a_formula_without_a_cached_value_is_refused_with_its_cell(workbook_bytes, tmp_path, formula):
    edited = _edit_sheet(workbook_bytes, 1, lambda xml: _set_cell(xml, "D6", f'<c r="D6">{formula}</c>'))
    with pytest.raises(BadDataError) as info:
        _parse(tmp_path, edited)
    assert str(info.value).startswith("Budget!D6: a formula without a calculated value")


@pytest.mark.parametrize(("sheet", "ref", "value"), [
    (1, "D6", "1E16"), (1, "E7", "1000000000001"), (1, "F8", "-1E13"), (2, "B4", "1E7"),
])
def test_numbers_beyond_the_declared_bounds_are_refused_with_the_cell(workbook_bytes, tmp_path, sheet, ref, value):
    edited = _edit_sheet(workbook_bytes, sheet, lambda xml: _set_cell(xml, ref, f'<c r="{ref}"><v>{value}</v></c>'))
    with pytest.raises(BadDataError) as info:
        _parse(tmp_path, edited)
    name = "Budget" if sheet == 1 else "Exchange"
    assert str(info.value).startswith(f"{name}!{ref}: expected a number within"), str(info.value)
