"""Timestamped backup copies of built extracts, the newest BACKUPS_KEPT per export name.

Pruning is best effort (pipeline_common.stamped_backups): a backup someone has open in Tableau Desktop
is left for the next run (with a warning) and never stops the extract from being published.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from pathlib import Path

from pipeline_common.stamped_backups import prune_stamped, stamped_path
from pipeline_common.files import atomic_write

BACKUPS_KEPT = 14


def backup_extract(hyper_path: Path, backup_dir: Path, name: str, now: dt.datetime | None = None) -> Path:
    """Copy hyper_path to backup_dir/{name}_{YYYYmmdd_HHMMSS}.hyper (whole or not at all)."""
    target = stamped_path(backup_dir, name, ".hyper", now)
    # The temporary copy is owner-tagged: the next export removes a killed one's.
    with atomic_write(target, suffix="partial") as partial:
        shutil.copyfile(hyper_path, partial)
    return target


def prune_backups(
    backup_dir: Path, name: str, keep: int = BACKUPS_KEPT, log: logging.Logger | None = None
) -> list[Path]:
    """Delete all but the newest `keep` backups of one export; return what was deleted."""
    return prune_stamped(backup_dir, name, ".hyper", keep, log)
