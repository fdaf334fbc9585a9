"""The source container (contract section 2): the Azure container (or Azurite), or the local landing
folder laid out like it. The one module that lists and reads it, for the sync, the arrival sensors,
the freshness evaluation and the doctor.

`open_source()` picks the source as the environment says (pipeline_common.azure_storage signs in).
Both sources list blobs with a version tag (Azure: the ETag; local: size and mtime_ns) and hand each
blob to the parser as a local file: the landing folder is read in place, Azure blobs are streamed to a
temporary file first so a large blob never sits whole in memory.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from pipeline_common import settings
from pipeline_common.azure_storage import (
    AzureStorageSettings,
    azure_errors,
    azure_storage_settings,
    blob_service_client,
    describe,
)
from pipeline_common.leftovers import temp_name

DOWNLOAD_PREFIX = "azure_sync_download"
"""Temporary download names in the system temp folder start with `.{DOWNLOAD_PREFIX}`."""


@dataclass(frozen=True)
class Blob:
    """One source file: its container path, version tag and modification time."""

    name: str
    etag: str
    last_modified: dt.datetime  # timezone-aware


def layout_problem(name: str, pattern: re.Pattern[str]) -> str | None:
    """Why `name` is not a correctly placed daily file (contract section 2), or None when it is."""
    match = pattern.fullmatch(name)
    if match is None:
        return "the name does not follow {dataset}/{YYYY}/{dataset}_{YYYYMMDD}.csv"
    try:
        day = dt.datetime.strptime(match.group("date"), "%Y%m%d").date()
    except ValueError:
        return f"{match.group('date')} is not a real date"
    if match.group("year") != f"{day:%Y}":
        return f"a file dated {day.isoformat()} in year folder {match.group('year')}"
    return None


def file_date_of(name: str, pattern: re.Pattern[str]) -> dt.date | None:
    """The file date of a correctly placed daily file; None for anything else (never synced)."""
    if layout_problem(name, pattern) is not None:
        return None
    return dt.datetime.strptime(pattern.fullmatch(name).group("date"), "%Y%m%d").date()  # type: ignore[union-attr]


def local_date(moment: dt.datetime, timezone: str) -> dt.date:
    return moment.astimezone(ZoneInfo(timezone)).date()


def local_signature(path: Path) -> str | None:
    """A local file's version as the arrival sensors' cursors hold it (`size=S;mtime_ns=M`); None if absent."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return f"size={stat.st_size};mtime_ns={stat.st_mtime_ns}"


class LandingSource:
    """The local landing folder (`LANDING_DIR`), laid out exactly like the container."""

    def __init__(self, root: Path):
        self.root = root

    def describe(self) -> str:
        return f"local landing folder {self.root}"

    def signature(self, blob: Blob) -> str:
        """The blob's version as the arrival sensors' cursors hold it: `size=S;mtime_ns=M`."""
        size, _, mtime_ns = blob.etag.partition("-")
        return f"size={size};mtime_ns={mtime_ns}"

    def path_of(self, name: str) -> Path:
        return self.root.joinpath(*name.split("/"))

    def list(self, prefixes: Iterable[str]) -> list[Blob]:
        blobs: list[Blob] = []
        for prefix in prefixes:
            folder, _, stem = prefix.rpartition("/")
            directory = self.path_of(folder) if folder else self.root
            if not directory.is_dir():
                continue
            with os.scandir(directory) as entries:
                for entry in entries:
                    if entry.name.startswith(stem) and entry.is_file():
                        blobs.append(self._blob(f"{folder}/{entry.name}" if folder else entry.name, entry.stat()))
        return blobs

    @staticmethod
    def _blob(name: str, stat: os.stat_result) -> Blob:
        modified = dt.datetime.fromtimestamp(stat.st_mtime_ns / 1e9, tz=dt.timezone.utc)
        return Blob(name=name, etag=f"{stat.st_size}-{stat.st_mtime_ns}", last_modified=modified)

    @contextlib.contextmanager
    def open_local(self, blob: Blob) -> Iterator[Path]:
        yield self.path_of(blob.name)

    def close(self) -> None:
        return None


class AzureSource:
    """An Azure Blob container, signed in as `pipeline_common.azure_storage` chooses (connection string,
    SAS token or Entra ID); Azurite works through any of the first two."""

    def __init__(self, storage: AzureStorageSettings, listing_only: bool = False):
        self.storage = storage
        self.container_name = storage.container
        if listing_only:
            # A sensor tick only lists: short timeouts, the client's own retries, no download settings.
            service = blob_service_client(storage, connection_timeout=10, read_timeout=30)
        else:
            from azure.storage.blob import ExponentialRetry

            # Bounded retries: a few quick attempts, then exit 75 and let the orchestrator retry later.
            retry = ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=3, random_jitter_range=1)
            service = blob_service_client(storage, retry_policy=retry, connection_timeout=20, read_timeout=120)
        self.container = service.get_container_client(storage.container)
        self._service = service

    def describe(self) -> str:
        return describe(self.storage)

    def signature(self, blob: Blob) -> str:
        """The blob's version as the arrival sensors' cursors hold it: `etag=X`."""
        return f"etag={blob.etag}"

    def list(self, prefixes: Iterable[str]) -> list[Blob]:
        blobs: list[Blob] = []
        with azure_errors(f"listing {self.describe()}", self.storage):
            for prefix in prefixes:
                for props in self.container.list_blobs(name_starts_with=prefix):
                    blobs.append(Blob(name=props.name, etag=props.etag, last_modified=props.last_modified))
        return blobs

    @contextlib.contextmanager
    def open_local(self, blob: Blob) -> Iterator[Path]:
        """Stream the blob (the exact version listed) to a temporary file; remove it afterwards."""
        from azure.core import MatchConditions

        # The temporary name carries this process's identity: a killed run's download is removed by the next.
        tmp = Path(tempfile.gettempdir()) / temp_name(DOWNLOAD_PREFIX, ".csv")
        try:
            with tmp.open("xb") as handle, azure_errors(f"downloading {blob.name}", self.storage):
                downloader = self.container.download_blob(
                    blob.name, etag=blob.etag, match_condition=MatchConditions.IfNotModified, max_concurrency=2
                )
                downloader.readinto(handle)
            yield tmp
        finally:
            tmp.unlink(missing_ok=True)

    def close(self) -> None:
        self._service.close()


Source = AzureSource | LandingSource


def open_source(listing_only: bool = False) -> Source:
    """The configured source: Azure when an Azure variable group is set, else LANDING_DIR.

    A half-set or expired Azure configuration stops here (ConfigurationError, exit 78). Close it after use.
    """
    storage = azure_storage_settings()
    if storage is not None:
        return AzureSource(storage, listing_only=listing_only)
    return LandingSource(settings.landing_dir())


@contextlib.contextmanager
def opened_source(listing_only: bool = False) -> Iterator[Source]:
    """`open_source()` as a context manager: closed on the way out."""
    source = open_source(listing_only)
    try:
        yield source
    finally:
        source.close()


def find_blob(name: str, listing_only: bool = False) -> tuple[Blob, str] | None:
    """The blob called exactly `name`, with its version signature (`Source.signature`); None if absent."""
    with opened_source(listing_only) as source:
        for blob in source.list([name]):
            if blob.name == name:
                return blob, source.signature(blob)
    return None
