"""The budget sheet's guards, in-process on the parser (the CLI's exit codes are tests/test_budget_ingest.py's).

Class: a Budget sheet that would erase the year's budget, whatever the shape: no market rows at all, or
market rows whose every value cell is blank (None, empty text, spaces), with or without Total rows. Each
is refused naming the first cell under the header; a sheet with at least one value is read exactly.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

YEAR = 2026
DAYS = [dt.date(YEAR, 1, 1) + dt.timedelta(days=i) for i in range(4)]
MARKETS = ["UK", "DE", "IT", "JP"]
HEADER = ("Market", "Channel", *DAYS)
KEYS = [(m, c) for m in MARKETS for c in ("TV", "WEB", "APP", "PHONE")]
BLANKS = st.sampled_from([None, "", "   "])


def _parse(rows):
    from sharepoint_budget.workbook import parse_budget

    return parse_budget(rows, YEAR, MARKETS)


def test_market_rows_with_only_blank_cells_never_erase_the_year() -> None:
    from pipeline_common.script_support import BadDataError

    rows = [("Daily Sales Budget",), HEADER, ("UK", "TV", None, None, None, None), ("DE", "WEB", "", None, " ", None)]
    with pytest.raises(BadDataError) as caught:
        _parse(rows)
    assert str(caught.value) == ("Budget!A3: the sheet has a header but market rows but no budget values; an empty "
                                 "Budget sheet would erase the year's budget, so nothing was written")


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    keys=st.lists(st.sampled_from(KEYS), min_size=0, max_size=6, unique=True),
    blanks=st.data(),
    total_row=st.booleans(),
)
def test_any_sheet_without_a_budget_value_is_refused(keys, blanks, total_row) -> None:
    from pipeline_common.script_support import BadDataError

    rows = [HEADER] + [(m, c, *[blanks.draw(BLANKS) for _ in DAYS]) for m, c in keys]
    if total_row:
        rows.append(("Total", "", 1.0, 2.0, 3.0, 4.0))  # totals are skipped, never read as budget
    with pytest.raises(BadDataError) as caught:
        _parse(rows)
    what = "market rows but no budget values" if keys else "no market rows"
    assert str(caught.value).startswith(f"Budget!A2: the sheet has a header but {what};")


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    keys=st.lists(st.sampled_from(KEYS), min_size=1, max_size=6, unique=True),
    cells=st.data(),
)
def test_a_sheet_with_values_is_read_exactly(keys, cells) -> None:
    value = st.one_of(BLANKS, st.integers(-1000, 10**6).map(float))
    grid = [[cells.draw(value) for _ in DAYS] for _ in keys]
    expected = sorted((DAYS[i], m, c, v) for (m, c), row in zip(keys, grid) for i, v in enumerate(row)
                      if isinstance(v, float))
    rows = [HEADER] + [(m, c, *row) for (m, c), row in zip(keys, grid)]
    assume(expected)  # all blank: the refusal is the test above
    table = _parse(rows)
    got = sorted((r["budget_date"], r["market"], r["channel"], float(r["budget_gbp"])) for r in table.to_pylist())
    assert got == expected
