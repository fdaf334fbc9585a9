"""Sensor evaluations end inside Dagster's deadline (60 s by default) with margin, also when a service
does not answer: the Blob listing has the SDK's retry policy set (its default waits 15 s, then 45 s, ...)."""

from __future__ import annotations

import socket
import time

import pytest

from orchestration.ingestion import arrival
from pipeline_common.script_support import ScriptError, TransientError
from tests.plugins.azurite import dev_connection_string


@pytest.fixture
def silent_port():
    """A port that accepts connections and never answers (a stalled service or proxy)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_blob_listing_in_a_sensor_gives_up_well_inside_the_tick(isolated_env, monkeypatch, silent_port, kind):
    if kind == "refused":
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]  # closed again: connections are refused
    else:
        port = silent_port
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", dev_connection_string(f"http://127.0.0.1:{port}"))
    started = time.monotonic()
    with pytest.raises(ScriptError) as raised:
        arrival.list_signatures("UK/raw_data/DWH/Oracle/ingest_orders/2026/ingest_orders_20260309.csv")
    elapsed = time.monotonic() - started
    assert isinstance(raised.value, TransientError)  # the tick is skipped with a log line, not failed
    assert elapsed < arrival.SENSOR_BUDGET_SECONDS / arrival.WATCHED_DAYS + 2, elapsed
