"""The pipeline's resource limits (`resource_limits:` in pipeline.yaml): validated, applied, and kind to the PC.

Classes covered:
- configuration: any malformed value (memory size, threads, priority, nice, spill folder leaving
  DATA_DIR, unknown key) is refused naming `resource_limits.<role>` and the field; every memory
  size the config accepts, DuckDB accepts as the same amount (generated);
- spilling: with a limit far below the data, DuckDB spills into the configured folder under
  DATA_DIR (files appear there) and the answers stay right;
- dbt: every connection dbt opens carries the configured memory_limit, threads and spill folder;
- priority: a script launched by either Pipes path runs at the configured nice value (POSIX), not
  at its parent's; with `priority: normal` it inherits its parent's; Windows gets the
  BELOW_NORMAL_PRIORITY_CLASS creation flag.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pipeline_common import resource_limits
from pipeline_common.config import ConfigError, memory_bytes, parse_pipeline_config

REPO_ROOT = Path(__file__).resolve().parents[1]
WIN32_BELOW_NORMAL_PRIORITY_CLASS = 0x00004000  # winbase.h


def _config_with(tmp_path: Path, limits: dict, name: str = "pipeline.yaml") -> Path:
    raw = yaml.safe_load((REPO_ROOT / "pipeline.yaml").read_text(encoding="utf-8"))
    raw["resource_limits"] = limits
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


BAD_VALUES = [
    ({"dbt": {"memory_limit": "lots", "threads": 2}}, "resource_limits.dbt", "memory_limit"),
    ({"dbt": {"memory_limit": "1.5", "threads": 2}}, "resource_limits.dbt", "memory_limit"),
    ({"exporter": {"memory_limit": "10MB", "threads": 2}}, "resource_limits.exporter", "memory_limit"),
    ({"backup": {"memory_limit": "1GB", "threads": 0}}, "resource_limits.backup", "threads"),
    ({"dbt": {"memory_limit": "1GB"}}, "resource_limits.dbt", "threads"),
    ({"sync": {"threads": -1}}, "resource_limits.sync", "threads"),
    ({"sync": {"datasets_at_once": 0}}, "resource_limits.sync", "datasets_at_once"),
    ({"priority": "idle"}, "resource_limits", "priority"),
    ({"nice": 25}, "resource_limits", "nice"),
    ({"temp_directory": "../outside"}, "resource_limits", "temp_directory"),
    ({"memory": "2GB"}, "resource_limits", "memory"),
    ({"step_memory": "a lot"}, "resource_limits", "step_memory"),
    # DuckDB's buffer must leave 0.65 GB of a step's memory to the run worker and dbt's Python (pipeline.yaml)
    ({"dbt": {"memory_limit": "1.5GB", "threads": 2}}, "resource_limits.dbt", "memory_limit"),
    ({"step_memory": "1GB", "exporter": {"memory_limit": "400MB", "threads": 1}, "dbt": {"memory_limit": "300MB", "threads": 1}},
     "resource_limits.exporter", "memory_limit"),
    # a default limit that does not fit: the written step_memory is named (the fix is there or in a limit to add)
    ({"step_memory": "1GB", "dbt": {"memory_limit": "300MB", "threads": 1}}, "resource_limits", "step_memory"),
    ({"step_memory": "1.5GB"}, "resource_limits", "step_memory"),
    # sizes of hundreds of digits, or past what DuckDB takes (2**64 bytes), are config errors, not a traceback
    # at load or a DuckDB error at run time
    ({"step_memory": "9" * 400 + "GB"}, "resource_limits", "step_memory"),
    ({"dbt": {"memory_limit": "9" * 400 + "GB", "threads": 2}}, "resource_limits.dbt", "memory_limit"),
    ({"step_memory": "99999999TB", "dbt": {"memory_limit": "99999990TB", "threads": 2}}, "resource_limits.dbt",
     "memory_limit"),
]


@pytest.mark.parametrize(("limits", "where", "field"), BAD_VALUES)
def test_a_bad_limit_is_refused_naming_the_entry_and_field(tmp_path, limits, where, field):
    with pytest.raises(ConfigError) as caught:
        parse_pipeline_config(_config_with(tmp_path, limits))
    message = str(caught.value)
    assert str(tmp_path / "pipeline.yaml") in message
    assert f"{where}, field '{field}'" in message


@pytest.mark.parametrize(("limits", "culprit"), [
    ({"step_memory": "1.5GB"}, "step_memory:"),  # the default dbt limit does not fit: the written line
    ({"step_memory": "2GB", "exporter": {"memory_limit": "1.5GB", "threads": 1}}, "memory_limit: 1.5GB"),
])
def test_a_limit_that_does_not_fit_names_the_line_written(tmp_path, limits, culprit):
    path = _config_with(tmp_path, limits)
    line = next(n for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if text.strip().startswith(culprit))
    with pytest.raises(ConfigError, match=rf"\(line {line}\)"):
        parse_pipeline_config(path)


@settings(max_examples=40, deadline=None)
@given(limit_mb=st.integers(64, 8000), step_mb=st.integers(64, 10000), which=st.sampled_from(["dbt", "exporter", "backup"]))
def test_a_duckdb_limit_is_accepted_exactly_when_it_leaves_the_step_its_overhead(tmp_path_factory, limit_mb, step_mb, which):
    small = {"memory_limit": "64MB", "threads": 1}
    limits = {name: small for name in ("dbt", "exporter", "backup")}
    limits[which] = {"memory_limit": f"{limit_mb}MB", "threads": 1}
    path = _config_with(tmp_path_factory.mktemp("limits"), {**limits, "step_memory": f"{step_mb}MB"})
    fits = all(mb + 650 <= step_mb for mb in (64, limit_mb))  # pipeline.yaml: 0.65 GB left around DuckDB
    try:
        parse_pipeline_config(path)
    except ConfigError as exc:
        assert not fits, str(exc)
        assert "step_memory" in str(exc) and "memory_limit" in str(exc)
    else:
        assert fits


@settings(max_examples=30, deadline=None)
@given(step_cents=st.integers(130, 6400), unit=st.sampled_from(["GB", "MB"]), spare_cents=st.sampled_from([0, -1, 1]),
       which=st.sampled_from(["dbt", "exporter", "backup"]))
@example(step_cents=201, unit="GB", spare_cents=0, which="dbt")  # 2.01GB as a float is 2,009,999,999.99... bytes
def test_a_limit_leaving_exactly_the_overhead_fits_in_decimal_sizes(tmp_path_factory, step_cents, unit, spare_cents, which):
    """step_memory 2.01GB and memory_limit 1.36GB leave exactly 0.65 GB: accepted; a cent (10 MB) more: refused."""
    scale = 1 if unit == "GB" else 1000  # the same amounts written in MB (2010.00MB)
    step = f"{step_cents * scale / 100:.2f}{unit}"
    limit_cents = step_cents - 65 - spare_cents
    small = {"memory_limit": "64MB", "threads": 1}
    limits = {name: small for name in ("dbt", "exporter", "backup")}
    limits[which] = {"memory_limit": f"{limit_cents * scale / 100:.2f}{unit}", "threads": 1}
    path = _config_with(tmp_path_factory.mktemp("cents"), {**limits, "step_memory": step})
    if spare_cents >= 0:
        parse_pipeline_config(path)
    else:
        with pytest.raises(ConfigError, match=rf"resource_limits\.{which}, field 'memory_limit'"):
            parse_pipeline_config(path)


@settings(max_examples=40, deadline=None)
@given(number=st.one_of(st.integers(64, 4000).map(str), st.decimals("0.10", "64", places=2).map(lambda d: f"{d:.2f}")),
       unit=st.sampled_from(["MB", "GB", "MiB", "GiB", "KB"]))
def test_every_memory_size_the_config_accepts_duckdb_takes_as_the_same_amount(number, unit):
    size = f"{number}{unit}"
    try:
        accepted_bytes = memory_bytes(size)
    except ValueError:
        pytest.fail(f"{size} matches the pattern but is not understood")
    if accepted_bytes < 64 * 10**6:
        return  # refused by the config (tested above)
    with duckdb.connect(config={"memory_limit": size}) as con:
        shown = con.execute("select current_setting('memory_limit')").fetchone()[0]
    # DuckDB shows the limit cut to one decimal of its own unit (65MB: "61.9 MiB"), and a tenth lower where its
    # own arithmetic lands just under a tenth (2419GB, 2.2000 TiB: "2.1 TiB"): equal to within two tenths.
    number_shown, unit_shown = shown.split()
    assert abs(memory_bytes(f"{number_shown}{unit_shown}") - accepted_bytes) <= 0.2 * memory_bytes(f"1{unit_shown}") + 1, (
        size, shown)


def test_a_small_limit_spills_into_the_folder_under_data_dir_and_answers_stay_right(tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    config = parse_pipeline_config(_config_with(tmp_path, {
        "exporter": {"memory_limit": "80MB", "threads": 1}, "temp_directory": "warehouse/spill"}))
    spill = tmp_path / "data" / "warehouse" / "spill"
    rows = 3_000_000
    with resource_limits.connect(tmp_path / "w.duckdb", "exporter", config=config) as con:
        assert con.execute("select current_setting('temp_directory')").fetchone()[0] == str(spill)
        # ~240 MB of temporary data against an 80 MB limit: DuckDB must move it to the spill folder
        con.execute(f"create temp table big as select range as i, md5(range::varchar) as s from range({rows})")
        spilled = [p for p in spill.rglob("*") if p.is_file()]
        assert spilled, "no spill file under DATA_DIR"
        listed = con.execute("select path, size from duckdb_temporary_files()").fetchall()
        assert listed and all(Path(path).parent == spill for path, _ in listed)
        # a sort and a grouping over all of it, themselves beyond the limit: exact answers
        total, distinct, first = con.execute(
            "select sum(i), count(distinct s), (select s from big order by s limit 1) from big").fetchone()
        assert total == rows * (rows - 1) // 2
        assert distinct == rows
        with duckdb.connect() as plain:  # the same answer without any limit
            expected_first = plain.execute(f"select min(md5(range::varchar)) from range({rows})").fetchone()[0]
        assert first == expected_first


def test_dbt_connections_carry_the_configured_limits(tmp_path):
    config = _config_with(tmp_path, {"dbt": {"memory_limit": "300MB", "threads": 1},
                                     "temp_directory": "scratch/duckdb"})
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBT_", "DAGSTER_"))}
    env.update(DATA_DIR=str(data), DUCKDB_PATH=str(data / "warehouse" / "analytics.duckdb"),
               PIPELINE_CONFIG=str(config), PYTHONIOENCODING="utf-8")
    from orchestration.warehouse.project import dbt_executable

    sql = ("select current_setting('memory_limit') as m, current_setting('threads') as t, "
           "current_setting('temp_directory') as d")
    done = subprocess.run(
        [dbt_executable(), "show", "--project-dir", "dbt", "--profiles-dir", "dbt", "--inline", sql,
         "--output", "json", "--log-format", "json", "--target-path", str(tmp_path / "target")],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, encoding="utf-8", timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    preview = next(json.loads(line)["data"]["preview"] for line in done.stdout.splitlines()
                   if line.startswith("{") and "preview" in json.loads(line).get("data", {}))
    (row,) = json.loads(preview)
    assert memory_bytes(row["m"].replace(" ", "")) == pytest.approx(300 * 10**6, rel=0.01)
    assert int(row["t"]) == 1
    assert Path(row["d"]) == data / "scratch" / "duckdb"


CHILD_SCRIPT = textwrap.dedent("""
    import os, sys
    from dagster_pipes import open_dagster_pipes
    with open_dagster_pipes() as pipes:
        with open(sys.argv[1], "w") as out:
            out.write(str(os.getpriority(os.PRIO_PROCESS, 0)))
        pipes.report_asset_materialization(asset_key="probe")
""")

LAUNCHER = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path
    import dagster as dg
    from orchestration.pipes_runner import run_legacy_script, stream_legacy_script

    script, out, path_kind = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    before = os.getpriority(os.PRIO_PROCESS, 0)
    if path_kind == "run":
        @dg.asset(name="probe")
        def probe(context, pipes: dg.PipesSubprocessClient):
            return run_legacy_script(context, pipes, script, [str(out)]).get_materialize_result()
    else:
        @dg.asset(name="probe")
        def probe(context):
            yield from stream_legacy_script(context, script, [str(out)])
    result = dg.materialize([probe], resources={"pipes": dg.PipesSubprocessClient()})
    print(json.dumps({"ok": result.success, "before": before, "child": int(out.read_text())}))
""")


def _launch(tmp_path: Path, path_kind: str, config: Path | None) -> dict:
    script = tmp_path / "child.py"
    script.write_text(CHILD_SCRIPT, encoding="utf-8")
    launcher = tmp_path / "launcher.py"
    launcher.write_text(LAUNCHER, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_")}
    env["DAGSTER_HOME"] = str(tmp_path / "home")
    (tmp_path / "home").mkdir(exist_ok=True)
    if config is not None:
        env["PIPELINE_CONFIG"] = str(config)
    done = subprocess.run([sys.executable, str(launcher), str(script), str(tmp_path / "nice.txt"), path_kind],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(sys.platform == "win32", reason="nice values are POSIX; Windows is covered by the flag test")
@pytest.mark.parametrize("path_kind", ["run", "stream"])
def test_a_launched_script_runs_at_the_configured_nice_value(tmp_path, path_kind):
    config = _config_with(tmp_path, {"priority": "below_normal", "nice": 13})
    seen = _launch(tmp_path, path_kind, config)
    assert seen["ok"]
    assert seen["child"] == max(13, seen["before"])


@pytest.mark.skipif(sys.platform == "win32", reason="nice values are POSIX")
def test_priority_normal_leaves_a_launched_script_at_its_parents_priority(tmp_path):
    config = _config_with(tmp_path, {"priority": "normal", "nice": 13})
    seen = _launch(tmp_path, "stream", config)
    assert seen["ok"] and seen["child"] == seen["before"]


def test_windows_children_are_created_below_normal(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "platform", "win32")
    below = parse_pipeline_config(_config_with(tmp_path, {"priority": "below_normal"}, "a.yaml"))
    normal = parse_pipeline_config(_config_with(tmp_path, {"priority": "normal"}, "b.yaml"))
    assert resource_limits.popen_kwargs(below) == {"creationflags": WIN32_BELOW_NORMAL_PRIORITY_CLASS}
    assert resource_limits.popen_kwargs(normal) == {}


def test_the_sync_sizes_pyarrows_thread_pools(tmp_path):
    import pyarrow as pa

    config = parse_pipeline_config(_config_with(tmp_path, {"sync": {"threads": 3, "datasets_at_once": 2}}))
    before = pa.cpu_count(), pa.io_thread_count()
    try:
        resource_limits.apply_arrow_threads(config)
        assert (pa.cpu_count(), pa.io_thread_count()) == (3, 3)
    finally:
        pa.set_cpu_count(before[0])
        pa.set_io_thread_count(before[1])



def test_the_exporter_reads_the_warehouse_within_its_limits(export_warehouse, isolated_env, tmp_path):
    from create_hyper_files import duckdb_to_tableau_server

    from tests.plugins.in_process import run_main
    from tests.test_hyper_export import read_hyper

    config = _config_with(tmp_path, {"exporter": {"memory_limit": "200MB", "threads": 1},
                                     "temp_directory": "spill_here"})
    query = ("SELECT current_setting('memory_limit') AS m, current_setting('threads') AS t, "
             "current_setting('temp_directory') AS d")
    # the exporter's main in this process: the limits its DuckDB connection is opened with, not its command line
    result = run_main(duckdb_to_tableau_server.main, ["--sql", query, "--name", "limits_probe", "--no-publish"],
                      env={"PIPELINE_CONFIG": str(config)})
    assert result.returncode == 0, result.stderr
    (row,) = read_hyper(isolated_env / "exports" / "limits_probe.hyper", tmp_path / "hyper")["Extract.Extract"]["rows"]
    memory, threads, folder = row
    assert memory_bytes(memory.replace(" ", "")) == pytest.approx(200 * 10**6, rel=0.01)
    assert int(threads) == 1
    assert Path(folder) == isolated_env / "spill_here"
