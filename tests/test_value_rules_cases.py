"""Every declared value rule (contract section 3) at once, on generated files, against a plain-Python oracle.

Class: a dataset type declaring each kind of rule pipeline.yaml allows (not empty, min and max on integers
and decimals, only min or only max, allowed values (in a column that may be empty too: a null passes), the
market's currency, a longest text counted in characters, not after the file date) and a grain of one or two
columns (integer or text, nulls included); files with any mix of good and bad cells. The sync must reject
exactly the first row in file order that breaks a rule, naming line, column, the rule (earlier declared
column and rule first, a duplicate key last) and the value; and accept the file when no row breaks one.
The oracle reads the cells as text.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

DAY = dt.date(2026, 11, 19)
BLOB = "UK/raw_data/test/lines_20261119.csv"
HEADER = ["shop", "line_no", "note", "amount", "count", "day", "currency", "tier"]
CHOICES = {  # text cells a file may hold for each column (empty: a null)
    "shop": ["A", "B", "Bé"],
    "line_no": ["1", "2", "3", "0", "-4", ""],
    "note": ["", "abc", "ééééé", "abcdef"],
    "amount": ["", "0.5", "0.49", "99.95", "99.96", "10", "-3"],
    "count": ["", "100000", "100001", "-9223372036854775808", "7"],
    "day": ["", "2026-11-19", "2026-11-20", "2025-01-01"],
    "currency": ["GBP", "GBP", "EUR", "USD"],
    "tier": ["", "gold", "silver", "bronze"],
}


def _kind(grain: list[str]):
    from pipeline_common.config import DatasetType

    return DatasetType.model_validate({
        "cadence": "daily", "asset_name": "lines_{market}", "group": "test", "grain": grain,
        "columns": {
            "shop": {"type": "string"},
            "line_no": {"type": "integer", "min": 1},
            "note": {"type": "string", "nullable": True, "max_length": 5},
            "amount": {"type": "decimal", "nullable": True, "min": "0.5", "max": "99.95"},
            "count": {"type": "integer", "nullable": True, "max": 100000},
            "day": {"type": "date", "nullable": True, "not_after_file_date": True},
            "currency": {"type": "string", "allowed": ["GBP", "EUR", "JPY"], "market_currency": True},
            "tier": {"type": "string", "nullable": True, "allowed": ["gold", "silver"]},
        },
    })


def _oracle(rows: list[dict[str, str]], grain: list[str], currency: str, file_date: dt.date | None) -> str | None:
    """The first broken rule in file order, as the contract words it (plain Python over the text cells)."""
    def shown(name: str, text: str) -> str:
        if text == "":
            return "an empty value"
        return repr(f"{Decimal(text):.2f}" if name == "amount" else text)

    seen: dict[tuple[str, ...], int] = {}
    for line, row in enumerate(rows, start=2):
        checks = [
            ("shop", row["shop"] != "", "expected a value (the column may not be empty)"),
            ("line_no", row["line_no"] != "", "expected a value (the column may not be empty)"),
            ("line_no", row["line_no"] == "" or int(row["line_no"]) >= 1, "expected an integer >= 1"),
            ("note", len(row["note"]) <= 5, "expected at most 5 characters"),
            ("amount", row["amount"] == "" or Decimal(row["amount"]) >= Decimal("0.5"), "expected a number >= 0.5"),
            ("amount", row["amount"] == "" or Decimal(row["amount"]) <= Decimal("99.95"), "expected a number <= 99.95"),
            ("count", row["count"] == "" or int(row["count"]) <= 100000, "expected an integer <= 100,000"),
            ("day", row["day"] == "" or file_date is None or dt.date.fromisoformat(row["day"]) <= file_date,
             f"expected a date not after the file date {file_date}"),
            ("currency", row["currency"] in ("GBP", "EUR", "JPY"), "expected one of GBP, EUR, JPY"),
            ("currency", row["currency"] == currency, f"expected the market's currency {currency!r}"),
            ("tier", row["tier"] in ("", "gold", "silver"), "expected one of gold, silver"),  # empty: a null passes
        ]
        for name, ok, expected in checks:
            if not ok:
                return f"{BLOB} line {line}, column {name!r}: {expected}, got {shown(name, row[name])}"
        key = tuple(row[name] for name in grain)
        if key in seen:
            if len(grain) == 1:
                value = row[grain[0]]
                described = f"value {value}"
            else:
                described = "key " + ", ".join(f"{name}={shown(name, row[name])}" for name in grain)
            return f"{BLOB} line {line}, column {grain[0]!r}: duplicate {described} (first on line {seen[key]})"
        seen[key] = line
    return None


def _verdict(tmp_path, rows: list[dict[str, str]], grain: list[str], currency: str, file_date) -> str | None:
    from azure_sync.csv_reader import BadFileError, read_strict_csv
    from azure_sync.value_rules import check_values

    path = tmp_path / "lines.csv"
    path.write_text("\n".join([",".join(HEADER), *(",".join(r[h] for h in HEADER) for r in rows)]) + "\n",
                    encoding="utf-8")
    kind = _kind(grain)
    try:
        check_values(read_strict_csv(path, BLOB, kind.column_types), BLOB, kind, currency, file_date)
    except BadFileError as exc:
        return str(exc)
    return None


_ROW = st.fixed_dictionaries({name: st.sampled_from(values) for name, values in CHOICES.items()})
_GOOD_ROW = st.fixed_dictionaries({  # rows that break nothing but (maybe) the grain
    "shop": st.sampled_from(["A", "B", "Bé"]), "line_no": st.sampled_from(["1", "2", "3", "70000000000"]),
    "note": st.sampled_from(["", "abc", "ééééé"]), "amount": st.sampled_from(["", "0.5", "99.95", "10"]),
    "count": st.sampled_from(["", "100000", "-9223372036854775808"]), "day": st.sampled_from(["", "2026-11-19"]),
    "currency": st.just("GBP"), "tier": st.sampled_from(["", "gold", "silver"]),
})


@settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.one_of(_ROW, _GOOD_ROW), min_size=1, max_size=8),
       grain=st.sampled_from([["shop", "line_no"], ["line_no"], ["shop"], ["line_no", "shop"]]),
       currency=st.sampled_from(["GBP", "EUR"]), file_date=st.sampled_from([DAY, None]))
def test_the_first_broken_rule_in_file_order_is_named_as_the_oracle_says(tmp_path_factory, rows, grain, currency,
                                                                         file_date) -> None:
    verdict = _verdict(tmp_path_factory.mktemp("lines"), rows, grain, currency, file_date)
    assert verdict == _oracle(rows, grain, currency, file_date)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(_GOOD_ROW, min_size=1, max_size=10), grain=st.sampled_from([["shop", "line_no"], ["line_no"]]))
def test_rows_breaking_no_rule_are_refused_only_for_a_repeated_key(tmp_path_factory, rows, grain) -> None:
    verdict = _verdict(tmp_path_factory.mktemp("lines"), rows, grain, "GBP", DAY)
    assert verdict == _oracle(rows, grain, "GBP", DAY)
    keys = [tuple(r[name] for name in grain) for r in rows]
    assert (verdict is None) == (len(set(keys)) == len(keys))


@pytest.mark.parametrize(("ids", "line", "first"), [
    (["1", "2", "3"], None, None), (["1", "1"], 3, 2), (["3", "2", "1", "2"], 5, 3), (["5", "6", "7", "7"], 5, 4),
    (["9", "1", "9"], 4, 2),
])
def test_a_repeated_integer_key_names_both_lines(tmp_path, ids, line, first) -> None:
    rows = [{"shop": "A", "line_no": i, "note": "", "amount": "", "count": "", "day": "", "currency": "GBP", "tier": ""}
            for i in ids]
    expected = None if line is None else (f"{BLOB} line {line}, column 'line_no': duplicate value {ids[line - 2]} "
                                          f"(first on line {first})")
    assert _verdict(tmp_path, rows, ["line_no"], "GBP", DAY) == expected


def test_bounds_of_an_integer_with_only_a_max_reach_down_to_the_type_limit(tmp_path) -> None:
    row = {"shop": "A", "line_no": "1", "note": "", "amount": "", "count": "-9223372036854775808", "day": "",
           "currency": "EUR", "tier": ""}
    assert _verdict(tmp_path, [row], ["line_no"], "EUR", None) is None
    row["count"] = "100001"
    assert _verdict(tmp_path, [row], ["line_no"], "EUR", None) == (
        f"{BLOB} line 2, column 'count': expected an integer <= 100,000, got '100001'")


INT64 = (-(2**63), 2**63 - 1)
DECIMAL_MAX = Decimal("9999999999999999.99")  # the largest decimal(18, 2): the contract's money type


@st.composite
def _bounded_files(draw):
    """Bounds declared anywhere in each type's range (far past 16 digits for an integer, up to the largest
    decimal(18, 2)), a side left open at times, and values on, just inside and just outside each bound."""
    def bounds(low, high, step, cents):
        edges = [low, high, low + 1, high - 1, 0, 10**16, -(10**16), 10**16 - 1]  # 10**16: past a decimal(18, 2)
        edge = st.sampled_from([v for v in edges if low <= v <= high])
        lo, hi = sorted(draw(st.one_of(edge, st.integers(low, high))) for _ in range(2))
        def near(edge):
            return [v for v in (edge - step, edge, edge + step) if low <= v <= high]
        values = draw(st.lists(st.sampled_from(near(lo) + near(hi)), min_size=1, max_size=6))
        shown = (lambda v: str(Decimal(v) / 100)) if cents else str
        declared = draw(st.sampled_from(["both", "both", "min", "max", "none"]))
        return (shown(lo) if declared in ("both", "min") else None, shown(hi) if declared in ("both", "max") else None,
                [shown(v) for v in values])
    big = draw(st.sampled_from([INT64, (-10**18, 10**18), (-5, 5)]))
    cents = int(DECIMAL_MAX * 100)
    money = draw(st.sampled_from([(-cents, cents), (-10**6, 10**6), (-3, 3)]))
    return bounds(*big, 1, False), bounds(*money, 1, True)


@settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(generated=_bounded_files())
def test_declared_bounds_anywhere_in_the_type_range_are_enforced_exactly(tmp_path_factory, generated) -> None:
    """Class: integer bounds beyond what a decimal holds (up to the int64 limits) and decimal bounds up to the
    largest decimal(18, 2); every value compared exactly, the first one outside a bound named (bounds shown
    with thousands separators, as the contract words them)."""
    from azure_sync.csv_reader import BadFileError, read_strict_csv
    from azure_sync.value_rules import check_values
    from pipeline_common.config import DatasetType

    (n_lo, n_hi, counts), (a_lo, a_hi, amounts) = generated
    rows = max(len(counts), len(amounts))
    counts, amounts = [counts[i % len(counts)] for i in range(rows)], [amounts[i % len(amounts)] for i in range(rows)]
    declared = {"n": {"type": "integer"}, "amount": {"type": "decimal"}}
    for name, lo, hi in (("n", n_lo, n_hi), ("amount", a_lo, a_hi)):
        declared[name] |= {k: v for k, v in (("min", lo), ("max", hi)) if v is not None}
    kind = DatasetType.model_validate({"cadence": "daily", "asset_name": "b_{market}", "group": "test", "grain": ["id"],
                                       "columns": {"id": {"type": "integer"}, **declared}})
    path = tmp_path_factory.mktemp("bounds") / "b.csv"
    path.write_text("id,n,amount\n" + "".join(f"{i},{n},{a}\n" for i, (n, a) in enumerate(zip(counts, amounts))),
                    encoding="utf-8")
    expected = None
    for line, (n, a) in enumerate(zip(counts, amounts), start=2):
        checks = [("n", n_lo is None or int(n) >= int(n_lo), f"an integer >= {int(n_lo or 0):,}", n),
                  ("n", n_hi is None or int(n) <= int(n_hi), f"an integer <= {int(n_hi or 0):,}", n),
                  ("amount", a_lo is None or Decimal(a) >= Decimal(a_lo), f"a number >= {Decimal(a_lo or 0):,}", a),
                  ("amount", a_hi is None or Decimal(a) <= Decimal(a_hi), f"a number <= {Decimal(a_hi or 0):,}", a)]
        broken = [(name, rule, value) for name, ok, rule, value in checks if not ok]
        if broken:
            name, rule, value = broken[0]
            shown = f"{Decimal(value):.2f}" if name == "amount" else value
            expected = f"{BLOB} line {line}, column {name!r}: expected {rule}, got {shown!r}"
            break
    try:
        check_values(read_strict_csv(path, BLOB, kind.column_types), BLOB, kind, "GBP", None)
        verdict = None
    except BadFileError as exc:
        verdict = str(exc)
    assert verdict == expected


@pytest.mark.parametrize("ids", [["9007199254740993", "9007199254740992", ""], ["", "9007199254740992", "9007199254740993"],
                                 ["9223372036854775807", "", "9223372036854775806"]])
def test_ids_past_what_a_float_holds_stay_distinct_next_to_an_empty_cell(tmp_path, ids) -> None:
    """Class: integer keys above 2**53 (a float cannot tell them apart) in a column with an empty cell: they
    are compared exactly; only the empty cell is named."""
    rows = [{"shop": "A", "line_no": i, "note": "", "amount": "", "count": "", "day": "", "currency": "GBP", "tier": ""}
            for i in ids]
    line = ids.index("") + 2
    assert _verdict(tmp_path, rows, ["line_no"], "GBP", DAY) == (
        f"{BLOB} line {line}, column 'line_no': expected a value (the column may not be empty), got an empty value")
