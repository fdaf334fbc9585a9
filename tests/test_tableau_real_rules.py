"""Tableau as the real service answers, with the real tableauserverclient against the strict double:
the Default site, one session per personal access token (a publish and the deadline sensor's warnings
never end each other's session), data quality warnings that need Data Management, the per-asset and
per-type warning rules by version, warnings updated and deleted by id (others' untouched), a proxy's
HTML page, and HTTPS with a private CA trusted only through the OS trust store path."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import pytest

from pipeline_common.script_support import ConfigurationError, TransientError
from pipeline_common.tableau import warnings as dqw
from pipeline_common.tableau.session import tableau_settings
from tests.plugins.loopback_http import serve_on_loopback
from tests.test_hyper_export import export_here  # the export script's main in this process: for its rules
from tests.plugins.tableau_server import (
    EXPORT_SCRIPT,
    PAT_SECRET,
    TableauServerDouble,
    _handler,
    server_tls,
    summary,
)

FAST = {"TABLEAU_PUBLISH_RETRIES": "3", "TABLEAU_PUBLISH_RETRY_SECONDS": "0.05"}
SALES_EXPORT = ("--tables", "qi_executive_daily_sales", "--name", "sales_adhoc")  # an analyst's export
LOG = logging.getLogger("test.tableau")


def _configure(monkeypatch: pytest.MonkeyPatch, server: TableauServerDouble, **extra: str) -> None:
    for name, value in {**server.env(), "TABLEAU_PUBLISH_RETRY_SECONDS": "0", **extra}.items():
        monkeypatch.setenv(name, value)


def _analyst_warning(server: TableauServerDouble, name: str, kind: str = "MAINTENANCE") -> dict:
    datasource_id = server.datasources[name][0]
    warning = {"id": f"dqw-analyst-{kind.lower()}", "type": kind, "message": "Budget being revised",
               "isActive": "true", "isSevere": "false", "contentId": datasource_id}
    server.dqws.setdefault(datasource_id, []).append(warning)
    return dict(warning)


# --- the Default site --------------------------------------------------------------------------------

@pytest.mark.parametrize("spelling", ["default", "Default", "DEFAULT"])
def test_default_site_signs_in_with_the_empty_content_url(
    export_warehouse, run_export, tableau_server, isolated_env, spelling
):
    tableau_server.site_content_url = ""  # most Tableau Server installations publish to the Default site
    env = {**tableau_server.env(), **FAST, "TABLEAU_SITE_ID": spelling}
    result = export_here(*SALES_EXPORT, env=env)
    assert result.returncode == 0, result.stderr
    assert [s["site"] for s in tableau_server.sign_ins] == [""]
    assert summary(result.stdout)["published"] is True


# --- HTTPS, certificates, proxies, http:// -------------------------------------------------------------

def test_unverifiable_certificate_is_a_configuration_error_naming_host_and_fix_not_retried(
    export_warehouse, run_export, tableau_server, isolated_env, tmp_path
):
    other_ca = tmp_path / "empty-store.pem"  # an OS store without the proxy's CA (e.g. IT has not deployed it)
    from tests.plugins.entra_graph import _make_pki

    other = _make_pki(tmp_path)
    other_ca.write_bytes(other.ca_path.read_bytes())
    started = time.monotonic()
    # the real script: SSL_CERT_FILE stands for the OS trust store a fresh process reads
    result = run_export(*SALES_EXPORT, env={**tableau_server.env(), **FAST, "SSL_CERT_FILE": str(other_ca),
                                            "TABLEAU_PUBLISH_RETRY_SECONDS": "5"})
    assert result.returncode == 78, result.stderr
    assert "certificate of 127.0.0.1" in result.stderr and "TABLEAU_SERVER_URL" in result.stderr
    assert "certificate store" in result.stderr  # the fix
    assert time.monotonic() - started < 60  # no retry with backoff (3 x 5 s+)
    assert tableau_server.requests == []  # the handshake failed before any request
    assert PAT_SECRET not in result.stderr + result.stdout


@pytest.mark.parametrize("status", [403, 407])
def test_a_proxy_or_sso_page_instead_of_tableau_is_a_named_configuration_error(
    export_warehouse, run_export, tableau_server, isolated_env, status
):
    tableau_server.proxy_page(status)
    result = export_here(*SALES_EXPORT, env={**tableau_server.env(), **FAST})
    assert result.returncode == 78, result.stderr  # TSC's NonXMLResponseError, never a traceback with 1
    assert "not Tableau's REST API" in result.stderr and "Contoso Access Gateway" in result.stderr
    assert "Traceback" not in result.stderr
    assert summary(result.stdout)["error"]["code"] == 78


def test_http_url_is_refused_for_the_pat_except_on_loopback(export_warehouse, run_export, tableau_server, isolated_env):
    env = {**tableau_server.env(), **FAST, "TABLEAU_SERVER_URL": "http://tableau.contoso.example"}
    result = export_here(*SALES_EXPORT, env=env)
    assert result.returncode == 78
    assert "clear text" in result.stderr and "https://" in result.stderr
    assert tableau_server.requests == []


# --- one session per personal access token -------------------------------------------------------------

def test_warnings_never_end_a_running_publish_session(export_warehouse, isolated_env, microsoft_pki, monkeypatch):
    """A publish in flight at the deadline: the sensor's warnings wait for (or defer behind) the PAT's
    session, so the double, which ends a PAT's session at its next sign-in, never ends the publish's."""
    from tests.plugins.tableau_server import trust_private_ca

    state = TableauServerDouble()
    trust_private_ca(monkeypatch, microsoft_pki)
    published = {"started": False}

    class SlowPublish(_handler(state)):
        def _publish(self, rest, query, body):
            published["started"] = True
            time.sleep(4.0)
            super()._publish(rest, query, body)

    with serve_on_loopback(SlowPublish, "slow-tableau", tls=server_tls(microsoft_pki)) as url:
        state.url = url
        state.add_datasource("daily_sales_summary")
        _configure(monkeypatch, state)
        export = subprocess.Popen(
            [sys.executable, str(EXPORT_SCRIPT), *SALES_EXPORT], env={**os.environ, **FAST},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
        )
        deadline = time.monotonic() + 120
        while not published["started"] and time.monotonic() < deadline and export.poll() is None:
            time.sleep(0.05)
        assert published["started"], export.communicate()[1][-2000:]
        with pytest.raises(TransientError, match="holds the Tableau session"):
            dqw.sync_warnings(tableau_settings(), {"daily_sales_summary": "late"}, LOG, lock_wait=0.5)
        stdout, stderr = export.communicate(timeout=120)
        assert export.returncode == 0, stderr[-3000:]
        assert state.ended_sessions == 0 and state.calls("signin") == 1
        # Once the publish is done, the next tick's warnings go through.
        outcome = dqw.sync_warnings(tableau_settings(), {"daily_sales_summary": "late"}, LOG)
        assert outcome == {"daily_sales_summary": True}
        assert state.ended_sessions == 0  # the publish had signed out: nothing left to end


# --- data quality warnings: licence, rules by version, ours only ---------------------------------------

def test_without_data_management_the_refusal_is_recorded_once_and_never_asked_again(
    tableau_server, isolated_env, monkeypatch
):
    tableau_server.data_management = False
    tableau_server.add_datasource("daily_sales_summary")
    _configure(monkeypatch, tableau_server)
    settings = tableau_settings()
    assert dqw.sync_warnings(settings, {"daily_sales_summary": "late"}, LOG) == {"daily_sales_summary": None}
    asked = len(tableau_server.requests)
    for _ in range(3):  # the next ticks
        assert dqw.sync_warnings(settings, {"daily_sales_summary": "late"}, LOG) == {"daily_sales_summary": None}
    assert len(tableau_server.requests) == asked  # no sign-in, no call
    line = dqw.availability_text(settings)
    assert "NOT AVAILABLE" in line and "Data Management" in line and "403157" in line
    # status.py says it too.
    status = subprocess.run([sys.executable, "scripts/status.py", "--dagster-home", str(isolated_env / "home")],
                            capture_output=True, text=True, encoding="utf-8", timeout=180,
                            cwd=os.path.dirname(os.path.dirname(__file__)))
    assert "Tableau data quality warnings: NOT AVAILABLE" in status.stdout, status.stderr[-2000:]
    # And the doctor, which signs in (holding the PAT's lock) and reports the recorded refusal as a problem.
    doctor = subprocess.run([sys.executable, "scripts/doctor.py", "--check", "tableau"], capture_output=True,
                            text=True, encoding="utf-8", timeout=180, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert doctor.returncode == 1 and "NOT AVAILABLE" in doctor.stdout and "Data Management" in doctor.stdout
    assert PAT_SECRET not in doctor.stdout + doctor.stderr


def test_ours_is_updated_in_place_and_deleted_by_id_and_others_keep_their_history(tableau_server, isolated_env, monkeypatch):
    tableau_server.add_datasource("daily_sales_summary")
    _configure(monkeypatch, tableau_server)
    theirs = _analyst_warning(tableau_server, "daily_sales_summary")
    settings = tableau_settings()
    assert dqw.sync_warnings(settings, {"daily_sales_summary": "UK late"}, LOG) == {"daily_sales_summary": True}
    [ours] = [w for w in tableau_server.warnings_on("daily_sales_summary") if w["type"] == "STALE"]
    assert dqw.sync_warnings(settings, {"daily_sales_summary": "UK and DE late"}, LOG) == {"daily_sales_summary": True}
    [updated] = [w for w in tableau_server.warnings_on("daily_sales_summary") if w["type"] == "STALE"]
    assert updated["id"] == ours["id"] and updated["message"].endswith("UK and DE late")  # same warning, updated
    assert tableau_server.calls("dqw_update") == 1 and tableau_server.calls("dqw_add") == 1
    assert dqw.sync_warnings(settings, {"daily_sales_summary": None}, LOG) == {"daily_sales_summary": False}
    assert tableau_server.warnings_on("daily_sales_summary") == [theirs]  # theirs: same id, never re-created
    assert tableau_server.calls("dqw_delete") == 0  # never the by-content DELETE that clears everyone's


@pytest.mark.parametrize("version, theirs_type, ours_added", [
    ("2024.2.0", "MAINTENANCE", False),  # one warning per data source: theirs is there, ours waits
    ("2023.3.5", "STALE", False),
    ("2024.3.0", "MAINTENANCE", True),  # one warning per type: a MAINTENANCE one leaves room for STALE
    ("2025.1.0", "STALE", False),  # but not for a second STALE
])
def test_the_servers_warning_count_rule_is_followed(tableau_server, isolated_env, monkeypatch, caplog,
                                                    version, theirs_type, ours_added):
    tableau_server.product_version = version
    tableau_server.add_datasource("daily_sales_summary")
    _configure(monkeypatch, tableau_server)
    theirs = _analyst_warning(tableau_server, "daily_sales_summary", theirs_type)
    with caplog.at_level(logging.WARNING):
        outcome = dqw.sync_warnings(tableau_settings(), {"daily_sales_summary": "late"}, LOG)
    assert outcome == {"daily_sales_summary": True if ours_added else None}
    now = tableau_server.warnings_on("daily_sales_summary")
    assert theirs in now and len(now) == (2 if ours_added else 1)
    if not ours_added:
        assert "left as it is" in caplog.text and tableau_server.calls("dqw_add") == 0


def test_a_refusal_that_is_not_about_the_licence_stays_a_configuration_error(tableau_server, isolated_env, monkeypatch):
    tableau_server.add_datasource("daily_sales_summary")
    _configure(monkeypatch, tableau_server)
    tableau_server.fail_next("dqw_add", 403)  # the token's user may not edit the data source
    with pytest.raises(ConfigurationError, match="refused the data quality warning"):
        dqw.sync_warnings(tableau_settings(), {"daily_sales_summary": "late"}, LOG)
    assert dqw.recorded_availability(tableau_settings()) is None or dqw.recorded_availability(tableau_settings()).available
