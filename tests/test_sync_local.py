"""sync_azure.py against the local landing folder: window, types, lineage columns, incremental state, --force.

The rules run sync_azure's main in this process (`run_sync_in_process`); the real script in a fresh
interpreter (`run_sync_script`) stays for the window's JSON line, a clock frozen at the process's start,
--help and one bad argument."""

from __future__ import annotations

import datetime as dt
import decimal
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.plugins.azurite import (
    ORDERS_HEADER,
    LandingTree,
    csv_text,
    orders_blob_name,
    orders_rows,
    run_sync_in_process,
    run_sync_script,
)
from tests.plugins.frozen_clock import frozen_clock_env

AS_OF = dt.date(2026, 11, 20)

EXPECTED_ORDERS_SCHEMA = pa.schema([
    ("order_id", pa.int64()), ("order_line_id", pa.int64()), ("order_date", pa.date32()),
    ("order_ts", pa.timestamp("us")), ("customer_id", pa.int64()), ("product_sku", pa.string()),
    ("channel", pa.string()), ("quantity", pa.int64()), ("unit_price", pa.decimal128(18, 2)),
    ("currency", pa.string()), ("status", pa.string()), ("_source_blob", pa.string()), ("_file_date", pa.date32()),
])


def output(data_dir: Path, market: str, day: dt.date, dataset: str = "ingest_orders") -> Path:
    return data_dir / "raw" / market / dataset / f"{day:%Y}" / f"{dataset}_{day:%Y%m%d}.parquet"


def synced_days(data_dir: Path, market: str = "UK") -> set[dt.date]:
    folder = data_dir / "raw" / market / "ingest_orders"
    return {dt.datetime.strptime(p.stem[-8:], "%Y%m%d").date() for p in folder.rglob("*.parquet")}


def test_window_includes_first_and_last_day_only(sync_landing: LandingTree, isolated_env: Path) -> None:
    days = [AS_OF - dt.timedelta(days=n) for n in range(-1, 4)]  # as_of+1 .. as_of-3
    for index, day in enumerate(days):
        sync_landing.write_orders("UK", day, rows=3 + index)

    result = run_sync_script("--market", "UK", "--dataset", "ingest_orders", "--days-back", "3",
                             "--as-of", AS_OF.isoformat())

    assert result.returncode == 0, result.stderr
    in_window = {AS_OF, AS_OF - dt.timedelta(days=1), AS_OF - dt.timedelta(days=2)}
    assert synced_days(isolated_env) == in_window
    expected_rows = sum(3 + i for i, day in enumerate(days) if day in in_window)
    assert result.summary == {"market": "UK", "dataset": "ingest_orders", "files_listed": 3, "files_synced": 3,
                              "files_skipped": 0, "files_failed": 0, "rows_loaded": expected_rows}
    assert list(result.summary) == ["market", "dataset", "files_listed", "files_synced", "files_skipped",
                                    "files_failed", "rows_loaded"]


def test_parquet_has_contract_types_values_and_lineage(sync_landing: LandingTree, isolated_env: Path) -> None:
    rows = orders_rows(AS_OF, 40)
    sync_landing.write("UK/raw_data/DWH/Oracle/ingest_orders/2026/ingest_orders_20261120.csv",
                  "\ufeff" + csv_text(ORDERS_HEADER, rows, newline="\r\n"))  # BOM and CRLF as Excel writes them

    result = run_sync_in_process("--market", "UK", "--dataset", "ingest_orders", "--days-back", "1",
                             "--as-of", AS_OF.isoformat())

    assert result.returncode == 0, result.stderr
    table = pq.read_table(output(isolated_env, "UK", AS_OF))
    assert table.schema.remove_metadata() == EXPECTED_ORDERS_SCHEMA
    assert table.num_rows == 40
    got = table.to_pylist()
    for row, cells in zip(got, rows):
        assert row["order_id"] == int(cells[0])
        assert row["order_date"] == dt.date.fromisoformat(cells[2])
        assert row["order_ts"] == dt.datetime.fromisoformat(cells[3])
        assert row["product_sku"] == cells[5]
        assert row["unit_price"] == decimal.Decimal(cells[8])
        assert row["status"] == cells[10]
        assert row["_source_blob"] == orders_blob_name("UK", AS_OF)
        assert row["_file_date"] == AS_OF


def test_days_back_defaults_to_pipeline_yaml(sync_landing: LandingTree, isolated_env: Path) -> None:
    # pipeline.yaml: UK ingest_orders days_back 30 -> as_of-29 is in, as_of-30 is out
    for offset in (0, 29, 30):
        sync_landing.write_orders("UK", AS_OF - dt.timedelta(days=offset))

    result = run_sync_in_process("--market", "UK", "--dataset", "ingest_orders", "--as-of", AS_OF.isoformat())

    assert result.returncode == 0, result.stderr
    assert synced_days(isolated_env) == {AS_OF, AS_OF - dt.timedelta(days=29)}


def test_as_of_defaults_to_today_in_london(sync_landing: LandingTree, isolated_env: Path) -> None:
    # 23:30 UTC on 30 June is 00:30 on 1 July in London (BST): London's date, not UTC's, ends the window.
    now = dt.datetime(2026, 6, 30, 23, 30, tzinfo=dt.timezone.utc)
    for day in (dt.date(2026, 6, 29), dt.date(2026, 6, 30), dt.date(2026, 7, 1), dt.date(2026, 7, 2)):
        sync_landing.write_orders("UK", day)

    result = run_sync_script("--market", "UK", "--dataset", "ingest_orders", "--days-back", "2",
                             env=frozen_clock_env(now))

    assert result.returncode == 0, result.stderr
    assert synced_days(isolated_env) == {dt.date(2026, 6, 30), dt.date(2026, 7, 1)}


def test_second_run_skips_changed_file_resyncs_and_force_resyncs_all(sync_landing: LandingTree, isolated_env: Path) -> None:
    days = [AS_OF - dt.timedelta(days=n) for n in range(4)]
    for day in days:
        sync_landing.write_orders("UK", day, rows=10)
    args = ("--market", "UK", "--dataset", "ingest_orders", "--days-back", "4", "--as-of", AS_OF.isoformat())
    assert run_sync_in_process(*args).returncode == 0
    stamps = {day: output(isolated_env, "UK", day).stat().st_mtime_ns for day in days}

    warm = run_sync_in_process(*args)
    assert warm.returncode == 0, warm.stderr
    assert (warm.summary["files_synced"], warm.summary["files_skipped"], warm.summary["rows_loaded"]) == (0, 4, 0)
    assert {day: output(isolated_env, "UK", day).stat().st_mtime_ns for day in days} == stamps

    changed = days[2]
    sync_landing.write_orders("UK", changed, rows=25, first_id=500)
    after_change = run_sync_in_process(*args)
    assert after_change.returncode == 0, after_change.stderr
    assert (after_change.summary["files_synced"], after_change.summary["files_skipped"]) == (1, 3)
    assert after_change.summary["rows_loaded"] == 25
    assert pq.read_table(output(isolated_env, "UK", changed)).column("order_id").to_pylist() == list(range(500, 525))
    assert all(output(isolated_env, "UK", d).stat().st_mtime_ns == stamps[d] for d in days if d != changed)

    output(isolated_env, "UK", days[0]).unlink()  # a lost Parquet is re-created even though the CSV is unchanged
    after_loss = run_sync_in_process(*args)
    assert (after_loss.summary["files_synced"], after_loss.summary["files_skipped"]) == (1, 3)
    assert output(isolated_env, "UK", days[0]).is_file()

    forced = run_sync_in_process(*args, "--force")
    assert forced.returncode == 0, forced.stderr
    assert (forced.summary["files_synced"], forced.summary["files_skipped"]) == (4, 0)
    assert forced.summary["rows_loaded"] == 10 * 3 + 25


def test_reference_dataset_uses_file_modification_date(sync_landing: LandingTree, isolated_env: Path) -> None:
    blob = "DE/raw_data/DWH/Oracle/ingest_products_sku/ingest_products_sku.csv"
    path = sync_landing.write(blob, "product_sku,product_name,category,brand\nSKU-1,Kettle,Kitchen,Acme\n"
                               'SKU-2,"Toaster, 4 slot",Kitchen,\n')
    # 23:30 UTC on 31 July is 00:30 on 1 August in London (BST): the date is London's
    modified = dt.datetime(2026, 7, 31, 23, 30, tzinfo=dt.timezone.utc)
    os.utime(path, ns=(int(modified.timestamp() * 1e9),) * 2)

    result = run_sync_in_process("--market", "DE", "--dataset", "ingest_products_sku")

    assert result.returncode == 0, result.stderr
    assert result.summary["files_listed"] == 1 and result.summary["rows_loaded"] == 2
    table = pq.read_table(isolated_env / "raw" / "DE" / "ingest_products_sku" / "ingest_products_sku.parquet")
    assert table.column("product_name").to_pylist() == ["Kettle", "Toaster, 4 slot"]
    assert table.column("brand").to_pylist() == ["Acme", None]  # an empty cell is null
    assert set(table.column("_file_date").to_pylist()) == {dt.date(2026, 8, 1)}
    assert run_sync_in_process("--market", "DE", "--dataset", "ingest_products_sku").summary["files_skipped"] == 1


def test_missing_reference_file_is_an_error(sync_landing: LandingTree) -> None:
    result = run_sync_in_process("--market", "UK", "--dataset", "ingest_new_names")
    assert result.returncode == 65
    assert "UK/raw_data/DWH/Oracle/ingest_new_names/ingest_new_names.csv was not found" in result.stderr


def test_header_only_file_is_rejected(sync_landing: LandingTree, isolated_env: Path) -> None:
    # A day with no order lines at all is an export fault: it must never replace a good day with nothing.
    sync_landing.write(orders_blob_name("UK", AS_OF), ",".join(ORDERS_HEADER) + "\n")

    result = run_sync_in_process("--market", "UK", "--dataset", "ingest_orders", "--days-back", "1",
                             "--as-of", AS_OF.isoformat())

    assert result.returncode == 65, result.stderr
    assert "line 2: the file has a header but no data rows" in result.stderr
    assert (result.summary["files_failed"], result.summary["rows_loaded"]) == (1, 0)
    assert not output(isolated_env, "UK", AS_OF).exists()


def test_monthly_dataset_window(sync_landing: LandingTree, isolated_env: Path) -> None:
    header = "customer_id,segment,lifetime_orders,lifetime_value_gbp\n"
    for month in (dt.date(2026, 8, 1), dt.date(2026, 9, 1), dt.date(2026, 11, 1)):
        sync_landing.write(orders_blob_name("UK", month, dataset="ingest_scv"), header + "1,VIP,12,1234.50\n")

    result = run_sync_in_process("--market", "UK", "--dataset", "ingest_scv", "--days-back", "70",
                             "--as-of", AS_OF.isoformat())  # window 2026-09-12 .. 2026-11-20

    assert result.returncode == 0, result.stderr
    folder = isolated_env / "raw" / "UK" / "ingest_scv" / "2026"
    assert sorted(p.name for p in folder.iterdir()) == ["ingest_scv_20261101.parquet"]
    assert pq.read_table(folder / "ingest_scv_20261101.parquet").column("lifetime_value_gbp").to_pylist() == [
        decimal.Decimal("1234.50")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--market", "XX", "--dataset", "ingest_orders"], "XX/ingest_orders is not configured"),
        (["--market", "DE", "--dataset", "ingest_new_names"], "DE/ingest_new_names is not configured"),
        (["--market", "UK", "--dataset", "ingest_orders", "--as-of", "20-11-2026"], "expected a date YYYY-MM-DD"),
        (["--market", "UK", "--dataset", "ingest_orders", "--days-back", "0"], "--days-back must be between 1 and 3660"),
    ],
)
def test_bad_arguments_exit_78(sync_landing: LandingTree, args: list[str], message: str) -> None:
    # the unknown market through the real interpreter (argparse and the script's exit), the rest in process
    result = (run_sync_script if args[1] == "XX" else run_sync_in_process)(*args)
    assert result.returncode == 78
    assert message in result.stderr


def test_help_shows_examples() -> None:
    result = run_sync_script("--help")
    assert result.returncode == 0
    assert "examples:" in result.stdout and "--as-of 2026-11-20" in result.stdout
