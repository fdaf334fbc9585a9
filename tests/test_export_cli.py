"""The export script as the analysts' ad-hoc CLI (contract section 6): list, query, dry-run, write
elsewhere, and never replace one of the pipeline's own extracts.

The rules (a refused name, query or argument, what a dry run or --out writes) run the script's main in
this process (`export_here`); the real script in a fresh interpreter (the `run_export` fixture) stays
for --list's stdout, --help, a bad argument's exit, progress on a terminal and the runs inside Dagster.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.plugins.in_process import InProcessRun, run_main
from tests.plugins.tableau_server import AS_DAGSTER_ASSET, EXPORT_SCRIPT, run_under_dagster, summary
from tests.test_hyper_export import _plain, duckdb_rows, read_hyper


def export_here(*args: str, env: dict[str, str] | None = None) -> InProcessRun:
    """The export script's main in this process (tests/plugins/in_process.py): its rules, not its CLI."""
    from create_hyper_files import duckdb_to_tableau_server

    return run_main(duckdb_to_tableau_server.main, args, env)


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under root with its bytes (an absent root is empty)."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_list_names_every_table_with_its_rows_and_columns(export_warehouse, run_export):
    result = run_export("--list")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "qi_executive_daily_sales" in out and "int_orders_summary_daily" in out
    assert "order_date  DATE" in out and "net_sales_gbp  DECIMAL(38,2)" in out and "store  VARCHAR" in out
    assert "1,000 rows" in out
    # the reserved names are listed too, with the Dagster asset that owns each
    assert "executive_daily_sales (tableau_executive_daily_sales)" in out
    assert summary(out) == {"tables": {"int_orders_summary_daily": 1000, "qi_executive_daily_sales": 4}}


def test_a_pipeline_extract_name_is_refused_and_the_production_extract_stays_byte_identical(
    export_warehouse, run_export, isolated_env, tableau_server
):
    production = run_export("--tables", "qi_executive_daily_sales", "--name", "executive_daily_sales",
                            AS_DAGSTER_ASSET, "--no-publish")
    assert production.returncode == 0, production.stderr
    before = _tree(isolated_env / "exports")

    for name in ("executive_daily_sales", "Executive_Daily_Sales"):
        # the incident: UK customer rows under the executive extract's name, with Tableau configured
        refused = export_here("--tables", "int_orders_summary_daily", "--name", name, env=tableau_server.env())
        assert refused.returncode == 65, refused.stderr
        assert "'executive_daily_sales'" in refused.stderr
        assert "tableau_executive_daily_sales" in refused.stderr
        # the way to rebuild it: through Dagster
        assert "dagster asset materialize -m orchestration.definitions --select tableau_executive_daily_sales" in refused.stderr
        assert _tree(isolated_env / "exports") == before
    # the flag the old CLI offered for this is gone: an unknown argument, nothing written
    flag = export_here("--tables", "qi_executive_daily_sales", "--name", "executive_daily_sales", "--pipeline-export",
                      "--no-publish")
    assert flag.returncode == 78 and "unrecognized arguments: --pipeline-export" in flag.stderr
    assert _tree(isolated_env / "exports") == before
    assert tableau_server.requests == []  # never signed in, let alone published

    dry = export_here("--sql", "SELECT 1 AS x", "--name", "daily_sales_summary", "--dry-run")
    assert dry.returncode == 65 and "daily_sales_tableau_export" in dry.stderr


def test_a_reserved_name_is_accepted_only_in_a_run_of_its_own_asset_with_its_own_tables(
    export_warehouse, isolated_env
):
    command = [sys.executable, str(EXPORT_SCRIPT), "--name", "executive_daily_sales", "--no-publish"]
    env = dict(os.environ)
    # a Dagster run of another export asset
    other_asset = run_under_dagster([*command, "--tables", "qi_executive_daily_sales"], "daily_sales_tableau_export",
                                    env, 180)
    assert other_asset.returncode == 65, other_asset.stderr
    assert "inside a Dagster run of that asset" in other_asset.stderr
    # its own asset, but other tables (or a query) than pipeline.yaml gives it
    for what in (["--tables", "int_orders_summary_daily"], ["--sql", "SELECT * FROM qi_executive_daily_sales"]):
        other = run_under_dagster([*command, *what], "tableau_executive_daily_sales", env, 180)
        assert other.returncode == 65, other.stderr
        assert "the extract is --tables qi_executive_daily_sales" in other.stderr
    assert not (isolated_env / "exports").exists()
    own = run_under_dagster([*command, "--tables", "qi_executive_daily_sales"], "tableau_executive_daily_sales", env, 180)
    assert own.returncode == 0, own.stderr
    assert (isolated_env / "exports" / "executive_daily_sales.hyper").is_file()


def test_sql_with_a_filter_gives_exactly_the_rows_duckdb_returns(export_warehouse, run_export, isolated_env, tmp_path):
    query = ("SELECT order_date, market, net_sales_gbp, orders FROM qi_executive_daily_sales "
             "WHERE market IN ('UK', 'JP') AND net_sales_gbp > 100")
    result = export_here("--sql", query, "--name", "uk_jp", "--no-publish")
    assert result.returncode == 0, result.stderr
    hyper_path = isolated_env / "exports" / "uk_jp.hyper"
    assert summary(result.stdout) == {
        "name": "uk_jp", "tables": {"Extract": 2}, "hyper_path": str(hyper_path), "published": False, "sql": query,
    }
    tables = read_hyper(hyper_path, tmp_path / "hyper")
    assert list(tables) == ["Extract.Extract"]
    assert tables["Extract.Extract"]["columns"] == {
        "order_date": "DATE", "market": "TEXT", "net_sales_gbp": "NUMERIC(18, 2)", "orders": "BIG_INT",
    }
    expected = sorted(duckdb_rows(export_warehouse, query))
    assert sorted(tuple(_plain(v) for v in row) for row in tables["Extract.Extract"]["rows"]) == expected
    assert len(expected) == 2


def test_a_with_query_is_a_select_too(export_warehouse, run_export, isolated_env):
    query = """
        WITH daily AS (SELECT order_date, sum(orders) AS orders FROM int_orders_summary_daily GROUP BY 1)
        SELECT * FROM daily WHERE orders > 16000  -- a comment; not a second statement
    """
    result = export_here("--sql", query, "--name", "busy_days", "--no-publish")
    assert result.returncode == 0, result.stderr
    expected = duckdb_rows(export_warehouse, query)
    assert summary(result.stdout)["tables"] == {"Extract": len(expected)} and expected


@pytest.mark.parametrize("query, says", [
    ("DELETE FROM int_orders_summary_daily", "not DELETE"),
    ("CREATE TABLE t AS SELECT 1", "not CREATE"),
    ("SELECT 1; DROP TABLE int_orders_summary_daily", "exactly one SELECT or WITH statement, got 2"),
    ("ATTACH 'other.duckdb' AS other", "not ATTACH"),
    ("COPY int_orders_summary_daily TO 'leak.csv'", "not COPY"),
])
def test_anything_but_one_select_is_refused_and_nothing_changes(
    export_warehouse, run_export, isolated_env, query, says
):
    before = export_warehouse.read_bytes()
    result = export_here("--sql", query, "--name", "nope", "--no-publish")
    assert result.returncode == 65, result.stderr
    assert says in result.stderr
    assert export_warehouse.read_bytes() == before
    assert not (isolated_env / "exports").exists()
    assert not Path("leak.csv").exists()


@pytest.mark.parametrize("query", [
    "SELECT no_such_column FROM qi_executive_daily_sales",
    "SELEC order_date FROM qi_executive_daily_sales",
    "SELECT * FROM qi_executive_daily_sale",
])
def test_a_failing_query_is_65_with_duckdbs_own_message_and_position(export_warehouse, run_export, isolated_env, query):
    with duckdb.connect(str(export_warehouse), read_only=True) as con, pytest.raises(duckdb.Error) as raised:
        con.execute(query)
    result = export_here("--sql", query, "--name", "broken", "--no-publish")
    assert result.returncode == 65
    message = str(raised.value)
    assert "LINE 1:" in message
    assert message.splitlines()[0] in result.stderr and "LINE 1:" in result.stderr
    assert not (isolated_env / "exports").exists()


def test_dry_run_shows_what_would_be_built_and_writes_nothing(
    export_warehouse, run_export, isolated_env, tmp_path, tableau_server
):
    out_dir = tmp_path / "elsewhere"
    result = export_here("--tables", "qi_executive_daily_sales", "int_orders_summary_daily", "--name", "pack",
                        "--dry-run", "--out", str(out_dir), env=tableau_server.env())
    assert result.returncode == 0, result.stderr
    got = summary(result.stdout)
    assert got["dry_run"] is True and got["published"] is False
    assert got["tables"] == {"qi_executive_daily_sales": 4, "int_orders_summary_daily": 1000}
    assert got["hyper_path"] == str(out_dir / "pack.hyper")
    assert got["columns"]["int_orders_summary_daily"] == {
        "order_date": "DATE", "market": "VARCHAR", "channel": "VARCHAR", "orders": "BIGINT",
        "net_sales_local": "DECIMAL(18,2)",
    }
    assert '"Extract"."qi_executive_daily_sales"' in result.stdout and "1,000 rows" in result.stdout
    assert "would overwrite data source 'pack'" in result.stdout
    assert not out_dir.exists() and not (isolated_env / "exports").exists()
    assert tableau_server.requests == []

    query = export_here("--sql", "SELECT market, sum(net_sales_gbp) AS net FROM qi_executive_daily_sales GROUP BY 1",
                       "--name", "by_market", "--dry-run")
    assert query.returncode == 0, query.stderr
    assert summary(query.stdout)["tables"] == {"Extract": 4}
    assert "net  DECIMAL(38,2)" in query.stdout and not (isolated_env / "exports").exists()


def test_out_writes_the_extract_and_its_backups_under_the_given_folder(export_warehouse, run_export, isolated_env,
                                                                        tmp_path):
    out_dir = tmp_path / "my extracts"
    result = export_here("--tables", "qi_executive_daily_sales", "--name", "mine", "--no-publish", "--out", str(out_dir))
    assert result.returncode == 0, result.stderr
    assert summary(result.stdout)["hyper_path"] == str(out_dir / "mine.hyper")
    assert (out_dir / "mine.hyper").is_file()
    assert [p.name.startswith("mine_") for p in (out_dir / "backup").iterdir()] == [True]
    assert sorted(p.name for p in out_dir.iterdir()) == ["backup", "mine.hyper"]
    assert not (isolated_env / "exports").exists()


def test_an_unknown_table_names_each_nearest_table_once(export_warehouse, run_export, isolated_env):
    with duckdb.connect(str(export_warehouse)) as con:
        con.execute("CREATE SCHEMA staging; CREATE TABLE staging.int_orders_summary_daily AS SELECT 1 AS x")
    result = export_here("--tables", "qi_executive_daily_sale", "int_orders_summary_dayly", "--name", "x",
                        "--no-publish")
    assert result.returncode == 65
    message = result.stderr
    assert "unknown table 'qi_executive_daily_sale'; nearest: qi_executive_daily_sales;" in message
    assert message.count("qi_executive_daily_sales") == 1
    # a name in two schemas is offered as both qualified names, each once
    assert "nearest: main.int_orders_summary_daily, staging.int_orders_summary_daily" in message
    assert "--list" in message
    assert not (isolated_env / "exports").exists()

    nothing_close = export_here("--tables", "budget", "--name", "x", "--no-publish")
    assert nothing_close.returncode == 65
    assert ("unknown table 'budget'; the warehouse has: main.int_orders_summary_daily, qi_executive_daily_sales, "
            "staging.int_orders_summary_daily") in nothing_close.stderr


@pytest.mark.parametrize("args", [
    ["--name", "x"],                                                   # neither --tables nor --sql
    ["--tables", "qi_executive_daily_sales"],                          # no --name
    ["--tables", "qi_executive_daily_sales", "--sql", "SELECT 1", "--name", "x"],
    ["--tables", "qi_executive_daily_sales", "--name", "../escape"],
    ["--list", "--name", "x"],
    ["--tables", "qi_executive_daily_sales", "--name", "x", "--lock-timeout", "soon"],
])
def test_bad_arguments_exit_78(export_warehouse, run_export, isolated_env, args):
    # the first through the real interpreter (argparse's exit code as a process's), the rest in process
    result = (run_export if args == ["--name", "x"] else export_here)(*args)
    assert result.returncode == 78, result.stderr
    assert "usage:" in result.stderr and "Traceback" not in result.stderr
    assert not (isolated_env / "exports").exists()


def test_help_has_examples_for_every_mode(run_export):
    result = run_export("--help")
    assert result.returncode == 0
    for flag in ("--list", "--sql", "--dry-run", "--out", "--no-publish", "reserved names", "exit codes"):
        assert flag in result.stdout


def _run_on_a_terminal(args: list[str]) -> tuple[int, str, str]:
    """Run the script with stderr on a pseudo-terminal (as in an analyst's console)."""
    primary, secondary = pty.openpty()
    try:
        process = subprocess.Popen([sys.executable, str(EXPORT_SCRIPT), *args], stdout=subprocess.PIPE,
                                   stderr=secondary, text=True, env=dict(os.environ))
        os.close(secondary)
        chunks = []
        while True:
            try:
                data = os.read(primary, 4096)
            except OSError:  # the terminal closed: the process is done
                break
            if not data:
                break
            chunks.append(data)
        stdout = process.stdout.read() if process.stdout else ""
        return process.wait(timeout=120), stdout, b"".join(chunks).decode("utf-8", errors="replace")
    finally:
        os.close(primary)


def test_progress_shows_on_a_terminal_only(export_warehouse, run_export, isolated_env):
    code, stdout, terminal = _run_on_a_terminal(
        ["--tables", "int_orders_summary_daily", "--name", "progress", "--no-publish"])
    assert code == 0, terminal
    assert "reading int_orders_summary_daily from DuckDB: 1,000 rows" in terminal
    assert "loading 1,000 rows into Hyper:" in terminal and " bytes (" in terminal
    assert summary(stdout)["tables"] == {"int_orders_summary_daily": 1000}

    redirected = run_export("--tables", "int_orders_summary_daily", "--name", "progress", "--no-publish")
    assert redirected.returncode == 0
    assert "reading int_orders_summary_daily" not in redirected.stderr and "\r" not in redirected.stderr
