"""The budget ingest script on real workbooks: wide -> long, header variants, and every bad-input case."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet

from tests.plugins.sample_data import SAMPLE_AS_OF

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "bat_file_data_refresh" / "python" / "sharepoint_budget" / "daily_sales_ingest.py"
YEAR = SAMPLE_AS_OF.year
WORKBOOK = f"Daily Sales Budget {YEAR}.xlsx"
HEADER_ROW = 4  # the generated workbook has three title rows above the header
UK_TV_ROW = HEADER_ROW + 1
EXIT_BAD_DATA = 65


def run_ingest_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The real script in a fresh interpreter: for what the command line itself does (exit code, stdout)."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300
    )


def run_ingest(*args: str):
    """The script's main in this process (tests/plugins/in_process.py): for the sheet's rules, not the CLI."""
    from sharepoint_budget import daily_sales_ingest

    from tests.plugins.in_process import run_main

    return run_main(daily_sales_ingest.main, args)


def summary_of(result: subprocess.CompletedProcess[str]) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


def outputs(data_dir: Path) -> tuple[Path, Path]:
    folder = data_dir / "raw" / "budget"
    return folder / f"daily_sales_budget_{YEAR}.csv", folder / f"exchange_rates_{YEAR}.csv"


@pytest.fixture
def landing(tmp_path: Path, sample_landing: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private landing folder holding a copy of the generated budget workbook."""
    root = tmp_path / "landing"
    (root / "sharepoint").mkdir(parents=True)
    shutil.copy(sample_landing / "sharepoint" / WORKBOOK, root / "sharepoint" / WORKBOOK)
    monkeypatch.setenv("LANDING_DIR", str(root))
    return root


def edit_workbook(path: Path, change: Callable[[object], None]) -> None:
    workbook = load_workbook(path)
    change(workbook)
    workbook.save(path)


def cell_values(path: Path) -> tuple[list[tuple], list[tuple]]:
    workbook = load_workbook(path, read_only=True)
    return list(workbook["Budget"].iter_rows(values_only=True)), list(workbook["Exchange"].iter_rows(values_only=True))


# --- good workbooks ------------------------------------------------------------------------------


def test_generated_workbook_becomes_long_csv_files(landing: Path, isolated_env: Path) -> None:
    result = run_ingest_cli("--year", str(YEAR))  # the real interpreter: exit 0 and the JSON line on stdout
    assert result.returncode == 0, result.stderr
    budget_csv, exchange_csv = outputs(isolated_env)
    budget_rows, fx_rows = cell_values(landing / "sharepoint" / WORKBOOK)
    body = budget_rows[HEADER_ROW:]
    channel_rows = [r for r in body if r[1] != "Total"]
    filled = sum(1 for r in channel_rows for v in r[2:] if v is not None)
    summary = summary_of(result)
    assert summary == {"budget_year": YEAR, "total_rows": filled, "exchange_rows": 36}

    con = duckdb.connect()
    header = budget_csv.read_text(encoding="utf-8").splitlines()[0]
    assert header == '"budget_date","market","channel","budget_gbp"'
    assert con.execute(f"select count(*) from read_csv('{budget_csv.as_posix()}')").fetchone()[0] == filled
    # The skipped Total rows still agree with the channel rows they sum.
    days = budget_rows[HEADER_ROW - 1][2:]
    totals = {(r[0], d.date()): v for r in body if r[1] == "Total" for d, v in zip(days, r[2:], strict=True)}
    sums = con.execute(
        f"select market, budget_date, sum(budget_gbp) from read_csv('{budget_csv.as_posix()}') group by all"
    ).fetchall()
    assert len(sums) == len(totals)
    assert all(abs(float(total) - totals[(market, day)]) < 0.011 for market, day, total in sums)

    fx = con.execute(f"select currency, month, gbp_per_unit from read_csv('{exchange_csv.as_posix()}')").fetchall()
    fx_header = fx_rows[1]
    expected = {(r[0], m.date()): v for r in fx_rows[2:] for m, v in zip(fx_header[1:], r[1:], strict=True)}
    assert {(c, m): float(v) for c, m, v in fx} == pytest.approx(expected)
    assert {m.day for _, m, _ in fx} == {1}


def test_a_blank_cell_means_no_budget_row(landing: Path, isolated_env: Path) -> None:
    def blank_uk_web_on_march_3(workbook) -> None:
        sheet: Worksheet = workbook["Budget"]
        column = 2 + dt.date(YEAR, 3, 3).timetuple().tm_yday
        sheet.cell(UK_TV_ROW + 1, column).value = None

    edit_workbook(landing / "sharepoint" / WORKBOOK, blank_uk_web_on_march_3)
    assert run_ingest("--year", str(YEAR)).returncode == 0
    budget_csv, _ = outputs(isolated_env)
    rows = duckdb.connect().execute(
        f"select market, channel from read_csv('{budget_csv.as_posix()}') where budget_date = '{YEAR}-03-03'"
    ).fetchall()
    assert ("UK", "WEB") not in rows and ("UK", "TV") in rows


def test_string_date_headers_give_the_same_output_as_excel_dates(landing: Path, isolated_env: Path) -> None:
    assert run_ingest("--year", str(YEAR)).returncode == 0
    with_dates = [p.read_bytes() for p in outputs(isolated_env)]

    def to_strings(workbook) -> None:
        for cell in workbook["Budget"][HEADER_ROW][2:]:
            cell.value = cell.value.strftime("%Y-%m-%d")
        for cell in workbook["Exchange"][2][1:]:
            cell.value = cell.value.strftime("%Y-%m")

    edit_workbook(landing / "sharepoint" / WORKBOOK, to_strings)
    assert cell_values(landing / "sharepoint" / WORKBOOK)[0][HEADER_ROW - 1][2] == f"{YEAR}-01-01"
    for path in outputs(isolated_env):
        path.unlink()
    assert run_ingest("--year", str(YEAR)).returncode == 0
    assert [p.read_bytes() for p in outputs(isolated_env)] == with_dates


def test_header_in_the_first_row_and_source_as_a_file(tmp_path: Path, landing: Path, isolated_env: Path) -> None:
    def drop_title_rows(workbook) -> None:
        workbook["Budget"].delete_rows(1, HEADER_ROW - 1)
        workbook["Exchange"].delete_rows(1, 1)

    copy = tmp_path / "elsewhere" / "budget.xlsx"
    copy.parent.mkdir()
    shutil.copy(landing / "sharepoint" / WORKBOOK, copy)
    edit_workbook(copy, drop_title_rows)
    result = run_ingest("--year", str(YEAR), "--source", str(copy))
    assert result.returncode == 0, result.stderr
    assert summary_of(result)["exchange_rows"] == 36 and summary_of(result)["total_rows"] > 5000


# --- bad input: exact cell, exit code, earlier outputs untouched ----------------------------------


def _set(sheet: str, ref: str, value: object) -> Callable[[object], None]:
    def change(workbook) -> None:
        workbook[sheet][ref] = value

    return change


def _delete_sheet(name: str) -> Callable[[object], None]:
    def change(workbook) -> None:
        del workbook[name]

    return change


def _duplicate_uk_tv(workbook) -> None:
    workbook["Budget"].cell(UK_TV_ROW + 1, 2).value = "TV"


BAD_CASES = {
    "non-numeric cell": (
        _set("Budget", f"D{UK_TV_ROW + 2}", "n/a"),
        f"Budget!D{UK_TV_ROW + 2}: expected a number, got 'n/a'",
    ),
    "unknown market": (
        _set("Budget", f"A{UK_TV_ROW}", "FR"),
        f"Budget!A{UK_TV_ROW}: unknown market 'FR'; known: DE, IT, JP, UK",
    ),
    "duplicate market and channel": (
        _duplicate_uk_tv,
        f"Budget!A{UK_TV_ROW + 1}: duplicate row for (UK, TV); first at row {UK_TV_ROW}",
    ),
    "missing Budget sheet": (_delete_sheet("Budget"), "Budget!A1: sheet 'Budget' not found"),
    "missing Exchange sheet": (_delete_sheet("Exchange"), "Exchange!A1: sheet 'Exchange' not found"),
    "missing header": (_set("Budget", f"A{HEADER_ROW}", "Region"), "Budget!A1:A"),
    "bad header date": (
        _set("Budget", f"E{HEADER_ROW}", "3rd Jan"),
        f"Budget!E{HEADER_ROW}: expected an Excel date or 'YYYY-MM-DD' header, got '3rd Jan'",
    ),
    "date outside the year": (
        _set("Budget", f"C{HEADER_ROW}", dt.datetime(YEAR - 1, 12, 31)),
        f"Budget!C{HEADER_ROW}: date {YEAR - 1}-12-31 is not in {YEAR}",
    ),
    "non-numeric exchange rate": (
        _set("Exchange", "D4", "tbc"),
        "Exchange!D4: expected a number, got 'tbc'",
    ),
    "bad exchange month": (
        _set("Exchange", "C2", f"{YEAR}-13"),
        f"Exchange!C2: expected an Excel date or 'YYYY-MM' header, got '{YEAR}-13'",
    ),
    # contract section 4: number text, formulas, an empty sheet, rates (issue 10)
    "continental number text": (
        _set("Budget", f"E{UK_TV_ROW + 1}", "1.234,50"),
        f"Budget!E{UK_TV_ROW + 1}: expected a number, got '1.234,50'",
    ),
    "thousands groups not of three": (
        _set("Budget", f"F{UK_TV_ROW}", "12,34"),
        f"Budget!F{UK_TV_ROW}: expected a number, got '12,34'",
    ),
    "formula without a cached value": (
        _set("Budget", f"G{UK_TV_ROW + 3}", "=C5*2"),
        f"Budget!G{UK_TV_ROW + 3}: a formula without a calculated value",
    ),
    "Budget sheet with a header and no rows": (
        lambda workbook: workbook["Budget"].delete_rows(UK_TV_ROW, 200),
        f"Budget!A{UK_TV_ROW}: the sheet has a header but no market rows",
    ),
    "negative exchange rate": (
        _set("Exchange", "D4", -1.0),
        "Exchange!D4: rate must be above 0, got -1\n",
    ),
}


CLI_BAD_CASES = ["non-numeric cell", "missing Budget sheet"]  # through the real script as well


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_input_names_the_cell_and_keeps_earlier_outputs(case: str, landing: Path, isolated_env: Path) -> None:
    _bad_input_is_refused(case, landing, isolated_env, run_ingest)


@pytest.mark.parametrize("case", CLI_BAD_CASES)
def test_bad_input_is_refused_by_the_command_line(case: str, landing: Path, isolated_env: Path) -> None:
    _bad_input_is_refused(case, landing, isolated_env, run_ingest_cli)


def _bad_input_is_refused(case: str, landing: Path, isolated_env: Path, run_ingest) -> None:
    assert run_ingest("--year", str(YEAR)).returncode == 0
    before = {p: p.read_bytes() for p in outputs(isolated_env)}
    change, message = BAD_CASES[case]
    edit_workbook(landing / "sharepoint" / WORKBOOK, change)

    result = run_ingest("--year", str(YEAR))

    assert result.returncode == EXIT_BAD_DATA
    assert message in result.stderr
    assert {p: p.read_bytes() for p in outputs(isolated_env)} == before
    assert sorted(p.name for p in (isolated_env / "raw" / "budget").iterdir()) == sorted(p.name for p in before)


def test_a_missing_workbook_is_bad_input_unless_skipped(landing: Path, isolated_env: Path) -> None:
    result = run_ingest("--year", str(YEAR + 1))
    assert result.returncode == EXIT_BAD_DATA
    assert f"Daily Sales Budget {YEAR + 1}.xlsx' not found in {landing / 'sharepoint'}" in result.stderr
    skipped = run_ingest("--year", str(YEAR + 1), "--skip-missing")
    assert skipped.returncode == 0
    assert summary_of(skipped) == {"budget_year": YEAR + 1, "total_rows": 0, "exchange_rows": 0, "skipped": True}
    assert not (isolated_env / "raw" / "budget").exists()


def test_a_file_that_is_not_a_workbook_is_rejected(landing: Path) -> None:
    (landing / "sharepoint" / WORKBOOK).write_bytes(b"Market,Channel\nUK,TV\n")
    result = run_ingest("--year", str(YEAR))
    assert result.returncode == EXIT_BAD_DATA
    assert f"{WORKBOOK}: not an .xlsx workbook (the file is not a zip package)" in result.stderr


def test_plain_number_text_with_thousands_separators_is_read(landing: Path, isolated_env: Path) -> None:
    workbook_path = landing / "sharepoint" / WORKBOOK
    header = [c.value for c in load_workbook(workbook_path)["Budget"][HEADER_ROW]]
    edit_workbook(workbook_path, _set("Budget", f"C{UK_TV_ROW}", "1,234.50"))
    edit_workbook(workbook_path, _set("Budget", f"D{UK_TV_ROW}", "-12"))
    result = run_ingest("--year", str(YEAR))
    assert result.returncode == 0, result.stderr
    day_c, day_d = (header[2].date() if hasattr(header[2], "date") else header[2]), (
        header[3].date() if hasattr(header[3], "date") else header[3])
    budget_csv = outputs(isolated_env)[0]
    rows = duckdb.sql(f"select budget_date, budget_gbp from read_csv('{budget_csv}') "
                      "where market = 'UK' and channel = 'TV' order by budget_date limit 2").fetchall()
    assert rows == [(day_c, 1234.50), (day_d, -12.0)]


def _rewrite_member(source: Path, target: Path, member: str, change: Callable[[bytes], bytes],
                    compress: bool = True) -> None:
    import zipfile

    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for item in old.infolist():
            data = old.read(item.filename)
            new.writestr(item, change(data) if item.filename == member else data)


def _corrupt_compressed_member(path: Path) -> None:
    """Flip bytes inside the compressed data of the first worksheet (zlib or CRC error on read)."""
    import zipfile

    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("xl/worksheets/sheet1.xml")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for offset in range(start + 20, start + min(info.compress_size - 1, 400), 7):
        data[offset] ^= 0xA5
    path.write_bytes(bytes(data))


def _cut_sheet_xml(path: Path) -> None:
    original = path.with_name("original.xlsx")
    path.rename(original)
    _rewrite_member(original, path, "xl/worksheets/sheet1.xml", lambda xml: xml[: len(xml) // 2])
    original.unlink()


def _encrypt(path: Path) -> None:
    import io

    from msoffcrypto.format.ooxml import OOXMLFile

    encrypted = io.BytesIO()
    with path.open("rb") as plain:
        OOXMLFile(plain).encrypt("s3cret", encrypted)
    path.write_bytes(encrypted.getvalue())


BROKEN_FILES = {
    "corrupt zip member": (_corrupt_compressed_member, f"{WORKBOOK}: the workbook is corrupt ("),
    "sheet XML cut in half": (_cut_sheet_xml, f"{WORKBOOK}: the workbook is corrupt ("),
    "password-protected": (_encrypt, f"{WORKBOOK}: the workbook is password-protected (encrypted)"),
}


@pytest.mark.parametrize("case", list(BROKEN_FILES))
def test_a_broken_workbook_file_says_which_and_keeps_earlier_outputs(case: str, landing: Path,
                                                                    isolated_env: Path) -> None:
    assert run_ingest("--year", str(YEAR)).returncode == 0
    before = {p: p.read_bytes() for p in outputs(isolated_env)}
    breaker, message = BROKEN_FILES[case]
    breaker(landing / "sharepoint" / WORKBOOK)

    result = run_ingest("--year", str(YEAR))

    assert result.returncode == EXIT_BAD_DATA, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert summary_of(result)["error"]["code"] == EXIT_BAD_DATA
    assert {p: p.read_bytes() for p in outputs(isolated_env)} == before
    assert sorted(p.name for p in (isolated_env / "raw" / "budget").iterdir()) == sorted(p.name for p in before)


@pytest.mark.parametrize("year", ["abc", "20261", "1999"])
def test_a_bad_year_is_a_configuration_error(year: str, landing: Path) -> None:
    result = (run_ingest_cli if year == "abc" else run_ingest)("--year", year)  # one through the real parser's exit
    assert result.returncode == 78
    assert f"expected a year YYYY between 2000 and 2100, got '{year}'" in result.stderr


def test_an_unchanged_workbook_is_not_parsed_again(landing: Path, isolated_env: Path) -> None:
    first = run_ingest("--year", str(YEAR))
    assert first.returncode == 0, first.stderr
    budget_csv, exchange_csv = outputs(isolated_env)
    written = (budget_csv.stat().st_mtime_ns, exchange_csv.stat().st_mtime_ns)

    again = run_ingest("--year", str(YEAR))
    assert again.returncode == 0, again.stderr
    assert "workbook unchanged since the last ingest" in again.stderr
    assert summary_of(again) == summary_of(first)
    assert (budget_csv.stat().st_mtime_ns, exchange_csv.stat().st_mtime_ns) == written  # outputs kept as they were

    # A changed cell is read again; so is a workbook whose outputs went missing.
    edit_workbook(landing / "sharepoint" / WORKBOOK, lambda wb: wb["Budget"].cell(row=UK_TV_ROW, column=3, value=1234.5))
    changed = run_ingest("--year", str(YEAR))
    assert changed.returncode == 0, changed.stderr
    assert "workbook unchanged" not in changed.stderr
    assert "1234.5" in budget_csv.read_text(encoding="utf-8")
    exchange_csv.unlink()
    rebuilt = run_ingest("--year", str(YEAR))
    assert rebuilt.returncode == 0 and "workbook unchanged" not in rebuilt.stderr
    assert exchange_csv.is_file()
