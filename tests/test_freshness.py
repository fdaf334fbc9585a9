"""The freshness rules (contract section 9) under a frozen clock: each verdict is evaluated at an explicit
London time against real Parquet files, sync state files and a landing folder."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline_common import freshness
from pipeline_common.config import ConfigError, load_pipeline_config, parse_pipeline_config
from tests.plugins.azurite import orders_blob_name, orders_csv, run_sync_script

LONDON = ZoneInfo("Europe/London")
CONFIG = load_pipeline_config()
MARKETS = ["UK", "DE", "IT", "JP"]


def london(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=LONDON)


def synced(raw: Path, market: str, day: dt.date, at: dt.datetime) -> Path:
    """A synced orders Parquet file for `day`, written (mtime) at `at`."""
    path = raw / market / "ingest_orders" / f"{day:%Y}" / f"ingest_orders_{day:%Y%m%d}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"order_id": [1]}), path)
    os.utime(path, (at.timestamp(), at.timestamp()))
    return path


def landed(landing: Path, market: str, day: dt.date, at: dt.datetime | None = None) -> Path:
    path = landing.joinpath(*orders_blob_name(market, day).split("/"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(orders_csv(day, 3), encoding="utf-8")
    if at:
        os.utime(path, (at.timestamp(), at.timestamp()))
    return path


def report(at: dt.datetime, raw: Path, rebuilt: dict | None = None) -> freshness.FreshnessReport:
    facts = freshness.gather_facts(CONFIG, at, raw, freshness.source_lookup())
    return freshness.evaluate(CONFIG, at, facts, rebuilt or {})


@pytest.fixture
def tree(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    landing = isolated_env / "landing"
    landing.mkdir()
    monkeypatch.setenv("LANDING_DIR", str(landing))
    return isolated_env / "raw", landing


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2026-11-30T06:29", "2026-11-28"),  # before the 06:30 due time: D-2
        ("2026-11-30T06:30", "2026-11-29"),  # at it: D-1
        ("2026-11-30T23:59", "2026-11-29"),
        ("2026-01-01T06:29", "2025-12-30"),  # New Year, before due
        ("2026-01-01T07:00", "2025-12-31"),  # New Year, after due
        ("2026-03-29T06:29", "2026-03-27"),  # clocks go forward at 01:00 that night
        ("2026-03-29T06:30", "2026-03-28"),
        ("2026-10-25T06:29", "2026-10-23"),  # clocks go back at 02:00 that night
        ("2026-10-25T06:30", "2026-10-24"),
    ],
)
def test_expected_date_follows_the_london_due_time(at: str, expected: str) -> None:
    entry = CONFIG.dataset("DE", "ingest_orders")
    got, due_at, _, _ = freshness.expectation(london(at), CONFIG.due_time(entry), 1, CONFIG.timezone)
    assert got == dt.date.fromisoformat(expected)
    assert due_at.astimezone(LONDON).strftime("%H:%M") == "06:30"


def test_due_time_is_london_time_across_the_clock_change() -> None:
    entry = CONFIG.dataset("UK", "ingest_orders")
    # 05:29 UTC on 29 March 2026 is 06:29 BST: not yet due. 05:30 UTC is 06:30 BST: due.
    before = dt.datetime(2026, 3, 29, 5, 29, tzinfo=dt.timezone.utc)
    after = dt.datetime(2026, 3, 29, 5, 30, tzinfo=dt.timezone.utc)
    assert freshness.expectation(before, CONFIG.due_time(entry), 1, CONFIG.timezone)[0] == dt.date(2026, 3, 27)
    assert freshness.expectation(after, CONFIG.due_time(entry), 1, CONFIG.timezone)[0] == dt.date(2026, 3, 28)


def test_all_current_then_a_market_without_its_file(tree) -> None:
    raw, landing = tree
    day = dt.date(2026, 11, 29)
    for market in MARKETS:
        landed(landing, market, day, london("2026-11-30T05:00"))
        synced(raw, market, day, london("2026-11-30T05:10"))
    rebuilt = {e.asset: london("2026-11-30T07:20") for e in CONFIG.exports}
    good = report(london("2026-11-30T07:30"), raw, rebuilt)
    assert good.current and good.headline() == "CURRENT"
    assert all(e.data_through == day for e in good.exports)

    (raw / "DE" / "ingest_orders" / "2026" / "ingest_orders_20261129.parquet").unlink()
    landing.joinpath(*orders_blob_name("DE", day).split("/")).unlink()
    synced(raw, "DE", dt.date(2026, 11, 28), london("2026-11-29T05:00"))
    before_due = report(london("2026-11-30T06:29"), raw, rebuilt)
    assert before_due.source("DE", "ingest_orders").current, "D-2 is enough before the due time"
    assert before_due.source("DE", "ingest_orders").next_pending
    late = report(london("2026-11-30T06:31"), raw, rebuilt)
    assert not late.current
    assert late.headline() == "NOT CURRENT: DE ingest_orders: file for 2026-11-29 not arrived (due 06:30)"
    de = late.source("DE", "ingest_orders")
    assert (de.data_through, de.expected_date, de.reason) == (dt.date(2026, 11, 28), day, freshness.NOT_ARRIVED)
    for export in late.exports:
        assert not export.current and export.late_sources == ("DE ingest_orders",)
    assert [s.market for s in late.late_sources] == ["DE"]


def test_market_that_never_had_a_file(tree) -> None:
    raw, _ = tree
    at = london("2026-01-01T08:00")
    for market in ["UK", "DE", "IT"]:
        synced(raw, market, dt.date(2025, 12, 31), london("2026-01-01T05:00"))
    result = report(at, raw, {e.asset: london("2026-01-01T07:00") for e in CONFIG.exports})
    jp = result.source("JP", "ingest_orders")
    assert not jp.current and jp.data_through is None and jp.reason == freshness.NOT_ARRIVED
    assert jp.expected_date == dt.date(2025, 12, 31)
    assert result.reasons() == ["JP ingest_orders: file for 2025-12-31 not arrived (due 06:30)"]


def test_file_arrived_but_not_synced_then_rejected_by_the_real_sync(tree) -> None:
    raw, landing = tree
    today = dt.datetime.now(LONDON).date()
    yesterday = today - dt.timedelta(days=1)
    at = dt.datetime.combine(today, dt.time(23, 0), tzinfo=LONDON)
    for market in MARKETS:
        synced(raw, market, yesterday, at - dt.timedelta(hours=1))
    path = landed(landing, "UK", today)
    # Tomorrow's view: today's file is expected and sits in the landing folder, unsynced.
    tomorrow = at + dt.timedelta(hours=9)
    waiting = report(tomorrow, raw).source("UK", "ingest_orders")
    assert (waiting.current, waiting.reason) == (False, freshness.NOT_SYNCED)
    assert "arrived" in waiting.why()

    lines = orders_csv(today, 3).splitlines()
    lines[2] = lines[2].replace(f",{today.isoformat()} ", ",not-a-time ", 1)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run_sync_script("--market", "UK", "--dataset", "ingest_orders", "--days-back", "1")
    assert result.returncode == 65, result.stderr
    rejected = report(tomorrow, raw).source("UK", "ingest_orders")
    assert (rejected.current, rejected.reason) == (False, freshness.REJECTED)
    assert rejected.why().startswith(f"file for {today} rejected (due 06:30): ")
    assert "order_ts" in rejected.why() and "line 3" in rejected.why()

    path.write_text(orders_csv(today, 3), encoding="utf-8")
    assert run_sync_script("--market", "UK", "--dataset", "ingest_orders", "--days-back", "1").returncode == 0
    fixed = report(tomorrow, raw).source("UK", "ingest_orders")
    assert fixed.current and fixed.data_through == today


def test_sync_failed_when_the_whole_sync_failed(tree) -> None:
    raw, landing = tree
    at = london("2026-11-30T08:00")
    state = raw / "_state" / "IT"
    state.mkdir(parents=True)
    (state / "ingest_orders.last_sync.json").write_text(
        '{"version": 1, "error": "TransientError: Azure unreachable", "files": {}}', encoding="utf-8"
    )
    landed(landing, "IT", dt.date(2026, 11, 29))
    it = report(at, raw).source("IT", "ingest_orders")
    assert (it.reason, it.why()) == (freshness.SYNC_FAILED, "file for 2026-11-29 sync failed (due 06:30): TransientError: Azure unreachable")


def test_synced_but_not_exported_since(tree) -> None:
    raw, _ = tree
    day = dt.date(2026, 11, 29)
    for market in MARKETS:
        synced(raw, market, day - dt.timedelta(days=1), london("2026-11-29T05:00"))
        synced(raw, market, day, london("2026-11-30T05:00"))
    synced(raw, "IT", day, london("2026-11-30T07:10"))  # IT re-delivered and re-synced after the rebuild
    rebuilt = {e.asset: london("2026-11-30T07:00") for e in CONFIG.exports}
    result = report(london("2026-11-30T07:30"), raw, rebuilt)
    assert all(s.current for s in result.sources)
    for export in result.exports:
        assert not export.current and export.late_sources == ()
        assert "not rebuilt since the newest file was synced at 2026-11-30 07:10" in export.reason
        assert export.data_through == day - dt.timedelta(days=1), "IT's newest file came after the rebuild"
    assert result.headline().startswith("NOT CURRENT: executive_daily_sales: not rebuilt since")
    never = report(london("2026-11-30T07:30"), raw, {})
    assert [e.reason for e in never.exports] == ["never rebuilt", "never rebuilt"]


def test_due_time_and_lag_are_configurable_and_validated(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[1] / "pipeline.yaml").read_text(encoding="utf-8")
    custom = tmp_path / "pipeline.yaml"
    custom.write_text(
        text.replace("{market: JP, dataset: ingest_orders, days_back: 30}",
                     "{market: JP, dataset: ingest_orders, days_back: 30, due: '03:00', file_lag_days: 2}"),
        encoding="utf-8",
    )
    config = parse_pipeline_config(custom)
    jp = config.dataset("JP", "ingest_orders")
    assert config.due_time(jp) == dt.time(3, 0) and config.file_lag_days(jp) == 2
    assert config.due_time(config.dataset("UK", "ingest_orders")) == dt.time(6, 30)
    assert freshness.expectation(london("2026-11-30T03:00"), dt.time(3, 0), 2, "Europe/London")[0] == dt.date(2026, 11, 28)

    custom.write_text(text.replace("{market: DE, dataset: ingest_orders, days_back: 30}",
                                   "{market: DE, dataset: ingest_orders, days_back: 30, due: '6:30'}"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"datasets\[1\] \(DE/ingest_orders\), field 'due'"):
        parse_pipeline_config(custom)
    custom.write_text(text.replace("{market: UK, dataset: ingest_new_names}",
                                   "{market: UK, dataset: ingest_new_names, due: '06:00'}"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"UK/ingest_new_names.*field 'due': applies to daily datasets only"):
        parse_pipeline_config(custom)
