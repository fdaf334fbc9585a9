"""Run a pipeline job once, in this process, and print what it produced (the demo's last step).

The run is created the way the UI creates one: against the code location of workspace.yaml
(same location name as the served UI), with the job's tags and its snapshot, so it is listed
under the job (Jobs > job > Runs) and on the Overview timeline, and can be re-executed from
there. It is recorded in the project's Dagster home, the one scripts/start.sh, the UI and
scripts/status.py use: $DAGSTER_HOME when set, else dagster_home/ in the repo (the first line says
which); `--throwaway-instance` runs it in a temporary instance instead, deleted at the end (the run
is then in no UI and status.py does not see it). The console shows one line per step; the run's full log
(every script line, once) goes to logs/run_flow.log. At the end: the extracts, the newest
executive rows, and the next three commands.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

REPO_ROOT = Path(__file__).resolve().parents[1]

from pipeline_common.script_support import ArgumentParser, iso_date  # noqa: E402

DEFAULT_JOB = "daily_sales_flow_job"
EXECUTIVE_TABLE = "qi_executive_daily_sales"
WORKSPACE_FILE = REPO_ROOT / "workspace.yaml"
DEFAULT_LOG_FILE = REPO_ROOT / "logs" / "run_flow.log"
MAX_ASSETS_SHOWN = 6  # per step line
FAILURE_DETAIL_LINES = 5  # of a failed step's message, under its line
IS_WINDOWS = os.name == "nt"


def code_location(workspace: Path = WORKSPACE_FILE) -> tuple[str, str]:
    """(module, location name) of the one python_module entry in workspace.yaml."""
    import yaml

    [entry] = yaml.safe_load(workspace.read_text(encoding="utf-8"))["load_from"]
    module = entry["python_module"]
    return module["module_name"], module["location_name"]


def project_home() -> Path:
    """The Dagster home of scripts/start.sh, start_dagster.bat and status.py: $DAGSTER_HOME, else dagster_home/."""
    configured = os.environ.get("DAGSTER_HOME")
    return Path(configured).resolve() if configured else REPO_ROOT / "dagster_home"


def _instance(home: Path | None):
    import dagster as dg

    if home is None:
        return dg.DagsterInstance.ephemeral()
    from pipeline_common.dagster_home import dagster_home_step
    from scripts.supervisor import prepare_home

    with dagster_home_step(home):  # a full, damaged or unwritable home: exit 74 naming it
        home.mkdir(parents=True, exist_ok=True)
        prepare_home(home)
        os.environ["DAGSTER_HOME"] = str(home)  # the instance below, and the steps' subprocesses
        instance = dg.DagsterInstance.get()
        instance.get_runs_count()  # the storage is created and migrated here, inside the step
        return instance


def _sync_ops_config(job, as_of: str) -> dict:
    """Run config giving the job's sync step the as_of (a missed day, a benchmark's fixed date)."""
    from orchestration.ingestion.assets import SYNC_STEP

    if SYNC_STEP not in job.graph.node_dict:
        return {}
    return {SYNC_STEP: {"config": {"as_of": as_of}}}


def _quiet_preview_warnings() -> None:
    """Dagster flags the preview and beta APIs the code location uses at every import: nothing a
    demo user can act on (the UI shows the same APIs without the noise)."""
    import dagster as dg

    for category in (dg.PreviewWarning, dg.BetaWarning):
        warnings.filterwarnings("ignore", category=category)
    os.environ["PYTHONWARNINGS"] = "ignore"  # and in the step subprocesses the run starts


@contextlib.contextmanager
def output_to(log_file: Path | None) -> Iterator[TextIO]:
    """Send this process's stdout/stderr, and so every subprocess's (the scripts run through Pipes,
    dbt), to log_file; yield the terminal for the one-line-per-step progress. None: no redirect."""
    if log_file is None:
        yield sys.stdout
        return
    log_file.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    terminal = os.fdopen(os.dup(saved[1]), "w", encoding=sys.stdout.encoding or "utf-8", errors="replace")
    try:
        with log_file.open("w", encoding="utf-8") as log:
            for fd in (1, 2):
                os.dup2(log.fileno(), fd)
            try:
                yield terminal
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                for fd, original in saved.items():
                    os.dup2(original, fd)
    finally:
        terminal.close()
        for original in saved.values():
            os.close(original)


class StepPrinter:
    """Prints one line per finished asset step from the run's events as the run yields them; check
    results are counted into one closing line, and a failed check is named at once. Nothing is read
    back from the instance: the events come straight from the executing run."""

    def __init__(self, out: TextIO):
        self._out: TextIO | None = out
        self._materialized: dict[str, list[str]] = {}  # step -> the assets it materialized
        self._checks_passed = 0

    def show(self, event) -> None:
        line = self._line(event)
        if line:
            self._write(line)

    def finish(self) -> None:
        if self._checks_passed:
            plural = "" if self._checks_passed == 1 else "s"
            self._write(f"  ok      {self._checks_passed} asset check{plural} passed")

    def _write(self, line: str) -> None:
        # The run is executed by the loop that feeds this printer: a console that went away (a closed
        # pipe, a closed window) must stop the printing, never the run.
        if self._out is None:
            return
        try:
            self._out.write(line + "\n")
            self._out.flush()
        except (OSError, ValueError):
            self._out = None

    def _line(self, event) -> str | None:
        if event.is_step_materialization:
            self._materialized.setdefault(event.step_key, []).append(event.asset_key.to_user_string())
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if evaluation.passed:
                self._checks_passed += 1
            else:
                return f"  CHECK   {evaluation.asset_key.to_user_string()}: {evaluation.check_name} failed"
        elif event.is_step_success:
            assets = self._materialized.get(event.step_key)
            if not assets:
                return None  # a check step: counted above
            line = f"  ok      {event.step_key}  ({event.event_specific_data.duration_ms / 1000:.1f} s)"
            if assets != [event.step_key]:  # a step making several assets (the syncs, dbt): name them
                shown = ", ".join(assets[:MAX_ASSETS_SHOWN])
                more = len(assets) - MAX_ASSETS_SHOWN
                line += f": {shown}" + (f" and {more} more" if more > 0 else "")
            return line
        elif event.is_step_failure:
            return f"  FAILED  {event.step_key}: {failure_text(event.event_specific_data.error)}"
        elif event.is_step_up_for_retry:
            return f"  retry   {event.step_key} (will run again with backoff)"
        return None


def failure_text(error) -> str:
    """A step's error (Dagster's SerializableErrorInfo) for the console: without the exception's class,
    and with the first lines of its detail (which dataset, file, line and column), each cut at 300."""
    head, separator, rest = error.message.strip().partition(": ")
    if separator and head.rsplit(".", 1)[-1] == error.cls_name:  # "dagster....Failure: text" -> "text"
        message = rest
    else:
        message = error.message.strip()
    lines = [line.rstrip()[:300] for line in message.splitlines() if line.strip()]
    if not lines:
        return "(no message)"
    shown = lines[:1 + FAILURE_DETAIL_LINES]
    if len(lines) > len(shown):
        shown.append(f"  ... {len(lines) - len(shown)} more line(s) in the run's log")
    return "\n          ".join(shown)


def launch_and_execute(instance, job_name: str, run_config: dict, out: TextIO, log_file: Path | None):
    """Create the run as the UI does (remote origin, job tags, snapshot) and execute it here."""
    from dagster._core.execution.api import execute_run_iterator
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    module, location_name = code_location()
    origin = InProcessCodeLocationOrigin(
        loadable_target_origin=LoadableTargetOrigin(
            executable_path=sys.executable, module_name=module, working_directory=str(REPO_ROOT)
        ),
        location_name=location_name,
    )
    with origin.create_location(instance) as location:
        [repository] = location.get_repositories().values()
        remote_job = repository.get_full_job(job_name)
        recon_job = location.get_reconstructable_job(repository.name, job_name)
        run = instance.create_run_for_job(
            job_def=recon_job.get_definition(),
            run_config=run_config,
            tags=dict(remote_job.tags),
            remote_job_origin=remote_job.get_remote_origin(),
            job_code_origin=remote_job.get_python_origin(),
        )
        out.write(f"run {run.run_id} of {job_name} (location {location_name})"
                  + (f"; full log: {_shown(log_file)}" if log_file else "") + "\n")
        out.flush()
        printer = StepPrinter(out)
        for event in execute_run_iterator(recon_job, run, instance):
            printer.show(event)
        printer.finish()
    return instance.get_run_by_id(run.run_id)


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def print_exports(instance, run_id: str) -> None:
    from dagster import DagsterEventType

    from pipeline_common.config import load_pipeline_config

    exports = {export.asset: export for export in load_pipeline_config().exports}
    published_any = False
    lines = []
    for record in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
        materialization = record.dagster_event.event_specific_data.materialization
        key = materialization.asset_key.to_user_string()
        if key not in exports:
            continue
        metadata = {name: value.value for name, value in materialization.metadata.items()}
        rows = ", ".join(f"{value:,} rows of {name.removeprefix('rows_')}"
                         for name, value in metadata.items() if name.startswith("rows_"))
        published_any |= bool(metadata.get("published"))
        lines.append(f"  {exports[key].name}: {metadata.get('hyper_path')}  ({rows})")
    print("\nTableau extracts" + ("" if published_any else " (built and backed up; publishing skipped: "
                                  "TABLEAU_* not set)") + ":")
    print("\n".join(lines) if lines else "  (none built)")


def print_executive_rows(limit: int) -> None:
    if limit <= 0:
        return
    import duckdb

    from pipeline_common.settings import duckdb_path

    path = duckdb_path()
    if not path.exists():
        print(f"(no warehouse at {path})")
        return
    with duckdb.connect(str(path), read_only=True) as con:
        frame = con.sql(f"select * from {EXECUTIVE_TABLE} order by order_date desc, market limit {int(limit)}")
        print(f"\n{EXECUTIVE_TABLE}, newest {limit} rows:")
        print(frame)


def next_commands(windows: bool = IS_WINDOWS) -> str:
    export = "bat_file_data_refresh/python/create_hyper_files/duckdb_to_tableau_server.py"
    if windows:
        python, start, export = r".venv\Scripts\python", r".\start_dagster.bat", export.replace("/", "\\")
        status = r"scripts\status.py"
    else:
        python, start, status = ".venv/bin/python", "scripts/start.sh", "scripts/status.py"
    return "\n".join([
        "Next:",
        f"  {start}",
        "      start the Dagster UI, then open http://127.0.0.1:3000 (this run: Jobs > daily_sales_flow_job > Runs)",
        f"  {python} {status}",
        "      is the data current? (exit 0 when it is)",
        f"  {python} {export} --list",
        "      the warehouse's tables, for an ad-hoc extract (--tables or --sql, --name, --no-publish)",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", default=DEFAULT_JOB, help=f"job to run (default {DEFAULT_JOB})")
    parser.add_argument("--rows", type=int, default=8, help="executive rows to print (default 8)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="log level of the run's console log (default INFO)")
    parser.add_argument("--log-file", type=Path, default=DEFAULT_LOG_FILE,
                        help=f"where the run's full log goes (default {DEFAULT_LOG_FILE.relative_to(REPO_ROOT)})")
    parser.add_argument("--verbose", action="store_true", help="print the run's full log here instead")
    parser.add_argument("--throwaway-instance", action="store_true",
                        help="record the run in a temporary Dagster instance deleted at the end, not in the project's "
                        "home (the outputs are still written: extracts, warehouse; the run is in no UI)")
    parser.add_argument("--as-of", type=iso_date, help="last file date the syncs take, YYYY-MM-DD (default: today in pipeline.yaml's timezone)")
    args = parser.parse_args(argv)
    # Redirected on Windows, stdout is cp1252: DuckDB's box-drawing table and 東京 must not crash us.
    from pipeline_common.script_support import tolerate_console_encoding

    tolerate_console_encoding()
    # The resource limits (pipeline.yaml resource_limits.priority): the run executes in this process, so it and every
    # script and dbt process it starts run below normal priority; the person at the PC comes first.
    from pipeline_common.resource_limits import lower_current_process

    lower_current_process()

    _quiet_preview_warnings()
    # dbt colours its console lines even into a file: logs/run_flow.log gets plain text.
    os.environ.setdefault("DBT_USE_COLORS", "false")
    import dagster as dg

    from orchestration.definitions import defs

    try:
        job = defs.resolve_job_def(args.job)
    except Exception:  # noqa: BLE001  (Dagster's error type for an unknown job varies by version)
        known = sorted(j.name for j in defs.resolve_all_job_defs() if not j.name.startswith("__"))
        parser.error(f"--job {args.job!r}: no such job; known: {', '.join(known)}")
    log_file = None if args.verbose else args.log_file.resolve()
    run_config: dict = {"loggers": {"console": {"config": {"log_level": args.log_level}}}}
    if args.as_of:
        run_config["ops"] = _sync_ops_config(job, args.as_of.isoformat())
    home = None if args.throwaway_instance else project_home()
    started = time.monotonic()
    with _instance(home) as instance:
        with output_to(log_file) as out:
            run = launch_and_execute(instance, args.job, run_config, out, log_file)
        elapsed = time.monotonic() - started
        success = run.status == dg.DagsterRunStatus.SUCCESS
        print(f"\n{args.job}: {'SUCCESS' if success else 'FAILURE'} in {elapsed:.0f} s (run {run.run_id})")
        if home is None:
            print("  recorded in a throwaway instance (--throwaway-instance), now deleted: the run is in no UI "
                  "and scripts/status.py does not see it")
        else:
            print(f"  recorded in the Dagster home {home} (the one scripts/start.sh, the UI and scripts/status.py use)")
        if not success and log_file is not None:
            print(f"  the whole log: {log_file}")
        print_exports(instance, run.run_id)
    print_executive_rows(args.rows)
    print("\n" + next_commands())
    return 0 if success else 1


if __name__ == "__main__":
    from pipeline_common.script_support import run_main  # foreseeable failures end in the contract's codes

    raise SystemExit(run_main(main))
