"""Download the budget workbook from SharePoint Online (Microsoft Graph, Entra ID app-only).

The sign-in, the Graph calls and their error rules live in `pipeline_common.sharepoint`
(the budget sensor polls the same drive item); this module owns the file: the content is
streamed to a `.sharepoint-download.<owner>.part` file beside the outputs, renamed to `.xlsx`
once whole, and removed by the caller after parsing; a killed run's leftovers are removed by the
next run (pipeline_common.leftovers).
"""

from __future__ import annotations

from pathlib import Path

from pipeline_common.files import atomic_write
from pipeline_common.leftovers import remove_stale, temp_name
from pipeline_common.settings import raw_dir
from pipeline_common.sharepoint.settings import SharePointSettings, sharepoint_settings
from pipeline_common.sharepoint.workbook import MissingWorkbookError, WorkbookVersion, download

__all__ = ["MissingWorkbookError", "SharePointSettings", "download_workbook", "download_workbook_version", "download_dir",
           "sharepoint_settings"]

DOWNLOAD_STEM = "sharepoint-download"


def download_dir() -> Path:
    return raw_dir() / "budget"


def download_workbook(settings: SharePointSettings, file_name: str) -> Path:
    """Stream `{folder}/{file_name}` to a local file and return its path (the caller deletes it)."""
    return download_workbook_version(settings, file_name)[0]


def download_workbook_version(settings: SharePointSettings, file_name: str) -> tuple[Path, WorkbookVersion]:
    """Like download_workbook, with the drive item version (eTag) the download read."""
    folder = download_dir()
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale(folder, [f".{DOWNLOAD_STEM}."])  # a killed run's download (its process is gone)
    complete = folder / temp_name(DOWNLOAD_STEM, Path(file_name).suffix)
    with atomic_write(complete, fsync=False, suffix="part") as partial, open(partial, "wb") as handle:
        version = download(settings, file_name, handle)
    return complete, version
