"""The supervisor's parts on real processes: backoff, DAGSTER_HOME set-up, stopping a whole tree."""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from scripts import supervisor
from tests.plugins.lock_holder import holding_instance_lock

REPO = Path(__file__).resolve().parents[1]


def test_backoff_doubles_and_is_capped():
    delays = [supervisor.restart_delay(n, 5, 300) for n in range(8)]
    assert delays == [5, 10, 20, 40, 80, 160, 300, 300]


def test_prepare_home_copies_and_refreshes_dagster_yaml(tmp_path):
    home = supervisor.prepare_home(tmp_path / "home")
    copied = home / "dagster.yaml"
    assert copied.read_bytes() == (REPO / "dagster.yaml").read_bytes()
    copied.write_text("stale: true\n")
    supervisor.prepare_home(home)
    assert copied.read_bytes() == (REPO / "dagster.yaml").read_bytes()


def test_defaults_bind_loopback_and_a_persistent_home_in_the_project():
    args = supervisor.parse_args([])
    assert args.host == "127.0.0.1"
    assert args.dagster_home == REPO / "dagster_home"
    command = supervisor.dagster_command(args.host, 3123)
    # workspace.yaml names the code location, as dg dev and the demo's run do
    assert command[-9:] == ["-m", "dagster", "dev", "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1", "-p", "3123"]


# A parent that starts a grandchild which ignores SIGINT/SIGTERM: the worst case for a clean stop.
TREE_SCRIPT = textwrap.dedent(
    """
    import signal, subprocess, sys, time
    stubborn = "import signal, time\\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\\n" \\
               "signal.signal(signal.SIGTERM, signal.SIG_IGN)\\ntime.sleep(600)"
    subprocess.Popen([sys.executable, "-c", stubborn])
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    time.sleep(600)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="SIG_IGN for SIGTERM is POSIX-only; on Windows the kill-on-close "
                    "Job object ends the tree (tests/test_supervisor_windows_degrading.py, acceptance step 9)")
def test_stop_tree_ends_every_descendant_even_a_stubborn_one(tmp_path, monkeypatch):
    monkeypatch.setattr(supervisor, "KILL_WAIT_S", 3.0)
    child = subprocess.Popen([sys.executable, "-c", TREE_SCRIPT], start_new_session=True)
    tree = supervisor.ProcessTree(child)
    deadline = time.monotonic() + 20
    while len(tree.known) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
        tree.refresh()
    family = list(tree.known.values())
    assert len(family) == 3
    supervisor.stop_tree(tree, graceful_s=1)
    assert child.poll() is not None
    assert not [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_a_second_supervisor_on_the_same_home_refuses_to_start_naming_the_first(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    before = "# the running supervisor's settings\n"
    (home / "dagster.yaml").write_text(before)
    # A separate process holds the home's OS file lock, as a running supervisor does.
    with holding_instance_lock(home, REPO / "dagster.yaml") as first:
        second = subprocess.run(
            [sys.executable, str(REPO / "scripts" / "supervisor.py"), "--dagster-home", str(home),
             "--log-dir", str(tmp_path / "logs"), "--port", "2"],
            cwd=REPO, capture_output=True, text=True, timeout=60,
        )
        assert second.returncode == 78, second.stderr
        assert f"pid {first.pid}" in second.stderr and f"host {socket.gethostname()}" in second.stderr
        started = dt.datetime.fromtimestamp(psutil.Process(first.pid).create_time(), dt.timezone.utc)
        assert started.strftime("started %Y-%m-%d %H:%M:%S UTC") in second.stderr
        assert "Traceback" not in second.stderr
        assert (home / "dagster.yaml").read_text() == before, "the refused one touched nothing"
        assert not (tmp_path / "logs").exists()


def test_a_killed_supervisors_lock_is_released_by_the_os_not_by_a_stale_file(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    with holding_instance_lock(home, REPO / "dagster.yaml") as first:
        first.kill()  # no clean-up runs: the OS drops the lock with the process
        first.wait(timeout=30)
    assert (home / "daemon.lock").exists(), "the holder's record stays behind, stale"
    free = subprocess.run(
        [sys.executable, "-m", "orchestration.instance_lock", str(home)], cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert free.returncode == 0, free.stdout + free.stderr
    assert "free" in free.stdout
