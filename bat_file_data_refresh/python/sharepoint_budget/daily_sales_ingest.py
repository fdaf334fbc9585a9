"""Ingest the daily sales budget workbook (SharePoint or the landing folder) into two long CSV files.

`python daily_sales_ingest.py [--year YYYY] [--source PATH]` writes
`$DATA_DIR/raw/budget/daily_sales_budget_{YYYY}.csv` and `exchange_rates_{YYYY}.csv`, both or neither
(contract section 4). Exit codes: 65 bad or missing workbook, 75 transient SharePoint trouble,
78 configuration (e.g. rejected credentials).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline_common.budget_record import local_version, output_paths, output_sizes, read_record, record_path
from pipeline_common.config import load_for_script, today_in
from pipeline_common.files import atomic_write, recover_set, replace_together, temp_path
from pipeline_common.leftovers import remove_stale
from pipeline_common.script_support import (
    ArgumentParser,
    ConfigurationError,
    ScriptRun,
    io_error,
    print_summary,
    script_run,
)
from pipeline_common.settings import sharepoint_budget_dir
from sharepoint_budget.workbook_download import MissingWorkbookError, download_workbook_version, sharepoint_settings

if TYPE_CHECKING:
    import pyarrow as pa

    from sharepoint_budget.workbook import ParsedWorkbook

# The parser (openpyxl, numpy) and pyarrow are imported only when a workbook is parsed and written:
# an unchanged workbook, the daily case, costs a hash and no more (docs/performance.md).
WORKBOOK_PARSER = Path(__file__).resolve().with_name("workbook.py")

SCRIPT_NAME = "daily_sales_ingest"
WORKBOOK_NAME = "Daily Sales Budget {year}.xlsx"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--year", type=_year, default=None, help="budget year (default: this year in pipeline.yaml's timezone)")
    parser.add_argument(
        "--source", type=Path, default=None,
        help="a workbook file or a folder holding 'Daily Sales Budget {YYYY}.xlsx' "
        "(default: SharePoint through Microsoft Graph when the SHAREPOINT_ group is set, else $LANDING_DIR/sharepoint/)",
    )
    parser.add_argument(
        "--skip-missing", action="store_true",
        help="a missing workbook is not an error: report 0 rows and leave earlier outputs as they are",
    )
    return parser.parse_args(argv)


def _year(text: str) -> int:
    if not (text.isdigit() and 2000 <= int(text) <= 2100):
        raise argparse.ArgumentTypeError(f"expected a year YYYY between 2000 and 2100, got {text!r}")
    return int(text)


@contextlib.contextmanager
def workbook_file(year: int, source: Path | None, run: ScriptRun) -> Iterator[tuple[Path, str, str | None]]:
    """The workbook as a local file (downloaded to a temporary file from SharePoint), a source label and
    the version read (pipeline_common.budget_record: what the budget sensor compares)."""
    name = WORKBOOK_NAME.format(year=year)
    settings = None if source is not None else sharepoint_settings()
    if settings is None:
        path = source if source is not None and source.is_file() else (source or sharepoint_budget_dir()) / name
        if not path.is_file():
            raise MissingWorkbookError(f"workbook '{name}' not found in {path.parent}")
        run.log.info(f"reading {path}")
        yield path, str(path), local_version(path)
        return
    run.log.info(f"downloading '{settings.file_path(name)}' from SharePoint {settings.site_url}")
    temp, version = download_workbook_version(settings, name)
    try:
        yield temp, f"sharepoint:{settings.file_path(name)}", f"etag={version.etag}"
    finally:
        temp.unlink(missing_ok=True)


def _csv_bytes(table: pa.Table) -> bytes:
    import pyarrow.csv as pacsv

    sink = io.BytesIO()
    pacsv.write_csv(table, sink)
    return sink.getvalue()


def write_outputs(parsed: ParsedWorkbook, year: int) -> None:
    """Both files to temporary names first, then swapped in together: readers see the old pair or the new.

    A CSV open in Excel cannot be replaced on Windows: after a brief retry that is exit 75 naming
    the file, and the earlier pair stays as it was (never one new file beside one old).
    """
    budget_path, exchange_path = output_paths(year)
    budget_path.parent.mkdir(parents=True, exist_ok=True)
    pending = [
        (budget_path, _csv_bytes(parsed.budget)),
        (exchange_path, _csv_bytes(parsed.exchange)),
    ]
    temps: list[tuple[Path, Path]] = []
    try:
        for target, payload in pending:
            temp = temp_path(target)
            temps.append((temp, target))
            try:
                temp.write_bytes(payload)
            except OSError as exc:  # disk full, no permission: exit 74 naming the file and the free space
                raise io_error(temp, exc) from None
        replace_together(temps)
    finally:
        for temp, _ in temps:
            temp.unlink(missing_ok=True)


# An unchanged workbook is not parsed again: the last ingest's record (workbook bytes, parser code and
# configured markets/currencies hashed together, and the outputs' sizes) says the outputs are current.
RECORD_VERSION = 1


def workbook_fingerprint(path: Path, markets: list[str], currencies: set[str]) -> str:
    digest = hashlib.sha256()
    digest.update(WORKBOOK_PARSER.read_bytes())
    digest.update(json.dumps([RECORD_VERSION, sorted(markets), sorted(currencies)]).encode())
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def unchanged_summary(year: int, fingerprint: str) -> dict | None:
    """The last ingest's summary when it read this very workbook and its outputs are still there."""
    record = read_record(year)
    if record is None or record.get("fingerprint") != fingerprint:
        return None
    sizes = output_sizes(year)
    if sizes is None or record.get("output_sizes") != sizes or not isinstance(record.get("summary"), dict):
        return None
    return record["summary"]


def save_record(year: int, fingerprint: str, summary: dict, source_version: str | None) -> None:
    with atomic_write(record_path(year)) as temp:
        temp.write_text(json.dumps({"fingerprint": fingerprint, "output_sizes": output_sizes(year),
                                    "summary": summary, "source_version": source_version}), encoding="utf-8")


def ingest(year: int | None, source: Path | None, skip_missing: bool, run: ScriptRun) -> dict:
    config = load_for_script()
    year = year or today_in(config.timezone).year
    run.summary = {"budget_year": year}
    recover_set(output_paths(year))  # put back an earlier pair a run killed mid-swap left aside
    removed = remove_stale(output_paths(year)[0].parent, [".daily_sales_budget_", ".exchange_rates_"])
    if removed:
        run.log.info(f"removed {len(removed)} temporary file(s) left by an interrupted run: "
                     + ", ".join(path.name for path in removed))
    markets = list(config.markets)
    currencies = {m.currency for m in config.markets.values()}
    try:
        with workbook_file(year, source, run) as (path, label, version):
            fingerprint = workbook_fingerprint(path, markets, currencies)
            unchanged = unchanged_summary(year, fingerprint)
            if unchanged is not None:
                if (read_record(year) or {}).get("source_version") != version:
                    save_record(year, fingerprint, unchanged, version)  # same bytes, new version (saved again, copied)
                run.log.info(f"budget {year}: workbook unchanged since the last ingest; outputs kept")
                run.report_materialization({**unchanged, "source": label, "unchanged": True})
                return unchanged
            from sharepoint_budget.workbook import parse_workbook

            parsed = parse_workbook(path, year, markets, currencies)
    except MissingWorkbookError as exc:
        if not skip_missing:
            raise
        run.log.warning(f"{exc}; skipped (--skip-missing), earlier outputs unchanged")
        return {"budget_year": year, "total_rows": 0, "exchange_rows": 0, "skipped": True}
    write_outputs(parsed, year)
    summary = {"budget_year": year, "total_rows": parsed.budget.num_rows, "exchange_rows": parsed.exchange.num_rows}
    save_record(year, fingerprint, summary, version)
    run.log.info(f"budget {year}: {summary['total_rows']} budget rows, {summary['exchange_rows']} exchange rows")
    run.report_materialization({**summary, "source": label})
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with script_run(SCRIPT_NAME) as run:
        print_summary(ingest(args.year, args.source, args.skip_missing, run))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
