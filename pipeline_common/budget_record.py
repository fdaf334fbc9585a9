"""The budget ingest's record of what it last read, shared with the budget sensor.

The ingest (sharepoint_budget/daily_sales_ingest.py) writes `$DATA_DIR/raw/_state/budget/
daily_sales_budget_{YYYY}.json` after each ingest: the workbook fingerprint, the outputs' sizes, the
summary and the version of the source it read (`source_version`: `etag=...` for SharePoint,
`size=...;mtime_ns=...` for a local file; the same strings the budget sensor lists). The sensor
compares the workbook's current version with it, so a version the demo, a by-hand run or a scheduled
run already ingested starts nothing, even on the sensor's very first tick.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline_common.settings import raw_dir


def output_paths(year: int) -> tuple[Path, Path]:
    folder = raw_dir() / "budget"
    return folder / f"daily_sales_budget_{year}.csv", folder / f"exchange_rates_{year}.csv"


def record_path(year: int) -> Path:
    return raw_dir() / "_state" / "budget" / f"daily_sales_budget_{year}.json"


def local_version(path: Path) -> str | None:
    """A local file's version as the sensor and the record spell it; None when the file is absent."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return f"size={stat.st_size};mtime_ns={stat.st_mtime_ns}"


def output_sizes(year: int) -> list[int] | None:
    try:
        return [p.stat().st_size for p in output_paths(year)]
    except FileNotFoundError:
        return None


def read_record(year: int) -> dict | None:
    try:
        record = json.loads(record_path(year).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def ingested_version(year: int) -> str | None:
    """The source version the last ingest of `year` read, when its outputs are still the ones it wrote."""
    record = read_record(year)
    if record is None or record.get("output_sizes") != output_sizes(year):
        return None
    version = record.get("source_version")
    return str(version) if version else None
