"""Is the data current? The pipeline's answer at a London time (contract section 9).

    python scripts/status.py [--at YYYY-MM-DDTHH:MM] [--json] [--dagster-home DIR]

First line: `CURRENT`, or `NOT CURRENT: ` and what is late and why. Then, per market and daily
dataset, the newest file date synced (data through) and the date expected; per Tableau export,
when it was rebuilt and the data-through date it holds. Exit 0 when current, 1 when not, 78 for
bad arguments or config. The same rules drive the UI's checks, the 07:30 alert and Tableau's
data quality warning (pipeline_common/freshness.py).

`--at` in the past evaluates the files present now at that time (the sync's state and the exports'
rebuilds as they are now, not as they were then): a file synced since counts as if it had been
there. The report says so under "Evaluated at".
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import NoReturn
from zoneinfo import ZoneInfo

REPO_ROOT = Path(__file__).resolve().parents[1]
EXIT_CURRENT, EXIT_NOT_CURRENT, EXIT_CONFIG = 0, 1, 78


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # bad arguments are a configuration error (78)
        self.print_usage(sys.stderr)
        print(f"status.py: error: {message}", file=sys.stderr)
        print(json.dumps({"error": {"code": EXIT_CONFIG, "message": f"status.py: {message}"}}))
        sys.exit(EXIT_CONFIG)


def _london_minute(text: str) -> dt.datetime:
    try:
        value = dt.datetime.strptime(text, "%Y-%m-%dT%H:%M")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DDTHH:MM (London time), got {text!r}") from None
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = _Parser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--at", type=_london_minute, default=None, help="evaluate at this London time (default: now)")
    parser.add_argument("--json", action="store_true", help="print the same as one JSON object")
    parser.add_argument("--dagster-home", type=Path, default=None, help="default: $DAGSTER_HOME, else dagster_home/")
    return parser.parse_args(argv)


def _date(value: dt.date | None) -> str:
    return value.isoformat() if value else "none"


def _time(value: dt.datetime | None, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M") if value else "never"


def past_note(at: dt.datetime, now: dt.datetime) -> str | None:
    """What a report for a past time really shows: today's files judged at that time."""
    if at >= now.replace(second=0, microsecond=0):
        return None
    return ("Note: a past time is evaluated against the files present now (synced data and export rebuilds as "
            f"of {now:%Y-%m-%d %H:%M}), not as they were then: anything synced or rebuilt since counts as if it "
            "had been there.")


def render(report, zone: ZoneInfo, note: str | None = None) -> str:
    """The human-readable report: plain ASCII layout, so any Windows console shows it."""
    lines = [report.headline(), "", f"Evaluated at {report.at.astimezone(zone):%Y-%m-%d %H:%M %Z}", ""]
    if note:
        lines[-1:-1] = [note]
    lines.append(f"  {'market dataset':<24} {'data through':<13} {'expected':<11} {'due':<17} status")
    for s in report.sources:
        state = "current" if s.current else f"LATE: {s.reason}"
        if s.next_pending:
            state += f" (file for {s.next_date} due {s.next_due_at.astimezone(zone):%H:%M})"
        lines.append(
            f"  {s.label:<24} {_date(s.data_through):<13} {_date(s.expected_date):<11} "
            f"{_time(s.due_at, zone):<17} {state}"
        )
    lines += ["", f"  {'export':<24} {'rebuilt at':<17} {'data through':<13} status"]
    for e in report.exports:
        state = "current" if e.current else f"NOT CURRENT: {e.reason}"
        lines.append(f"  {e.name:<24} {_time(e.rebuilt_at, zone):<17} {_date(e.data_through):<13} {state}")
    return "\n".join(lines)


def _tableau_warnings_line() -> str | None:
    """What the deadline sensor found out about Tableau's data quality warnings (licence), if anything."""
    try:
        from pipeline_common.tableau.session import tableau_settings
        from pipeline_common.tableau.warnings import availability_text

        return availability_text(tableau_settings())
    except Exception:  # a half-set Tableau configuration is the exporter's and the doctor's to report
        return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from pipeline_common.dagster_home import dagster_home_step

    home = args.dagster_home or (Path(os.environ["DAGSTER_HOME"]) if os.environ.get("DAGSTER_HOME") else REPO_ROOT / "dagster_home")
    home = home.resolve()
    with dagster_home_step(home):  # a file in its place, no permission, a full disk: 74 naming the home
        home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    # Rejection messages may quote non-ASCII cells: never let a cp1252 console crash the report.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")

    import dagster as dg

    from orchestration.instance_freshness import freshness_report
    from pipeline_common.config import ConfigError, load_pipeline_config

    try:
        config = load_pipeline_config()
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        print(json.dumps({"error": {"code": EXIT_CONFIG, "message": str(exc)}}))
        return EXIT_CONFIG
    zone = ZoneInfo(config.timezone)
    now = dt.datetime.now(zone)
    at = args.at.replace(tzinfo=zone) if args.at else now
    note = past_note(at, now)
    # The instance creates and migrates its SQLite storage in the home: full, damaged, read-only: 74 naming it.
    with dagster_home_step(home), dg.DagsterInstance.get() as instance:
        report = freshness_report(instance, config, at)
    warnings_line = _tableau_warnings_line()
    if args.json:
        print(json.dumps({**report.to_json(), **({"note": note} if note else {}),
                          "tableau_warnings": warnings_line}, ensure_ascii=True))
    else:
        print(render(report, zone, note) + (f"\n\n{warnings_line}" if warnings_line else ""))
    return EXIT_CURRENT if report.current else EXIT_NOT_CURRENT


if __name__ == "__main__":
    from pipeline_common.script_support import run_main  # any OSError, a full Dagster home, bad config: 74/78

    sys.exit(run_main(main))
