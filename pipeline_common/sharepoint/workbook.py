"""The budget workbook on SharePoint: its drive item's version (eTag, what the budget sensor polls) and
its download (what the budget ingest reads), through the Graph calls of graph.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Any

from pipeline_common.script_support import BadDataError, ConfigurationError, TransientError
from pipeline_common.sharepoint.settings import (
    FOLDER,
    SharePointSettings,
)
from pipeline_common.sharepoint.graph import (
    CHUNK_BYTES,
    WORKBOOK_SUFFIXES,
    graph_call,
    document_library,
)
from pipeline_common.sharepoint.signin import (
    SignedInClient,
    signed_in_client,
)


class MissingWorkbookError(BadDataError):
    """The workbook for the requested year is not there (yet)."""



@dataclass(frozen=True)
class WorkbookVersion:
    """What the budget sensor compares: the drive item's eTag (changes with every saved version)."""

    etag: str
    last_modified: str
    size: int
    item_id: str
    drive_id: str


def _workbooks_in(client: SignedInClient, drive_id: str, folder: str) -> list[str]:
    def children() -> Any:
        root = client.graph.drives[drive_id].root
        target = root.get_by_path(folder) if folder else root
        return target.children.get().execute_query()

    try:
        items = graph_call(client, "folder listing", children, not_found=lambda: FileNotFoundError(folder))
    except FileNotFoundError:
        raise ConfigurationError(
            f"SharePoint site {client.settings.site_url}: folder '{client.settings.folder}' not found (HTTP 404): "
            f"check {FOLDER}"
        ) from None
    return sorted(str(i.name) for i in items if str(i.name or "").lower().endswith(WORKBOOK_SUFFIXES))


def workbook_version(settings: SharePointSettings, file_name: str) -> WorkbookVersion | None:
    """The workbook's current version (drive item metadata only, no download); None when it is absent."""
    client = signed_in_client(settings)
    drive_id, _, folder = document_library(client)
    path = f"{folder}/{file_name}" if folder else file_name

    def lookup() -> Any:
        return client.graph.drives[drive_id].root.get_by_path(path).get().execute_query()

    try:
        item = graph_call(client, "workbook lookup", lookup, not_found=lambda: FileNotFoundError(path))
    except FileNotFoundError:
        return None
    props = item.properties
    return WorkbookVersion(
        etag=str(props.get("eTag") or props.get("cTag") or ""), last_modified=str(props.get("lastModifiedDateTime") or ""),
        size=int(props.get("size") or 0), item_id=str(props.get("id") or item.id), drive_id=drive_id,
    )


def missing_workbook(settings: SharePointSettings, file_name: str) -> MissingWorkbookError:
    """The 404 for the workbook, naming the path and listing the workbooks that are there."""
    client = signed_in_client(settings)
    drive_id, library, folder = document_library(client)
    found = _workbooks_in(client, drive_id, folder)
    listing = ", ".join(f"'{name}'" for name in found) if found else "none"
    return MissingWorkbookError(
        f"SharePoint {settings.site_url}: workbook '{settings.file_path(file_name)}' not found (HTTP 404); "
        f"workbooks in '{settings.folder}': {listing}"
    )


def download(settings: SharePointSettings, file_name: str, handle: IO[bytes]) -> WorkbookVersion:
    """Stream the workbook's content into `handle` (Graph answers with a redirect to a download URL)."""
    version = workbook_version(settings, file_name)
    if version is None:
        raise missing_workbook(settings, file_name)
    client = signed_in_client(settings)

    def restart() -> None:  # a retried download starts again from byte 0
        handle.seek(0)
        handle.truncate()

    def fetch() -> Any:
        item = client.graph.drives[version.drive_id].items[version.item_id]
        return item.download_session(handle, chunk_size=CHUNK_BYTES).execute_query()

    graph_call(client, "download", fetch, on_retry=restart,
          not_found=lambda: TransientError(f"SharePoint: '{settings.file_path(file_name)}' vanished during the download"))
    handle.flush()
    written = handle.tell()
    if version.size and written != version.size:
        raise TransientError(
            f"SharePoint download of '{settings.file_path(file_name)}' ended early ({written} of {version.size} "
            "bytes); a retry may succeed"
        )
    return version
