"""Test session set-up: every test runs against a private DATA_DIR, never the developer's data/."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

pytest_plugins = [
    "tests.plugins.azurite",
    "tests.plugins.sample_data",
    "tests.plugins.warehouse",
    "tests.plugins.tableau_server",
    "tests.plugins.slack_server",
    "tests.plugins.postgres",
    "tests.plugins.held_files",
    "tests.plugins.entra_graph",
    "tests.plugins.cpu_times",  # --cpu-times FILE: where the suite's CPU goes (docs/testing.md)
]

# Variables of contract section 1 that must not leak from a developer's shell or .env into tests.
PIPELINE_ENV_VARS = [
    "DATA_DIR", "LANDING_DIR", "AZURE_STORAGE_CONNECTION_STRING", "AZURE_CONTAINER", "DUCKDB_PATH",
    "AZURE_STORAGE_ACCOUNT_URL", "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH",
    "SHAREPOINT_SITE_URL", "SHAREPOINT_CLIENT_ID", "SHAREPOINT_CLIENT_SECRET", "SHAREPOINT_BUDGET_FOLDER", "SHAREPOINT_ACS_TOKEN_URL",
    "SHAREPOINT_TENANT_ID", "SHAREPOINT_CERTIFICATE_PATH", "SHAREPOINT_CERTIFICATE_THUMBPRINT",
    "SHAREPOINT_CERTIFICATE_PASSWORD", "SHAREPOINT_AUTHORITY_HOST", "SHAREPOINT_GRAPH_ENDPOINT",
    "TABLEAU_SERVER_URL", "TABLEAU_SITE_ID", "TABLEAU_PAT_NAME", "TABLEAU_PAT_SECRET", "TABLEAU_PROJECT",
    "EXPORT_LOCK_TIMEOUT_SECONDS", "EXPORT_PUBLISH_LOCK_TIMEOUT_SECONDS", "TABLEAU_PUBLISH_RETRIES",
    "TABLEAU_PUBLISH_RETRY_SECONDS", "PIPELINE_HELD_FILE_RETRY_SECONDS",
]
# Read with int() by tableauserverclient, so they are removed rather than blanked.
REMOVED_ENV_VARS = ["TSC_FILESIZE_LIMIT_MB", "TSC_CHUNK_SIZE_MB"]


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point DATA_DIR at a fresh folder and clear every pipeline variable (and Slack webhooks)."""
    from pipeline_common.config import load_pipeline_config

    webhooks = set(load_pipeline_config().alerts.routes.values())
    webhooks |= {k for k in os.environ if k.startswith("SLACK_WEBHOOK_")}
    for name in PIPELINE_ENV_VARS + sorted(webhooks) + ["DAGSTER_UI_BASE_URL"]:
        monkeypatch.setenv(name, "")  # empty counts as unset, and masks .env values
    for name in REMOVED_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    monkeypatch.setenv("DATA_DIR", str(data_dir))
    # beside tmp_path, not in it: tests list what their tmp_path holds
    monkeypatch.setenv("DBT_TARGET_PATH", str(_private_dbt_target(tmp_path_factory.mktemp("dbt_target"))))
    return data_dir


DBT_PREPARED = ("manifest.json", "partial_parse.msgpack", "semantic_manifest.json", "prepared_for.json")


def _private_dbt_target(target: Path) -> Path:
    """A dbt target folder of the test's own (dbt's DBT_TARGET_PATH, which the code location follows), seeded
    with a copy of the repo's prepared manifest: a test whose code location prepares dbt for its DATA_DIR never
    re-parses the manifest another worker's test is reading. A copy, not a hard link: `dbt parse` and
    `dbt build` write their target files in place, and would write through a link into dbt/target."""
    for name in DBT_PREPARED:
        try:
            shutil.copyfile(REPO_ROOT / "dbt" / "target" / name, target / name)
        except FileNotFoundError:
            continue
    return target


@pytest.fixture(autouse=True)
def own_priority_restored() -> Iterator[None]:
    """A test that runs a pipeline step in process lowers the test process's own priority (pipeline.yaml
    resource_limits: the run worker lowers itself); put it back, so the next test on this worker runs at the
    priority it started with (raising it back needs privileges: without them it stays lowered)."""
    if not hasattr(os, "getpriority"):
        yield
        return
    before = os.getpriority(os.PRIO_PROCESS, 0)
    yield
    if os.getpriority(os.PRIO_PROCESS, 0) != before:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, before)
        except PermissionError:
            pass


def _signal_handlers() -> dict:
    import signal

    numbers = [getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK") if hasattr(signal, name)]
    return {number: signal.getsignal(number) for number in numbers}


_WORKER_SIGNAL_HANDLERS = _signal_handlers()  # as the test process started (pytest-xdist: each worker's own)


def _restore_signal_handlers() -> None:
    import signal

    for number, handler in _WORKER_SIGNAL_HANDLERS.items():
        if handler is not None and signal.getsignal(number) is not handler:
            try:
                signal.signal(number, handler)
            except (ValueError, OSError):  # not the main thread, or not settable here
                pass


@pytest.fixture(autouse=True)
def signal_handlers_restored() -> Iterator[None]:
    """A test or fixture that runs a script's `main` or a Dagster execution in process may leave its own signal
    handlers (the supervisor's stop handler, an ignored SIGINT) on the worker; a later test's `interrupt_main()`
    then raises nothing, and its children inherit an ignored SIGINT. Every test starts and ends with the handlers
    the test process started with (also after a session fixture set up during this test changed them)."""
    _restore_signal_handlers()
    yield
    _restore_signal_handlers()


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private DAGSTER_HOME with the repo's dagster.yaml (pools, run queue, monitoring)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


# --- test tiers (docs/testing.md) ---------------------------------------------------------------
# `scripts/test.sh` runs every test; `scripts/test.sh --fast` leaves out the `scenario` tier. A test is in
# that tier when it is marked `scenario`, `e2e` or `azurite` (or its module's `pytestmark` is), or when it uses one
# of these fixtures, directly or through another fixture: a new test that starts a real service or needs the
# session's built warehouse is tiered without anyone remembering to mark it.
SCENARIO_MARKERS = ("e2e", "azurite")  # a real `dagster dev`; the Azure sync against Azurite or an unreachable one
SCENARIO_FIXTURES = frozenset({
    "azurite",          # a real Azurite (Node.js) for the session
    "postgres_server",  # a real PostgreSQL cluster (initdb) for the session
    "postgres_db",
    "built_warehouse",  # the sample landing synced, budget ingested and `dbt build` run (~1 min)
})


# And the tests measured slow: tests/tier_durations.json, written by scripts/dev/tier_durations.py from a full
# run's junit XML (the fast tier keeps the fastest tests that fit its time budget).
TIER_DURATIONS = Path(__file__).with_name("tier_durations.json")


def _recorded() -> dict:
    import json

    try:
        recorded = json.loads(TIER_DURATIONS.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return recorded if isinstance(recorded, dict) else {}


def _measured_slow() -> frozenset[str]:
    slow = _recorded().get("slow")
    return frozenset(slow) if isinstance(slow, list) else frozenset()


def _measured_seconds() -> dict[str, float]:
    seconds = _recorded().get("seconds")
    return {name: float(value) for name, value in seconds.items()} if isinstance(seconds, dict) else {}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist adds the group to the node id
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Longest first: pytest-xdist hands out tests in collection order, so a long test collected last would keep
    # one worker busy after the other ran out of work. Recorded times order the run (sort is stable: tests
    # without a record keep their order, after the recorded ones).
    seconds = _measured_seconds()
    items.sort(key=lambda item: -seconds.get(item.nodeid, 0.0))
    slow = _measured_slow()
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if item.get_closest_marker("scenario") is None and (
            any(item.get_closest_marker(name) is not None for name in SCENARIO_MARKERS) or fixtures & SCENARIO_FIXTURES
            or item.nodeid in slow
        ):
            item.add_marker(pytest.mark.scenario)
    # pytest-xdist (--dist loadgroup, scripts/test.sh) builds a fixture once per worker that runs a test using it.
    # The tests that read the session's built warehouse share one worker, so it is built once per run (~1 min);
    # the tests of a module whose module- or class-scoped fixture they share (one supervised `dagster dev`, one
    # dbt build, ...) share one worker, so that fixture runs once, not once per worker.
    sharing = {item.module.__name__ for item in items if item.module is not None and _shares_a_module_fixture(item)}
    warehouse_modules = {item.module.__name__ for item in items if "built_warehouse" in item.fixturenames}
    for item in items:
        module = item.module.__name__ if item.module is not None else None
        if "built_warehouse" in item.fixturenames or (module in sharing and module in warehouse_modules):
            item.add_marker(pytest.mark.xdist_group("built_warehouse"))
        elif module in sharing:
            item.add_marker(pytest.mark.xdist_group(module))


def _shares_a_module_fixture(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(
        definition.scope in ("module", "class", "package")
        for name in item.fixturenames
        for definition in info.name2fixturedefs.get(name, ())
    )
