"""Strict configuration: pipeline.yaml says what it seems to say, or the pipeline refuses it (exit 78)
naming the file, the line and the fix, in every script.

Classes: duplicate keys at any depth (PyYAML keeps the last silently), YAML 1.1 scalars that are not
what was written (`NO` as false, `06:30` as 390, `010` as 8), values validated at load (time zone,
due times), names that collide after lower-casing, a config path that is a folder or not UTF-8.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline_common.config import ConfigError, parse_pipeline_config

REPO_ROOT = Path(__file__).resolve().parents[1]
TEXT = (REPO_ROOT / "pipeline.yaml").read_text(encoding="utf-8")
LINES = TEXT.splitlines()


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _line_of(prefix: str) -> int:
    return next(i for i, line in enumerate(LINES, start=1) if line.startswith(prefix))


def test_the_same_market_twice_names_both_lines(tmp_path):
    uk = _line_of("  UK: {currency: GBP}")
    text = "\n".join(LINES[:uk + 3] + ["  UK: {currency: EUR}"] + LINES[uk + 3:]) + "\n"
    with pytest.raises(ConfigError) as info:
        parse_pipeline_config(_write(tmp_path, text))
    assert f"line {uk + 4}: duplicate key 'UK' (first on line {uk})" in str(info.value)


def test_a_second_datasets_block_names_both_lines(tmp_path):
    first = _line_of("datasets:")
    text = TEXT + "\ndatasets:\n  - {market: UK, dataset: ingest_orders}\n"
    second = len(LINES) + 2
    with pytest.raises(ConfigError) as info:
        parse_pipeline_config(_write(tmp_path, text))
    assert f"line {second}: duplicate key 'datasets' (first on line {first})" in str(info.value)


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_repeated_key_is_refused_naming_both_lines(tmp_path, data):
    """Class: repeat any mapping key line of pipeline.yaml right after its block-mate; always refused."""
    candidates = [i for i, line in enumerate(LINES) if line.strip() and not line.lstrip().startswith(("#", "-"))
                  and ":" in line and not line.rstrip().endswith("|") and "sql" not in line
                  and not LINES[i].startswith(" " * 8)]
    index = data.draw(st.sampled_from(candidates))
    line = LINES[index]
    indent = len(line) - len(line.lstrip())
    end = index + 1  # the end of this key's block: the next line at the same or a lower indent
    while end < len(LINES) and (not LINES[end].strip() or len(LINES[end]) - len(LINES[end].lstrip()) > indent
                                or LINES[end].lstrip().startswith("#")):
        end += 1
    block = LINES[index:end]
    text = "\n".join(LINES[:end] + block + LINES[end:]) + "\n"
    key = line.strip().split(":", 1)[0].strip('"')
    with pytest.raises(ConfigError) as info:
        parse_pipeline_config(_write(tmp_path, text))
    assert f"line {end + 1}: duplicate key {key!r} (first on line {index + 1})" in str(info.value)


def test_yaml_1_1_scalars_stay_what_was_written(tmp_path):
    text = TEXT.replace("  JP: {currency: JPY}", "  JP: {currency: JPY}\n  NO: {currency: NOK}")
    text = text.replace('    due: "06:30"', "    due: 06:30")
    config = parse_pipeline_config(_write(tmp_path, text))
    assert "NO" in config.markets  # not the boolean False
    assert config.dataset_type("ingest_orders").due == "06:30"  # not 390 (base 60)


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("timezone: Europe/London", "timezone: Europe/Londn", "unknown time zone 'Europe/Londn'"),
    ('    due: "06:30"', '    due: "6:30"', "field 'due'"),
    ('  freshness_deadline: "07:30"', '  freshness_deadline: "24:00"', "field 'freshness_deadline'"),
    ("  UK: {currency: GBP}", "  UK: {currency: GBP}\n  uk: {currency: GBP}", "differ only in case"),
    ("  - asset: daily_sales_tableau_export", "  - asset: uk_orders_azure", "collides"),
    ("      quantity: {type: integer, min: 1, max: 100000}", "      quantity: {type: integer, min: 1, max: 1e30}",
     "'max' 1E+30 is outside what an integer column holds"),
    ("    grain: [order_line_id]", "    grain: [order_line]", "grain column 'order_line'"),
])
def test_every_value_is_validated_at_load_with_its_line(tmp_path, old, new, expected):
    assert old in TEXT
    text = TEXT.replace(old, new, 1)
    with pytest.raises(ConfigError) as info:
        parse_pipeline_config(_write(tmp_path, text))
    message = str(info.value)
    assert expected in message, message
    assert "(line " in message and "fix pipeline.yaml" in message, message


SCRIPTS = [
    [sys.executable, str(REPO_ROOT / "bat_file_data_refresh/python/azure_sync/sync_azure.py"), "--market", "UK",
     "--dataset", "ingest_orders"],
    [sys.executable, str(REPO_ROOT / "bat_file_data_refresh/python/azure_sync/sync_batch.py")],
    [sys.executable, str(REPO_ROOT / "bat_file_data_refresh/python/create_hyper_files/duckdb_to_tableau_server.py"),
     "--tables", "x", "--name", "y", "--no-publish"],
    [sys.executable, str(REPO_ROOT / "bat_file_data_refresh/python/sharepoint_budget/daily_sales_ingest.py")],
    [sys.executable, str(REPO_ROOT / "scripts/dev/generate_dbt_staging.py"), "--check"],
    [sys.executable, str(REPO_ROOT / "scripts/status.py")],
    [sys.executable, str(REPO_ROOT / "scripts/prepare_dbt.py")],
    [sys.executable, str(REPO_ROOT / "scripts/generate_sample_data.py"), "--days", "1", "--out", "unused"],
    [sys.executable, str(REPO_ROOT / "scripts/dev/generate_rejected_inputs.py"), "--check"],
]


# Each script's main as its `if __name__ == "__main__":` block calls it: (module, through script_support.run_main).
MAINS = {
    "sync_azure.py": ("azure_sync.sync_azure", False),
    "sync_batch.py": ("azure_sync.sync_batch", False),
    "duckdb_to_tableau_server.py": ("create_hyper_files.duckdb_to_tableau_server", False),
    "daily_sales_ingest.py": ("sharepoint_budget.daily_sales_ingest", False),
    "generate_dbt_staging.py": ("scripts.dev.generate_dbt_staging", True),
    "status.py": ("scripts.status", True),
    "prepare_dbt.py": ("scripts.prepare_dbt", True),
    "generate_sample_data.py": ("scripts.generate_sample_data", True),
    "generate_rejected_inputs.py": ("scripts.dev.generate_rejected_inputs", True),
}


def _run_in_process(script: list[str], monkeypatch: pytest.MonkeyPatch):
    """The script's main in this process (tests/plugins/in_process.py), entered as its command line enters it,
    from the repo root; the environment it changes (status.py sets DAGSTER_HOME) is put back after the test."""
    import importlib

    from pipeline_common import script_support
    from tests.plugins.in_process import run_main

    module_name, through_run_main = MAINS[Path(script[1]).name]
    main = importlib.import_module(module_name).main
    monkeypatch.chdir(REPO_ROOT)
    entry = (lambda argv: script_support.run_main(main, argv)) if through_run_main else main
    return run_main(entry, script[2:])


@pytest.mark.parametrize("broken", ["duplicate", "folder", "not_utf8"])
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: Path(s[1]).name)
def test_a_config_that_does_not_load_is_exit_78_with_file_and_line_in_every_script(tmp_path, isolated_env, script,
                                                                                    broken, monkeypatch):
    if broken == "duplicate":
        config = _write(tmp_path, TEXT + "\ntimezone: Europe/Paris\n")
        expected = f"line {len(LINES) + 2}: duplicate key 'timezone'"
    elif broken == "folder":
        config = tmp_path / "conf"
        config.mkdir()
        expected = "is a folder"
    else:
        config = tmp_path / "pipeline.yaml"
        config.write_bytes(TEXT.encode("utf-8") + b"\n# caf\xe9\n")
        expected = f"line {len(LINES) + 2}: not UTF-8"
    import os

    if broken == "duplicate":  # through the real interpreter: the script's own exit code and JSON line on stdout
        env = {**os.environ, "PIPELINE_CONFIG": str(config), "DAGSTER_HOME": str(tmp_path / "home")}
        done = subprocess.run(script, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    else:  # the same rule through the script's main in this process
        monkeypatch.setenv("PIPELINE_CONFIG", str(config))
        monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
        done = _run_in_process(script, monkeypatch)
    assert done.returncode == 78, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["error"]["code"] == 78
    assert str(config) in summary["error"]["message"] and expected in summary["error"]["message"]


def test_the_code_location_load_error_names_file_and_line(tmp_path, monkeypatch):
    import importlib

    import orchestration.definitions as definitions

    config = _write(tmp_path, TEXT + "\nmarkets: {}\n")
    monkeypatch.setenv("PIPELINE_CONFIG", str(config))

    with pytest.raises(ConfigError) as info:
        importlib.reload(definitions)
    assert f"{config} line {len(LINES) + 2}: duplicate key 'markets'" in str(info.value)
    monkeypatch.delenv("PIPELINE_CONFIG")
    importlib.reload(definitions)


def test_yaml_file_reads_the_same_as_the_loader_for_the_committed_config():
    """The strict loader changes nothing for the committed file (no YAML 1.1 surprise hides in it)."""
    from pipeline_common.config import _StrictLoader

    assert yaml.load(TEXT, Loader=_StrictLoader) == yaml.safe_load(TEXT)
