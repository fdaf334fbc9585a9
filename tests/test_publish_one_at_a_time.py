"""README "one publisher at a time": two real exports started together both publish, one Tableau
session after the other (a PAT allows one session at a time), never interleaved."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.plugins.loopback_http import serve_on_loopback
from tests.plugins.tableau_server import EXPORT_SCRIPT, TableauServerDouble, _handler, summary

PUBLISH_SECONDS = 2.0  # a slow server: without the lock the second export would publish meanwhile


def _slow_tableau_server(state: TableauServerDouble):
    class SlowPublish(_handler(state)):
        def _publish(self, rest, query, body):
            time.sleep(PUBLISH_SECONDS)
            super()._publish(rest, query, body)

    return serve_on_loopback(SlowPublish, "slow-tableau-double")


def test_two_concurrent_exports_publish_one_session_after_the_other(export_warehouse, tmp_path):
    state = TableauServerDouble()
    with _slow_tableau_server(state) as url:
        state.url = url
        env = {**os.environ, **state.env()}
        exports = [
            subprocess.Popen(
                [sys.executable, str(EXPORT_SCRIPT), "--tables", table, "--name", name],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
            )
            for table, name in (("qi_executive_daily_sales", "adhoc_sales"), ("int_orders_summary_daily", "adhoc_summary"))
        ]
        outputs = [process.communicate(timeout=240) for process in exports]

    for process, (stdout, stderr) in zip(exports, outputs):
        assert process.returncode == 0, stderr[-3000:]
        assert summary(stdout)["published"] is True
    assert sorted(p.name for p in state.published) == ["adhoc_sales", "adhoc_summary"]
    # One session (sign-in ... sign-out) at a time: never a second sign-in before the first sign-out.
    sessions = [kind for kind, _ in state.requests if kind in ("signin", "publish", "signout")]
    assert sessions == ["signin", "publish", "signout"] * 2, sessions
