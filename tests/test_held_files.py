"""Files held open by another program (Windows' PermissionError), on every replace, prune, lock and append.

The PermissionError is injected where Windows raises it (os.replace / os.remove / os.rename,
with its Win32 code), in this process or, for the scripts, in the script's own process.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import pytest
from openpyxl import load_workbook

from pipeline_common import files
from pipeline_common.files import FileAccessError, FileHeldError, PatientRotatingFileHandler, replace
from pipeline_common.script_support import EXIT_IO, EXIT_TRANSIENT
from tests.plugins.held_files import HeldFiles, held_env
from tests.plugins.sample_data import SAMPLE_AS_OF
from tests.plugins.tableau_server import PAT_SECRET, summary

REPO = Path(__file__).resolve().parents[1]
BUDGET_SCRIPT = REPO / "bat_file_data_refresh" / "python" / "sharepoint_budget" / "daily_sales_ingest.py"
YEAR = SAMPLE_AS_OF.year
WORKBOOK = f"Daily Sales Budget {YEAR}.xlsx"


def hidden_leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# --- the shared replace -----------------------------------------------------------------------


def test_a_briefly_held_target_is_replaced_after_a_retry(tmp_path, held_files):
    target, new = tmp_path / "budget.csv", tmp_path / ".budget.csv.new"
    target.write_text("old")
    new.write_text("new")
    held_files.hold(str(target), failures=2, winerror=5)
    replace(new, target)
    assert target.read_text() == "new" and not new.exists()
    assert len(held_files.blocked) == 2


@pytest.mark.parametrize(
    ("name", "program"), [("daily_sales_budget_2026.csv", "Excel"), ("executive_daily_sales.hyper", "Tableau Desktop")]
)
def test_a_target_held_for_good_is_exit_75_naming_file_and_program(tmp_path, held_files, name, program):
    target, new = tmp_path / name, tmp_path / f".{name}.new"
    target.write_text("old")
    new.write_text("new")
    held_files.hold(str(target))
    started = time.monotonic()
    with pytest.raises(FileHeldError) as raised:
        replace(new, target)
    assert 0.3 <= time.monotonic() - started < 5  # PIPELINE_HELD_FILE_RETRY_SECONDS=0.3 in the fixture
    assert raised.value.exit_code == EXIT_TRANSIENT
    assert str(target) in str(raised.value) and program in str(raised.value)
    assert target.read_text() == "old"


def test_a_permission_problem_that_is_no_held_file_is_exit_74_with_free_space(tmp_path, monkeypatch):
    monkeypatch.setenv("PIPELINE_HELD_FILE_RETRY_SECONDS", "0.1")
    target = tmp_path / "out.csv"

    def denied(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied", str(dst))  # POSIX: no winerror

    monkeypatch.setattr(os, "replace", denied)
    with pytest.raises(FileAccessError) as raised:
        replace(tmp_path / "x", target)
    assert raised.value.exit_code == EXIT_IO
    assert str(target) in str(raised.value) and "MB free on" in str(raised.value)


def test_the_holding_process_is_named_when_it_can_be_found(tmp_path, held_files):
    target = tmp_path / "held.csv"
    target.write_text("old")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; f = open(sys.argv[1]); print('open', flush=True); time.sleep(60)",
         str(target)], stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        held_files.hold(str(target))
        (tmp_path / "new").write_text("new")
        with pytest.raises(FileHeldError) as raised:
            replace(tmp_path / "new", target)
        assert f"(PID {holder.pid})" in str(raised.value)
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_prune_leaves_a_held_file_and_reports_it(tmp_path, held_files, caplog):
    paths = [tmp_path / f"b{i}.hyper" for i in range(3)]
    for path in paths:
        path.write_text("x")
    held_files.hold(str(paths[1]))
    with caplog.at_level(logging.WARNING):
        deleted, kept = files.prune(paths, logging.getLogger("t"), timeout=0.05)
    assert deleted == [paths[0], paths[2]] and kept == [paths[1]]
    assert paths[1].exists() and not paths[0].exists()
    assert "Tableau Desktop" in caplog.text and str(paths[1]) in caplog.text


# --- the budget's pair of outputs -------------------------------------------------------------


@pytest.fixture
def budget_landing(tmp_path, sample_landing, monkeypatch) -> Path:
    root = tmp_path / "landing"
    (root / "sharepoint").mkdir(parents=True)
    shutil.copy(sample_landing / "sharepoint" / WORKBOOK, root / "sharepoint" / WORKBOOK)
    monkeypatch.setenv("LANDING_DIR", str(root))
    return root


def run_budget(env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BUDGET_SCRIPT), "--year", str(YEAR)], capture_output=True, text=True,
        env={**os.environ, **(env or {})}, timeout=300,
    )


def change_every_number(workbook_path: Path) -> None:
    """A new version of the workbook: every budget and exchange value differs from before."""
    workbook = load_workbook(workbook_path)
    for sheet in ("Budget", "Exchange"):
        for row in workbook[sheet].iter_rows():
            for cell in row:
                if isinstance(cell.value, (int, float)) and not isinstance(cell.value, bool) and cell.value != 1:
                    cell.value = cell.value * 1.5 + 1  # GBP stays 1 per GBP
    workbook.save(workbook_path)


def test_budget_outputs_stay_a_consistent_pair_when_one_is_open_in_excel(budget_landing, isolated_env):
    first = run_budget()
    assert first.returncode == 0, first.stderr
    folder = isolated_env / "raw" / "budget"
    budget, exchange = folder / f"daily_sales_budget_{YEAR}.csv", folder / f"exchange_rates_{YEAR}.csv"
    before = (budget.read_bytes(), exchange.read_bytes())

    change_every_number(budget_landing / "sharepoint" / WORKBOOK)
    target = exchange  # the second of the pair: the budget file was already swapped when this one fails
    excel = HeldFiles()
    excel.hold(str(target), winerror=5)
    result = run_budget(held_env(excel))

    assert result.returncode == EXIT_TRANSIENT, result.stderr
    assert str(target) in result.stderr and "Excel" in result.stderr
    assert "Traceback" not in result.stderr
    assert (budget.read_bytes(), exchange.read_bytes()) == before  # never half new, half old
    assert hidden_leftovers(folder) == []

    again = run_budget()  # Excel closed: the new pair goes in
    assert again.returncode == 0, again.stderr
    assert budget.read_bytes() != before[0] and exchange.read_bytes() != before[1]
    assert hidden_leftovers(folder) == []


def test_a_budget_run_killed_mid_swap_is_repaired_by_the_next_run(budget_landing, isolated_env):
    assert run_budget().returncode == 0
    folder = isolated_env / "raw" / "budget"
    exchange = folder / f"exchange_rates_{YEAR}.csv"
    before = exchange.read_bytes()
    # Killed after moving the old file aside, before moving the new one in: the aside's name
    # carries the dead run's PID and start time.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=60)
    os.replace(exchange, folder / f".{exchange.name}.{dead.pid}-1.0123456789ab.old")
    (budget_landing / "sharepoint" / WORKBOOK).write_bytes(b"not a workbook")
    result = run_budget()
    assert result.returncode == 65  # bad data this time, so the earlier outputs must stay usable
    assert exchange.read_bytes() == before
    assert hidden_leftovers(folder) == []


# --- the extract, its backups and the publish lock ---------------------------------------------


SALES_EXPORT = ("--tables", "qi_executive_daily_sales", "--name", "sales_adhoc")


def test_a_backup_open_in_tableau_desktop_does_not_stop_publishing(
    export_warehouse, run_export, tableau_server, isolated_env
):
    backups = isolated_env / "exports" / "backup"
    backups.mkdir(parents=True)
    old = [backups / f"sales_adhoc_{dt.date(2026, 1, d):%Y%m%d}_060000.hyper" for d in range(1, 16)]
    for path in old:
        path.write_bytes(b"old extract")
    desktop = HeldFiles()
    desktop.hold(str(old[0]))  # the oldest, due for pruning, is open in Tableau Desktop
    result = run_export(*SALES_EXPORT, env={**tableau_server.env(), **held_env(desktop)})

    assert result.returncode == 0, result.stderr
    assert summary(result.stdout)["published"] is True and len(tableau_server.published) == 1
    assert old[0].exists() and "Tableau Desktop" in result.stderr and str(old[0]) in result.stderr
    assert not old[1].exists()  # the other surplus backup went
    assert PAT_SECRET not in result.stderr


def test_an_extract_open_in_tableau_desktop_is_exit_75_and_the_old_one_stays(
    export_warehouse, run_export, isolated_env
):
    assert run_export(*SALES_EXPORT, "--no-publish").returncode == 0
    extract = isolated_env / "exports" / "sales_adhoc.hyper"
    before = extract.read_bytes()
    desktop = HeldFiles()
    desktop.hold(str(extract))
    result = run_export(*SALES_EXPORT, "--no-publish", env=held_env(desktop))
    assert result.returncode == EXIT_TRANSIENT, result.stderr
    assert str(extract) in result.stderr and "Tableau Desktop" in result.stderr
    assert extract.read_bytes() == before
    assert [p.name for p in extract.parent.iterdir() if p.name.startswith(".")] == []


def test_publish_lock_waits_out_a_delete_pending_lock_file(tmp_path, monkeypatch, held_files):
    from create_hyper_files import publish_lock

    lock = tmp_path / ".publish.lock"
    real_open = os.open
    pending = {"left": 3}

    def open_delete_pending(path, flags, *args):
        if Path(path) == lock and pending["left"]:
            pending["left"] -= 1
            raise PermissionError(errno.EACCES, "Access is denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", open_delete_pending)
    held_files.hold(str(lock))  # and releasing ours is refused too
    log = logging.getLogger("t")
    with publish_lock.exclusive_lock(lock, timeout_seconds=30, log=log):
        assert lock.read_text().split()[0] == str(os.getpid())
    assert pending["left"] == 0
    # Our lock could not be deleted; the next export takes it over once our PID is gone.


def test_publish_lock_that_never_becomes_free_is_transient(tmp_path, monkeypatch):
    from create_hyper_files import publish_lock

    def always_denied(path, flags, *args):
        raise PermissionError(errno.EACCES, "Access is denied", str(path))

    monkeypatch.setattr(os, "open", always_denied)
    with pytest.raises(publish_lock.TransientError) as raised:
        with publish_lock.exclusive_lock(tmp_path / ".publish.lock", timeout_seconds=0.5, log=logging.getLogger("t")):
            pass
    assert "permission denied" in str(raised.value)


# --- logs and alert files -------------------------------------------------------------------------


def test_log_rotation_waits_while_the_log_is_open_elsewhere(tmp_path, held_files, capsys):
    path = tmp_path / "supervisor.log"
    handler = PatientRotatingFileHandler(path, maxBytes=2000, backupCount=2, encoding="utf-8")
    logger = logging.getLogger("rotation-test")
    logger.handlers[:] = [handler]
    logger.propagate = False
    held_files.hold(str(path))  # a tail has supervisor.log open
    for i in range(100):
        logger.warning(f"line {i:03d} " + "x" * 40)
    assert "Traceback" not in capsys.readouterr().err
    text = path.read_text(encoding="utf-8")
    assert "line 000" in text and "line 099" in text  # nothing lost, the file simply grew
    assert text.count("log rotation postponed") == 1
    assert not (tmp_path / "supervisor.log.1").exists()

    held_files.release(str(path))  # the tail is closed
    handler._next_rotate_attempt = 0.0  # the postponement has run out
    logger.warning("after the tail closed")
    assert (tmp_path / "supervisor.log.1").exists()
    handler.close()


APPENDER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from pipeline_common.files import append_line
    for i in range(int(sys.argv[2])):
        append_line(Path(sys.argv[1]), json.dumps({"writer": sys.argv[3], "i": i, "pad": "y" * 200_000}))
    """
)


def test_alert_appends_from_several_processes_never_interleave(tmp_path):
    path = tmp_path / "alerts" / "alerts_20261130.jsonl"
    writers = [
        subprocess.Popen([sys.executable, "-c", APPENDER, str(path), "15", str(n)]) for n in range(4)
    ]
    for writer in writers:
        assert writer.wait(timeout=120) == 0
    lines = path.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]  # a torn line would not parse
    assert sorted((r["writer"], r["i"]) for r in records) == sorted((str(n), i) for n in range(4) for i in range(15))


@pytest.mark.skipif(os.name == "nt", reason="the test holds the lock with fcntl")
def test_an_append_waits_for_the_writer_holding_the_file(tmp_path):
    import fcntl

    path = tmp_path / "alerts.jsonl"
    path.write_text("")
    with path.open("a") as other:
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)
        writer = subprocess.Popen([sys.executable, "-c", APPENDER, str(path), "1", "w"])
        time.sleep(1.5)
        assert path.read_text() == "" and writer.poll() is None  # waiting for the lock
        fcntl.flock(other.fileno(), fcntl.LOCK_UN)
    assert writer.wait(timeout=60) == 0
    assert json.loads(path.read_text())["writer"] == "w"



# --- under Dagster: held is retried (75), an I/O error is not (74) --------------------------------

PIPES_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from pipeline_common.files import FileAccessError, replace
    from pipeline_common.script_support import script_run

    mode, folder = sys.argv[1], Path(sys.argv[2])
    attempts = folder / "attempts.txt"
    attempts.write_text(str(int(attempts.read_text()) + 1) if attempts.exists() else "1")
    with script_run("writer") as run:
        if mode == "io":
            raise FileAccessError(f"cannot replace {folder / 'out.csv'}: No space left on device (0.0 GB free)",
                                  folder / "out.csv")
        new = folder / "new.csv"
        new.write_text("new")
        replace(new, folder / "out.csv")
    """
)


@pytest.mark.parametrize(("mode", "attempts", "says"), [
    ("held", 3, "hit a transient error (exit 75)"),
    ("io", 1, "hit an I/O error on the pipeline's own files (exit 74)"),
])
def test_under_dagster_a_held_file_is_retried_and_an_io_error_is_not(tmp_path, monkeypatch, mode, attempts, says):
    from orchestration.pipes_runner import run_legacy_script

    script = tmp_path / "writer.py"
    script.write_text(PIPES_SCRIPT, encoding="utf-8")
    (tmp_path / "out.csv").write_text("old")
    excel = HeldFiles()
    excel.hold(str(tmp_path / "out.csv"), winerror=5)
    for name, value in held_env(excel, retry_seconds=0.1).items():
        monkeypatch.setenv(name, value)

    def writer(context, pipes_subprocess_client: dg.PipesSubprocessClient):
        return run_legacy_script(context, pipes_subprocess_client, script, [mode, str(tmp_path)]).get_materialize_result()

    asset = dg.asset(name="writer", retry_policy=dg.RetryPolicy(max_retries=2, delay=0))(writer)
    result = dg.materialize([asset], resources={"pipes_subprocess_client": dg.PipesSubprocessClient()},
                            raise_on_error=False)
    assert not result.success
    assert int((tmp_path / "attempts.txt").read_text()) == attempts
    failures = [e for e in result.all_events if e.is_step_failure or e.event_type_value == "STEP_UP_FOR_RETRY"]
    text = "\n".join(e.event_specific_data.error.to_string() for e in failures)
    assert says in text
    assert (tmp_path / "out.csv").read_text() == "old"
