"""Analyst SQL is sandboxed: `--sql` reads the warehouse and nothing else; `--out` never writes into
the pipeline's own folders.

Class: any way a SELECT can reach outside the warehouse (file readers, globbing, URLs, ATTACH-like
table functions, extension install/load). Each is tried through the export script's main (in this
process; one refusal and the good query also through the real CLI) on a small real warehouse; the query must be refused (exit 65, DuckDB's permission message), nothing written, and
the secret text must appear nowhere in the output. A plain query over the warehouse still works.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.plugins.in_process import InProcessRun, run_main

REPO_ROOT = Path(__file__).resolve().parents[1]
EXPORT_SCRIPT = REPO_ROOT / "bat_file_data_refresh" / "python" / "create_hyper_files" / "duckdb_to_tableau_server.py"
SECRET = "s3cr3t-value-in-dotenv-0042"


@pytest.fixture
def small_warehouse(tmp_path: Path, isolated_env: Path) -> dict[str, str]:
    data_dir = tmp_path / "data"
    warehouse = data_dir / "warehouse" / "analytics.duckdb"
    warehouse.parent.mkdir(parents=True)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create table sales as select range as id, range * 2 as amount from range(5)")
    (tmp_path / ".env").write_text(f"TABLEAU_PAT_SECRET={SECRET}\n", encoding="utf-8")
    (tmp_path / "loose.csv").write_text(f"a\n{SECRET}\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TABLEAU_", "AZURE_", "SHAREPOINT_"))}
    env.update(DATA_DIR=str(data_dir), DUCKDB_PATH=str(warehouse), HOME=str(tmp_path))
    return env


def _export_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The real export CLI in a fresh interpreter with exactly `env`."""
    return subprocess.run([sys.executable, str(EXPORT_SCRIPT), *args], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)


def _export(env: dict[str, str], *args: str) -> InProcessRun:
    """The export script's main in this process (tests/plugins/in_process.py) with exactly `env` as its
    environment and the repo root as its folder, as `_export_cli` runs it; both put back afterwards."""
    from create_hyper_files import duckdb_to_tableau_server

    with pytest.MonkeyPatch.context() as patch:
        for name in set(os.environ) - set(env):
            patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        patch.chdir(REPO_ROOT)
        return run_main(duckdb_to_tableau_server.main, args)


OUTSIDE_READS = [
    "SELECT * FROM read_text('{root}/.env')",
    "SELECT * FROM read_csv('{root}/loose.csv')",
    "SELECT * FROM '{root}/loose.csv'",
    "SELECT * FROM read_blob('/etc/passwd')",
    "SELECT * FROM glob('{root}/*')",
    "SELECT * FROM read_csv('https://example.invalid/x.csv')",
    "SELECT * FROM read_parquet('{root}/data/warehouse/../../loose.csv')",
    "WITH x AS (SELECT * FROM read_text('{root}/.env')) SELECT * FROM x",
]


@pytest.mark.parametrize("query", OUTSIDE_READS)
def test_sql_that_reads_outside_the_warehouse_is_refused(small_warehouse, tmp_path, query):
    out = tmp_path / "extracts"
    out.mkdir()
    # the first query through the real CLI too: the refusal and no secret on a real process's stdout and stderr
    runs = [_export_cli, _export] if query == OUTSIDE_READS[0] else [_export, _export]
    for extra, export in zip(([], ["--dry-run"]), runs, strict=True):
        done = export(small_warehouse, "--sql", query.format(root=tmp_path.as_posix()), "--name", "adhoc",
                       "--no-publish", "--out", str(out), *extra)
        assert done.returncode == 65, (done.stdout, done.stderr)
        summary = json.loads(done.stdout.strip().splitlines()[-1])
        assert "disabled by configuration" in summary["error"]["message"] or "Permission" in summary["error"]["message"]
        assert SECRET not in done.stdout + done.stderr
        assert list(out.iterdir()) == []


def test_extension_install_is_not_a_select_and_cannot_be_smuggled(small_warehouse, tmp_path):
    out = tmp_path / "extracts"
    out.mkdir()
    done = _export(small_warehouse, "--sql", "SELECT * FROM duckdb_extensions()", "--name", "adhoc",
                   "--no-publish", "--out", str(out))
    assert done.returncode == 65, done.stderr  # listing extensions reads the extension folder: refused too
    assert list(out.iterdir()) == []


def test_sql_over_the_warehouse_still_builds_an_extract(small_warehouse, tmp_path):
    out = tmp_path / "extracts"
    out.mkdir()
    done = _export_cli(small_warehouse, "--sql", "SELECT id, amount FROM sales WHERE id < 3", "--name", "adhoc",
                   "--no-publish", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["tables"] == {"Extract": 3}
    assert (out / "adhoc.hyper").is_file()


@pytest.mark.parametrize("where", ["exports", "exports/backup", "warehouse", ".", "raw/UK"])
def test_out_inside_the_pipelines_own_folders_is_refused_and_nothing_changes(small_warehouse, where):
    data_dir = Path(small_warehouse["DATA_DIR"])
    target = data_dir / where
    target.mkdir(parents=True, exist_ok=True)
    backup = data_dir / "exports" / "backup" / "adhoc_20261120T070000.hyper"
    backup.parent.mkdir(parents=True, exist_ok=True)
    backup.write_bytes(b"production backup")
    before = sorted(p.relative_to(data_dir) for p in data_dir.rglob("*"))
    done = _export(small_warehouse, "--tables", "sales", "--name", "adhoc", "--no-publish", "--out", str(target))
    assert done.returncode == 78, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert "--out" in summary["error"]["message"] and "own folder" in summary["error"]["message"]
    assert sorted(p.relative_to(data_dir) for p in data_dir.rglob("*")) == before
    assert backup.read_bytes() == b"production backup"
