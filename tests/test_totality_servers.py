"""Totality of the long-running scripts (issue 24, item 6): scripts/supervisor.py, scripts/serve.py and
scripts/status.py end in the contract's codes (section 8: 0, 65, 74, 75, 78; status also 1 = not
current, section 9) for any input or environment, never in a traceback.

Classes covered, each by a rule and a generated or enumerated case:
- an OSError of any errno at any file-system call the script makes on its Dagster home or log folder
  (tests/plugins/fs_faults.py fails the n-th call; a first clean run counts the calls): 74 naming the
  folder (75 for the errnos Python reports as a network timeout or reset: a home on a network share),
  or, where the script carries on without that file (its process-tree bookkeeping), the code of the run;
- wrong-shaped state: the supervisor's process-tree file and the instance's dagster.yaml as any JSON /
  YAML value: ignored (the tree file) or 78 naming the file (the settings), never an exception;
- bad arguments: 78 with the JSON line on stdout (real command lines);
- `--max-restarts` reached: 75 with the JSON line.
The full disk end to end (a real tmpfs under DAGSTER_HOME) is in tests/test_dagster_home_full_disk.py.
The scripts run in-process (tests/plugins/in_process.py) where the command line is not what is tested.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline_common import script_support
from scripts import serve, status, supervisor
from tests.plugins.fs_faults import FileSystemFaults
from tests.plugins.in_process import run_main

REPO = Path(__file__).resolve().parents[1]
NETWORK = (ConnectionError, TimeoutError)
# One errno of each kind of advice the message gives, and one Python reports as a network error.
KINDS = [errno.ENOSPC, errno.EACCES, errno.EROFS, errno.ENOTDIR, errno.ENAMETOOLONG, errno.EIO, errno.ETIMEDOUT]

CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    with Path(sys.argv[1]).open("a") as f:
        f.write("started\\n")
    sys.exit(3)
    """
)


def _is_network(number: int) -> bool:
    return isinstance(OSError(number, "x"), NETWORK)


def _json_error(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    assert lines, stdout
    return json.loads(lines[-1])["error"]


@pytest.fixture
def stand_in_dagster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`dagster dev` replaced by a child that notes its start and exits 3 (as in test_supervisor_claims)."""
    child = tmp_path / "child.py"
    child.write_text(CHILD, encoding="utf-8")
    starts = tmp_path / "starts.txt"
    monkeypatch.setattr(supervisor, "dagster_command", lambda *a, **k: [sys.executable, str(child), str(starts)])
    monkeypatch.setattr(supervisor, "recover_interrupted_runs", lambda home: None)  # needs a Dagster instance
    monkeypatch.setattr(supervisor, "TREE_POLL_S", 0.02)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield starts
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


def _supervise(root: Path, faults: FileSystemFaults | None = None):
    args = ["--dagster-home", str(root / "home"), "--log-dir", str(root / "logs"), "--max-restarts", "0",
            "--backoff-initial", "0", "--backoff-max", "0"]
    if faults is None:
        return run_main(supervisor.main, args)
    with pytest.MonkeyPatch.context() as mp:
        faults.install(mp)
        return run_main(supervisor.main, args)


def _names_the_place(message: str, faults: FileSystemFaults, *folders: Path) -> bool:
    """The message names the folder concerned, or the very path whose call failed (a parent being made)."""
    failed = faults.fired[1] if faults.fired and not faults.fired[1].startswith("fd ") else None
    return any(str(folder) in message for folder in folders) or (failed is not None and failed in message)


def _empty_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.stat().st_size == 0] if root.exists() else []


@pytest.mark.parametrize("number", KINDS, ids=lambda n: errno.errorcode[n])
def test_each_fault_point_of_the_supervisor_ends_in_a_contract_code(tmp_path, stand_in_dagster, number):
    """Every file-system call the supervisor makes on its home and log folder, failed in turn."""
    clean_root = tmp_path / "clean"
    counting = FileSystemFaults(clean_root)
    clean = _supervise(clean_root, counting)
    assert clean.returncode == 75, clean.stdout + clean.stderr  # the stand-in exits; --max-restarts 0 gives up
    points = len(counting.points)
    assert points >= 8, counting.points  # home, lock, settings, tree file, logs: the calls are seen
    for n in range(1, points + 1):
        root = tmp_path / f"fault{n}"
        stand_in_dagster.unlink(missing_ok=True)
        faults = FileSystemFaults(root, fail_at=n, number=number)
        done = _supervise(root, faults)  # a crash would raise here (run_main re-raises a bug)
        where = f"point {n} {faults.fired}: {done.stdout} {done.stderr}"
        started = stand_in_dagster.exists()
        if started:  # the fault hit the bookkeeping of a running supervisor: logged, the run went on
            assert done.returncode == 75, where
            continue
        expected = 75 if _is_network(number) else 74
        assert done.returncode == expected, where
        error = _json_error(done.stdout)
        assert error["code"] == expected, where
        assert "Traceback" not in done.stderr, where
        if expected == 74:
            assert _names_the_place(error["message"], faults, root / "home", root / "logs"), where
        assert not _empty_files(root / "home"), (where, _empty_files(root / "home"))


@pytest.mark.parametrize("number", sorted(errno.errorcode), ids=lambda n: errno.errorcode[n])
def test_any_errno_on_the_dagster_home_ends_the_supervisor_in_74_naming_it(tmp_path, stand_in_dagster, number):
    """Every call on the home (creating it first) fails with each errno this system knows."""
    done = _supervise(tmp_path, FileSystemFaults(tmp_path / "home", fail_at=1, number=number, persist=True))
    expected = 75 if _is_network(number) else 74
    assert done.returncode == expected, done.stdout + done.stderr
    error = _json_error(done.stdout)
    assert error["code"] == expected
    if expected == 74:
        assert error["message"].startswith(f"the Dagster home {tmp_path / 'home'}: {os.strerror(number)} (")
    assert not stand_in_dagster.exists() and not (tmp_path / "logs").exists()


@pytest.mark.parametrize("number", sorted(errno.errorcode), ids=lambda n: errno.errorcode[n])
def test_any_errno_on_the_log_folder_ends_serve_in_74_naming_it(tmp_path, monkeypatch, number):
    """serve.py sets up serve.log before anything else: its folder failing is 74 naming it (75: network)."""
    for name in ("HOST", "USER", "PASSWORD", "DB", "PORT"):
        monkeypatch.delenv(f"DAGSTER_POSTGRES_{name}", raising=False)
    logs = tmp_path / "logs"
    with pytest.MonkeyPatch.context() as mp:
        FileSystemFaults(logs, fail_at=1, number=number, persist=True).install(mp)
        done = run_main(serve.main, ["--dagster-home", str(tmp_path / "home"), "--log-dir", str(logs)])
    expected = 75 if _is_network(number) else 74
    assert done.returncode == expected, done.stdout + done.stderr
    error = _json_error(done.stdout)
    assert error["code"] == expected
    if expected == 74:
        assert str(logs) in error["message"] and os.strerror(number) in error["message"]
    assert not (tmp_path / "home").exists()


def test_each_fault_point_of_serves_start_ends_in_a_contract_code(tmp_path, monkeypatch):
    """Every call serve.py makes on its log folder before it needs Postgres, failed in turn (ENOSPC); without
    the DAGSTER_POSTGRES_* variables an unfaulted start ends 78 naming them."""
    for name in ("HOST", "USER", "PASSWORD", "DB", "PORT"):
        monkeypatch.delenv(f"DAGSTER_POSTGRES_{name}", raising=False)
    counting = FileSystemFaults(tmp_path / "clean")
    with pytest.MonkeyPatch.context() as mp:
        counting.install(mp)
        clean = run_main(serve.main, ["--dagster-home", str(tmp_path / "clean" / "home"),
                                      "--log-dir", str(tmp_path / "clean" / "logs")])
    assert clean.returncode == 78 and "DAGSTER_POSTGRES_HOST" in _json_error(clean.stdout)["message"]
    assert counting.points
    for n in range(1, len(counting.points) + 1):
        root = tmp_path / f"fault{n}"
        faults = FileSystemFaults(root, fail_at=n, number=errno.ENOSPC)
        with pytest.MonkeyPatch.context() as mp:
            faults.install(mp)
            done = run_main(serve.main, ["--dagster-home", str(root / "home"), "--log-dir", str(root / "logs")])
        assert done.returncode in (74, 78), (n, faults.fired, done.stdout, done.stderr)
        if faults.fired is not None and done.returncode == 74:
            assert _names_the_place(_json_error(done.stdout)["message"], faults, root / "logs"), faults.fired


def _status(argv: list[str]) -> int:
    """status.py as its command line runs it: main through the project's one map (script_support.run_main)."""
    return script_support.run_main(status.main, argv)


@pytest.mark.parametrize("number", [errno.ENOSPC, errno.EACCES], ids=lambda n: errno.errorcode[n])
def test_each_fault_point_of_status_on_its_home_ends_in_a_contract_code(tmp_path, isolated_env, number):
    """status.py creates the home and Dagster's storage folders in it: each such call failed in turn."""
    clean_home = tmp_path / "clean_home"
    counting = FileSystemFaults(clean_home)
    with pytest.MonkeyPatch.context() as mp:
        counting.install(mp)
        clean = run_main(_status, ["--dagster-home", str(clean_home)])
    assert clean.returncode in (0, 1), clean.stdout + clean.stderr  # current or not: sections 8 and 9
    assert counting.points
    for n in range(1, len(counting.points) + 1):
        home = tmp_path / f"home{n}"
        faults = FileSystemFaults(home, fail_at=n, number=number)
        with pytest.MonkeyPatch.context() as mp:
            faults.install(mp)
            done = run_main(_status, ["--dagster-home", str(home)])
        where = f"point {n} {faults.fired}: {done.stdout[-600:]} {done.stderr[-600:]}"
        if done.returncode in (0, 1):  # a call Dagster does without (a check it retries): the report stands
            assert done.stdout.startswith(("CURRENT", "NOT CURRENT")), where
            continue
        expected = 75 if _is_network(number) else 74
        assert done.returncode == expected, where
        assert _json_error(done.stdout)["code"] == expected, where
        if expected == 74:
            assert _names_the_place(_json_error(done.stdout)["message"], faults, home), where
        assert not _empty_files(home), (where, _empty_files(home))


@pytest.mark.parametrize("number", sorted(errno.errorcode), ids=lambda n: errno.errorcode[n])
def test_any_errno_on_the_dagster_home_ends_status_in_74_naming_it(tmp_path, isolated_env, number):
    home = tmp_path / "home"
    with pytest.MonkeyPatch.context() as mp:
        FileSystemFaults(home, fail_at=1, number=number, persist=True).install(mp)
        done = run_main(_status, ["--dagster-home", str(home)])
    expected = 75 if _is_network(number) else 74
    assert done.returncode == expected, done.stdout + done.stderr
    error = _json_error(done.stdout)
    assert error["code"] == expected
    if expected == 74:
        assert error["message"].startswith(f"the Dagster home {home}: {os.strerror(number)} (")
    assert not home.exists()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**6) | st.floats(max_value=1e6) | st.just(float("nan")) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["pid", "started", "processes", "x"]),
                                                                 inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=JSON_VALUES | st.binary(max_size=40))
def test_a_process_tree_file_of_any_shape_is_ignored_not_fatal(tmp_path_factory, value):
    """DAGSTER_HOME/supervisor.tree.json as any JSON value or any bytes: end_orphans ends nothing it cannot
    match by pid and start time (none here: the generated times are decades before any process), never raises,
    and forgets the file."""
    home = tmp_path_factory.mktemp("home")
    path = supervisor.tree_file(home)
    path.write_bytes(value if isinstance(value, bytes) else json.dumps(value).encode())
    assert supervisor.end_orphans(home) == []


SETTINGS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["storage", "postgres", "run_storage", "module", "config", "postgres_db", "port",
                         "postgres_url", "hostname", "env"]), inner, max_size=4),
    max_leaves=15,
)


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=SETTINGS.map(lambda v: yaml.safe_dump(v)) | st.text(max_size=60))
def test_instance_settings_of_any_shape_are_read_or_refused_as_configuration(tmp_path_factory, document):
    """A dagster.yaml of any shape (and any text): the instance lock reads its Postgres settings, or says the
    file is not what Dagster reads (InstanceSettingsInvalid: exit 78 in supervisor.py and serve.py)."""
    from orchestration.instance_lock import InstanceSettingsInvalid, postgres_settings

    path = tmp_path_factory.mktemp("settings") / "dagster.yaml"
    path.write_text(document, encoding="utf-8")
    try:
        found = postgres_settings(path)
    except InstanceSettingsInvalid as exc:
        assert str(path) in str(exc)
    else:
        assert found is None or isinstance(found, dict)


def test_a_wrong_shaped_dagster_yaml_in_the_home_is_78_naming_it(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("storage: [postgres\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "orchestration.instance_lock", str(home)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 78 and f"{home / 'dagster.yaml'} is not valid YAML text" in done.stdout, done


def test_max_restarts_reached_is_75_with_the_json_line(tmp_path, stand_in_dagster):
    done = _supervise(tmp_path)
    assert done.returncode == 75
    error = _json_error(done.stdout)
    assert error["code"] == 75 and error["message"].startswith("giving up after 0 restarts (--max-restarts 0)")
    assert "giving up after 0 restarts" in (tmp_path / "logs" / "supervisor.log").read_text(encoding="utf-8")


def test_a_dagster_dev_that_cannot_be_started_is_retried_then_75(tmp_path, stand_in_dagster, monkeypatch):
    """Starting the child fails (too many open files): counted as an exit, with backoff, never a traceback."""
    def refuse(*args, **kwargs):
        raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))

    monkeypatch.setattr(supervisor, "start_child", refuse)
    done = run_main(supervisor.main, ["--dagster-home", str(tmp_path / "home"), "--log-dir", str(tmp_path / "logs"),
                                      "--max-restarts", "2", "--backoff-initial", "0", "--backoff-max", "0"])
    assert done.returncode == 75
    log = (tmp_path / "logs" / "supervisor.log").read_text(encoding="utf-8")
    assert log.count("could not start dagster dev: [Errno 24] Too many open files") == 3, log


def test_a_recovery_that_hangs_or_cannot_start_does_not_stop_the_supervisor(tmp_path, monkeypatch):
    """Start-up recovery is a child with a time limit: a hang (TimeoutExpired) or a failed start is logged."""
    supervisor.setup_logging(tmp_path / "logs")
    for error in (subprocess.TimeoutExpired(["recovery"], 300), OSError(errno.ENOMEM, "Cannot allocate memory")):
        def fail(*args, _error=error, **kwargs):
            raise _error

        monkeypatch.setattr(supervisor.subprocess, "run", fail)
        supervisor.recover_interrupted_runs(tmp_path / "home")
    log = (tmp_path / "logs" / "supervisor.log").read_text(encoding="utf-8")
    assert "recovery did not run to the end (TimeoutExpired" in log
    assert "recovery did not run to the end (OSError: [Errno 12] Cannot allocate memory)" in log


# --- the real command lines (a few: exit code, stdout's JSON line, no traceback) ------------------------


def _script(name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "scripts" / name), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env=env)


@pytest.mark.parametrize(("name", "args"), [
    ("supervisor.py", ["--port", "abc"]),
    ("supervisor.py", ["--max-restarts"]),
    ("serve.py", ["--code-server-port", "x"]),
    ("serve.py", ["--bogus"]),
])
def test_bad_arguments_are_78_with_the_json_line(name, args):
    done = _script(name, *args)
    assert done.returncode == 78, done.stdout + done.stderr
    assert _json_error(done.stdout)["code"] == 78
    assert "Traceback" not in done.stderr


def test_supervisor_with_a_file_as_its_home_is_74_naming_it(tmp_path):
    blocker = tmp_path / "home_is_a_file"
    blocker.write_text("x", encoding="utf-8")
    done = _script("supervisor.py", "--dagster-home", str(blocker / "sub"), "--log-dir", str(tmp_path / "logs"))
    assert done.returncode == 74, done.stdout + done.stderr
    message = _json_error(done.stdout)["message"]
    assert message.startswith(f"the Dagster home {blocker / 'sub'}: Not a directory (")
    assert "a file stands where a folder of that path should be" in message
    assert "Traceback" not in done.stderr and not (tmp_path / "logs").exists()


def test_serve_with_a_file_as_its_log_folder_is_74_naming_it(tmp_path):
    blocker = tmp_path / "logs"
    blocker.write_text("x", encoding="utf-8")
    done = _script("serve.py", "--dagster-home", str(tmp_path / "home"), "--log-dir", str(blocker))
    assert done.returncode == 74, done.stdout + done.stderr
    assert str(blocker) in _json_error(done.stdout)["message"]
    assert "Traceback" not in done.stderr and not (tmp_path / "home").exists()


def test_a_log_file_that_stops_being_writable_costs_its_lines_not_the_supervision(tmp_path, capsys):
    """A full disk under a running supervisor's log (/dev/full: every write is ENOSPC): one console line a
    minute says so, no traceback, and logging goes on."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    logger = supervisor.setup_logging(tmp_path / "logs", logging.getLogger(f"full_{os.getpid()}"), "full.log")
    handler = logger.handlers[0]
    handler.stream.close()
    handler.stream = open("/dev/full", "w", encoding="utf-8")  # noqa: SIM115 - the handler closes it
    for n in range(3):
        logger.info(f"line {n} " + "x" * 10_000)  # larger than the buffer: the write itself fails
    err = capsys.readouterr().err
    assert err.count("supervisor: cannot write") == 1, err
    assert "No space left on device" in err and "Traceback" not in err and "Logging error" not in err
    handler.stream = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - closed by the handler below
    handler.close()
