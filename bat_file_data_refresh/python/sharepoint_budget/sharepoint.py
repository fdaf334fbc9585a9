"""Download the budget workbook from SharePoint Online (Microsoft Graph, Entra ID app-only).

The sign-in, the Graph calls and their error rules live in `pipeline_common.sharepoint_graph`
(the budget sensor polls the same drive item); this module owns the file: the content is
streamed to `.<name>.<pid>.part` beside the outputs, renamed to `.<name>.<pid>.xlsx` once whole,
and removed by the caller after parsing. A killed run's leftovers are removed by the next run.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from pipeline_common.settings import raw_dir
from pipeline_common.sharepoint_graph import (
    MissingWorkbookError,
    SharePointSettings,
    download,
    sharepoint_settings,
)

__all__ = ["MissingWorkbookError", "SharePointSettings", "download_workbook", "download_dir", "sharepoint_settings"]

DOWNLOAD_PREFIX = ".sharepoint-download-"


def download_dir() -> Path:
    return raw_dir() / "budget"


def _pid_alive(pid: int) -> bool:
    try:
        import psutil

        return psutil.pid_exists(pid)
    except ImportError:  # pragma: no cover - psutil is pinned in requirements.txt
        return True


def remove_stale_downloads(folder: Path) -> None:
    """Downloads left by a killed run (their process is gone) are removed; a live run's are kept."""
    if not folder.is_dir():
        return
    for leftover in folder.glob(f"{DOWNLOAD_PREFIX}*"):
        pid_text = leftover.name[len(DOWNLOAD_PREFIX):].split("-", 1)[0]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and not _pid_alive(int(pid_text)):
            with contextlib.suppress(OSError):
                leftover.unlink()


def download_workbook(settings: SharePointSettings, file_name: str) -> Path:
    """Stream `{folder}/{file_name}` to a local file and return its path (the caller deletes it)."""
    folder = download_dir()
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_downloads(folder)
    stem = f"{DOWNLOAD_PREFIX}{os.getpid()}-{Path(file_name).stem.replace(' ', '_')}"
    partial = folder / f"{stem}.part"
    complete = folder / f"{stem}{Path(file_name).suffix}"
    try:
        with open(partial, "wb") as handle:
            download(settings, file_name, handle)
        os.replace(partial, complete)
    except BaseException:
        partial.unlink(missing_ok=True)
        complete.unlink(missing_ok=True)
        raise
    return complete
