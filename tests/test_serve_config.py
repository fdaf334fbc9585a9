"""scripts/serve.py refuses to start without its Postgres settings, and says when Postgres is down."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.plugins.loopback_http import free_port

REPO = Path(__file__).resolve().parents[1]
SERVE = REPO / "scripts" / "serve.py"


def _serve(tmp_path: Path, **postgres: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_POSTGRES_")}
    env.update({f"DAGSTER_POSTGRES_{k.upper()}": v for k, v in postgres.items()})
    return subprocess.run(
        [sys.executable, str(SERVE), "--dagster-home", str(tmp_path / "home"), "--log-dir", str(tmp_path / "logs"),
         "--port", str(free_port()), "--code-server-port", str(free_port())],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=180,
    )


def test_a_missing_postgres_variable_is_named_and_exits_78(tmp_path):
    result = _serve(tmp_path, host="127.0.0.1", user="dagster", db="dagster", password="")
    assert result.returncode == 78
    assert "DAGSTER_POSTGRES_PASSWORD not set" in result.stdout
    assert not (tmp_path / "home").exists(), "nothing is written before the settings are complete"


def test_postgres_down_at_start_is_transient_75_and_starts_nothing(tmp_path):
    secret = "pw-that-must-not-leak"
    result = _serve(tmp_path, host="127.0.0.1", port=str(free_port()), user="dagster", db="dagster", password=secret)
    assert result.returncode == 75, result.stdout[-2000:]
    log = (tmp_path / "logs" / "serve.log").read_text()
    # The instance lock is the first thing that needs Postgres: it names where it looked.
    assert "the Postgres instance dagster at 127.0.0.1:" in log and "is unreachable" in log and "try again later" in log
    assert "started, pid" not in log
    assert secret not in log and secret not in result.stdout + result.stderr
    assert not (tmp_path / "home").exists(), "nothing is written before the instance is locked"


def test_the_code_servers_bind_and_advertised_address_are_configuration(tmp_path, monkeypatch):
    from scripts import serve

    monkeypatch.delenv("DAGSTER_CODE_SERVER_BIND", raising=False)
    cases = [
        ([], "127.0.0.1", "127.0.0.1"),  # loopback by default
        (["--code-server-host", "0.0.0.0"], "0.0.0.0", "127.0.0.1"),
        (["--code-server-host", "10.1.2.3"], "10.1.2.3", "10.1.2.3"),
        (["--code-server-host", "0.0.0.0", "--code-server-address", "srv-a.example"], "0.0.0.0", "srv-a.example"),
    ]
    for argv, bind, advertised in cases:
        args = serve.parse_args(argv)
        command = serve.service_commands(args, tmp_path)[serve.CODE_SERVER]
        assert command[command.index("-h") + 1] == bind, argv
        assert serve.code_server_address(args) == advertised, argv
    monkeypatch.setenv("DAGSTER_CODE_SERVER_BIND", "10.9.9.9")
    command = serve.service_commands(serve.parse_args([]), tmp_path)[serve.CODE_SERVER]
    assert command[command.index("-h") + 1] == "10.9.9.9"
