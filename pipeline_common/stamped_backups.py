"""Timestamped backups, `{name}_{YYYYmmdd_HHMMSS}{suffix}`, and keeping the newest N of them.

One rule for the extract backups (the exporter, `$DATA_DIR/exports/backup`) and the warehouse
backups (`warehouse_backup`, `$DATA_DIR/warehouse/backup`). Pruning is best effort: a backup
another program holds open (Tableau Desktop, a DuckDB client) is left, with a warning, for the
next prune and never fails the caller.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path
from typing import Any

from pipeline_common.files import prune

STAMP_FORMAT = "%Y%m%d_%H%M%S"


def stamped_path(backup_dir: Path, name: str, suffix: str, now: dt.datetime | None = None) -> Path:
    """`backup_dir/{name}_{YYYYmmdd_HHMMSS}{suffix}` for `now` (default: the local clock)."""
    return backup_dir / f"{name}_{(now or dt.datetime.now()).strftime(STAMP_FORMAT)}{suffix}"


def prune_stamped(
    backup_dir: Path, name: str, suffix: str, keep: int, log: logging.Logger | Any | None = None
) -> list[Path]:
    """Delete all but the newest `keep` backups of `name`; return what was deleted.

    The timestamp's shape is part of the match, so the backups of "sales" never prune those of
    "sales_uk", and a file of another shape in the folder is never touched.
    """
    pattern = re.compile(rf"^{re.escape(name)}_(\d{{8}}_\d{{6}}){re.escape(suffix)}$")
    if not backup_dir.is_dir():
        return []
    stamped = sorted((match.group(1), path) for path in backup_dir.iterdir() if (match := pattern.match(path.name)))
    doomed = [path for _, path in stamped[:-keep]] if keep > 0 else [path for _, path in stamped]
    deleted, _held = prune(doomed, log)
    return deleted
