"""A simulated working week (five days) on a real Dagster instance, driven by a fake London clock.

Every few simulated minutes between 05:00 and 10:30 the real arrival sensors, the real 07:15 morning
schedule and the real 07:30 deadline alert are evaluated; the runs they request execute in process
on the real sync assets (the legacy sync script through Pipes, on a real landing folder) with the
real freshness checks. The dbt models and Tableau extracts stand in as plain assets of the same names:
this test is about when things run and what is said, not about what the warehouse computes.

Trouble injected, one kind a day: the PC is off 06:50-07:40 on the first day, DE's file arrives at 09:10 on the
second, IT's file is bad on the third (fixed at 09:00), and the daemon dies mid-run on the fourth; the fifth is
a plain day. Each day follows another kind of trouble, so nothing may carry over from the day before. Per day: when every
file arrived by its due time, every export is current at 07:30 and nothing is alerted; otherwise exactly
one alert on the freshness route, before 07:35, names the market and the reason, and one "current
again" follows the fix.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from dagster._core.events import EngineEventData
from dagster._core.test_utils import freeze_time

from orchestration import clock
from orchestration.alerts.freshness_alerts import build_freshness_sensor
from orchestration.alerts.slack import SlackAlerts
from orchestration.instance_freshness import freshness_report
from orchestration.exports.checks import build_export_check
from orchestration.ingestion.assets import build_sync_assets
from orchestration.maintenance.recovery import fail_interrupted_runs
from orchestration.schedules.scheduled_jobs import build_job, build_schedule
from orchestration.resources import shared_resources
from orchestration.ingestion.arrival import build_orders_arrival_sensor
from pipeline_common.config import load_pipeline_config
from tests.plugins.azurite import LandingTree, orders_csv

pytestmark = [pytest.mark.timeout(600), pytest.mark.scenario]  # a week of real runs (docs/testing.md tiers)

LONDON = ZoneInfo("Europe/London")
CONFIG = load_pipeline_config()
MARKETS = ["UK", "DE", "IT", "JP"]
ARRIVES = {"UK": "05:00", "DE": "05:20", "IT": "05:40", "JP": "06:00"}
MORNING_JOB = "uk_morning_refresh_with_backup"


def _stand_ins() -> list[dg.AssetsDefinition]:
    orders = [dg.AssetKey(CONFIG.asset_name(m, "ingest_orders")) for m in MARKETS]
    assets = []
    for export in CONFIG.exports:
        @dg.asset(name=export.asset, deps=orders)
        def _export() -> None:
            """Stands in for the dbt models and the Tableau extract built on the orders."""

        assets.append(_export)

    @dg.asset(name="warehouse_backup", deps=[a.key for a in assets])
    def warehouse_backup() -> None:
        """Stands in for the backup (the morning job's last step)."""

    return [*assets, warehouse_backup]


def _market_csv(market: str, day: dt.date) -> str:
    currency = {"UK": "GBP", "DE": "EUR", "IT": "EUR", "JP": "JPY"}[market]
    return orders_csv(day, 3).replace(",GBP,", f",{currency},")


@dataclass
class Week:
    instance: dg.DagsterInstance
    landing: LandingTree
    slack: object
    now: dt.datetime = dt.datetime(2000, 1, 1, tzinfo=LONDON)
    cursors: dict[str, str | None] = field(default_factory=dict)
    said: list[tuple[dt.datetime, dict]] = field(default_factory=list)

    def __post_init__(self) -> None:
        entries = [CONFIG.dataset(m, "ingest_orders") for m in MARKETS]
        morning = next(j for j in CONFIG.jobs.scheduled if j.name == MORNING_JOB)
        self.morning_job = build_job(CONFIG, morning)
        self.schedule = build_schedule(CONFIG, morning, self.morning_job)
        self.arrival = [build_orders_arrival_sensor(CONFIG, m, dg.DefaultSensorStatus.RUNNING) for m in MARKETS]
        [self.alert] = build_freshness_sensor(CONFIG, dg.DefaultSensorStatus.RUNNING)
        self.defs = dg.Definitions(
            assets=[build_sync_assets(CONFIG, entries), *_stand_ins()],
            asset_checks=[
                *(build_export_check(CONFIG, x) for x in CONFIG.exports),
            ],
            jobs=[self.morning_job],
            schedules=[self.schedule],
            sensors=[*self.arrival, self.alert],
            resources=shared_resources(),
        )
        self.slack_alerts = SlackAlerts(routes=dict(CONFIG.alerts.routes), max_attempts=1)

    def run(self, job_name: str, tags: dict[str, str]) -> dg.DagsterRunStatus:
        job = self.defs.resolve_job_def(job_name)
        result = job.execute_in_process(instance=self.instance, tags=tags, raise_on_error=False)
        return self.instance.get_run_by_id(result.run_id).status

    def sensor_tick(self, sensor: dg.SensorDefinition, crash: bool = False) -> None:
        context = dg.build_sensor_context(
            instance=self.instance, cursor=self.cursors.get(sensor.name), definitions=self.defs,
            resources={"slack_alerts": self.slack_alerts},
        )
        data = sensor.evaluate_tick(context)
        self.cursors[sensor.name] = data.cursor if data.cursor is not None else context.cursor
        for request in data.run_requests or []:
            if crash:
                self.crashed_run(sensor.job_name, request.tags)
            else:
                self.run(sensor.job_name, request.tags)

    def crashed_run(self, job_name: str, tags: dict[str, str]) -> None:
        """The run starts, then the daemon and its worker die mid-run: the run is left STARTED."""
        job = self.defs.resolve_job_def(job_name)
        run = self.instance.create_run_for_job(job, tags=tags)
        self.instance.handle_run_event(run.run_id, dg.DagsterEvent(event_type_value="PIPELINE_START", job_name=job_name))
        worker = subprocess.Popen([sys.executable, "-c", "pass"])
        worker.wait()
        self.instance.report_engine_event(f"Started process for run (pid: {worker.pid}).", run, EngineEventData.in_process(worker.pid))

    def schedule_tick(self, scheduled: dt.datetime) -> None:
        with freeze_time(self.now):  # the late-tick rule reads Dagster's clock
            data = self.schedule.evaluate_tick(
                dg.build_schedule_context(instance=self.instance, scheduled_execution_time=scheduled)
            )
        for request in data.run_requests or []:
            self.run(MORNING_JOB, {**self.morning_job.tags, **request.tags})

    def tick(self, crash_market: str | None = None) -> None:
        for sensor, market in zip(self.arrival, MARKETS):
            self.sensor_tick(sensor, crash=market == crash_market)
        before = len(self.slack.requests)
        self.sensor_tick(self.alert)
        self.said += [(self.now, r.body) for r in self.slack.requests[before:]]


def _times(day: dt.date) -> list[dt.datetime]:
    # Every 15 minutes, plus the moments that matter: the 07:15 schedule, the 07:30 deadline and
    # 07:34 (an alert must be out before 07:35), the late DE file (09:10) and the IT fix (09:00).
    minutes = sorted({*range(5 * 60, 10 * 60 + 1, 15), 6 * 60 + 20, 7 * 60 + 34, 9 * 60 + 10})
    return [dt.datetime.combine(day, dt.time(m // 60, m % 60), tzinfo=LONDON) for m in minutes]


def _hm(text: str, day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(text), tzinfo=LONDON)


def test_a_week_with_trouble(tmp_path: Path, isolated_env: Path, slack_server, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SLACK_WEBHOOK_LOGISTICS", slack_server.webhook_url("logistics"))
    monkeypatch.setenv("SLACK_WEBHOOK_TECHNICAL", slack_server.webhook_url("technical"))
    landing = LandingTree(isolated_env / "landing")
    monkeypatch.setenv("LANDING_DIR", str(landing.root))
    today = dt.datetime.now(LONDON).date()
    days = [today - dt.timedelta(days=n) for n in range(5, 0, -1)]  # inside the sync's 30-day window
    trouble = {0: "pc_off", 1: "de_late", 2: "it_bad", 3: "daemon_killed"}  # day 4: plain
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.DagsterInstance.local_temp(str(home)) as instance:
        week = Week(instance, landing, slack_server)
        monkeypatch.setattr(clock, "_source", lambda: week.now)
        outcome: dict[int, dict] = {}
        for index, day in enumerate(days):
            kind = trouble.get(index)
            expected = day - dt.timedelta(days=1)
            arrivals = {m: _hm("09:10" if (kind == "de_late" and m == "DE") else ARRIVES[m], day) for m in MARKETS}
            off = {"pc_off": ("06:50", "07:40"), "daemon_killed": ("06:05", "06:20")}.get(kind)
            landed: set[str] = set()
            fixed = False
            was_off = False
            report_0730 = None
            for now in _times(day) + ([_hm("07:40", day)] if kind == "pc_off" else []):
                week.now = now
                for market, at in arrivals.items():
                    if market not in landed and at <= now:
                        text = _market_csv(market, expected)
                        if kind == "it_bad" and market == "IT":
                            text = text.replace(",3,", ",three,", 1)  # a quantity that is not a number
                        landing.write(f"{market}/raw_data/DWH/Oracle/ingest_orders/{expected:%Y}/ingest_orders_{expected:%Y%m%d}.csv", text)
                        landed.add(market)
                if kind == "it_bad" and not fixed and now >= _hm("09:00", day):
                    landing.write(  # the corrected file is re-delivered
                        f"IT/raw_data/DWH/Oracle/ingest_orders/{expected:%Y}/ingest_orders_{expected:%Y%m%d}.csv",
                        _market_csv("IT", expected),
                    )
                    fixed = True
                if now == _hm("07:30", day):
                    report_0730 = freshness_report(instance, CONFIG, now)
                if off and _hm(off[0], day) <= now < _hm(off[1], day):
                    was_off = True
                    continue
                if was_off:  # back on: the supervisor's start-up repair, then the missed ticks
                    fail_interrupted_runs(instance)
                    was_off = False
                    if now > _hm("07:15", day) and kind == "pc_off":
                        week.schedule_tick(_hm("07:15", day))
                if now == _hm("07:15", day):
                    week.schedule_tick(now)
                week.tick(crash_market="JP" if kind == "daemon_killed" and now == _hm("06:00", day) else None)
            said = [(t, body) for t, body in week.said if t.date() == day]
            outcome[index] = {"kind": kind, "current_0730": report_0730.current, "headline": report_0730.headline(), "said": said}

        for index, result in outcome.items():
            kind, said = result["kind"], result["said"]
            expected = days[index] - dt.timedelta(days=1)
            if kind in (None, "pc_off", "daemon_killed"):
                assert result["current_0730"], (index, kind, result["headline"])
                assert said == [], (index, kind, said)
                continue
            market, reason = {"de_late": ("DE", "not arrived"), "it_bad": ("IT", "rejected")}[kind]
            assert not result["current_0730"]
            assert [body["text"] for _, body in said] == [
                f"[ERROR] Data not current at 07:30: {market} ingest_orders", "[OK] Data current again",
            ], (index, said)
            (alerted_at, alert), (recovered_at, _) = said
            assert _hm("07:30", days[index]) <= alerted_at < _hm("07:35", days[index])
            assert f"{market} ingest_orders: file for {expected} {reason} (due 06:30)" in json.dumps(alert)
            assert recovered_at >= _hm("09:00", days[index])
            assert all(other not in alert["text"] for other in MARKETS if other != market)
        crashed = instance.get_runs(filters=dg.RunsFilter(tags={"market": "JP"}, statuses=[dg.DagsterRunStatus.FAILURE]))
        assert len(crashed) == 1, "the run that died was failed at restart, then its file was run again"
