"""Property-based tests (hypothesis): generated inputs with randomly injected faults.

Orders files: cut lines, bad values, stray quotes, duplicated ids, random bytes, at random lines.
The real sync (in-process `sync_azure.main`, the same code path as the script) must end in exit 0
with exactly the generated rows when nothing was injected, or exit 65 naming one of the faulty
lines; never any other exit code, never a changed earlier Parquet.

Budget workbooks: random cell contents (numbers, blanks, plain and non-plain number text,
formulas without cached values). The parser must return exactly the values of the valid cells,
or reject naming one of the bad cells; never another exception. Bounded: a few dozen examples each.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.plugins.azurite import ORDERS_HEADER, csv_text, orders_blob_name, orders_rows

DAY_1 = dt.date(2026, 11, 19)
ROWS = 30
BLOB = orders_blob_name("UK", DAY_1)
TYPED = {"order_id": 0, "order_line_id": 1, "order_date": 2, "order_ts": 3, "customer_id": 4, "quantity": 7,
         "unit_price": 8}
FAULT_KINDS = ["cut", "bad_value", "stray_quote", "duplicate_id", "random_bytes"]


def _sync_in_process(data_dir: Path, landing: Path) -> tuple[int, dict]:
    from azure_sync import sync_azure

    out = io.StringIO()
    env = {"DATA_DIR": str(data_dir), "LANDING_DIR": str(landing)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with contextlib.redirect_stdout(out):
            try:
                sync_azure.main(["--market", "UK", "--dataset", "ingest_orders", "--days-back", "1",
                                 "--as-of", DAY_1.isoformat()])
                code = 0
            except SystemExit as exc:
                code = int(exc.code or 0)
    finally:
        for key, value in saved.items():
            os.environ[key] = value if value is not None else ""
    return code, json.loads(out.getvalue().strip().splitlines()[-1])


@st.composite
def faulty_files(draw):
    rows = orders_rows(DAY_1, ROWS)
    lines = [",".join(row) for row in rows]
    faults: dict[int, str] = {}  # editor line -> kind
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(FAULT_KINDS))
        index = draw(st.integers(0, ROWS - 1))
        line = index + 2
        if line in faults:
            continue  # one fault per line: two stray quotes could make a legal quoted value
        cells = lines[index].split(",")
        if kind == "cut":  # cut inside the line, dropping at least one separator
            last_comma = lines[index].rfind(",")
            lines[index] = lines[index][: draw(st.integers(1, last_comma))]
        elif kind == "bad_value":
            column = draw(st.sampled_from(sorted(TYPED)))
            cells[TYPED[column]] = draw(st.sampled_from(["x", "1.2.3", "12a", "2026-13-01", "N/A", "--1"]))
            lines[index] = ",".join(cells)
        elif kind == "stray_quote":
            position = draw(st.integers(0, len(lines[index])))
            lines[index] = lines[index][:position] + '"' + lines[index][position:]
        elif kind == "duplicate_id":
            if index == 0:
                continue
            other = draw(st.integers(0, index - 1))
            cells[1] = lines[other].split(",")[1] if "," in lines[other] else cells[1]
            lines[index] = ",".join(cells)
            if cells[1] == rows[index][1]:
                continue
        elif kind == "random_bytes":  # a non-digit first, so the value can never parse by chance
            column = draw(st.sampled_from(["quantity", "unit_price", "order_date", "customer_id"]))
            noise = draw(st.binary(min_size=1, max_size=12).filter(lambda b: b"\n" not in b and b"\r" not in b))
            cells[TYPED[column]] = "Z" + noise.decode("latin-1")
            lines[index] = ",".join(cells)
        faults[line] = kind
    payload = ("\n".join([",".join(ORDERS_HEADER), *lines]) + "\n").encode("latin-1", errors="strict")
    return payload, faults, rows


@pytest.mark.timeout(300)
@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=faulty_files())
def test_orders_with_injected_faults_end_in_0_or_65_naming_a_faulty_line(tmp_path_factory, case) -> None:
    payload, faults, rows = case
    root = tmp_path_factory.mktemp("prop")
    landing = root / "landing"
    target = landing.joinpath(*BLOB.split("/"))
    target.parent.mkdir(parents=True)
    target.write_text(csv_text(ORDERS_HEADER, orders_rows(DAY_1, 5, first_id=900)), encoding="utf-8")
    code, _ = _sync_in_process(root / "data", landing)
    assert code == 0
    parquet = root / "data" / "raw" / "UK" / "ingest_orders" / "2026" / "ingest_orders_20261119.parquet"
    earlier = parquet.read_bytes()

    target.write_bytes(payload)
    code, summary = _sync_in_process(root / "data", landing)

    if not faults:
        assert code == 0, summary
        table = pq.read_table(parquet)
        assert table.column("order_line_id").to_pylist() == [int(r[1]) for r in rows]
        assert table.column("unit_price").to_pylist() == [Decimal(r[8]) for r in rows]
        return
    assert code == 65, summary
    message = summary["error"]["message"]
    named = [line for line in faults if f"{BLOB} line {line}:" in message or f"{BLOB} line {line}," in message]
    assert named, f"{faults}\n{message}"
    assert parquet.read_bytes() == earlier
    assert not [p for p in (root / "data").rglob(".*") if p.is_file() and p.suffix == ".tmp"]


# --- budget workbooks -------------------------------------------------------------------------------

GOOD_TEXT = {"1,234.50": 1234.5, "-12": -12.0, "0.5": 0.5, "12345": 12345.0, "1,000,000": 1000000.0}
BAD_TEXT = ["1.234,50", "12,34", "£5", "n/a", "1e3", "+5", "1,2345.0", "12.3.4"]
CELL = st.one_of(
    st.none(),
    st.integers(-10_000, 1_000_000),
    st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: round(x, 2)),
    st.sampled_from(sorted(GOOD_TEXT)),
    st.sampled_from(BAD_TEXT),
    st.just("=1+1"),
)


@pytest.mark.timeout(300)
@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(cells=st.lists(st.lists(CELL, min_size=5, max_size=5), min_size=2, max_size=2))
def test_budget_cells_are_read_exactly_or_rejected_naming_a_bad_cell(tmp_path_factory, cells) -> None:
    from openpyxl import Workbook

    from pipeline_common.script_support import BadDataError
    from sharepoint_budget.workbook import parse_workbook

    days = [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(5)]
    workbook = Workbook()
    budget = workbook.active
    budget.title = "Budget"
    budget.append(["Market", "Channel", *[d.isoformat() for d in days]])
    keys = [("UK", "TV"), ("DE", "WEB")]
    for (market, channel), row in zip(keys, cells):
        budget.append([market, channel, *row])
    exchange = workbook.create_sheet("Exchange")
    exchange.append(["Currency", "2026-01"])
    for currency in ("EUR", "JPY"):
        exchange.append([currency, 0.5])
    path = tmp_path_factory.mktemp("wb") / "Daily Sales Budget 2026.xlsx"
    workbook.save(path)

    bad = {f"Budget!{'CDEFG'[c]}{r + 2}" for r, row in enumerate(cells) for c, value in enumerate(row)
           if value == "=1+1" or value in BAD_TEXT}
    has_values = any(v is not None for row in cells for v in row)
    try:
        parsed = parse_workbook(path, 2026, ["UK", "DE", "IT", "JP"], {"GBP", "EUR", "JPY"})
    except BadDataError as exc:
        message = str(exc)
        if bad:
            assert any(message.startswith(ref + ":") for ref in bad), (bad, message)
        else:
            assert not has_values and "no budget values" in message or "no market rows" in message, message
        return
    assert not bad and has_values
    expected = sorted(
        (days[c], market, channel, round(GOOD_TEXT[v] if isinstance(v, str) else float(v), 2))
        for (market, channel), row in zip(keys, cells) for c, v in enumerate(row) if v is not None
    )
    got = sorted((r["budget_date"], r["market"], r["channel"], float(r["budget_gbp"]))
                 for r in parsed.budget.to_pylist())
    assert got == expected
