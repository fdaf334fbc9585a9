"""The pipeline config file (`pipeline.yaml`): its schema, its validation, and one loader.

Every consumer (the sync script, the Dagster factories, the dbt staging generator) reads
the file through `load_pipeline_config`, so a typo fails the same way everywhere, with
a message naming the file, the entry and the field.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline_common.script_support import ConfigurationError
from pipeline_common.settings import repo_root

DEFAULT_TIMEZONE = "Europe/London"
"""The business time zone when pipeline.yaml does not set `timezone`."""

ColumnType = Literal["integer", "string", "date", "timestamp", "decimal"]
Cadence = Literal["daily", "monthly", "reference"]

CONFIG_ENV_VAR = "PIPELINE_CONFIG"

IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
"""Markets, datasets and export names become folder, file, table and asset names: plain identifiers only."""
_IDENTIFIER_RE = re.compile(IDENTIFIER_PATTERN)
_IDENTIFIER_HINT = "must be a plain identifier (letters, digits and '_', not starting with a digit; no '/', '.', '-' or spaces)"

DEFAULT_FRESHNESS_DEADLINE = "07:30"
"""London time by which the Tableau extracts must be rebuilt: the dashboards open at 07:30."""

DEFAULT_DUE_TIME = "06:30"
"""London time by which a daily dataset's file for the day before is due (contract section 9)."""

CLOCK_TIME = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class ConfigError(ValueError):
    """The config file is invalid; the message names file, entry and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Market(_Strict):
    currency: str = Field(pattern=r"^[A-Z]{3}$")


class DatasetType(_Strict):
    cadence: Cadence
    asset_name: str = Field(description="Asset key template; {market} is the lower-case market.")
    group: str
    columns: dict[str, ColumnType]
    due: str | None = Field(
        default=None, pattern=CLOCK_TIME,
        description="Daily datasets: London time on day D by which the file for D - file_lag_days is due.",
    )
    file_lag_days: int | None = Field(default=None, ge=0, le=31, description="Daily datasets: D minus this is the expected file date.")

    @model_validator(mode="after")
    def _expectation_only_for_daily(self) -> DatasetType:
        if self.cadence != "daily":
            for field, value in (("due", self.due), ("file_lag_days", self.file_lag_days)):
                if value is not None:
                    raise ValueError(f"'{field}' applies to daily datasets only (cadence is {self.cadence})")
        return self

    @field_validator("asset_name")
    @classmethod
    def _has_market(cls, value: str) -> str:
        if "{market}" not in value:
            raise ValueError("must contain '{market}'")
        return value


class Dataset(_Strict):
    market: str = Field(pattern=IDENTIFIER_PATTERN)
    dataset: str = Field(pattern=IDENTIFIER_PATTERN)
    days_back: int = Field(default=30, ge=1, le=3660)
    force: bool = False
    due: str | None = Field(default=None, pattern=CLOCK_TIME, description="Overrides the dataset type's due time.")
    file_lag_days: int | None = Field(default=None, ge=0, le=31, description="Overrides the dataset type's lag.")


class Export(_Strict):
    asset: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(pattern=IDENTIFIER_PATTERN, max_length=100)
    tables: list[str] = Field(min_length=1)
    upstream: list[str] | None = None
    covers: list[str] | None = Field(
        default=None,
        description="Daily datasets ('MARKET/dataset') whose data the extract holds; default: every daily dataset.",
    )

    @property
    def upstream_assets(self) -> list[str]:
        return list(self.upstream) if self.upstream is not None else list(self.tables)


Severity = Literal["ERROR", "WARN"]


class Sentinel(_Strict):
    """A control query over the warehouse: its SQL returns the offending rows (none = pass)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = ""
    asset: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="The dbt model the check attaches to.")
    sql: str = Field(min_length=1)
    threshold: float | None = Field(default=None, description="Bound to $threshold in the SQL.")
    severity: Severity = "ERROR"
    route: str = "time_series"

    @model_validator(mode="after")
    def _threshold_matches_sql(self) -> Sentinel:
        uses = "$threshold" in self.sql
        if uses and self.threshold is None:
            raise _EntryError(f"alerts.sentinels ({self.name})", "threshold", "the SQL uses $threshold; set it")
        if not uses and self.threshold is not None:
            raise _EntryError(
                f"alerts.sentinels ({self.name})", "threshold", "set, but the SQL never uses $threshold"
            )
        return self


class ArrivalSensors(_Strict):
    running_by_default: bool = True
    minimum_interval_seconds: int = Field(default=60, ge=10, le=3600)


DEFAULT_ALERT_ROUTES = {
    route: f"SLACK_WEBHOOK_{route.upper()}" for route in ("technical", "data_quality", "time_series", "logistics")
}


class Alerts(_Strict):
    """Slack routes (route -> env var of its webhook), what goes where, sentinels and sensors."""

    routes: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_ALERT_ROUTES))
    ui_base_url: str = "http://127.0.0.1:3000"
    run_failure_route: str = "technical"
    check_route: str = "data_quality"
    freshness_route: str = "logistics"
    freshness_deadline: str = Field(default=DEFAULT_FRESHNESS_DEADLINE, pattern=CLOCK_TIME)
    warn_routes: list[str] = Field(
        default_factory=list, description="Routes that also get WARN-severity check failures."
    )
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    max_attempts: int = Field(default=4, ge=1, le=10)
    backoff_seconds: float = Field(default=2.0, ge=0, le=300)
    sentinels: list[Sentinel] = Field(default_factory=list)
    arrival_sensors: ArrivalSensors = Field(default_factory=ArrivalSensors)

    @field_validator("routes")
    @classmethod
    def _env_var_names(cls, value: dict[str, str]) -> dict[str, str]:
        for route, var in value.items():
            if not re.fullmatch(r"[a-z][a-z0-9_]*", route):
                raise ValueError(f"route {route!r}: use lower_snake_case")
            if not re.fullmatch(r"[A-Z][A-Z0-9_]*", var):
                # A pasted webhook URL here would be committed: only the variable's name belongs here.
                raise ValueError(f"route {route!r}: expected an environment variable name like SLACK_WEBHOOK_X")
        return value

    @model_validator(mode="after")
    def _routes_exist(self) -> Alerts:
        known = sorted(self.routes)
        named = [
            ("alerts", "run_failure_route", self.run_failure_route),
            ("alerts", "check_route", self.check_route),
            ("alerts", "freshness_route", self.freshness_route),
        ]
        named += [("alerts", "warn_routes", route) for route in self.warn_routes]
        named += [(f"alerts.sentinels ({s.name})", "route", s.route) for s in self.sentinels]
        for entry, field, route in named:
            if route not in self.routes:
                raise _EntryError(entry, field, f"unknown route {route!r}; known: {known}")
        names = [s.name for s in self.sentinels]
        for name in names:
            if names.count(name) > 1:
                raise _EntryError(f"alerts.sentinels ({name})", "name", "duplicate sentinel name")
        return self


class JobSelection(_Strict):
    """Which assets a scheduled job materializes, in config terms (resolved in orchestration/schedules/selection.py)."""

    cadences: list[Cadence] = Field(default_factory=list, description="ingestion assets of these cadences")
    markets: list[str] | None = Field(default=None, description="limit `cadences` to these markets")
    groups: list[str] = Field(default_factory=list)
    exports: bool = Field(default=False, description="every export and everything upstream of it")
    downstream: bool = Field(default=False, description="add everything downstream of the above")
    backup: bool = Field(default=False, description="finish with the warehouse backup")


class ScheduledJob(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str
    cron: str
    selection: JobSelection
    warehouse: bool = Field(default=False, description="writes DuckDB: one such run at a time")
    max_lateness_minutes: int = Field(ge=0, description="skip a tick evaluated later than this")
    superseded_by: str | None = Field(default=None, description="skip when this job ticked since")
    run_retries: int = Field(default=0, ge=0, le=5, description="whole-run retries after a crash")


class Housekeeping(_Strict):
    cron: str = "0 6 * * 0"
    keep_days: int = Field(default=30, ge=1)


class WarehouseFullRebuild(_Strict):
    cron: str = "0 5 * * 0"  # Sundays 05:00 (timezone above): no scheduled job needs the warehouse then


class Jobs(_Strict):
    scheduled: list[ScheduledJob] = Field(default_factory=list)
    housekeeping: Housekeeping = Field(default_factory=Housekeeping)
    warehouse_full_rebuild: WarehouseFullRebuild = Field(default_factory=WarehouseFullRebuild)
    backups_kept: int = Field(default=7, ge=1)


class PipelineConfig(_Strict):
    timezone: str = DEFAULT_TIMEZONE
    markets: dict[str, Market]
    dataset_types: dict[str, DatasetType]
    datasets: list[Dataset]
    exports: list[Export] = Field(default_factory=list)
    alerts: Alerts = Field(default_factory=Alerts)
    jobs: Jobs = Field(default_factory=Jobs)

    @model_validator(mode="after")
    def _cross_references(self) -> PipelineConfig:
        for section, names in (("markets", self.markets), ("dataset_types", self.dataset_types)):
            for name in names:
                if not _IDENTIFIER_RE.match(name):
                    raise _EntryError(f"{section} ({name})", "name", _IDENTIFIER_HINT)
        seen: set[tuple[str, str]] = set()
        for index, entry in enumerate(self.datasets):
            where = f"datasets[{index}] ({entry.market}/{entry.dataset})"
            if entry.market not in self.markets:
                raise _EntryError(
                    where, "market", f"unknown market {entry.market!r}; known: {sorted(self.markets)}"
                )
            if entry.dataset not in self.dataset_types:
                raise _EntryError(
                    where,
                    "dataset",
                    f"unknown dataset {entry.dataset!r}; known: {sorted(self.dataset_types)}",
                )
            key = (entry.market, entry.dataset)
            if key in seen:
                raise _EntryError(where, "dataset", "duplicate (market, dataset) entry")
            seen.add(key)
            daily = self.dataset_types[entry.dataset].cadence == "daily"
            for field in ("due", "file_lag_days"):
                if getattr(entry, field) is not None and not daily:
                    raise _EntryError(where, field, "applies to daily datasets only")
        names = [e.name for e in self.exports]
        daily_keys = {f"{d.market}/{d.dataset}" for d in self.daily_datasets()}
        for index, export in enumerate(self.exports):
            if names.count(export.name) > 1:
                raise _EntryError(f"exports[{index}] ({export.name})", "name", "duplicate export name")
            for covered in export.covers or []:
                if covered not in daily_keys:
                    raise _EntryError(
                        f"exports[{index}] ({export.name})", "covers",
                        f"{covered!r} is not a configured daily dataset; known: {sorted(daily_keys)}",
                    )
        return self

    # --- lookups used across the project -------------------------------------------------

    def dataset(self, market: str, dataset: str) -> Dataset:
        for entry in self.datasets:
            if entry.market == market and entry.dataset == dataset:
                return entry
        configured = sorted(f"{d.market}/{d.dataset}" for d in self.datasets)
        raise ConfigError(f"{market}/{dataset} is not configured in {config_path()}; configured: {configured}")

    def daily_datasets(self) -> list[Dataset]:
        return [d for d in self.datasets if self.dataset_types[d.dataset].cadence == "daily"]

    def due_time(self, entry: Dataset) -> dt.time:
        """London time on day D by which the expected file of a daily dataset is due."""
        return dt.time.fromisoformat(entry.due or self.dataset_types[entry.dataset].due or DEFAULT_DUE_TIME)

    def file_lag_days(self, entry: Dataset) -> int:
        """On day D the expected file is the one for D minus this (1: yesterday's file)."""
        for value in (entry.file_lag_days, self.dataset_types[entry.dataset].file_lag_days):
            if value is not None:
                return value
        return 1

    def export_covers(self, export: Export) -> list[Dataset]:
        """The daily datasets whose data an export holds (its freshness depends on them)."""
        if export.covers is None:
            return self.daily_datasets()
        return [d for d in self.daily_datasets() if f"{d.market}/{d.dataset}" in export.covers]

    def dataset_type(self, dataset: str) -> DatasetType:
        return self.dataset_types[dataset]

    def asset_name(self, market: str, dataset: str) -> str:
        return self.dataset_types[dataset].asset_name.format(market=market.lower())


class _EntryError(ValueError):
    def __init__(self, entry: str, field: str, message: str):
        super().__init__(f"{entry}, field '{field}': {message}")


def config_path() -> Path:
    import os

    override = os.environ.get(CONFIG_ENV_VAR)
    return Path(override) if override else repo_root() / "pipeline.yaml"


def _format_validation_error(path: Path, raw: dict[str, Any], error: ValidationError) -> str:
    lines = [f"{path}: invalid pipeline config"]
    for item in error.errors():
        loc = list(item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "value_error" and "field '" in message:
            lines.append(f"  {message}")  # a cross-reference check already names entry and field
            continue
        if item["type"] == "extra_forbidden":
            message = f"unknown key '{loc[-1]}'"
        if item["type"] == "string_pattern_mismatch" and (item.get("ctx") or {}).get("pattern") == IDENTIFIER_PATTERN:
            message = f"{item.get('input')!r} {_IDENTIFIER_HINT}"
        where = _describe_location(raw, loc[:-1]) or "<top level>"
        field = loc[-1] if loc else "?"
        lines.append(f"  {where}, field '{field}': {message}")
    return "\n".join(lines)


def _describe_location(raw: Any, loc: list[Any]) -> str:
    """`datasets[2] (IT/ingest_orders)`: list entries carry their market/dataset/name as a hint."""
    parts: list[str] = []
    node: Any = raw
    for step in loc:
        if isinstance(step, int):
            label = f"[{step}]"
            entry = node[step] if isinstance(node, list) and _has(node, step) else None
            if isinstance(entry, dict):
                hint = "/".join(str(entry[k]) for k in ("market", "dataset", "name") if k in entry)
                label += f" ({hint})" if hint else ""
            parts.append(label)
        else:
            parts.append(("." if parts else "") + str(step))
        node = node[step] if isinstance(node, (dict, list)) and _has(node, step) else None
    return "".join(parts)


def _has(node: Any, step: Any) -> bool:
    if isinstance(node, dict):
        return step in node
    return isinstance(step, int) and 0 <= step < len(node)


def parse_pipeline_config(path: Path) -> PipelineConfig:
    """Read and validate one config file; raise ConfigError naming file, entry and field."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: config file not found") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        return PipelineConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(path, raw, exc)) from None


@lru_cache(maxsize=4)
def _cached(path: Path, mtime_ns: int) -> PipelineConfig:
    return parse_pipeline_config(path)


def load_pipeline_config(path: Path | None = None) -> PipelineConfig:
    """The validated config (cached per file version)."""
    path = (path or config_path()).resolve()
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: config file not found") from exc
    return _cached(path, mtime)


def load_for_script(path: Path | None = None, needed_for: str = "") -> PipelineConfig:
    """The config for a script: a missing or invalid file is a ConfigurationError (exit 78)
    carrying the file, line and field (prefixed with what it was `needed_for`, if given)."""
    try:
        return load_pipeline_config(path)
    except ConfigError as exc:
        raise ConfigurationError(f"{needed_for}: {exc}" if needed_for else str(exc)) from None


def business_zone(config: PipelineConfig | None = None):
    """The business time zone (pipeline.yaml `timezone`) as a ZoneInfo."""
    from zoneinfo import ZoneInfo

    return ZoneInfo((config or load_pipeline_config()).timezone)


def today_in(timezone: str) -> dt.date:
    from zoneinfo import ZoneInfo

    return dt.datetime.now(ZoneInfo(timezone)).date()
