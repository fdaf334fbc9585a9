"""The pipeline config file (`pipeline.yaml`): its schema, its validation, and one loader.

Every consumer (the sync script, the Dagster factories, the dbt staging generator) reads
the file through `load_pipeline_config`, so a typo fails the same way everywhere, with
a message naming the file, the entry and the field.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
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


class ConfigError(ConfigurationError, ValueError):
    """The config file is invalid; the message names file, line, entry and field (exit 78 in every script)."""


class _StrictLoader(yaml.SafeLoader):
    """YAML as a person reads it: a duplicate key is an error naming both lines (PyYAML silently keeps
    the last), and scalars follow YAML 1.2's core schema, so `NO` (Norway), `on`, `y`, `06:30`
    (base 60 in YAML 1.1), `010` (octal) and `2026-11-20` stay the text that was written."""


_StrictLoader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    ("tag:yaml.org,2002:float",
     r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
     "-+0123456789."),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
):
    _StrictLoader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


def _int_1_2(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = loader.construct_scalar(node)
    return int(text, 8) if text.startswith("0o") else int(text, 0) if text.startswith("0x") else int(text, 10)


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _int_1_2)


class _DuplicateKey(Exception):
    def __init__(self, key: Any, first: int, second: int):
        super().__init__(key, first, second)
        self.key, self.first, self.second = key, first, second


def _mapping_without_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if isinstance(key, (str, int, float, bool)) and key in seen:
            raise _DuplicateKey(key, seen[key], line)
        if isinstance(key, (str, int, float, bool)):
            seen[key] = line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor("tag:yaml.org,2002:map", _mapping_without_duplicates)


def _line_map(node: yaml.Node, path: tuple = (), lines: dict | None = None) -> dict[tuple, int]:
    """{path of keys and indexes: 1-based line} for every node of a composed YAML document."""
    lines = {} if lines is None else lines
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            lines[path + (key,)] = key_node.start_mark.line + 1
            _line_map(value_node, path + (key,), lines)
            lines[path + (key,)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _line_map(item, path + (index,), lines)
    return lines


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Market(_Strict):
    currency: str = Field(pattern=r"^[A-Z]{3}$")


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
DECIMAL_LIMIT = Decimal("9999999999999999.99")
"""The largest magnitude a decimal(18, 2) holds: the warehouse's money type."""


class Column(_Strict):
    """One column of a dataset type: what the sync accepts and what dbt's staging tests check.

    The exact text format follows from the type (docs/rejected_inputs.md): integers are decimal
    digits with an optional leading '-'; decimals the same with at most 2 places after a '.';
    dates `YYYY-MM-DD`; timestamps `YYYY-MM-DD HH:MM:SS`. An empty cell is null.
    """

    type: ColumnType
    nullable: bool = Field(default=False, description="an empty cell is allowed")
    min: Decimal | None = Field(default=None, description="integer/decimal: smallest allowed value")
    max: Decimal | None = Field(default=None, description="integer/decimal: largest allowed value")
    allowed: list[str] | None = Field(default=None, min_length=1, description="string: the only values allowed")
    market_currency: bool = Field(default=False, description="string: must be the market's own currency")
    not_after_file_date: bool = Field(default=False, description="date: not after the file's date")
    max_length: int | None = Field(default=None, ge=1, le=65536, description="string: at most this many characters")

    @model_validator(mode="after")
    def _fits_type(self) -> Column:
        numeric = self.type in ("integer", "decimal")
        if not numeric and (self.min is not None or self.max is not None):
            raise ValueError(f"'min'/'max' apply to integer and decimal columns only (type is {self.type})")
        if self.type != "string":
            for field in ("allowed", "market_currency", "max_length"):
                if getattr(self, field) not in (None, False):
                    raise ValueError(f"'{field}' applies to string columns only (type is {self.type})")
        if self.not_after_file_date and self.type != "date":
            raise ValueError(f"'not_after_file_date' applies to date columns only (type is {self.type})")
        limits = (Decimal(INT64_MIN), Decimal(INT64_MAX)) if self.type == "integer" else (-DECIMAL_LIMIT, DECIMAL_LIMIT)
        for field in ("min", "max"):
            value = getattr(self, field)
            if value is None:
                continue
            if not value.is_finite() or not limits[0] <= value <= limits[1]:
                raise ValueError(f"'{field}' {value} is outside what {'an' if self.type == 'integer' else 'a'} {self.type} column holds ({limits[0]}..{limits[1]})")
            if self.type == "integer" and value != value.to_integral_value():
                raise ValueError(f"'{field}' {value} must be a whole number for an integer column")
            if self.type == "decimal" and value != value.quantize(Decimal("0.01")):
                raise ValueError(f"'{field}' {value} has more than 2 decimal places")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"'min' {self.min} is above 'max' {self.max}")
        return self

    @property
    def bounds(self) -> tuple[Decimal, Decimal]:
        """(lowest, highest) value the sync accepts: the declared bounds, else the type's own."""
        if self.type == "integer":
            low, high = Decimal(INT64_MIN), Decimal(INT64_MAX)
        else:
            low, high = -DECIMAL_LIMIT, DECIMAL_LIMIT
        return (self.min if self.min is not None else low, self.max if self.max is not None else high)


class DatasetType(_Strict):
    cadence: Cadence
    asset_name: str = Field(description="Asset key template; {market} is the lower-case market.")
    group: str
    columns: dict[str, Column] = Field(min_length=1)
    grain: list[str] = Field(min_length=1, description="one row per these columns (unique within a file; latest file wins)")
    change_date: str | None = Field(
        default=None, description="date column whose days an incremental staging model rebuilds (daily datasets)",
    )

    @field_validator("columns", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        """`order_id: integer` is short for `order_id: {type: integer}`."""
        if isinstance(value, dict):
            return {name: {"type": spec} if isinstance(spec, str) else spec for name, spec in value.items()}
        return value

    @model_validator(mode="after")
    def _keys_are_columns(self) -> DatasetType:
        for name in self.columns:
            if not _IDENTIFIER_RE.match(str(name)):
                raise ValueError(f"column {name!r} {_IDENTIFIER_HINT}")
        lowered = [name.lower() for name in self.columns]
        for name in self.columns:
            if lowered.count(name.lower()) > 1:
                raise ValueError(f"columns {name!r}: two columns differ only in case (DuckDB and Tableau fold case)")
        for name in self.grain:
            if name not in self.columns:
                raise ValueError(f"grain column {name!r} is not one of the columns {list(self.columns)}")
            if self.columns[name].nullable:
                raise ValueError(f"grain column {name!r} must not be nullable")
        if len(set(self.grain)) != len(self.grain):
            raise ValueError(f"grain {self.grain} names a column twice")
        if self.change_date is not None:
            column = self.columns.get(self.change_date)
            if column is None or column.type != "date":
                raise ValueError(f"change_date {self.change_date!r} must name a date column")
            if self.cadence != "daily":
                raise ValueError("'change_date' applies to daily datasets only")
        return self

    @property
    def column_types(self) -> dict[str, str]:
        """{column: type}, in file order."""
        return {name: column.type for name, column in self.columns.items()}
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
    # How often the run failure/recovery alert sensors look (tests shorten it instead of sleeping).
    run_alert_interval_seconds: int = Field(default=30, ge=1, le=3600)

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


MEMORY_SIZE = r"^[0-9]+(\.[0-9]+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$"
"""A DuckDB memory size as `memory_limit` takes it: 1.5GB, 800MB, 2GiB."""

_MEMORY_UNITS = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
                 "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def memory_bytes(size: str) -> int:
    """Bytes in a MEMORY_SIZE string (`1.5GB` -> 1,500,000,000)."""
    match = re.match(r"^([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]+)$", size.strip())
    if not match or match.group(2).upper() not in _MEMORY_UNITS:
        raise ValueError(f"not a memory size: {size!r} (e.g. 1.5GB, 800MB)")
    return int(float(match.group(1)) * _MEMORY_UNITS[match.group(2).upper()])


STEP_OVERHEAD_BYTES = 650 * 10**6
"""What a step's processes take beyond DuckDB's buffer: the Dagster run worker (about 0.35 GB) and the Python
process around DuckDB (dbt: about 0.3 GB), as scripts/dev/bench_year.py measured them (docs/performance.md)."""


class DuckDBLimits(_Strict):
    """What one DuckDB process of the pipeline may use (DuckDB settings `memory_limit`, `threads`)."""

    memory_limit: str = Field(pattern=MEMORY_SIZE, description="DuckDB's buffer memory; beyond it, it spills")
    threads: int = Field(ge=1, le=256)

    @field_validator("memory_limit")
    @classmethod
    def _at_least_64mb(cls, value: str) -> str:
        if memory_bytes(value) < 64 * 10**6:
            raise ValueError("below 64MB DuckDB cannot run the pipeline's queries; give at least 64MB")
        return value


class SyncLimits(_Strict):
    """The sync reads CSV with pyarrow (no DuckDB): its CPU threads and how many datasets at once."""

    threads: int = Field(default=2, ge=1, le=256, description="pyarrow's CPU and I/O thread pools")
    datasets_at_once: int = Field(default=4, ge=1, le=64, description="sync_batch.py's parallel datasets")


Priority = Literal["below_normal", "normal"]


class ResourceLimits(_Strict):
    """Memory and CPU the pipeline may take on the desktop (docs/performance.md, "Resource limits")."""

    dbt: DuckDBLimits = Field(default_factory=lambda: DuckDBLimits(memory_limit="1.2GB", threads=2))
    exporter: DuckDBLimits = Field(default_factory=lambda: DuckDBLimits(memory_limit="1GB", threads=2))
    backup: DuckDBLimits = Field(default_factory=lambda: DuckDBLimits(memory_limit="1GB", threads=2))
    sync: SyncLimits = Field(default_factory=SyncLimits)
    temp_directory: str = Field(
        default="warehouse/spill", min_length=1,
        description="Where DuckDB spills beyond memory_limit; relative paths are under DATA_DIR",
    )
    priority: Priority = Field(default="below_normal", description="CPU priority of the pipeline's processes")
    nice: int = Field(default=10, ge=0, le=19, description="Linux/macOS: the nice value below_normal means")
    step_memory: str = Field(
        default="2GB", pattern=MEMORY_SIZE,
        description="What one step's processes may use together (the run worker, dbt or the exporter with its DuckDB)",
    )

    @model_validator(mode="after")
    def _duckdb_fits_in_a_step(self) -> ResourceLimits:
        budget = memory_bytes(self.step_memory)
        for name in ("dbt", "exporter", "backup"):
            limit = getattr(self, name).memory_limit
            if memory_bytes(limit) + STEP_OVERHEAD_BYTES > budget:
                raise _EntryError(
                    f"resource_limits.{name}", "memory_limit",
                    f"{limit} leaves less than {STEP_OVERHEAD_BYTES / 10**9:.2f} GB of step_memory {self.step_memory} "
                    "for the processes around DuckDB (the Dagster run worker, dbt's Python): lower it or raise step_memory",
                    loc=(name, "memory_limit"))
        return self

    @field_validator("temp_directory")
    @classmethod
    def _no_parent_steps(cls, value: str) -> str:
        if ".." in Path(value).parts:
            raise ValueError("must not contain '..' (relative paths stay under DATA_DIR)")
        return value


class PipelineConfig(_Strict):
    timezone: str = DEFAULT_TIMEZONE
    markets: dict[str, Market]
    dataset_types: dict[str, DatasetType]
    datasets: list[Dataset]
    exports: list[Export] = Field(default_factory=list)
    alerts: Alerts = Field(default_factory=Alerts)
    jobs: Jobs = Field(default_factory=Jobs)
    resource_limits: ResourceLimits = Field(default_factory=ResourceLimits)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(value)
        except (ValueError, OSError, KeyError):  # ZoneInfoNotFoundError is a KeyError
            raise ValueError(f"unknown time zone {value!r}: expected an IANA name such as Europe/London") from None
        return value

    @model_validator(mode="after")
    def _cross_references(self) -> PipelineConfig:
        for section, names in (("markets", self.markets), ("dataset_types", self.dataset_types)):
            for name in names:
                if not _IDENTIFIER_RE.match(str(name)):
                    raise _EntryError(f"{section} ({name})", "name", _IDENTIFIER_HINT)
            lowered = [str(name).lower() for name in names]
            for name in names:
                if lowered.count(str(name).lower()) > 1:
                    raise _EntryError(f"{section} ({name})", "name",
                                      "two names differ only in case; asset, table and folder names are lower-cased",
                                      loc=(section, name))
        seen: set[tuple[str, str]] = set()
        for index, entry in enumerate(self.datasets):
            where = f"datasets[{index}] ({entry.market}/{entry.dataset})"
            if entry.market not in self.markets:
                raise _EntryError(
                    where, "market", f"unknown market {entry.market!r}; known: {sorted(self.markets)}",
                    loc=("datasets", index, "market"),
                )
            if entry.dataset not in self.dataset_types:
                raise _EntryError(
                    where,
                    "dataset",
                    f"unknown dataset {entry.dataset!r}; known: {sorted(self.dataset_types)}",
                    loc=("datasets", index, "dataset"),
                )
            key = (entry.market, entry.dataset)
            if key in seen:
                raise _EntryError(where, "dataset", "duplicate (market, dataset) entry", loc=("datasets", index))
            seen.add(key)
            daily = self.dataset_types[entry.dataset].cadence == "daily"
            for field in ("due", "file_lag_days"):
                if getattr(entry, field) is not None and not daily:
                    raise _EntryError(where, field, "applies to daily datasets only")
        names = [e.name for e in self.exports]
        daily_keys = {f"{d.market}/{d.dataset}" for d in self.daily_datasets()}
        for index, export in enumerate(self.exports):
            if names.count(export.name) > 1:
                raise _EntryError(f"exports[{index}] ({export.name})", "name", "duplicate export name",
                                  loc=("exports", index, "name"))
            for covered in export.covers or []:
                if covered not in daily_keys:
                    raise _EntryError(
                        f"exports[{index}] ({export.name})", "covers",
                        f"{covered!r} is not a configured daily dataset; known: {sorted(daily_keys)}",
                    )
        self._asset_names_unique()
        return self

    def _asset_names_unique(self) -> None:
        """Every Dagster asset this file defines has its own name after lower-casing (Dagster and
        dbt models are case-sensitive, DuckDB tables and Windows folders are not)."""
        owners: dict[str, str] = {}
        named = [(self.asset_name(d.market, d.dataset) if d.market in self.markets and d.dataset in self.dataset_types
                  else None, f"datasets[{i}] ({d.market}/{d.dataset})", ("datasets", i))
                 for i, d in enumerate(self.datasets)]
        named += [(e.asset, f"exports[{i}] ({e.name})", ("exports", i, "asset")) for i, e in enumerate(self.exports)]
        for asset, owner, loc in named:
            if asset is None:
                continue
            key = asset.lower()
            if key in owners:
                raise _EntryError(owner, "asset", f"asset name {asset!r} collides with {owners[key]} after lower-casing",
                                  loc=loc)
            owners[key] = owner

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
    def __init__(self, entry: str, field: str, message: str, loc: tuple = ()):
        super().__init__(f"{entry}, field '{field}': {message}")
        self.loc = loc  # where in the file, for the line number


def config_path() -> Path:
    import os

    override = os.environ.get(CONFIG_ENV_VAR)
    return Path(override) if override else repo_root() / "pipeline.yaml"


def _line_of(lines: dict[tuple, int], loc: list[Any]) -> int | None:
    """The line of the deepest part of `loc` the file has (a missing field: its parent's line)."""
    for end in range(len(loc), -1, -1):
        found = lines.get(tuple(loc[:end]))
        if found is not None:
            return found
    return None


def _format_validation_error(path: Path, raw: dict[str, Any], error: ValidationError,
                             line_map: dict[tuple, int] | None = None) -> str:
    lines = [f"{path}: invalid pipeline config"]
    for item in error.errors():
        loc = [part for part in item["loc"] if not (isinstance(part, str) and part.startswith("function-"))]
        cause = (item.get("ctx") or {}).get("error")
        full = loc + list(getattr(cause, "loc", ()))
        line = _line_of(line_map or {}, full) if full else None
        at_line = f" (line {line})" if line is not None else ""
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "value_error" and "field '" in message:
            lines.append(f"  {message}{at_line}")  # a cross-reference check already names entry and field
            continue
        if item["type"] == "extra_forbidden":
            message = f"unknown key '{loc[-1]}'"
        if item["type"] == "string_pattern_mismatch" and (item.get("ctx") or {}).get("pattern") == IDENTIFIER_PATTERN:
            message = f"{item.get('input')!r} {_IDENTIFIER_HINT}"
        where = _describe_location(raw, loc[:-1]) or "<top level>"
        field = loc[-1] if loc else "?"
        lines.append(f"  {where}, field '{field}': {message}{at_line}")
    lines.append(f"  {FIX_HINT}")
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


FIX_HINT = "fix pipeline.yaml (or the file PIPELINE_CONFIG names) at that line, then re-run"


def _read_config_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found; set PIPELINE_CONFIG to the pipeline.yaml to use, "
                          "or unset it for the repository's own") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a config file; PIPELINE_CONFIG must name the "
                          "pipeline.yaml file itself") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror or exc}); check that it "
                          "exists and the pipeline's account may read it") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path} line {line}: not UTF-8 text (byte {data[exc.start]:#04x}); save the file "
                          "as UTF-8") from None


def parse_pipeline_config(path: Path) -> PipelineConfig:
    """Read and validate one config file; raise ConfigError naming file, line, entry and field."""
    text = _read_config_text(path)
    try:
        node = yaml.compose(text, Loader=_StrictLoader)
        raw = _StrictLoader(text).get_single_data() if node is not None else None
    except _DuplicateKey as exc:
        raise ConfigError(
            f"{path} line {exc.second}: duplicate key {exc.key!r} (first on line {exc.first}); YAML would "
            f"silently keep only the second. Merge the two or remove one"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} line 1: expected a mapping (markets:, dataset_types:, ...) at the top level")
    lines = _line_map(node)
    try:
        return PipelineConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(path, raw, exc, lines)) from None
    except ValueError as exc:  # a model validator's own check outside pydantic's error list
        raise ConfigError(f"{path}: invalid pipeline config\n  {exc}\n  {FIX_HINT}") from None


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
