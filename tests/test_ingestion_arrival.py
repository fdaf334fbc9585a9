"""Arrival sensors against the landing folder and a real Azurite container: a new file of the watched
days starts one run of its market's ingestion and what depends on it (never the warehouse backup,
in process), a seen file does not, a changed file does again, a file the sync already holds in that
version does not; a run already in flight for the market makes the sensor wait."""

from __future__ import annotations

import os

import dagster as dg
import pytest

from orchestration.budget import arrival as budget_arrival
from orchestration.ingestion import arrival
from pipeline_common.config import load_pipeline_config

CONFIG = load_pipeline_config()


@dg.asset(name="uk_orders_azure")
def uk_orders_azure() -> None:
    """Stands in for the ingestion asset."""


@dg.asset(name="stg_uk_orders", deps=[uk_orders_azure])
def stg_uk_orders() -> None:
    """Stands in for a downstream dbt model."""


@dg.asset(name="warehouse_backup", deps=[stg_uk_orders])
def warehouse_backup() -> None:
    """Stands in for the backup: downstream of everything, never in a sensor run."""


@dg.asset(name="de_orders_azure")
def de_orders_azure() -> None:
    """Another market: must stay out of a UK run."""


@pytest.fixture
def sensor_harness(tmp_path):
    sensor = arrival.build_orders_arrival_sensor(CONFIG, "UK", dg.DefaultSensorStatus.RUNNING)
    defs = dg.Definitions(assets=[uk_orders_azure, stg_uk_orders, warehouse_backup, de_orders_azure], sensors=[sensor])
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.DagsterInstance.local_temp(str(home)) as instance:
        state = {"cursor": None}

        def tick() -> list[dg.RunRequest]:
            context = dg.build_sensor_context(instance=instance, cursor=state["cursor"], definitions=defs)
            data = sensor.evaluate_tick(context)
            state["cursor"] = data.cursor if data.cursor is not None else state["cursor"]
            return list(data.run_requests or [])

        yield instance, defs, tick


def _london_today():
    import datetime as dt
    from zoneinfo import ZoneInfo

    return dt.datetime.now(ZoneInfo("Europe/London")).date()  # pipeline.yaml timezone


def _contract_blob(market: str, day) -> str:
    """Contract section 2, written out here rather than taken from the code under test."""
    return f"{market}/raw_data/DWH/Oracle/ingest_orders/{day:%Y}/ingest_orders_{day:%Y%m%d}.csv"


def _today_blob(market: str = "UK") -> str:
    return _contract_blob(market, _london_today())


def _assert_uk_request(defs, request: dg.RunRequest) -> None:
    assert request.tags["market"] == "UK"
    assert request.tags["dbt_duckdb"] == "true", "arrival runs build dbt, so they queue behind other DuckDB runs"
    repository = defs.get_repository_def()
    job = repository.get_job(repository.get_sensor_def("uk_orders_arrival_sensor").job_name)
    assert job.name == "uk_orders_arrival_job"
    selected = set(job.asset_layer.selected_asset_keys)
    assert selected == {dg.AssetKey("uk_orders_azure"), dg.AssetKey("stg_uk_orders")}, "no backup in a sensor run"
    assert job.executor_def.name == "in_process"
    assert request.tags["pipeline/trigger"].startswith("UK orders file for ")


def test_landing_folder_new_same_and_changed_file(sensor_harness, isolated_env):
    instance, defs, tick = sensor_harness
    assert tick() == []  # nothing landed yet
    path = isolated_env / "landing" / _today_blob()
    path.parent.mkdir(parents=True)
    path.write_text("order_id\n1\n", encoding="utf-8")
    (path.parent / "ingest_orders_20000101.csv").write_text("old day\n", encoding="utf-8")

    [request] = tick()
    _assert_uk_request(defs, request)
    assert request.tags["trigger_file"] == _today_blob()
    assert tick() == []  # the same file does not trigger twice

    path.write_text("order_id\n1\n2\n", encoding="utf-8")  # re-delivered with more lines
    [again] = tick()
    assert again.run_key != request.run_key


def test_the_file_due_this_morning_triggers_unless_the_sync_already_holds_it(sensor_harness, isolated_env, monkeypatch):
    import datetime as dt

    from tests.plugins.azurite import orders_csv, run_sync_script

    instance, defs, tick = sensor_harness
    yesterday = _london_today() - dt.timedelta(days=1)
    blob = _contract_blob("UK", yesterday)
    path = isolated_env / "landing" / blob
    path.parent.mkdir(parents=True)
    path.write_text(orders_csv(yesterday, 3), encoding="utf-8")
    monkeypatch.setenv("LANDING_DIR", str(isolated_env / "landing"))
    synced = run_sync_script("--market", "UK", "--dataset", "ingest_orders", "--days-back", "3")
    assert synced.returncode == 0, synced.stderr
    assert tick() == [], "already synced in this version (as after the demo): no run"

    path.write_text(orders_csv(yesterday, 4), encoding="utf-8")  # re-delivered
    [request] = tick()
    _assert_uk_request(defs, request)
    assert request.tags["trigger_file"] == blob
    assert request.tags["pipeline/trigger"] == f"UK orders file for {yesterday} changed"


def test_waits_while_a_run_for_the_market_is_in_flight(sensor_harness, isolated_env):
    instance, defs, tick = sensor_harness
    busy = instance.create_run_for_job(
        dg.define_asset_job("busy_job", selection=["uk_orders_azure"]).resolve(asset_graph=defs.resolve_asset_graph()),
        tags={"market": "UK"},
    )
    instance.handle_run_event(busy.run_id, dg.DagsterEvent(event_type_value="PIPELINE_START", job_name="busy_job"))
    path = isolated_env / "landing" / _today_blob()
    path.parent.mkdir(parents=True)
    path.write_text("order_id\n1\n", encoding="utf-8")
    assert tick() == []
    instance.report_run_failed(instance.get_run_by_id(busy.run_id))
    [request] = tick()  # the file still triggers once the market is free
    _assert_uk_request(defs, request)


@pytest.mark.azurite
def test_azure_blob_new_same_and_changed(sensor_harness, azurite, monkeypatch):
    from azure.storage.blob import BlobServiceClient

    instance, defs, tick = sensor_harness
    container = azurite.new_container()
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    monkeypatch.setenv("AZURE_CONTAINER", container)
    with BlobServiceClient.from_connection_string(azurite.connection_string) as service:
        client = service.get_container_client(container)
        client.upload_blob(_today_blob("DE"), b"order_id\n1\n")  # other market: not ours
        assert tick() == []
        client.upload_blob(_today_blob(), b"order_id\n1\n")
        [request] = tick()
        _assert_uk_request(defs, request)
        assert tick() == []
        client.upload_blob(_today_blob(), b"order_id\n1\n2\n", overwrite=True)  # new ETag
        [again] = tick()
        assert again.run_key != request.run_key


def test_budget_workbook_sensor_triggers_on_change(isolated_env, tmp_path):
    @dg.asset(name="daily_sales_budget_exchange_ingest", group_name="budget_ingestion")
    def budget() -> None:
        """Stands in for the budget asset."""

    sensor = budget_arrival.build_budget_workbook_sensor(CONFIG, dg.DefaultSensorStatus.RUNNING)
    defs = dg.Definitions(assets=[budget], sensors=[sensor])
    cursor = None

    def tick():
        nonlocal cursor
        home = tmp_path / "home"
        home.mkdir(exist_ok=True)
        with dg.DagsterInstance.local_temp(str(home)) as instance:
            data = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs))
        cursor = data.cursor if data.cursor is not None else cursor
        return list(data.run_requests or [])

    assert tick() == []
    workbook = budget_arrival.budget_workbook_path(_london_today().year)
    workbook.parent.mkdir(parents=True)
    workbook.write_bytes(b"v1")
    assert len(tick()) == 1
    assert tick() == []
    workbook.write_bytes(b"version 2")
    os.utime(workbook, ns=(workbook.stat().st_atime_ns, workbook.stat().st_mtime_ns + 10**9))
    assert len(tick()) == 1


@pytest.mark.azurite
def test_azure_blob_with_a_sas_token_lists_with_the_syncs_credentials(sensor_harness, azurite, monkeypatch):
    """No account key in the sensor's environment: the account URL and a read+list container SAS."""
    from azure.storage.blob import BlobServiceClient

    instance, defs, tick = sensor_harness
    container = azurite.new_container()
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_URL", azurite.account_url)
    monkeypatch.setenv("AZURE_STORAGE_SAS_TOKEN", azurite.container_sas(container))
    monkeypatch.setenv("AZURE_CONTAINER", container)
    with BlobServiceClient.from_connection_string(azurite.connection_string) as service:
        assert tick() == []
        service.get_container_client(container).upload_blob(_today_blob(), b"order_id\n1\n")
        [request] = tick()
        _assert_uk_request(defs, request)
        assert tick() == []


@pytest.mark.azurite
def test_a_sas_without_list_permission_fails_the_tick_naming_the_cause(sensor_harness, azurite, monkeypatch):
    instance, defs, tick = sensor_harness
    container = azurite.new_container()
    sas = azurite.container_sas(container, permission="r")
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_URL", azurite.account_url)
    monkeypatch.setenv("AZURE_STORAGE_SAS_TOKEN", sas)
    monkeypatch.setenv("AZURE_CONTAINER", container)
    with pytest.raises(Exception) as failure:
        tick()
    text = str(failure.value)
    assert "HTTP 403" in text and "lacks read and list permission" in text
    signature = dict(p.split("=", 1) for p in sas.split("&"))["sig"]
    assert signature not in text


@pytest.fixture
def budget_sensor(tmp_path):
    @dg.asset(name="daily_sales_budget_exchange_ingest")
    def budget() -> None:
        """Stands in for the budget asset."""

    sensor = budget_arrival.build_budget_workbook_sensor(CONFIG, dg.DefaultSensorStatus.RUNNING)
    defs = dg.Definitions(assets=[budget], sensors=[sensor])
    home = tmp_path / "home"
    home.mkdir()
    with dg.DagsterInstance.local_temp(str(home)) as instance:
        state = {"cursor": None}

        def tick() -> list[dg.RunRequest]:
            data = sensor.evaluate_tick(
                dg.build_sensor_context(instance=instance, cursor=state["cursor"], definitions=defs)
            )
            state["cursor"] = data.cursor if data.cursor is not None else state["cursor"]
            return list(data.run_requests or [])

        yield tick


def test_budget_sensor_polls_the_sharepoint_drive_item_etag(budget_sensor, microsoft365, isolated_env):
    """A new version (eTag) of this year's workbook on SharePoint starts one run; the same eTag none;
    only the drive item's metadata is read, never its content."""
    workbook = f"Budget/Daily Sales Budget {_london_today().year}.xlsx"
    assert budget_sensor() == []  # not uploaded yet
    microsoft365.put(workbook, b"version 1")
    [first] = budget_sensor()
    assert first.tags["trigger_file"] == workbook.split("/")[-1]
    assert budget_sensor() == [] and budget_sensor() == []
    microsoft365.put(workbook, b"version 2")  # saved again in SharePoint: new eTag
    [second] = budget_sensor()
    assert second.run_key != first.run_key
    assert budget_sensor() == []
    assert microsoft365.steps("content") == 0 and microsoft365.downloads == []
    assert len(microsoft365.token_forms) == 1  # the token is cached between ticks
