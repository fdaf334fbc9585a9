"""Generators instead of lists: source files built from the declared schema (pipeline.yaml), broken
one thing at a time.

For every dataset type in pipeline.yaml, hypothesis builds a valid CSV from the declaration (types,
bounds, allowed values, nullability, grain), then breaks exactly one thing of one class:

  type, format, nullability, bound, allowed value, grain (duplicate key), encoding, layout

and asserts: a valid file is accepted with values equal to an independent parse (Python's csv,
int, Decimal, date, datetime: no Arrow); a broken file is refused (BadFileError) naming the line
and, where there is one, the column; no other exception. The sync-level property runs the real
script (in-process `sync_azure.main`) on a broken file after a good sync: exit 65 only, the earlier
Parquet byte-identical, no temporary file left.

Bounded time: a few dozen examples per property. Longer mode (docs/rejected_inputs.md, "Generated
tests"): `SCHEMA_FUZZ_EXAMPLES=2000 pytest tests/test_schema_generated_inputs.py`.
"""

from __future__ import annotations

import contextlib
import csv
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

from pipeline_common.config import Column, DatasetType, load_pipeline_config

CONFIG = load_pipeline_config()
EXAMPLES = int(os.environ.get("SCHEMA_FUZZ_EXAMPLES") or 0)
FILE_DATE = dt.date(2026, 11, 19)
MARKET = "UK"
CURRENCY = CONFIG.markets[MARKET].currency
INT64_MAX = 2**63 - 1
BREAKS = ["type", "format", "nullability", "bound", "allowed", "grain", "encoding", "layout"]


def _settings(default: int):
    return settings(max_examples=EXAMPLES or default, deadline=None, derandomize=not EXAMPLES,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])


# --- valid values from a declaration ---------------------------------------------------------------


def _int_range(column: Column) -> tuple[int, int]:
    low, high = column.bounds
    return max(int(low), -(10**12)), min(int(high), 10**12)


def _value(column: Column, unique: int | None = None) -> st.SearchStrategy[str]:
    """Text of a valid cell of `column` (`unique`: the row's index, for grain columns)."""
    if column.type == "integer":
        low, high = _int_range(column)
        if unique is not None:
            return st.just(str(low + unique))
        return st.integers(low, high).map(str)
    if column.type == "decimal":
        low, high = column.bounds
        cents = st.integers(int(max(low, Decimal(-10**9)) * 100), int(min(high, Decimal(10**9)) * 100))
        return cents.flatmap(lambda c: st.sampled_from(_decimal_texts(c)))
    if column.type == "date":
        latest = FILE_DATE if column.not_after_file_date else dt.date(2030, 12, 31)
        return st.dates(dt.date(2000, 1, 1), latest).map(dt.date.isoformat)
    if column.type == "timestamp":
        return st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2030, 12, 31)).map(
            lambda t: t.replace(microsecond=0).strftime("%Y-%m-%d %H:%M:%S"))
    if column.market_currency:
        return st.just(CURRENCY)
    if column.allowed:
        return st.sampled_from(column.allowed)
    alphabet = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\u2028\u2029\x85")
    text = st.text(alphabet, min_size=1, max_size=min(column.max_length or 20, 20)).filter(lambda t: t.strip() == t)
    if unique is not None:
        return text.map(lambda t: f"{unique}_{t}"[: column.max_length or 64])
    return text


def _decimal_texts(cents: int) -> list[str]:
    """The ways a file may write the same amount: 12, 12.5, 12.50 (only exact ones)."""
    value = Decimal(cents) / 100
    texts = [f"{value:.2f}"]
    if cents % 10 == 0:
        texts.append(f"{value:.1f}")
    if cents % 100 == 0:
        texts.append(f"{value:.0f}")
    return texts


@st.composite
def valid_rows(draw, kind: DatasetType, rows: int) -> list[list[str]]:
    table = []
    for index in range(rows):
        row = []
        for name, column in kind.columns.items():
            if column.nullable and draw(st.booleans()) and draw(st.booleans()):
                row.append("")
            else:
                row.append(draw(_value(column, index if name in kind.grain else None)))
        table.append(row)
    return table


def _csv_bytes(header: list[str], rows: list[list[str]], quote_all: bool, bom: bool) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL)
    writer.writerow(header)
    writer.writerows(rows)
    return (b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode("utf-8")


# --- one break of one class ------------------------------------------------------------------------


def _break(draw, kind: DatasetType, rows: list[list[str]]) -> tuple[str, int, str | None] | None:
    """Break one cell or line of `rows` in place: (class, 0-based row, column or None); None if the
    class does not apply to this dataset type."""
    names = list(kind.columns)
    which = draw(st.sampled_from(BREAKS))
    row = draw(st.integers(0, len(rows) - 1))

    def pick(predicate) -> str | None:
        candidates = [n for n in names if predicate(kind.columns[n])]
        return draw(st.sampled_from(candidates)) if candidates else None

    if which == "type":
        name = pick(lambda c: c.type != "string")
        if name is None:
            return None
        rows[row][names.index(name)] = draw(st.sampled_from(["x", "N/A", "12a", "--1", "2026-13-01", "true"]))
    elif which == "format":
        name = pick(lambda c: c.type != "string")
        if name is None:
            return None
        kind_of = kind.columns[name].type
        bad = {
            "integer": ["0x10", "+5", " 5", "5 ", "1e3", "1_000", "1.0", "١٢"],
            "decimal": ["1e2", "+1", " 1", "1.", ".5", "1.234", "1,50", "NaN", "1.5e1"],
            "date": ["20261119", "2026-1-19", "2026/11/19", "19.11.2026", "2026-11-19 00:00:00", " 2026-11-19"],
            "timestamp": ["2026-11-19", "2026-11-19T10:00:00", "2026-11-19 10:00", "2026-11-19 10:00:00.5",
                          "2026-11-19 10:00:00Z", "2026-11-19 24:00:00", "2026-11-19 1:00:00"],
        }[kind_of]
        rows[row][names.index(name)] = draw(st.sampled_from(bad))
    elif which == "nullability":
        name = pick(lambda c: not c.nullable)
        rows[row][names.index(name)] = ""
    elif which == "bound":
        name = pick(lambda c: c.type in ("integer", "decimal"))
        if name is None:
            return None
        column = kind.columns[name]
        options = []
        if column.min is not None:
            options.append(str(column.min - (1 if column.type == "integer" else Decimal("0.01"))))
        if column.max is not None:
            options.append(str(column.max + (1 if column.type == "integer" else Decimal("0.01"))))
        options += [str(INT64_MAX + 1)] if column.type == "integer" else ["1" + "0" * 16]
        rows[row][names.index(name)] = draw(st.sampled_from(options))
    elif which == "allowed":
        name = pick(lambda c: bool(c.allowed) or c.market_currency)
        if name is None:
            return None
        column = kind.columns[name]
        current = rows[row][names.index(name)]
        others = [v for v in column.allowed or [] if v != CURRENCY] if column.market_currency else []
        choices = [v for v in others + ["XXX", current.lower(), f" {current}"] if v != current]
        rows[row][names.index(name)] = draw(st.sampled_from(choices))
    elif which == "grain":
        if len(rows) < 2:
            return None
        other = draw(st.integers(0, len(rows) - 1).filter(lambda i: i != row))
        first, second = sorted((row, other))
        for name in kind.grain:
            rows[second][names.index(name)] = rows[first][names.index(name)]
        return which, second, kind.grain[0]
    elif which == "encoding":
        name = pick(lambda c: True)
        rows[row][names.index(name)] = "\udcff"  # becomes an invalid UTF-8 byte below
    elif which == "layout":
        if draw(st.booleans()):
            rows[row].append("surplus")
        else:
            rows[row].pop()
        return which, row, None
    return which, row, name


@st.composite
def broken_file(draw, kind: DatasetType):
    rows = draw(valid_rows(kind, draw(st.integers(2, 12))))
    broken = _break(draw, kind, rows)
    if broken is None:
        broken = ("nullability", 0, list(kind.columns)[0])
        rows[0][0] = ""
    quote_all = draw(st.booleans())
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL)
    writer.writerow(list(kind.columns))
    writer.writerows(rows)
    data = out.getvalue().encode("utf-8", errors="surrogateescape")
    return data, broken


# --- the independent parse -------------------------------------------------------------------------


def _independent(kind: DatasetType, data: bytes) -> list[dict]:
    """What the file says, read with Python's csv and the standard types only."""
    text = data.decode("utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    out = []
    for cells in reader:
        record = {}
        for name, column in kind.columns.items():
            value = cells[header.index(name)]
            if value == "":
                record[name] = None
            elif column.type == "integer":
                record[name] = int(value)
            elif column.type == "decimal":
                record[name] = Decimal(value).quantize(Decimal("0.01"))
            elif column.type == "date":
                record[name] = dt.date.fromisoformat(value)
            elif column.type == "timestamp":
                record[name] = dt.datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
            else:
                record[name] = value
        out.append(record)
    return out


def _parse(kind: DatasetType, data: bytes, tmp: Path):
    from azure_sync.csv_reader import read_strict_csv
    from azure_sync.value_rules import check_values

    path = tmp / "file.csv"
    path.write_bytes(data)
    parsed = read_strict_csv(path, "the/blob.csv", kind.column_types)
    check_values(parsed, "the/blob.csv", kind, CURRENCY, FILE_DATE if kind.cadence != "reference" else None)
    return parsed.table


DATASET_TYPES = sorted(CONFIG.dataset_types)


@pytest.mark.parametrize("dataset", DATASET_TYPES)
@_settings(15)
@given(data=st.data())
def test_a_valid_file_is_accepted_with_the_values_an_independent_parse_reads(dataset, data, tmp_path_factory):
    kind = CONFIG.dataset_type(dataset)
    rows = data.draw(valid_rows(kind, data.draw(st.integers(1, 15))))
    raw = _csv_bytes(list(kind.columns), rows, data.draw(st.booleans()), data.draw(st.booleans()))
    table = _parse(kind, raw, tmp_path_factory.mktemp("valid"))
    assert table.to_pylist() == _independent(kind, raw)


@pytest.mark.parametrize("dataset", DATASET_TYPES)
@_settings(40)
@given(data=st.data())
def test_one_broken_thing_is_refused_naming_line_and_column(dataset, data, tmp_path_factory):
    from azure_sync.csv_reader import BadFileError

    kind = CONFIG.dataset_type(dataset)
    raw, (which, row, column) = data.draw(broken_file(kind))
    with pytest.raises(BadFileError) as info:
        _parse(kind, raw, tmp_path_factory.mktemp("broken"))
    message = str(info.value)
    assert message.startswith(f"the/blob.csv line {row + 2}"), (which, message)
    if column is not None and which not in ("encoding",):
        assert f"column {column!r}" in message, (which, message)


# --- the real sync: exit codes and earlier outputs -------------------------------------------------


def _sync(data_dir: Path, landing: Path) -> tuple[int, dict]:
    from azure_sync import sync_azure

    out = io.StringIO()
    env = {"DATA_DIR": str(data_dir), "LANDING_DIR": str(landing)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            try:
                sync_azure.main(["--market", MARKET, "--dataset", "ingest_orders", "--days-back", "1",
                                 "--as-of", FILE_DATE.isoformat()])
                code = 0
            except SystemExit as exc:
                code = int(exc.code or 0)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return code, json.loads(out.getvalue().strip().splitlines()[-1])


@_settings(12)
@given(data=st.data())
def test_the_sync_refuses_a_broken_file_with_65_and_keeps_the_earlier_parquet(data, tmp_path_factory, isolated_env):
    kind = CONFIG.dataset_type("ingest_orders")
    root = tmp_path_factory.mktemp("sync")
    landing, data_dir = root / "landing", root / "data"
    blob = landing / MARKET / "raw_data/DWH/Oracle/ingest_orders" / str(FILE_DATE.year) / (
        f"ingest_orders_{FILE_DATE:%Y%m%d}.csv")
    blob.parent.mkdir(parents=True)
    good_rows = data.draw(valid_rows(kind, 5))
    blob.write_bytes(_csv_bytes(list(kind.columns), good_rows, False, False))
    code, summary = _sync(data_dir, landing)
    assert code == 0, summary
    parquet = next((data_dir / "raw" / MARKET / "ingest_orders").rglob("*.parquet"))
    before = parquet.read_bytes()
    assert pq.read_table(parquet).num_rows == 5

    raw, (which, row, _) = data.draw(broken_file(kind))
    blob.write_bytes(raw)
    os.utime(blob, ns=(blob.stat().st_atime_ns, blob.stat().st_mtime_ns + 10**9))
    code, summary = _sync(data_dir, landing)
    assert code == 65, (which, summary)
    assert f"line {row + 2}" in summary["error"]["message"], (which, summary)
    assert parquet.read_bytes() == before
    leftovers = [p for p in data_dir.rglob("*") if p.is_file() and p.suffix not in (".parquet", ".json")]
    assert leftovers == [], leftovers
