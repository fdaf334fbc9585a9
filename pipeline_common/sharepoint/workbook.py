"""The budget workbook on SharePoint: its drive item's version (cTag, eTag as a fallback: what the budget sensor polls) and
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
    HTTP_TIMEOUT,
    SENSOR_HTTP_TIMEOUT,
    SignedInClient,
    signed_in_client,
)


class MissingWorkbookError(BadDataError):
    """The workbook for the requested year is not there (yet)."""



@dataclass(frozen=True)
class WorkbookVersion:
    """What the budget sensor compares: the drive item's cTag, which changes when the content changes
    (the eTag also changes on metadata edits, a rename, and Excel's autosave of an open workbook)."""

    etag: str
    last_modified: str
    size: int
    item_id: str
    drive_id: str
    ctag: str = ""

    @property
    def tag(self) -> str:
        """`ctag=...` (content), or `etag=...` when the answer has no cTag (the fallback)."""
        return f"ctag={self.ctag}" if self.ctag else f"etag={self.etag}"


def _workbooks_in(client: SignedInClient, drive_id: str, folder: str) -> list[str]:
    def children() -> Any:
        # Graph documents GET /drives/{drive-id}/items/{item-id}/children (and root/children); the library's
        # path form would send `root:/{path}://children`. So: the folder's item by path, then its children.
        drive = client.graph.drives[drive_id]
        if not folder:
            return drive.root.children.get().execute_query()
        item = drive.root.get_by_path(folder).get().execute_query()
        return drive.items[str(item.id)].children.get().execute_query()

    try:
        items = graph_call(client, "folder listing", children, not_found=lambda: FileNotFoundError(folder))
    except FileNotFoundError:
        raise ConfigurationError(
            f"SharePoint site {client.settings.site_url}: folder '{client.settings.folder}' not found (HTTP 404): "
            f"check {FOLDER}"
        ) from None
    return sorted(str(i.name) for i in items if str(i.name or "").lower().endswith(WORKBOOK_SUFFIXES))


def workbook_version(settings: SharePointSettings, file_name: str, in_sensor: bool = False) -> WorkbookVersion | None:
    """The workbook's current version (drive item metadata only, no download); None when it is absent.
    `in_sensor`: short timeouts and one try per call (the budget sensor's tick is the retry)."""
    client = signed_in_client(settings, SENSOR_HTTP_TIMEOUT if in_sensor else HTTP_TIMEOUT)
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
        etag=str(props.get("eTag") or ""), ctag=str(props.get("cTag") or ""),
        last_modified=str(props.get("lastModifiedDateTime") or ""),
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
