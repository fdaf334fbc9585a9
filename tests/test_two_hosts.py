"""Two "hosts" on one machine against one real Postgres (issue 28 item 4, contract section 7).

Host A and host B are two `scripts/serve.py` stacks with their own identity (DAGSTER_HOST_ID),
home, logs and ports. B's start-up recovery and watchdog also run in their own PID namespace
(`unshare --pid`), so A's processes are as invisible to them as on another machine.

- The second daemon refuses: B's serve.py exits 78 naming A's host, pid and start time, and
  writes nothing; start-up recovery started by hand as B refuses the same way.
- A run on host A survives host B's start-up recovery and watchdog (before: B failed A's
  running flow, freed its DuckDB slot, and a queued DuckDB run started beside it).
- The DuckDB slot is never held by two runs: the second DuckDB run starts only after the flow
  ended in SUCCESS, and no sample of the pool ever shows two claimed slots.
- A holder killed with SIGKILL loses the lock with its Postgres session; nobody deletes a file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import yaml

from tests.plugins.lock_holder import holding_instance_lock
from tests.test_e2e_dagster_dev import sample_landing  # noqa: F401  (fixture)
from tests.test_serve_postgres import Deployment

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

RUN = "query Run($id: ID!) { runOrError(runId: $id) { ... on Run { status tags { key value } } } }"
B_VIEW = """
import json, sys
import dagster as dg
from dagster._core.instance.ref import InstanceRef
from orchestration.maintenance.watchdog import fail_dead_runs
from orchestration.maintenance.recovery import fail_interrupted_runs
with dg.DagsterInstance.from_ref(InstanceRef.from_dir(sys.argv[1])) as instance:
    watchdog = fail_dead_runs(instance)
    recovery = fail_interrupted_runs(instance)
print(json.dumps({"watchdog": watchdog, "recovery": recovery}))
"""


def _config(tmp: Path) -> Path:
    raw = yaml.safe_load((REPO / "pipeline.yaml").read_text(encoding="utf-8"))
    raw.setdefault("alerts", {}).setdefault("arrival_sensors", {})["running_by_default"] = False
    path = tmp / "pipeline.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def _env(base: dict, host: str) -> dict:
    env = {**base, "DAGSTER_HOST_ID": host}
    env.pop("DAGSTER_HOME", None)
    return env


class SlotWatch(threading.Thread):
    """Samples the duckdb pool's claimed slots in Postgres until stopped; remembers the most."""

    def __init__(self, postgres_server, db: str):
        super().__init__(daemon=True)
        self.server, self.db = postgres_server, db
        self.most = 0
        self.samples = 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.2):
            try:
                (count,) = self.server.query(
                    self.db,
                    "select count(*) from concurrency_slots where concurrency_key = 'duckdb' "
                    "and run_id is not null and not deleted",
                )[0]
            except Exception:  # noqa: BLE001 - the table appears with the schema
                continue
            self.most = max(self.most, count)
            self.samples += 1


def _times(postgres_server, db: str, run_id: str) -> tuple[float | None, float | None]:
    (start, end) = postgres_server.query(db, "select start_time, end_time from runs where run_id = %s", (run_id,))[0]
    return start, end


def test_a_second_host_refuses_and_cannot_touch_the_first_hosts_run(
    tmp_path, isolated_env, sample_landing, postgres_server, postgres_db  # noqa: F811
):
    if shutil.which("unshare") is None:
        pytest.fail("`unshare` (util-linux) is needed to give host B its own PID namespace")
    base = {
        **os.environ, **postgres_server.environment(postgres_db),
        "DATA_DIR": str(isolated_env), "LANDING_DIR": str(sample_landing),
        "PIPELINE_CONFIG": str(_config(tmp_path)),
    }
    host_a = Deployment(tmp_path / "a", _env(base, "host-a"))
    watch = SlotWatch(postgres_server, postgres_db)
    try:
        host_a.wait_until_up()
        watch.start()
        flow = host_a.launch("daily_sales_flow_job")
        morning = host_a.launch("uk_morning_refresh_with_backup")
        assert host_a.wait_for(flow, {"STARTED", "SUCCESS"}) == "STARTED", host_a.log_tail()
        tags = {t["key"]: t["value"] for t in host_a.graphql(RUN, {"id": flow})["runOrError"]["tags"]}
        assert tags["retail_sales/host"] == "host-a"

        # 1. Host B's server refuses before writing or migrating anything.
        host_b = Deployment(tmp_path / "b", _env(base, "host-b"))
        code = host_b.process.wait(timeout=120)
        serve_b = (host_b.logs / "serve.log").read_text(encoding="utf-8")
        assert code == 78, serve_b
        started = dt.datetime.fromtimestamp(psutil.Process(host_a.process.pid).create_time(), dt.timezone.utc)
        holder = f"host host-a, pid {host_a.process.pid}, started {started:%Y-%m-%d %H:%M:%S} UTC"
        assert holder in serve_b, serve_b
        assert not host_b.home.exists(), "the refused server wrote its home"
        assert host_a.status(flow) == "STARTED"

        # 2. B's start-up recovery, started by hand, refuses too.
        home_b = tmp_path / "b_home"
        home_b.mkdir()
        shutil.copy(host_a.home / "dagster.yaml", home_b / "dagster.yaml")
        b_env = {**_env(base, "host-b"), "DAGSTER_HOME": str(home_b)}
        recovery = subprocess.run(
            [sys.executable, "-m", "orchestration.maintenance.recovery"], cwd=REPO, env=b_env,
            capture_output=True, text=True, timeout=120,
        )
        assert recovery.returncode == 78 and holder in recovery.stdout, recovery.stdout + recovery.stderr

        # 3. B's watchdog and recovery logic, as host B, where A's processes do not exist.
        view = subprocess.run(
            ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", B_VIEW, str(home_b)],
            cwd=REPO, env=b_env, capture_output=True, text=True, timeout=180,
        )
        assert view.returncode == 0, view.stderr[-3000:]
        assert json.loads(view.stdout.strip().splitlines()[-1]) == {"watchdog": [], "recovery": []}
        assert host_a.status(flow) == "STARTED", "host B failed host A's running flow"

        # 4. A's flow ends by itself; the queued DuckDB run starts only after it.
        assert host_a.wait_for(flow, {"SUCCESS"}) == "SUCCESS", host_a.log_tail()
        assert host_a.wait_for(morning, {"SUCCESS"}) == "SUCCESS", host_a.log_tail()
        flow_start, flow_end = _times(postgres_server, postgres_db, flow)
        morning_start, _ = _times(postgres_server, postgres_db, morning)
        assert morning_start >= flow_end, "two DuckDB runs were in progress at once"
        watch.halt.set()
        watch.join(timeout=10)
        assert watch.samples > 50 and watch.most == 1, (watch.samples, watch.most)
    finally:
        watch.halt.set()
        assert host_a.stop() == 0


def test_a_killed_holders_postgres_lock_is_released_by_its_session(tmp_path, postgres_server, postgres_db):
    home = tmp_path / "home"
    home.mkdir()
    env = postgres_server.environment(postgres_db)
    settings = REPO / "deploy" / "dagster.yaml"
    probe_env = {**os.environ, **env}

    def probe() -> subprocess.CompletedProcess:
        script = "import sys; from orchestration.instance_lock import main; sys.exit(main([sys.argv[1]]))"
        (home / "dagster.yaml").write_text(settings.read_text(encoding="utf-8"), encoding="utf-8")
        return subprocess.run([sys.executable, "-c", script, str(home)], cwd=REPO, env=probe_env,
                              capture_output=True, text=True, timeout=60)

    with holding_instance_lock(home, settings, env=env) as holder:
        held = probe()
        assert held.returncode == 78 and f"pid {holder.pid}" in held.stdout, held.stdout + held.stderr
        assert postgres_server.password not in held.stdout + held.stderr
        holder.kill()
        holder.wait(timeout=30)
        deadline = time.monotonic() + 30  # the server notices the closed socket at once; allow for load
        while (free := probe()).returncode != 0 and time.monotonic() < deadline:
            time.sleep(1)
        assert free.returncode == 0 and "free" in free.stdout, free.stdout + free.stderr
