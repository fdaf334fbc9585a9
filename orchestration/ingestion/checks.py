"""Asset checks of the sync assets: the Parquet schema matches the contract, the newest day has rows,
and the source is current (contract section 9).

They are check specs of the `azure_sync` step and are evaluated in it, right after the sync: no step
of their own. They read Parquet footers only (no data pages), so they cost milliseconds even over a
month of files.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from orchestration.clock import business_now
from orchestration.instance_freshness import freshness_report
from pipeline_common import freshness
from pipeline_common.config import Dataset, PipelineConfig
from pipeline_common.settings import raw_dir

SOURCE_CHECK = "source_is_current"

LINEAGE_COLUMNS = {"_source_blob": "string", "_file_date": "date"}

_TYPE_TESTS: dict[str, Callable[[pa.DataType], bool]] = {
    "integer": pa.types.is_integer,
    "string": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
    "date": pa.types.is_date,
    "timestamp": lambda t: pa.types.is_timestamp(t) and t.tz is None,
    "decimal": lambda t: pa.types.is_decimal(t) and t.scale == 2,
}
_FILE_DATE_RE = re.compile(r"_(\d{8})\.parquet$")


def dataset_dir(entry: Dataset) -> Path:
    return raw_dir() / entry.market / entry.dataset


def parquet_files(entry: Dataset) -> list[Path]:
    return sorted(dataset_dir(entry).rglob("*.parquet"))


def schema_problems(schema: pa.Schema, columns: dict[str, str]) -> list[str]:
    """Differences between a Parquet schema and the contract's columns (plus lineage columns)."""
    expected = {**columns, **LINEAGE_COLUMNS}
    problems = []
    for name, kind in expected.items():
        if name not in schema.names:
            problems.append(f"missing column '{name}'")
        elif not _TYPE_TESTS[kind](schema.field(name).type):
            problems.append(f"column '{name}' is {schema.field(name).type}, expected {kind}")
    extra = [name for name in schema.names if name not in expected]
    if extra:
        problems.append(f"unexpected columns {extra}")
    return problems


def newest_file(files: list[Path]) -> tuple[str, Path] | None:
    dated = [(m.group(1), f) for f in files if (m := _FILE_DATE_RE.search(f.name))]
    return max(dated) if dated else None


SCHEMA_CHECK = "parquet_schema_matches_contract"
NEWEST_DAY_CHECK = "newest_day_has_rows"


def check_specs(config: PipelineConfig, entry: Dataset) -> list[dg.AssetCheckSpec]:
    """The checks of one sync asset. They are evaluated in the sync step itself, right after the
    datasets synced (check_results): no step of their own, so they cost no step overhead."""
    asset_key = dg.AssetKey(config.asset_name(entry.market, entry.dataset))
    specs = [dg.AssetCheckSpec(
        name=SCHEMA_CHECK, asset=asset_key, blocking=True,
        description="Every synced Parquet file has the contract's columns and types plus _source_blob and _file_date.",
    )]
    if config.dataset_type(entry.dataset).cadence == "daily":
        specs.append(dg.AssetCheckSpec(
            name=NEWEST_DAY_CHECK, asset=asset_key, description="The newest synced file date holds at least one row.",
        ))
        specs.append(dg.AssetCheckSpec(
            name=SOURCE_CHECK, asset=asset_key,
            description=(
                f"The file for the day before is synced by {config.due_time(entry):%H:%M} London time "
                "(pipeline.yaml): WARN while it is not yet due, ERROR once it is late, with the reason."
            ),
        ))
    return specs


def schema_check_result(config: PipelineConfig, entry: Dataset) -> dg.AssetCheckResult:
    files = parquet_files(entry)
    if not files:
        return dg.AssetCheckResult(
            passed=False, metadata={"files": 0, "problem": f"no Parquet under {dataset_dir(entry)}"}
        )
    columns = dict(config.dataset_type(entry.dataset).columns)
    bad = {}
    for path in files:
        problems = schema_problems(pq.read_schema(path), columns)
        if problems:
            bad[str(path.relative_to(raw_dir()))] = "; ".join(problems)
    return dg.AssetCheckResult(
        passed=not bad,
        metadata={"files": len(files), "files_with_problems": len(bad), "problems": dg.MetadataValue.json(bad)},
    )


def newest_day_result(entry: Dataset) -> dg.AssetCheckResult:
    newest = newest_file(parquet_files(entry))
    if newest is None:
        return dg.AssetCheckResult(passed=False, metadata={"problem": "no dated Parquet files"})
    stamp, path = newest
    rows = pq.read_metadata(path).num_rows
    newest_date = f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:]}"
    return dg.AssetCheckResult(
        passed=rows > 0, metadata={"newest_file_date": newest_date, "rows": rows, "file": path.name}
    )


def check_results(
    context: dg.AssetExecutionContext, config: PipelineConfig, entries: dict[dg.AssetKey, Dataset]
) -> Iterator[dg.AssetCheckResult]:
    """The selected checks of the sync step, evaluated on what is on disk now (after the sync).
    A dataset whose sync failed is checked too: its source_is_current then says why it is late."""
    report = None
    for check_key in sorted(context.selected_asset_check_keys, key=lambda key: key.to_user_string()):
        entry = entries[check_key.asset_key]
        if check_key.name == SCHEMA_CHECK:
            result = schema_check_result(config, entry)
        elif check_key.name == NEWEST_DAY_CHECK:
            result = newest_day_result(entry)
        else:
            report = report or freshness_report(context.instance, config, business_now())
            result = source_check_result(report.source(entry.market, entry.dataset))
        yield dg.AssetCheckResult(
            asset_key=check_key.asset_key, check_name=check_key.name, passed=result.passed,
            severity=result.severity, description=result.description, metadata=result.metadata,
        )


def source_check_result(status: freshness.SourceStatus) -> dg.AssetCheckResult:
    """Passes when the file due next is synced; fails WARN while it is not yet due, ERROR once it is late."""
    if not status.current:
        description = f"late: {status.why()}"
    elif status.next_pending:
        description = f"file for {status.next_date} not synced yet (due {status.next_due_at:%Y-%m-%d %H:%M})"
    else:
        description = "current"
    return dg.AssetCheckResult(
        passed=status.current and not status.next_pending,
        severity=dg.AssetCheckSeverity.WARN if status.current else dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata={
            "data_through": str(status.data_through or "none"),
            "expected_date": str(status.expected_date),
            "due_at": status.due_at.isoformat(),
            "reason": status.why() or ("next file pending" if status.next_pending else "current"),
        },
    )
