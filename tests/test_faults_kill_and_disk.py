"""Faults the scripts cannot prevent: kill -9 at seeded points, a full disk, a temp file of a live run.

After a kill the next run must succeed, leave no temporary or build files, and produce what a
clean run produces. A full disk (a small tmpfs, when the tests run as root) must end in exit 74
naming the path and the free space, with earlier outputs intact and no temporary file left.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest

from tests.plugins.azurite import LandingTree, orders_csv, orders_blob_name
from tests.plugins.fs_faults import small_disk
from tests.plugins.sample_data import SAMPLE_AS_OF

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = REPO_ROOT / "bat_file_data_refresh" / "python"
SYNC = SCRIPTS / "azure_sync" / "sync_azure.py"
BUDGET = SCRIPTS / "sharepoint_budget" / "daily_sales_ingest.py"
EXPORT = SCRIPTS / "create_hyper_files" / "duckdb_to_tableau_server.py"
SEEDS = (11, 22, 33)
DAYS = [SAMPLE_AS_OF.replace(day=d) for d in (17, 18, 19, 20)]
SYNC_ARGS = ["--market", "UK", "--dataset", "ingest_orders", "--days-back", "4", "--as-of", DAYS[-1].isoformat()]
YEAR = SAMPLE_AS_OF.year
WORKBOOK = f"Daily Sales Budget {YEAR}.xlsx"


def _env(data_dir: Path, landing: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "DATA_DIR": str(data_dir), "LANDING_DIR": str(landing), **extra}


def _run(script: Path, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(script), *args], env=env, capture_output=True, text=True,
                          timeout=600, check=False)


def _kill_at(script: Path, args: list[str], env: dict[str, str], delay: float | None = None,
             when: Callable[[], bool] | None = None, timeout: float = 60) -> bool:
    """Start the script and SIGKILL it after `delay` s or as soon as `when()` holds; True if it was killed."""
    process = subprocess.Popen([sys.executable, str(script), *args], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + (delay if delay is not None else timeout)
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if when is not None and when():
                break
            time.sleep(0.001 if when is not None else 0.01)
        if process.poll() is None:
            process.kill()  # SIGKILL; TerminateProcess on Windows
            process.wait(timeout=30)
            return True
        return False
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def _hidden(root: Path) -> list[Path]:
    """Temporary and build files: every hidden name except the export's publish lock."""
    return sorted(p for p in root.rglob(".*") if p.name != ".publish.lock")


@contextlib.contextmanager
def _live_owner() -> Iterator[tuple[int, int]]:
    """A live process (pid, start in centiseconds) to own a temporary name, killed afterwards."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        yield child.pid, int(psutil.Process(child.pid).create_time() * 100)
    finally:
        child.kill()
        child.wait(timeout=30)


def _dead_owner() -> tuple[int, int]:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    token = (child.pid, int(psutil.Process(child.pid).create_time() * 100))
    child.wait(timeout=30)
    return token


# --- sync ---------------------------------------------------------------------------------------


@pytest.fixture
def big_landing(tmp_path: Path) -> Path:
    landing = LandingTree(tmp_path / "landing")
    for index, day in enumerate(DAYS):
        landing.write(orders_blob_name("UK", day), orders_csv(day, 60_000, first_id=1 + index * 100_000))
    return landing.root


def _tables(data_dir: Path) -> dict[str, object]:
    folder = data_dir / "raw" / "UK" / "ingest_orders"
    return {p.name: pq.read_table(p) for p in sorted(folder.rglob("*.parquet"))}


@pytest.mark.timeout(600)
def test_sync_killed_at_seeded_points_recovers_on_the_next_run(tmp_path: Path, big_landing: Path) -> None:
    clean = tmp_path / "clean"
    assert _run(SYNC, SYNC_ARGS, _env(clean, big_landing)).returncode == 0
    expected = _tables(clean)

    data_dir = tmp_path / "data"
    env = _env(data_dir, big_landing)
    raw = data_dir / "raw"
    # A deterministic point: the moment a Parquet temporary file exists (mid-write), then seeded moments.
    hit = _kill_at(SYNC, SYNC_ARGS + ["--force"], env, when=lambda: any(raw.rglob(".ingest_orders_*.tmp")))
    assert hit and _hidden(raw), "the kill should have left a temporary Parquet file"
    for seed in SEEDS:
        _kill_at(SYNC, SYNC_ARGS + ["--force"], env, delay=random.Random(seed).uniform(0.3, 2.5))

    result = _run(SYNC, SYNC_ARGS, env)

    assert result.returncode == 0, result.stderr
    assert _hidden(raw) == []
    got = _tables(data_dir)
    assert list(got) == list(expected)
    for name, table in expected.items():
        assert got[name].equals(table), name


def test_a_live_syncs_temporary_file_is_left_alone(tmp_path: Path, big_landing: Path) -> None:
    data_dir = tmp_path / "data"
    folder = data_dir / "raw" / "UK" / "ingest_orders" / f"{DAYS[0]:%Y}"
    folder.mkdir(parents=True)
    dead_pid, dead_start = _dead_owner()
    stale = folder / f".ingest_orders_{DAYS[0]:%Y%m%d}.parquet.{dead_pid}-{dead_start}.0123456789ab.tmp"
    stale.write_bytes(b"half a parquet file")
    other = folder / f".someone_else.parquet.{dead_pid}-{dead_start}.0123456789ab.tmp"  # not the sync's
    other.write_bytes(b"x")
    with _live_owner() as (pid, start):
        live = folder / f".ingest_orders_{DAYS[1]:%Y%m%d}.parquet.{pid}-{start}.0123456789ab.tmp"
        live.write_bytes(b"being written")
        result = _run(SYNC, SYNC_ARGS, _env(data_dir, big_landing))
        assert result.returncode == 0, result.stderr
        assert not stale.exists(), "a dead run's temporary file must be removed"
        assert live.exists(), "a live run's temporary file must never be touched"
        assert other.exists(), "only the sync's own temporary files are removed"
    assert f"removed 1 temporary file(s) left by an interrupted run: {stale.name}" in result.stderr


# --- budget -------------------------------------------------------------------------------------


@pytest.fixture
def budget_landing(tmp_path: Path, sample_landing: Path) -> Path:
    root = tmp_path / "landing"
    (root / "sharepoint").mkdir(parents=True)
    shutil.copy(sample_landing / "sharepoint" / WORKBOOK, root / "sharepoint" / WORKBOOK)
    return root


def _new_workbook_version(path: Path) -> None:
    """Save a new version of the workbook (one budget cell changed), as an editor in Excel would."""
    import openpyxl

    book = openpyxl.load_workbook(path)
    sheet = book["Budget"]
    for row in sheet.iter_rows():
        for cell in row:
            if isinstance(cell.value, (int, float)) and not isinstance(cell.value, bool) and cell.column > 2:
                cell.value = cell.value + 1
                book.save(path)
                return
    raise AssertionError(f"no budget number to change in {path}")


def _budget_outputs(data_dir: Path) -> dict[str, bytes]:
    folder = data_dir / "raw" / "budget"
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.csv"))}


@pytest.mark.timeout(600)
def test_budget_killed_at_seeded_points_recovers_on_the_next_run(tmp_path: Path, budget_landing: Path) -> None:
    args = ["--year", str(YEAR)]
    clean = tmp_path / "clean"
    assert _run(BUDGET, args, _env(clean, budget_landing)).returncode == 0
    expected = _budget_outputs(clean)

    data_dir = tmp_path / "data"
    env = _env(data_dir, budget_landing)
    folder = data_dir / "raw" / "budget"
    dead_pid, dead_start = _dead_owner()
    folder.mkdir(parents=True)
    (folder / f".daily_sales_budget_{YEAR}.csv.{dead_pid}-{dead_start}.0123456789ab.tmp").write_text("partial")
    _kill_at(BUDGET, args, env, when=lambda: any(folder.glob(".*.tmp")))
    for seed in SEEDS:
        _kill_at(BUDGET, args, env, delay=random.Random(seed).uniform(0.3, 3.0))

    result = _run(BUDGET, args, env)

    assert result.returncode == 0, result.stderr
    assert _hidden(folder) == []
    assert _budget_outputs(data_dir) == expected


# --- export -------------------------------------------------------------------------------------


@pytest.mark.timeout(900)
def test_export_killed_at_seeded_points_recovers_on_the_next_run(tmp_path: Path, built_warehouse) -> None:
    out = tmp_path / "exports"
    args = ["--tables", "qi_executive_daily_sales", "--name", "kill_test", "--no-publish", "--out", str(out)]
    env = _env(built_warehouse.data_dir, built_warehouse.landing, DUCKDB_PATH=str(built_warehouse.duckdb_path))
    clean = _run(EXPORT, args[:-1] + [str(tmp_path / "clean")], env)
    assert clean.returncode == 0, clean.stderr
    expected_rows = json.loads(clean.stdout.strip().splitlines()[-1])["tables"]

    hit = _kill_at(EXPORT, args, env, when=lambda: any(out.glob(".build-*")))
    assert hit and list(out.glob(".build-*")), f"the kill should have left a build folder ({hit}, {list(out.iterdir()) if out.exists() else None})"
    for seed in SEEDS[:2]:
        _kill_at(EXPORT, args, env, delay=random.Random(seed).uniform(0.5, 4.0))
    with _live_owner() as (pid, start):
        live = out / f".build-kill_test.{pid}-{start}.0123456789ab"
        live.mkdir()
        result = _run(EXPORT, args, env)
        assert live.is_dir(), "a live export's build folder must never be touched"
        live.rmdir()

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["tables"] == expected_rows
    assert (out / "kill_test.hyper").is_file()
    assert _hidden(out) == []


def test_an_overlong_extract_name_is_a_configuration_error(tmp_path: Path) -> None:
    result = _run(EXPORT, ["--tables", "qi_executive_daily_sales", "--name", "x" * 300, "--no-publish"],
                  _env(tmp_path / "data", tmp_path / "landing"))
    assert result.returncode == 78
    assert "--name is 300 characters long; at most 100" in result.stderr
    assert "Traceback" not in result.stderr


# --- disk full ----------------------------------------------------------------------------------


def _fill(disk: Path, leave_bytes: int) -> None:
    free = shutil.disk_usage(disk).free
    with (disk / "filler.bin").open("wb") as handle:
        handle.write(b"\0" * max(0, free - leave_bytes))


def test_sync_on_a_full_disk_exits_74_and_keeps_earlier_files(tmp_path: Path, big_landing: Path) -> None:
    with small_disk(tmp_path / "disk", "4m") as disk:
        env = _env(disk / "data", big_landing)
        one_day = ["--market", "UK", "--dataset", "ingest_orders", "--days-back", "1", "--as-of", DAYS[0].isoformat()]
        assert _run(SYNC, one_day, env).returncode == 0
        earlier = {p: p.read_bytes() for p in (disk / "data" / "raw").rglob("*.parquet")}
        _fill(disk, 64 * 1024)

        result = _run(SYNC, SYNC_ARGS, env)

        assert result.returncode == 74, result.stderr
        assert "No space left on device" in result.stderr and "MB free on" in result.stderr
        assert "ingest_orders_202611" in result.stderr  # names the file it could not write
        assert "Traceback" not in result.stderr
        assert json.loads(result.stdout.strip().splitlines()[-1])["error"]["code"] == 74
        assert {p: p.read_bytes() for p in earlier} == earlier
        assert _hidden(disk / "data" / "raw") == []


def test_budget_on_a_full_disk_exits_74_and_keeps_earlier_files(tmp_path: Path, budget_landing: Path) -> None:
    with small_disk(tmp_path / "disk", "2m") as disk:
        env = _env(disk / "data", budget_landing)
        assert _run(BUDGET, ["--year", str(YEAR)], env).returncode == 0
        before = _budget_outputs(disk / "data")
        _new_workbook_version(budget_landing / "sharepoint" / WORKBOOK)  # else the unchanged workbook is skipped
        _fill(disk, 4 * 1024)

        result = _run(BUDGET, ["--year", str(YEAR)], env)

        assert result.returncode == 74, result.stderr
        assert "No space left on device" in result.stderr and "MB free on" in result.stderr
        assert "Traceback" not in result.stderr
        assert _budget_outputs(disk / "data") == before
        assert _hidden(disk / "data" / "raw" / "budget") == []


def test_export_on_a_full_disk_exits_74_and_leaves_no_build_folder(tmp_path: Path, built_warehouse) -> None:
    with small_disk(tmp_path / "disk", "1m") as disk:
        out = disk / "exports"
        env = _env(built_warehouse.data_dir, built_warehouse.landing, DUCKDB_PATH=str(built_warehouse.duckdb_path))
        _fill(disk, 8 * 1024)

        result = _run(EXPORT, ["--tables", "int_orders_summary_daily", "--name", "full_disk", "--no-publish",
                               "--out", str(out)], env)

        assert result.returncode == 74, result.stderr[-3000:]
        assert "MB free" in result.stderr or "GB free" in result.stderr
        assert "Traceback" not in result.stderr
        assert _hidden(out) == [] if out.exists() else True
        assert not (out / "full_disk.hyper").exists()


# A query DuckDB writes to a plain Parquet file of a few MB, and whose load into Hyper needs a few MB
# more on the same disk (the temporary Parquet sits beside the extract being built).
_HYPER_QUERY = "select i, (i * 7919 % 1000003)::varchar || 'x' as s, i % 13 as k from range(300000) t(i)"


def _plain_parquet_bytes(tmp_path: Path) -> int:
    """Size of the query's result as plain, uncompressed Parquet: what the export stages for Hyper
    (docs/exports.md)."""
    import duckdb

    probe = tmp_path / "probe.parquet"
    duckdb.connect().execute(
        f"copy ({_HYPER_QUERY}) to '{probe}' (format parquet, compression uncompressed, dictionary_size_limit 1)"
    )
    return probe.stat().st_size


@pytest.mark.parametrize(("stage", "room_after_parquet"), [("creating", 40 * 1024), ("loading", 1024 * 1024)])
def test_export_whose_disk_fills_in_the_hyper_stage_exits_74(
    tmp_path: Path, built_warehouse, stage: str, room_after_parquet: int
) -> None:
    """Hyper says only "growing the database file failed": when it creates the file, or when it writes
    a data block. Both are a full disk (74, the extract named), not bad data (65) nor a crash (1)."""
    parquet_bytes = _plain_parquet_bytes(tmp_path)
    with small_disk(tmp_path / "disk", "24m") as disk:
        out = disk / "exports"
        env = _env(built_warehouse.data_dir, built_warehouse.landing, DUCKDB_PATH=str(built_warehouse.duckdb_path))
        kept = _run(EXPORT, ["--sql", "select 1 as one", "--name", "hyper_stage", "--no-publish", "--out", str(out)], env)
        assert kept.returncode == 0, kept.stderr[-3000:]
        earlier = (out / "hyper_stage.hyper").read_bytes()
        _fill(disk, parquet_bytes + room_after_parquet)

        result = _run(EXPORT, ["--sql", _HYPER_QUERY, "--name", "hyper_stage", "--no-publish", "--out", str(out)], env)

        assert result.returncode == 74, result.stderr[-3000:]
        assert "Traceback" not in result.stderr
        error = json.loads(result.stdout.strip().splitlines()[-1])["error"]
        assert error["code"] == 74
        # the message names the extract being built (so the Parquet stage passed) and the free space
        assert "hyper_stage.hyper: No space left on device" in error["message"], error["message"]
        assert "MB free on" in error["message"]
        assert (out / "hyper_stage.hyper").read_bytes() == earlier
        assert _hidden(out) == []
