"""Timestamped backup copies of built extracts, the newest BACKUPS_KEPT per export name.

Pruning is best effort: a backup someone has open in Tableau Desktop is left for the next run
(with a warning) and never stops the extract from being published.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import shutil
from pathlib import Path

from pipeline_common.files import prune, replace, temp_path

BACKUPS_KEPT = 14
_STAMP_FORMAT = "%Y%m%d_%H%M%S"


def _pattern(name: str) -> re.Pattern[str]:
    # The timestamp shape is part of the pattern, so "sales" never prunes "sales_uk" backups.
    return re.compile(rf"^{re.escape(name)}_(\d{{8}}_\d{{6}})\.hyper$")


def backup_extract(hyper_path: Path, backup_dir: Path, name: str, now: dt.datetime | None = None) -> Path:
    """Copy hyper_path to backup_dir/{name}_{YYYYmmdd_HHMMSS}.hyper (whole or not at all)."""
    backup_dir.mkdir(parents=True, exist_ok=True)
    stamp = (now or dt.datetime.now()).strftime(_STAMP_FORMAT)
    target = backup_dir / f"{name}_{stamp}.hyper"
    partial = temp_path(target, "partial")  # owner-tagged: the next export removes a killed one's
    try:
        shutil.copyfile(hyper_path, partial)
        replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def prune_backups(
    backup_dir: Path, name: str, keep: int = BACKUPS_KEPT, log: logging.Logger | None = None
) -> list[Path]:
    """Delete all but the newest `keep` backups of one export; return what was deleted.

    A backup another program holds open is kept (and logged) rather than failing the export."""
    pattern = _pattern(name)
    stamped = sorted(
        (match.group(1), path)
        for path in backup_dir.iterdir()
        if (match := pattern.match(path.name))
    )
    doomed = [path for _, path in stamped[:-keep]] if keep > 0 else [path for _, path in stamped]
    deleted, _held = prune(doomed, log)
    return deleted
