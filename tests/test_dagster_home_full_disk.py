"""A full disk under DAGSTER_HOME, end to end (issue 24, items 6 and 7), on a real small file system (tmpfs).

Every script that writes the Dagster home, run as its command line on a home whose disk is full, exits 74
with one message that names the home and the free space on its disk, prints the JSON line of contract
section 8 and no traceback; the files the home held before are byte for byte as they were, and the run
leaves nothing of its own behind (no empty database file, no lock file, no log of a start that never
happened). Once the disk has room again, the same home works.

The scripts: status.py (opens the instance's SQLite storage), supervisor.py (the instance lock's record,
its dagster.yaml, its logs), start-up recovery (`python -m orchestration.maintenance.recovery`, which the
supervisor runs before every start) and run_flow.py (the run's instance).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.plugins.fs_faults import fill, small_disk

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.scenario  # four scripts started on a real tmpfs, each loading Dagster: over a minute


def _files(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _run(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def _error(done: subprocess.CompletedProcess[str]) -> dict:
    return json.loads(done.stdout.strip().splitlines()[-1])["error"]


def test_a_full_disk_under_the_dagster_home_is_74_naming_it_and_keeps_the_home(tmp_path, isolated_env):
    with small_disk(tmp_path / "disk", "2m") as disk:
        home = disk / "dagster_home"
        env = {**os.environ, "DAGSTER_HOME": str(home)}
        # Earlier outputs: the instance's storage as a first status creates it, and the supervisor's settings copy.
        first = _run(["scripts/status.py", "--dagster-home", str(home)], env)
        assert first.returncode in (0, 1), first.stderr[-2000:]
        (home / "dagster.yaml").write_bytes((REPO / "dagster.yaml").read_bytes())
        before = _files(home)
        assert {"history/runs.db", "schedules/schedules.db", "dagster.yaml"} <= set(before), before
        filler = fill(disk)

        commands = {
            "status.py": ["scripts/status.py", "--dagster-home", str(home)],
            "supervisor.py": ["scripts/supervisor.py", "--dagster-home", str(home), "--log-dir", str(tmp_path / "logs"),
                              "--port", "1"],
            "recovery": ["-m", "orchestration.maintenance.recovery"],
            "run_flow.py": ["scripts/run_flow.py", "--job", "daily_sales_flow_job", "--log-file",
                            str(tmp_path / "run_flow.log")],
        }
        for name, command in commands.items():
            done = _run(command, env)
            where = f"{name}: {done.stdout[-1500:]} {done.stderr[-1500:]}"
            assert done.returncode == 74, where
            assert "Traceback" not in done.stderr, where
            message = _error(done)["message"]
            assert _error(done)["code"] == 74, where
            assert message.startswith(f"the Dagster home {home}"), where
            assert f"MB free on {home}" in message, where  # the free space of the home's own disk, not the cwd's
            assert _files(home) == before, (name, _files(home), before)
        assert not (tmp_path / "logs").exists(), "the refused supervisor wrote no log"

        filler.unlink()  # room again: the same home works
        again = _run(["scripts/status.py", "--dagster-home", str(home)], env)
        assert again.returncode in (0, 1), again.stderr[-2000:]
        assert again.stdout.startswith(("CURRENT", "NOT CURRENT"))
