"""The sync's value rules, in-process on the strict CSV reader's own parse (no script start, no Azurite).

Class: a repeated `order_line_id` anywhere in a file, ascending or not, including a repeat on the very
next line of an otherwise ascending file (the case the sorted fast path must not let through). The rule
is checked against an independent oracle (Python's own set/dict over the generated ids) on generated
files; the CLI path of the same rule is covered by tests/test_sync_bad_input.py.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.plugins.azurite import MARKET_CURRENCY, ORDERS_HEADER, csv_text, orders_blob_name, orders_rows

DAY = dt.date(2026, 11, 19)
BLOB = orders_blob_name("UK", DAY)


def _check(tmp_path: Path, ids: list[int]) -> str | None:
    """The rejection message for an orders file whose order_line_id column is `ids`, None when accepted."""
    from azure_sync.csv_reader import BadFileError, read_strict_csv
    from azure_sync.value_rules import check_values
    from pipeline_common.config import load_pipeline_config

    rows = orders_rows(DAY, len(ids))
    for row, value in zip(rows, ids):
        row[1] = str(value)
    path = tmp_path / "orders.csv"
    path.write_text(csv_text(ORDERS_HEADER, rows), encoding="utf-8")
    kind = load_pipeline_config().dataset_type("ingest_orders")
    try:
        check_values(read_strict_csv(path, BLOB, kind.column_types), BLOB, kind, MARKET_CURRENCY["UK"], DAY)
    except BadFileError as exc:
        return str(exc)
    return None


def _expected(ids: list[int]) -> str | None:
    """Oracle: the first line (editor numbering, header = 1) that repeats an earlier id."""
    first_seen: dict[int, int] = {}
    for index, value in enumerate(ids):
        if value in first_seen:
            return (f"{BLOB} line {index + 2}, column 'order_line_id': duplicate value {value} "
                    f"(first on line {first_seen[value] + 2})")
        first_seen[value] = index
    return None


@pytest.mark.parametrize("ids", [
    [10, 20, 20, 30],  # ascending, a repeat on the very next line
    [10, 20, 30, 30],  # ascending, the repeat is the last line
    [5, 5],
    [30, 20, 10, 20],  # not ascending
])
def test_a_repeated_order_line_id_is_rejected_naming_both_lines(tmp_path, ids) -> None:
    assert _check(tmp_path, ids) == _expected(ids)


def test_ascending_unique_ids_are_accepted(tmp_path) -> None:
    assert _check(tmp_path, [1, 2, 3, 40, 41, 1000]) is None


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    start=st.integers(1, 10**12),
    steps=st.lists(st.integers(0, 3), min_size=1, max_size=25),  # 0: the same id again (a repeat)
    shuffle=st.booleans(),
    data=st.randoms(use_true_random=False),
)
def test_generated_ids_are_accepted_exactly_when_unique(tmp_path_factory, start, steps, shuffle, data) -> None:
    ids = [start]
    for step in steps:
        ids.append(ids[-1] + step)
    if shuffle:
        data.shuffle(ids)
    assert _check(tmp_path_factory.mktemp("ids"), ids) == _expected(ids)


BREAKS = {  # column -> (a value breaking its rule, what the message expects)
    "quantity": ("0", "expected an integer >= 1"),
    "unit_price": ("-0.01", "expected a number >= 0"),
    "currency": ("EUR", "expected the market's currency 'GBP'"),
    "channel": ("FAX", "expected one of TV, WEB, APP, PHONE"),
    "status": ("LOST", "expected one of COMPLETED, SHIPPED, CANCELLED, RETURNED"),
    "order_date": ((DAY + dt.timedelta(days=1)).isoformat(), f"expected a date not after the file date {DAY}"),
}


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(faults=st.dictionaries(st.integers(0, 11), st.sampled_from(sorted(BREAKS)), min_size=1, max_size=3))
def test_the_first_broken_value_rule_in_file_order_is_named(tmp_path_factory, faults) -> None:
    """Class: one or more rows each breaking one value rule; the earliest line is named, with its column,
    the rule and the value."""
    from azure_sync.csv_reader import BadFileError, read_strict_csv
    from azure_sync.value_rules import check_values
    from pipeline_common.config import load_pipeline_config

    rows = orders_rows(DAY, 12)
    for index, column in faults.items():
        rows[index][ORDERS_HEADER.index(column)] = BREAKS[column][0]
    path = tmp_path_factory.mktemp("rules") / "orders.csv"
    path.write_text(csv_text(ORDERS_HEADER, rows), encoding="utf-8")
    kind = load_pipeline_config().dataset_type("ingest_orders")
    with pytest.raises(BadFileError) as caught:
        check_values(read_strict_csv(path, BLOB, kind.column_types), BLOB, kind, MARKET_CURRENCY["UK"], DAY)
    first = min(faults)
    value, expected = BREAKS[faults[first]]
    assert str(caught.value) == f"{BLOB} line {first + 2}, column {faults[first]!r}: {expected}, got {value!r}"
