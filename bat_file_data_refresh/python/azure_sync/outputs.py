"""The sync's outputs, each written whole or not at all: the Parquet files and the per-dataset state file.

Every write goes to a temporary name in the target folder, is fsynced, then `os.replace`d over the
target, so a reader (dbt, DuckDB) or a crash never sees half a file.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline_common.files import atomic_write

STATE_VERSION = 1


def parquet_path(raw_dir: Path, market: str, dataset: str, file_date: Any | None) -> Path:
    """`raw/{MARKET}/{dataset}/{YYYY}/{dataset}_{YYYYMMDD}.parquet`, or `.../{dataset}.parquet` for reference data."""
    folder = raw_dir / market / dataset
    if file_date is None:
        return folder / f"{dataset}.parquet"
    return folder / f"{file_date:%Y}" / f"{dataset}_{file_date:%Y%m%d}.parquet"


def state_path(raw_dir: Path, market: str, dataset: str) -> Path:
    return raw_dir / "_state" / market / f"{dataset}.json"


def outcome_path(raw_dir: Path, market: str, dataset: str) -> Path:
    """What the last sync of a dataset could not do (rejected or failed files): read by the freshness check."""
    return raw_dir / "_state" / market / f"{dataset}.last_sync.json"


# A fresh id per written file, in the Parquet footer's key-value metadata: the incremental warehouse
# (dbt/macros/incremental.sql) tells a rewritten file from the one it absorbed by it, whatever the clock.
WRITE_ID_KEY = b"pipeline.write_id"


def write_parquet(table: pa.Table, target: Path, layout: ParquetLayout | None = None) -> None:
    """Write `table` whole or not at all, encoded as `layout` says (default: pyarrow's defaults)."""
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), WRITE_ID_KEY: uuid.uuid4().hex.encode()})
    options: dict[str, Any] = {}
    if layout is not None:
        options = {
            "use_dictionary": layout.dictionary,
            "column_encoding": {name: "DELTA_BINARY_PACKED" for name in layout.delta} or None,
            "write_statistics": layout.statistics,
        }
    with atomic_write(target) as tmp:
        pq.write_table(table, tmp, **options)


@dataclasses.dataclass(frozen=True)
class ParquetLayout:
    """Per-column encodings: cheaper to write than pyarrow's try-everything defaults, and smaller.

    Dictionary encoding pays off for repeated values (text, dates, lineage); on near-unique ids
    it only costs time before Parquet falls back. Integer ids and counts are delta-encoded.
    Min/max statistics (what DuckDB prunes files and row groups by) are kept for every column
    but free text, where they cost time and never prune.
    """

    dictionary: list[str]
    delta: list[str]
    statistics: list[str]


def load_state(path: Path) -> tuple[dict[str, dict[str, Any]], str | None]:
    """The blobs recorded by the last sync, and a warning when the state file was unreadable."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, None
    except (OSError, ValueError) as exc:
        return {}, f"state file {path} is unreadable ({exc}); every file in scope is synced again"
    blobs = raw.get("blobs") if isinstance(raw, dict) else None
    if not isinstance(blobs, dict) or raw.get("version") != STATE_VERSION:
        return {}, f"state file {path} has an unknown layout; every file in scope is synced again"
    return blobs, None


def save_outcome(path: Path, problems: dict[str, dict[str, Any]], error: str | None = None) -> None:
    """Record the last sync's problems: {blob: {file_date, etag, problem: rejected|failed, message}}, and
    `error` when the whole sync failed before it could look at the files (source unreachable)."""
    document = {
        "version": STATE_VERSION,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "error": error,
        "files": problems,
    }
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(document, indent=1, sort_keys=True), encoding="utf-8")


def save_state(path: Path, market: str, dataset: str, blobs: dict[str, dict[str, Any]]) -> None:
    document = {"version": STATE_VERSION, "market": market, "dataset": dataset, "blobs": blobs}
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(document, indent=1, sort_keys=True), encoding="utf-8")
