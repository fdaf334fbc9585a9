"""Publishing with the real tableauserverclient against a local Tableau REST API double."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.plugins.tableau_server import AS_DAGSTER_ASSET, PAT_SECRET, PROJECTS, summary

FAST_RETRIES = {"TABLEAU_PUBLISH_RETRIES": "3", "TABLEAU_PUBLISH_RETRY_SECONDS": "0.05"}
SALES_EXPORT = ("--tables", "qi_executive_daily_sales", "--name", "executive_daily_sales", AS_DAGSTER_ASSET)


def assert_secret_never_shown(result: subprocess.CompletedProcess, *paths: Path) -> None:
    assert PAT_SECRET not in result.stdout
    assert PAT_SECRET not in result.stderr
    for path in paths:
        for file in path.rglob("*"):
            if file.is_file() and file.suffix != ".hyper":
                assert PAT_SECRET.encode() not in file.read_bytes(), file


def test_publish_overwrites_the_datasource_in_the_named_project(
    export_warehouse, run_export, tableau_server, isolated_env
):
    result = run_export(*SALES_EXPORT, env={**tableau_server.env(), **FAST_RETRIES})
    assert result.returncode == 0, result.stderr
    hyper = isolated_env / "exports" / "executive_daily_sales.hyper"
    assert summary(result.stdout)["published"] is True

    assert tableau_server.calls("serverinfo") >= 1
    assert tableau_server.sign_ins == [{"name": "pipeline-pat", "secret": PAT_SECRET, "site": "commercial"}]
    projects_query = next(path for kind, path in tableau_server.requests if kind == "projects")
    assert "filter=name%3Aeq%3ACommercial" in projects_query or "filter=name:eq:Commercial" in projects_query
    [published] = tableau_server.published
    assert published.name == "executive_daily_sales"
    assert published.project_id == PROJECTS["Commercial"]
    assert published.query["overwrite"] == ["true"] and published.query["datasourceType"] == ["hyper"]
    assert not published.chunked
    assert hashlib.sha256(published.content).digest() == hashlib.sha256(hyper.read_bytes()).digest()
    assert tableau_server.calls("signout") == 1
    assert not (isolated_env / "exports" / ".publish.lock").exists()
    assert_secret_never_shown(result, isolated_env)


def test_large_extract_is_uploaded_in_chunks(isolated_env, run_export, tableau_server, monkeypatch):
    warehouse = isolated_env / "big.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        # md5 text does not compress, so the extract is several MB.
        con.execute("CREATE TABLE big AS SELECT i, md5(i::VARCHAR) || md5((i * 7)::VARCHAR) AS h FROM range(120000) r(i)")
    monkeypatch.setenv("DUCKDB_PATH", str(warehouse))
    # TSC's own switches: chunk every file (threshold 0 MB), 1 MB per chunk.
    env = {**tableau_server.env(), **FAST_RETRIES, "TSC_FILESIZE_LIMIT_MB": "0", "TSC_CHUNK_SIZE_MB": "1"}
    result = run_export("--tables", "big", "--name", "big_extract", env=env)
    assert result.returncode == 0, result.stderr

    hyper = isolated_env / "exports" / "big_extract.hyper"
    assert hyper.stat().st_size > 2 * 1024 * 1024
    [published] = tableau_server.published
    assert published.chunked and published.chunks == -(-hyper.stat().st_size // (1024 * 1024))
    assert tableau_server.calls("initiate") == 1 and tableau_server.calls("append") == published.chunks
    assert "uploadSessionId" in published.query and published.query["overwrite"] == ["true"]
    assert published.content == hyper.read_bytes()
    assert_secret_never_shown(result, isolated_env)


def test_expired_session_signs_in_again_once_and_publishes(
    export_warehouse, run_export, tableau_server, isolated_env
):
    tableau_server.fail_next("publish", 401)
    result = run_export(*SALES_EXPORT, env={**tableau_server.env(), **FAST_RETRIES})
    assert result.returncode == 0, result.stderr
    assert len(tableau_server.sign_ins) == 2
    assert tableau_server.calls("publish") == 2 and len(tableau_server.published) == 1
    assert "signing in again" in result.stderr
    assert_secret_never_shown(result, isolated_env)


def test_server_errors_are_retried_with_backoff(export_warehouse, run_export, tableau_server, isolated_env):
    tableau_server.fail_next("publish", 503, 500)
    tableau_server.fail_next("projects", 502)
    result = run_export(*SALES_EXPORT, env={**tableau_server.env(), **FAST_RETRIES})
    assert result.returncode == 0, result.stderr
    assert tableau_server.calls("publish") == 3 and len(tableau_server.published) == 1
    assert tableau_server.calls("projects") == 2
    assert result.stderr.count("retry") >= 3


def test_server_down_for_good_is_transient_and_keeps_the_built_extract(
    export_warehouse, run_export, tableau_server, isolated_env
):
    tableau_server.fail_next("publish", 503, 503, 503)
    result = run_export(*SALES_EXPORT, env={**tableau_server.env(), **FAST_RETRIES})
    assert result.returncode == 75
    assert "Tableau publish failed 3 times" in result.stderr
    assert (isolated_env / "exports" / "executive_daily_sales.hyper").is_file()
    assert len(list((isolated_env / "exports" / "backup").glob("executive_daily_sales_*.hyper"))) == 1
    assert tableau_server.published == []
    assert_secret_never_shown(result, isolated_env)


def test_unknown_project_fails_clearly_as_configuration(export_warehouse, run_export, tableau_server, isolated_env):
    result = run_export(*SALES_EXPORT, env={**tableau_server.env(project="Comercial"), **FAST_RETRIES})
    assert result.returncode == 78
    assert "Tableau project 'Comercial' not found on site 'commercial'" in result.stderr
    assert tableau_server.calls("publish") == 0
    assert_secret_never_shown(result, isolated_env)


def test_permission_refused_on_publish_fails_as_configuration_without_retry(
    export_warehouse, run_export, tableau_server, isolated_env
):
    tableau_server.fail_next("publish", 403)
    result = run_export(*SALES_EXPORT, env={**tableau_server.env(), **FAST_RETRIES})
    assert result.returncode == 78
    assert "Tableau refused publishing 'executive_daily_sales' to project 'Commercial': 403004" in result.stderr
    assert tableau_server.calls("publish") == 1 and tableau_server.calls("signout") == 1
    assert_secret_never_shown(result, isolated_env)


def test_refused_token_fails_as_configuration_without_showing_it(
    export_warehouse, run_export, tableau_server, isolated_env
):
    wrong = "not-the-right-secret-value-987"
    result = run_export(*SALES_EXPORT, env={**tableau_server.env(secret=wrong), **FAST_RETRIES})
    assert result.returncode == 78
    assert "Tableau sign-in refused" in result.stderr and "TABLEAU_PAT_SECRET" in result.stderr
    assert wrong not in result.stderr and wrong not in result.stdout


def test_half_configured_tableau_names_the_missing_variables(export_warehouse, run_export, tableau_server):
    env = {**tableau_server.env(), "TABLEAU_PROJECT": ""}
    result = run_export(*SALES_EXPORT, env=env)
    assert result.returncode == 78
    assert "set TABLEAU_PROJECT" in result.stderr
    assert PAT_SECRET not in result.stderr


def test_publish_waits_for_a_live_lock_and_takes_over_a_stale_one(
    export_warehouse, run_export, tableau_server, isolated_env
):
    lock = isolated_env / "exports" / ".publish.lock"
    lock.parent.mkdir(parents=True)
    import psutil

    # Held by a live process (this test runner): the export waits, then gives up as transient.
    me = psutil.Process(os.getpid())
    lock.write_text(f"{me.pid} {me.create_time()}", encoding="ascii")
    env = {**tableau_server.env(), **FAST_RETRIES, "EXPORT_PUBLISH_LOCK_TIMEOUT_SECONDS": "1.5"}
    blocked = run_export(*SALES_EXPORT, env=env)
    assert blocked.returncode == 75
    assert "another export is publishing to Tableau" in blocked.stderr
    assert tableau_server.published == [] and lock.exists()

    # Left behind by a process that has exited: taken over.
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    lock.write_text(f"{gone.pid} 1.0", encoding="ascii")
    freed = run_export(*SALES_EXPORT, env=env)
    assert freed.returncode == 0, freed.stderr
    assert "removing stale publish lock" in freed.stderr
    assert len(tableau_server.published) == 1 and not lock.exists()


@pytest.mark.parametrize("flag", ["--no-publish"])
def test_no_publish_flag_never_contacts_the_server(export_warehouse, run_export, tableau_server, flag):
    result = run_export(*SALES_EXPORT, flag, env=tableau_server.env())
    assert result.returncode == 0, result.stderr
    assert tableau_server.requests == []
    assert "Tableau publishing skipped: --no-publish" in result.stderr


def test_placeholder_server_that_never_worked_is_a_configuration_error_at_once(
    export_warehouse, run_export, tableau_server, isolated_env
):
    """The old .env.example's tableau.example.com: no DNS name, never worked -> 78 without retrying."""
    env = {**tableau_server.env(), "TABLEAU_SERVER_URL": "https://tableau.example.invalid"}
    result = run_export(*SALES_EXPORT, env=env)
    assert result.returncode == 78, result.stderr
    assert "'tableau.example.invalid' in TABLEAU_SERVER_URL does not resolve" in result.stderr
    assert "retry" not in result.stderr.lower()
    assert (isolated_env / "exports" / "executive_daily_sales.hyper").is_file()  # built, just not published


def test_server_url_without_a_token_names_the_missing_variables_before_any_request(
    export_warehouse, run_export, tableau_server
):
    env = {**tableau_server.env(), "TABLEAU_PAT_NAME": "", "TABLEAU_PAT_SECRET": ""}
    result = run_export(*SALES_EXPORT, env=env)
    assert result.returncode == 78
    assert "set TABLEAU_PAT_NAME, TABLEAU_PAT_SECRET" in result.stderr
    assert tableau_server.calls("signin") == 0
