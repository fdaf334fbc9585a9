"""Is the data current? The one definition (contract section 9), as pure functions of a time T.

A daily (market, dataset) is current at T when its newest synced file date is at least the
expected date: D - lag once the dataset's due time on D (London) has passed, else the day before
that. Otherwise it is late, for one reason: the file has not arrived, it was rejected (bad
data), the sync failed, or it arrived but has not been synced since. An export is current when
every dataset it covers is current and it was rebuilt after the newest of their files was synced.

Everything that speaks of freshness (the asset checks and FreshnessPolicy in the Dagster UI, the
07:30 alert, scripts/status.py, the Tableau data quality warning) calls `evaluate`. The facts it
needs are cheap to read: the synced Parquet files' names and times, the sync's state files, one
listing call on the source, and the exports' last rebuild times (which the caller reads from the
Dagster instance). This module never imports Dagster, so it runs under any clock in a unit test.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pipeline_common.blob_paths import daily_blob_name
from pipeline_common.config import Dataset, Export, PipelineConfig

NOT_ARRIVED = "not arrived"
REJECTED = "rejected"
SYNC_FAILED = "sync failed"
NOT_SYNCED = "not synced"
REASONS = (NOT_ARRIVED, REJECTED, SYNC_FAILED, NOT_SYNCED)

_PARQUET_DATE = re.compile(r"_(\d{8})\.parquet$")

Lookup = Callable[[str], "dt.datetime | None"]
"""blob name -> when it landed (last modified), or None when the source does not hold it."""


# --- the facts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncedFile:
    file_date: dt.date
    synced_at: dt.datetime  # aware


@dataclass(frozen=True)
class SyncProblem:
    kind: str  # REJECTED or SYNC_FAILED
    message: str
    file_date: dt.date | None = None  # None: the whole sync failed


@dataclass(frozen=True)
class SourceFacts:
    """What is known about one daily (market, dataset) at the time of evaluation."""

    market: str
    dataset: str
    synced: tuple[SyncedFile, ...] = ()
    problems: tuple[SyncProblem, ...] = ()
    landed: Mapping[dt.date, dt.datetime | None] = field(default_factory=dict)
    """Expected file dates looked up in the source -> when the file landed (None: not there)."""

    def newest(self, before: dt.datetime | None = None) -> SyncedFile | None:
        files = [f for f in self.synced if before is None or f.synced_at <= before]
        return max(files, key=lambda f: f.file_date) if files else None


# --- the verdicts -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceStatus:
    market: str
    dataset: str
    expected_date: dt.date
    due_at: dt.datetime  # when the expected file was due
    next_date: dt.date  # the file due next (== expected_date once the due time has passed)
    next_due_at: dt.datetime
    data_through: dt.date | None
    synced_at: dt.datetime | None
    current: bool
    reason: str | None = None  # one of REASONS when late
    detail: str = ""

    @property
    def label(self) -> str:
        return f"{self.market} {self.dataset}"

    @property
    def next_pending(self) -> bool:
        """Current, but the file due next (not yet due) has not been synced: a WARN in the UI."""
        return self.current and (self.data_through is None or self.data_through < self.next_date)

    def why(self) -> str:
        """`file for 2026-11-29 not arrived (due 06:30)`; empty when current."""
        if self.current:
            return ""
        text = f"file for {self.expected_date} {self.reason} (due {self.due_at:%H:%M})"
        return f"{text}: {self.detail}" if self.detail else text


@dataclass(frozen=True)
class ExportStatus:
    asset: str
    name: str
    rebuilt_at: dt.datetime | None
    data_through: dt.date | None
    current: bool
    late_sources: tuple[str, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class FreshnessReport:
    at: dt.datetime
    sources: tuple[SourceStatus, ...]
    exports: tuple[ExportStatus, ...]

    @property
    def current(self) -> bool:
        return all(s.current for s in self.sources) and all(e.current for e in self.exports)

    @property
    def late_sources(self) -> list[SourceStatus]:
        return [s for s in self.sources if not s.current]

    def reasons(self) -> list[str]:
        """What is late and why: each late dataset, then each late export not explained by those."""
        lines = [f"{s.label}: {s.why()}" for s in self.late_sources]
        lines += [f"{e.name}: {e.reason}" for e in self.exports if not e.current and not e.late_sources]
        return lines

    def headline(self) -> str:
        return "CURRENT" if self.current else "NOT CURRENT: " + "; ".join(self.reasons())

    def source(self, market: str, dataset: str) -> SourceStatus:
        return next(s for s in self.sources if (s.market, s.dataset) == (market, dataset))

    def export(self, asset: str) -> ExportStatus:
        return next(e for e in self.exports if e.asset == asset)

    def to_json(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, (dt.date, dt.datetime)):
                return value.isoformat()
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [plain(v) for v in value]
            return value

        sources = []
        for s in self.sources:
            item = plain(asdict(s))
            item["why"] = s.why()
            sources.append(item)
        return {
            "current": self.current,
            "headline": self.headline(),
            "at": self.at.isoformat(),
            "reasons": self.reasons(),
            "sources": sources,
            "exports": [plain(asdict(e)) for e in self.exports],
        }


# --- the rules --------------------------------------------------------------------------------


def expectation(at: dt.datetime, due: dt.time, lag_days: int, timezone: str) -> tuple[dt.date, dt.datetime, dt.date, dt.datetime]:
    """(expected date, when it was due, next expected date, when that is due) at time `at`.

    On day D (London) the file for D - lag is due at `due`; before that, the one for D - lag - 1
    (due the day before) is what must be there.
    """
    zone = ZoneInfo(timezone)
    local = at.astimezone(zone)
    today = local.date()
    due_today = dt.datetime.combine(today, due, tzinfo=zone)
    due_today_date = today - dt.timedelta(days=lag_days)
    if local >= due_today:
        return due_today_date, due_today, due_today_date, due_today
    yesterday = today - dt.timedelta(days=1)
    due_yesterday = dt.datetime.combine(yesterday, due, tzinfo=zone)
    return due_today_date - dt.timedelta(days=1), due_yesterday, due_today_date, due_today


def expected_dates(config: PipelineConfig, entry: Dataset, at: dt.datetime) -> tuple[dt.date, dt.date]:
    """The file dates worth looking up in the source at `at`: the expected one and the next one."""
    expected, _, upcoming, _ = expectation(at, config.due_time(entry), config.file_lag_days(entry), config.timezone)
    return expected, upcoming


def source_status(config: PipelineConfig, entry: Dataset, facts: SourceFacts, at: dt.datetime) -> SourceStatus:
    expected, due_at, upcoming, upcoming_due = expectation(
        at, config.due_time(entry), config.file_lag_days(entry), config.timezone
    )
    newest = facts.newest()
    base = dict(
        market=entry.market, dataset=entry.dataset, expected_date=expected, due_at=due_at,
        next_date=upcoming, next_due_at=upcoming_due,
        data_through=newest.file_date if newest else None, synced_at=newest.synced_at if newest else None,
    )
    if newest is not None and newest.file_date >= expected:
        return SourceStatus(**base, current=True)
    reason, detail = _why_late(facts, expected, config.timezone)
    return SourceStatus(**base, current=False, reason=reason, detail=detail)


def _why_late(facts: SourceFacts, expected: dt.date, timezone: str) -> tuple[str, str]:
    for problem in facts.problems:
        if problem.file_date == expected:
            return problem.kind, problem.message
    whole_failure = next((p for p in facts.problems if p.file_date is None), None)
    landed = facts.landed.get(expected)
    if expected in facts.landed and landed is None:
        return NOT_ARRIVED, ""
    if whole_failure is not None:
        return SYNC_FAILED, whole_failure.message
    when = f"arrived {landed.astimezone(ZoneInfo(timezone)):%Y-%m-%d %H:%M}" if landed else ""
    return NOT_SYNCED, when


def export_status(
    config: PipelineConfig, export: Export, sources: Mapping[tuple[str, str], SourceStatus],
    facts: Mapping[tuple[str, str], SourceFacts], rebuilt_at: dt.datetime | None,
) -> ExportStatus:
    covered = [(d.market, d.dataset) for d in config.export_covers(export)]
    late = tuple(sources[key].label for key in covered if not sources[key].current)
    held = [facts[key].newest(before=rebuilt_at) if rebuilt_at else None for key in covered]
    data_through = min((f.file_date for f in held if f), default=None) if all(held) else None
    base = dict(asset=export.asset, name=export.name, rebuilt_at=rebuilt_at, data_through=data_through)
    if rebuilt_at is None:
        return ExportStatus(**base, current=False, late_sources=late, reason="never rebuilt")
    if late:
        return ExportStatus(**base, current=False, late_sources=late, reason=f"waits for {', '.join(late)}")
    newest_sync = max((sources[key].synced_at for key in covered if sources[key].synced_at), default=None)
    if newest_sync is not None and rebuilt_at < newest_sync:
        zone = ZoneInfo(config.timezone)
        return ExportStatus(
            **base, current=False,
            reason=(
                f"not rebuilt since the newest file was synced at {newest_sync.astimezone(zone):%Y-%m-%d %H:%M} "
                f"(last rebuilt {rebuilt_at.astimezone(zone):%Y-%m-%d %H:%M})"
            ),
        )
    return ExportStatus(**base, current=True)


def evaluate(
    config: PipelineConfig, at: dt.datetime, facts: Mapping[tuple[str, str], SourceFacts],
    rebuilt_at: Mapping[str, dt.datetime | None],
) -> FreshnessReport:
    """Every daily dataset's and every export's freshness at `at` (an aware datetime)."""
    if at.tzinfo is None:
        raise ValueError("evaluate() needs an aware datetime")
    sources = {
        (d.market, d.dataset): source_status(config, d, facts[(d.market, d.dataset)], at) for d in config.daily_datasets()
    }
    exports = tuple(export_status(config, e, sources, facts, rebuilt_at.get(e.asset)) for e in config.exports)
    return FreshnessReport(at=at, sources=tuple(sources.values()), exports=exports)


# --- the deadline, for the alert and the FreshnessPolicy ----------------------------------------


def deadline(config: PipelineConfig) -> dt.time:
    return dt.time.fromisoformat(config.alerts.freshness_deadline)


def deadline_on(config: PipelineConfig, day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, deadline(config), tzinfo=ZoneInfo(config.timezone))


def freshness_lookback(config: PipelineConfig) -> dt.timedelta:
    """How far before the deadline a rebuild counts: back to the midnight that ends the newest
    expected file's day (no earlier build can hold that day's data)."""
    cut = deadline(config)
    return dt.timedelta(hours=cut.hour, minutes=cut.minute)


def past_deadline(config: PipelineConfig, at: dt.datetime) -> bool:
    local = at.astimezone(ZoneInfo(config.timezone))
    return local >= deadline_on(config, local.date())


# --- reading the facts from the pipeline's files ---------------------------------------------


def synced_files(raw_dir: Path, market: str, dataset: str) -> tuple[SyncedFile, ...]:
    """The dated Parquet files of one dataset (names and modification times only)."""
    folder = raw_dir / market / dataset
    found = []
    for path in folder.glob("*/*.parquet"):
        match = _PARQUET_DATE.search(path.name)
        if not match:
            continue
        try:
            day = dt.datetime.strptime(match.group(1), "%Y%m%d").date()
            mtime = path.stat().st_mtime
        except (ValueError, OSError):
            continue
        found.append(SyncedFile(day, dt.datetime.fromtimestamp(mtime, dt.timezone.utc)))
    return tuple(found)


def sync_problems(raw_dir: Path, market: str, dataset: str) -> tuple[SyncProblem, ...]:
    """What the last sync of the dataset recorded it could not do (azure_sync/outputs.py)."""
    path = raw_dir / "_state" / market / f"{dataset}.last_sync.json"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError, OSError):
        return ()
    problems = []
    if document.get("error"):
        problems.append(SyncProblem(SYNC_FAILED, str(document["error"])))
    for item in (document.get("files") or {}).values():
        try:
            day = dt.date.fromisoformat(item["file_date"])
        except (KeyError, TypeError, ValueError):
            continue
        kind = REJECTED if item.get("problem") == "rejected" else SYNC_FAILED
        problems.append(SyncProblem(kind, str(item.get("message", "")), day))
    return tuple(problems)


def source_lookup() -> Lookup:
    """Look blobs up in the sync's own source (Azure when configured, else LANDING_DIR)."""
    from pipeline_common.source_container import find_blob

    def lookup(name: str) -> dt.datetime | None:
        found = find_blob(name)
        return found[0].last_modified if found else None

    return lookup


def gather_facts(config: PipelineConfig, at: dt.datetime, raw_dir: Path, lookup: Lookup | None) -> dict[tuple[str, str], SourceFacts]:
    """Facts for every daily dataset; the source is asked only about the expected files not synced yet."""
    facts = {}
    for entry in config.daily_datasets():
        synced = synced_files(raw_dir, entry.market, entry.dataset)
        newest = max((f.file_date for f in synced), default=None)
        landed: dict[dt.date, dt.datetime | None] = {}
        if lookup is not None:
            for day in sorted(set(expected_dates(config, entry, at))):
                if newest is None or newest < day:
                    try:
                        landed[day] = lookup(daily_blob_name(entry.market, entry.dataset, day))
                    except Exception:  # an unreachable source must not hide what the files say
                        continue
        facts[(entry.market, entry.dataset)] = SourceFacts(
            entry.market, entry.dataset, synced, sync_problems(raw_dir, entry.market, entry.dataset), landed
        )
    return facts
