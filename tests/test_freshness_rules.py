"""The freshness rules (contract section 9) as pure functions of a frozen time, in-process: the expected date
against an independent oracle over generated times, due times and lags; the reason a dataset is late for each
combination of facts; when an export counts as rebuilt; the deadline; the JSON the status CLI prints; and the
reading of the facts from the sync's files (bad names and bad state files are ignored, an unreachable source
never hides what the files say)."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline_common import freshness
from pipeline_common.config import load_pipeline_config, parse_pipeline_config

LONDON = ZoneInfo("Europe/London")
CONFIG = load_pipeline_config()
KEYS = [(d.market, d.dataset) for d in CONFIG.daily_datasets()]
DAY = dt.date(2026, 11, 29)  # the file expected on 30 November after 06:30 (orders: due 06:30, lag 1)


def london(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=LONDON)


def facts(**per_market: freshness.SourceFacts) -> dict[tuple[str, str], freshness.SourceFacts]:
    """Every daily dataset synced up to DAY at 05:00 on the 30th, except the markets given."""
    good = (freshness.SyncedFile(DAY, london("2026-11-30T05:00")),)
    found = {key: freshness.SourceFacts(*key, synced=good) for key in KEYS}
    for market, fact in per_market.items():
        found[(market, "ingest_orders")] = fact
    return found


def config_with(tmp_path: Path, old: str, new: str):
    text = (Path(__file__).resolve().parents[1] / "pipeline.yaml").read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "pipeline.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return parse_pipeline_config(path)


# --- the expected date: an oracle over generated times ------------------------------------------


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    at=st.datetimes(min_value=dt.datetime(2024, 1, 1), max_value=dt.datetime(2030, 12, 31),
                    timezones=st.just(dt.timezone.utc)),
    due=st.times(min_value=dt.time(3, 0), max_value=dt.time(23, 59)),  # clear of the 01:00-02:00 clock change
    lag=st.integers(0, 3),
)
def test_the_expected_file_is_d_minus_lag_from_the_due_time_on(at, due, lag) -> None:
    """Class: any instant, any due time, any lag. Oracle: the London wall clock at `at`."""
    local = at.astimezone(LONDON)
    due_passed = local.time() >= due
    want = local.date() - dt.timedelta(days=lag if due_passed else lag + 1)
    expected, due_at, upcoming, upcoming_due = freshness.expectation(at, due, lag, "Europe/London")
    assert expected == want
    assert due_at.astimezone(LONDON).time() == due and due_at <= at
    assert due_at.astimezone(LONDON).date() == expected + dt.timedelta(days=lag)
    assert upcoming == local.date() - dt.timedelta(days=lag)
    assert upcoming_due.astimezone(LONDON) == dt.datetime.combine(local.date(), due, tzinfo=LONDON)
    assert (upcoming == expected) == due_passed


def test_expected_dates_are_the_expected_and_the_next_file() -> None:
    entry = CONFIG.dataset("UK", "ingest_orders")
    assert freshness.expected_dates(CONFIG, entry, london("2026-11-30T06:29")) == (dt.date(2026, 11, 28), DAY)
    assert freshness.expected_dates(CONFIG, entry, london("2026-11-30T06:30")) == (DAY, DAY)


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        freshness.evaluate(CONFIG, dt.datetime(2026, 11, 30, 8, 0), facts(), {})


# --- why a dataset is late ------------------------------------------------------------------------


def late(at: str, fact: freshness.SourceFacts) -> freshness.SourceStatus:
    report = freshness.evaluate(CONFIG, london(at), facts(DE=fact), {})
    status = report.source("DE", "ingest_orders")
    assert not status.current and [s.label for s in report.late_sources] == ["DE ingest_orders"]
    return status


OLD = (freshness.SyncedFile(DAY - dt.timedelta(days=1), london("2026-11-29T05:00")),)


def test_a_rejected_file_is_named_before_a_failed_sync_or_a_missing_file() -> None:
    rejected = freshness.SyncProblem(freshness.REJECTED, "bad order_ts on line 3", DAY)
    whole = freshness.SyncProblem(freshness.SYNC_FAILED, "TransientError: Azure unreachable")
    other_day = freshness.SyncProblem(freshness.REJECTED, "an older file", DAY - dt.timedelta(days=3))
    status = late("2026-11-30T08:00", freshness.SourceFacts("DE", "ingest_orders", OLD, (other_day, whole, rejected),
                                                            {DAY: None}))
    assert (status.reason, status.detail) == (freshness.REJECTED, "bad order_ts on line 3")
    assert status.why() == "file for 2026-11-29 rejected (due 06:30): bad order_ts on line 3"


def test_a_file_the_source_does_not_hold_has_not_arrived_even_when_the_sync_failed() -> None:
    whole = freshness.SyncProblem(freshness.SYNC_FAILED, "TransientError: Azure unreachable")
    status = late("2026-11-30T08:00", freshness.SourceFacts("DE", "ingest_orders", OLD, (whole,), {DAY: None}))
    assert (status.reason, status.why()) == (freshness.NOT_ARRIVED, "file for 2026-11-29 not arrived (due 06:30)")


def test_a_failed_sync_is_the_reason_when_the_source_was_not_asked_or_holds_the_file() -> None:
    whole = freshness.SyncProblem(freshness.SYNC_FAILED, "TransientError: Azure unreachable")
    other_day = freshness.SyncProblem(freshness.REJECTED, "an older file", DAY - dt.timedelta(days=3))
    for landed in ({}, {DAY: london("2026-11-30T05:00")}):
        status = late("2026-11-30T08:00", freshness.SourceFacts("DE", "ingest_orders", OLD, (other_day, whole), landed))
        assert status.why() == "file for 2026-11-29 sync failed (due 06:30): TransientError: Azure unreachable"


def test_a_file_that_arrived_but_was_not_synced_says_when_it_arrived_in_london_time() -> None:
    landed = {DAY: dt.datetime(2026, 7, 1, 4, 5, tzinfo=dt.timezone.utc)}  # 05:05 BST
    status = late("2026-11-30T08:00", freshness.SourceFacts("DE", "ingest_orders", OLD, (), landed))
    assert status.why() == "file for 2026-11-29 not synced (due 06:30): arrived 2026-07-01 05:05"
    unknown = late("2026-11-30T08:00", freshness.SourceFacts("DE", "ingest_orders", OLD, (), {}))
    assert (unknown.reason, unknown.why()) == (freshness.NOT_SYNCED, "file for 2026-11-29 not synced (due 06:30)")


def test_current_and_the_next_file_pending() -> None:
    """Before the due time D-2 is enough (the next file is pending); after it, D-1 is current with nothing pending;
    a file newer than expected is current too."""
    before = freshness.evaluate(CONFIG, london("2026-11-30T06:29"), facts(
        DE=freshness.SourceFacts("DE", "ingest_orders", OLD)), {}).source("DE", "ingest_orders")
    assert before.current and before.next_pending and before.why() == ""
    assert (before.data_through, before.next_date) == (DAY - dt.timedelta(days=1), DAY)
    after = freshness.evaluate(CONFIG, london("2026-11-30T06:30"), facts(), {}).source("DE", "ingest_orders")
    assert after.current and not after.next_pending
    newer = (freshness.SyncedFile(DAY + dt.timedelta(days=1), london("2026-11-30T05:00")),) + OLD
    ahead = freshness.evaluate(CONFIG, london("2026-11-30T06:30"), facts(
        DE=freshness.SourceFacts("DE", "ingest_orders", newer)), {}).source("DE", "ingest_orders")
    assert ahead.current and ahead.data_through == DAY + dt.timedelta(days=1)
    assert ahead.synced_at == london("2026-11-30T05:00")


# --- exports --------------------------------------------------------------------------------------


def test_an_export_is_current_when_rebuilt_after_the_newest_sync() -> None:
    synced_at = london("2026-11-30T05:00")
    for rebuilt, current in ((synced_at + dt.timedelta(seconds=1), True), (synced_at - dt.timedelta(seconds=1), False)):
        report = freshness.evaluate(CONFIG, london("2026-11-30T07:30"), facts(), {e.asset: rebuilt for e in CONFIG.exports})
        assert [e.current for e in report.exports] == [current] * len(CONFIG.exports), rebuilt
        assert report.current is current
        if not current:
            assert report.exports[0].reason == ("not rebuilt since the newest file was synced at 2026-11-30 05:00 "
                                                 "(last rebuilt 2026-11-30 04:59)")
            assert [e.data_through for e in report.exports] == [None] * len(CONFIG.exports), "it holds no file"
        else:
            assert [e.data_through for e in report.exports] == [DAY] * len(CONFIG.exports)
            assert report.reasons() == [] and report.headline() == "CURRENT"


def test_an_export_holds_the_oldest_of_its_markets_newest_files_from_before_its_rebuild() -> None:
    uk = (freshness.SyncedFile(DAY, london("2026-11-30T05:00")),
          freshness.SyncedFile(DAY - dt.timedelta(days=2), london("2026-11-28T05:00")))
    it = (freshness.SyncedFile(DAY - dt.timedelta(days=1), london("2026-11-29T05:00")),
          freshness.SyncedFile(DAY, london("2026-11-30T07:10")))  # after the rebuild: not in the export
    rebuilt = london("2026-11-30T07:00")
    report = freshness.evaluate(CONFIG, london("2026-11-30T07:30"), facts(
        UK=freshness.SourceFacts("UK", "ingest_orders", uk), IT=freshness.SourceFacts("IT", "ingest_orders", it)),
        {e.asset: rebuilt for e in CONFIG.exports})
    export = report.export(CONFIG.exports[0].asset)
    assert export.data_through == DAY - dt.timedelta(days=1) and export.rebuilt_at == rebuilt
    assert not export.current and "synced at 2026-11-30 07:10" in export.reason


def test_a_late_market_is_the_reason_and_the_export_names_it() -> None:
    report = freshness.evaluate(CONFIG, london("2026-11-30T07:30"), facts(
        JP=freshness.SourceFacts("JP", "ingest_orders", (), (), {DAY: None})),
        {e.asset: london("2026-11-30T07:00") for e in CONFIG.exports})
    assert [e.late_sources for e in report.exports] == [("JP ingest_orders",)] * len(CONFIG.exports)
    assert [e.reason for e in report.exports] == ["waits for JP ingest_orders"] * len(CONFIG.exports)
    assert [e.data_through for e in report.exports] == [None] * len(CONFIG.exports), "JP holds no file"
    assert report.reasons() == ["JP ingest_orders: file for 2026-11-29 not arrived (due 06:30)"]
    assert report.headline() == "NOT CURRENT: JP ingest_orders: file for 2026-11-29 not arrived (due 06:30)"
    never = freshness.evaluate(CONFIG, london("2026-11-30T07:30"), facts(
        JP=freshness.SourceFacts("JP", "ingest_orders", (), (), {DAY: None})), {})
    assert [(e.reason, e.late_sources) for e in never.exports] == [("never rebuilt", ("JP ingest_orders",))] * 2
    assert never.reasons() == ["JP ingest_orders: file for 2026-11-29 not arrived (due 06:30)"]


def test_the_json_report_says_what_the_report_says() -> None:
    """What `scripts/status.py --json` prints: plain JSON (dates as ISO text), the same verdicts and reasons."""
    report = freshness.evaluate(CONFIG, london("2026-11-30T07:30"), facts(
        JP=freshness.SourceFacts("JP", "ingest_orders", OLD, (), {DAY: None})),
        {CONFIG.exports[0].asset: london("2026-11-30T07:00")})
    document = json.loads(json.dumps(report.to_json()))
    assert document["current"] is False and document["at"] == "2026-11-30T07:30:00+00:00"
    assert document["headline"] == report.headline() and document["reasons"] == report.reasons()
    jp = next(s for s in document["sources"] if s["market"] == "JP")
    assert jp == {"market": "JP", "dataset": "ingest_orders", "expected_date": "2026-11-29",
                  "due_at": "2026-11-30T06:30:00+00:00", "next_date": "2026-11-29",
                  "next_due_at": "2026-11-30T06:30:00+00:00", "data_through": "2026-11-28",
                  "synced_at": "2026-11-29T05:00:00+00:00", "current": False, "reason": "not arrived", "detail": "",
                  "why": "file for 2026-11-29 not arrived (due 06:30)"}
    uk = next(s for s in document["sources"] if s["market"] == "UK")
    assert uk["current"] is True and uk["why"] == "" and uk["reason"] is None
    first, second = document["exports"]
    assert first == {"asset": CONFIG.exports[0].asset, "name": CONFIG.exports[0].name,
                     "rebuilt_at": "2026-11-30T07:00:00+00:00", "data_through": "2026-11-28", "current": False,
                     "late_sources": ["JP ingest_orders"], "reason": "waits for JP ingest_orders"}
    assert (second["rebuilt_at"], second["data_through"], second["reason"]) == (None, None, "never rebuilt")


# --- the deadline ---------------------------------------------------------------------------------


@pytest.mark.parametrize("deadline", ["07:30", "05:00", "23:45", "00:15"])
def test_the_deadline_and_the_lookback_to_the_midnight_before_it(tmp_path, deadline) -> None:
    config = config_with(tmp_path, 'freshness_deadline: "07:30"', f'freshness_deadline: "{deadline}"')
    cut = dt.time.fromisoformat(deadline)
    for day in (dt.date(2026, 11, 30), dt.date(2026, 3, 29), dt.date(2026, 10, 25)):  # clock changes included
        at = freshness.deadline_on(config, day)
        assert at.astimezone(LONDON).replace(tzinfo=None) == dt.datetime.combine(day, cut)
        assert (at - freshness.freshness_lookback(config)).astimezone(LONDON).replace(tzinfo=None) == \
            dt.datetime.combine(day, dt.time(0, 0))
        assert freshness.past_deadline(config, at) and freshness.past_deadline(config, at + dt.timedelta(minutes=1))
        assert not freshness.past_deadline(config, at - dt.timedelta(seconds=1))


def test_the_deadline_is_london_time_whatever_the_clock_of_the_caller() -> None:
    # 07:30 BST on 1 July is 06:30 UTC.
    assert not freshness.past_deadline(CONFIG, dt.datetime(2026, 7, 1, 6, 29, tzinfo=dt.timezone.utc))
    assert freshness.past_deadline(CONFIG, dt.datetime(2026, 7, 1, 6, 30, tzinfo=dt.timezone.utc))
    tokyo = ZoneInfo("Asia/Tokyo")  # 07:31 London in winter is 16:31 in Tokyo, the same day
    assert freshness.past_deadline(CONFIG, dt.datetime(2026, 11, 30, 16, 31, tzinfo=tokyo))
    assert not freshness.past_deadline(CONFIG, dt.datetime(2026, 11, 30, 16, 29, tzinfo=tokyo))


# --- reading the facts from the files ----------------------------------------------------------------


def _touch(path: Path, at: dt.datetime) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"PAR1")  # names and times are all that is read
    os.utime(path, (at.timestamp(), at.timestamp()))


def test_synced_files_are_the_dated_parquet_files_with_their_times(tmp_path) -> None:
    folder = tmp_path / "DE" / "ingest_orders"
    when = dt.datetime(2026, 11, 30, 5, 0, tzinfo=dt.timezone.utc)
    _touch(folder / "2026" / "ingest_orders_20261129.parquet", when)
    _touch(folder / "2026" / "ingest_orders_20261128.parquet", when - dt.timedelta(days=1))
    _touch(folder / "2026" / "ingest_orders_20261399.parquet", when)  # no such date
    _touch(folder / "2026" / "ingest_orders.parquet", when)  # no date
    _touch(folder / "2026" / "ingest_orders_20261127.csv", when)  # not Parquet
    _touch(folder / "ingest_orders_20261126.parquet", when)  # not in a year folder
    found = sorted(freshness.synced_files(tmp_path, "DE", "ingest_orders"), key=lambda f: f.file_date)
    assert found == [freshness.SyncedFile(dt.date(2026, 11, 28), when - dt.timedelta(days=1)),
                     freshness.SyncedFile(DAY, when)]
    assert freshness.synced_files(tmp_path, "UK", "ingest_orders") == ()


def test_sync_problems_are_read_from_the_state_file_and_a_bad_one_is_ignored(tmp_path) -> None:
    state = tmp_path / "_state" / "IT"
    state.mkdir(parents=True)
    path = state / "ingest_orders.last_sync.json"
    assert freshness.sync_problems(tmp_path, "IT", "ingest_orders") == ()
    path.write_text(json.dumps({"version": 1, "error": "TransientError: Azure unreachable", "files": {
        "a": {"file_date": "2026-11-29", "problem": "rejected", "message": "line 3: bad"},
        "b": {"file_date": "2026-11-28", "problem": "failed", "message": "timed out"},
        "c": {"file_date": "2026-11-27", "problem": "failed"},
        "d": {"problem": "rejected", "message": "no date"},
        "e": {"file_date": "29/11/2026", "problem": "rejected", "message": "bad date"},
        "f": {"file_date": None, "problem": "rejected", "message": "null date"},
    }}), encoding="utf-8")
    assert freshness.sync_problems(tmp_path, "IT", "ingest_orders") == (
        freshness.SyncProblem(freshness.SYNC_FAILED, "TransientError: Azure unreachable"),
        freshness.SyncProblem(freshness.REJECTED, "line 3: bad", DAY),
        freshness.SyncProblem(freshness.SYNC_FAILED, "timed out", dt.date(2026, 11, 28)),
        freshness.SyncProblem(freshness.SYNC_FAILED, "", dt.date(2026, 11, 27)),
    )
    path.write_text(json.dumps({"version": 1, "error": None, "files": None}), encoding="utf-8")
    assert freshness.sync_problems(tmp_path, "IT", "ingest_orders") == ()
    path.write_text(json.dumps({"version": 1, "error": "", "files": {}}), encoding="utf-8")
    assert freshness.sync_problems(tmp_path, "IT", "ingest_orders") == ()
    path.write_text('{"version": 1, "files": {', encoding="utf-8")  # cut short
    assert freshness.sync_problems(tmp_path, "IT", "ingest_orders") == ()


def test_the_source_is_asked_only_about_expected_files_not_synced_and_its_failure_hides_nothing(tmp_path) -> None:
    at = london("2026-11-30T06:00")  # before the due time: expected 28th, next 29th
    when = dt.datetime(2026, 11, 29, 5, 0, tzinfo=dt.timezone.utc)
    _touch(tmp_path / "UK" / "ingest_orders" / "2026" / "ingest_orders_20261128.parquet", when)
    _touch(tmp_path / "DE" / "ingest_orders" / "2026" / "ingest_orders_20261129.parquet", when)
    asked: list[str] = []

    def lookup(name: str) -> dt.datetime | None:
        asked.append(name)
        if name.startswith("JP"):
            raise ConnectionError("source unreachable")
        return when if name.endswith("_20261128.csv") else None

    found = freshness.gather_facts(CONFIG, at, tmp_path, lookup)
    blobs = {name.rsplit("_", 1)[-1]: [n.split("/")[0] for n in asked if n.endswith(name.rsplit("_", 1)[-1])]
             for name in asked}
    assert sorted(blobs["20261128.csv"]) == ["IT", "JP"], asked  # UK and DE hold it already
    assert sorted(blobs["20261129.csv"]) == ["IT", "JP", "UK"], asked  # DE holds it already
    assert len(asked) == 5, asked
    assert found[("IT", "ingest_orders")].landed == {dt.date(2026, 11, 28): when, DAY: None}
    assert found[("JP", "ingest_orders")].landed == {}, "an unreachable source says nothing"
    assert found[("UK", "ingest_orders")].landed == {DAY: None}
    assert found[("DE", "ingest_orders")].synced == (freshness.SyncedFile(DAY, when),)
    assert freshness.gather_facts(CONFIG, at, tmp_path, None)[("IT", "ingest_orders")].landed == {}


# --- exports: the edges of each verdict ------------------------------------------------------------


def test_an_export_never_rebuilt_is_not_current_whatever_its_sources() -> None:
    report = freshness.evaluate(CONFIG, london("2026-11-30T07:30"), facts(), {})
    assert [(e.current, e.reason, e.late_sources) for e in report.exports] == [(False, "never rebuilt", ())] * len(
        CONFIG.exports)
    assert report.current is False


def test_an_export_rebuilt_in_the_very_second_of_the_newest_sync_is_current() -> None:
    synced_at = london("2026-11-30T05:00")
    report = freshness.evaluate(CONFIG, london("2026-11-30T07:30"), facts(), {e.asset: synced_at for e in CONFIG.exports})
    assert [e.current for e in report.exports] == [True] * len(CONFIG.exports)


def test_two_late_markets_are_both_named() -> None:
    late = freshness.SourceFacts("JP", "ingest_orders", (), (), {DAY: None})
    report = freshness.evaluate(CONFIG, london("2026-11-30T07:30"), facts(
        JP=late, DE=freshness.SourceFacts("DE", "ingest_orders", (), (), {DAY: None})),
        {e.asset: london("2026-11-30T07:00") for e in CONFIG.exports})
    assert [e.reason for e in report.exports] == ["waits for DE ingest_orders, JP ingest_orders"] * len(CONFIG.exports)


def test_a_summer_rebuild_and_sync_are_named_in_london_summer_time() -> None:
    day = dt.date(2026, 7, 14)
    synced_at = dt.datetime(2026, 7, 15, 4, 0, tzinfo=dt.timezone.utc)  # 05:00 in London (BST)
    good = (freshness.SyncedFile(day, synced_at),)
    found = {key: freshness.SourceFacts(*key, synced=good) for key in KEYS}
    rebuilt = dt.datetime(2026, 7, 15, 3, 30, tzinfo=dt.timezone.utc)
    report = freshness.evaluate(CONFIG, london("2026-07-15T07:30"), found, {e.asset: rebuilt for e in CONFIG.exports})
    assert report.exports[0].reason == ("not rebuilt since the newest file was synced at 2026-07-15 05:00 "
                                         "(last rebuilt 2026-07-15 04:30)")


def test_the_facts_of_each_source_name_its_market_and_dataset(tmp_path) -> None:
    found = freshness.gather_facts(CONFIG, london("2026-11-30T07:30"), tmp_path / "raw", None)
    assert {(f.market, f.dataset) for f in found.values()} == set(found) == set(KEYS)
    assert all((f.market, f.dataset) == key for key, f in found.items())


def test_a_naive_time_is_refused_saying_why() -> None:
    with pytest.raises(ValueError) as caught:
        freshness.evaluate(CONFIG, dt.datetime(2026, 11, 30, 7, 30), facts(), {})
    assert str(caught.value) == "evaluate() needs an aware datetime"
