"""The export CLI's `--out` and what it may see (contract section 6; issue 26, item 4).

Classes: `--out` is a folder (existing, or a path not ending in .hyper: NAME.hyper and backup/ in it)
or the extract's own file (ends in .hyper, any case: its folder must exist, an existing file there is
kept in backup/ beside it, never lost); a production extract's file is never a target by hand; the
internal `_warehouse_*` bookkeeping tables are neither listed nor exportable.

The rules run the export script's main in this process (`export_here`); one `--out` case runs the real
script (the `run_export` fixture).
"""

from __future__ import annotations

import itertools
import string
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.plugins.tableau_server import summary
from tests.test_hyper_export import export_here, read_hyper  # export_here: the script's main in this process

SALES = ["--tables", "qi_executive_daily_sales"]


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_out_ending_in_hyper_is_the_extracts_own_file(export_warehouse, run_export, isolated_env, tmp_path):
    """The reported incident: `--out extracts/uk_week.hyper` made a folder Tableau cannot open."""
    folder = tmp_path / "extracts"
    folder.mkdir()
    result = run_export(*SALES, "--name", "uk_week", "--no-publish", "--out", str(folder / "uk_week.hyper"))
    assert result.returncode == 0, result.stderr
    target = folder / "uk_week.hyper"
    assert target.is_file()
    assert summary(result.stdout)["hyper_path"] == str(target)
    assert _files(folder) == ["uk_week.hyper"]  # no folder of that name, no build files left
    assert len(read_hyper(target, tmp_path / "read")["Extract.Extract"]["rows"]) == 4  # an extract Tableau opens
    assert not (isolated_env / "exports").exists()


def test_an_existing_file_is_kept_as_a_backup_beside_it(export_warehouse, run_export, tmp_path):
    folder = tmp_path / "extracts"
    folder.mkdir()
    target = folder / "Week.HYPER"  # the suffix in any case
    target.write_bytes(b"the analyst's earlier extract")
    result = export_here(*SALES, "--name", "week", "--no-publish", "--out", str(target))
    assert result.returncode == 0, result.stderr
    [kept] = (folder / "backup").iterdir()
    assert kept.name.startswith("Week_") and kept.read_bytes() == b"the analyst's earlier extract"
    assert target.read_bytes() != b"the analyst's earlier extract"
    assert sorted(p.name for p in folder.iterdir()) == ["Week.HYPER", "backup"]


def test_a_hyper_file_in_a_folder_that_does_not_exist_is_a_configuration_error(export_warehouse, run_export, tmp_path):
    result = export_here(*SALES, "--name", "week", "--no-publish", "--out", str(tmp_path / "nowhere" / "week.hyper"))
    assert result.returncode == 78, result.stderr
    assert f"the folder {tmp_path / 'nowhere'} does not exist" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "nowhere").exists()


def test_an_existing_folder_named_like_a_hyper_file_is_a_folder(export_warehouse, run_export, tmp_path):
    folder = tmp_path / "old.hyper"
    folder.mkdir()
    result = export_here(*SALES, "--name", "week", "--no-publish", "--out", str(folder))
    assert result.returncode == 0, result.stderr
    assert (folder / "week.hyper").is_file() and len(list((folder / "backup").iterdir())) == 1


def test_a_production_extracts_file_is_refused_as_out(export_warehouse, run_export, isolated_env):
    exports = isolated_env / "exports"
    exports.mkdir()
    production = exports / "executive_daily_sales.hyper"
    production.write_bytes(b"production")
    result = export_here("--tables", "int_orders_summary_daily", "--name", "harmless", "--no-publish",
                        "--out", str(production))
    assert result.returncode == 65, result.stderr
    assert "tableau_executive_daily_sales" in result.stderr
    assert _files(exports) == ["executive_daily_sales.hyper"] and production.read_bytes() == b"production"


# --out as contract section 6 reads it, against an oracle written from the contract's sentence.
CASES = itertools.count()
NAMES = st.text(alphabet=string.ascii_letters + string.digits + "_", min_size=1, max_size=12).filter(
    lambda s: s[0] != "_")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=NAMES, stem=NAMES, suffix=st.sampled_from(["", ".hyper", ".HYPER", ".Hyper", ".hyp", ".hyper.d", ".tde"]),
       state=st.sampled_from(["absent", "dir", "file"]), parent_exists=st.booleans())
def test_out_is_a_file_exactly_when_it_ends_in_hyper_and_is_no_folder(tmp_path, name, stem, suffix, state,
                                                                       parent_exists):
    from create_hyper_files.duckdb_to_tableau_server import output_target
    from pipeline_common.script_support import ConfigurationError

    base = tmp_path / f"case_{next(CASES)}"
    parent = base / "parent"
    if parent_exists:
        parent.mkdir(parents=True)
    out = parent / f"{stem}{suffix}"
    if parent_exists and state == "dir":
        out.mkdir()
    elif parent_exists and state == "file":
        out.write_bytes(b"x")
    names_a_file = suffix.lower() == ".hyper" and not out.is_dir()
    if names_a_file and not parent_exists:
        with pytest.raises(ConfigurationError):
            output_target(out, name)
        return
    target = output_target(out, name)
    if names_a_file:
        assert (target.hyper_path, target.folder, target.own_file) == (out, parent, True)
    else:
        assert (target.hyper_path, target.folder, target.own_file) == (out / f"{name}.hyper", out, False)


@pytest.fixture
def with_bookkeeping(export_warehouse):
    with duckdb.connect(str(export_warehouse)) as con:
        con.execute("CREATE TABLE _warehouse_state (model VARCHAR, fingerprint VARCHAR);"
                    "CREATE TABLE _warehouse_files (path VARCHAR)")
    return export_warehouse


def test_list_hides_the_internal_bookkeeping_tables(with_bookkeeping, run_export):
    result = export_here("--list")
    assert result.returncode == 0, result.stderr
    assert "_warehouse_" not in result.stdout
    assert set(summary(result.stdout)["tables"]) == {"int_orders_summary_daily", "qi_executive_daily_sales"}


@pytest.mark.parametrize("table", ["_warehouse_state", "main._warehouse_files", "_WAREHOUSE_STATE"])
def test_tables_refuses_the_internal_bookkeeping_tables(with_bookkeeping, run_export, isolated_env, table):
    result = export_here("--tables", table, "--name", "peek", "--no-publish")
    assert result.returncode == 65, result.stderr
    assert "internal bookkeeping" in result.stderr and "Traceback" not in result.stderr
    assert not (isolated_env / "exports").exists()


def test_a_typo_is_never_pointed_at_a_bookkeeping_table(with_bookkeeping, run_export):
    result = export_here("--tables", "warehouse_state", "--name", "peek", "--no-publish")
    assert result.returncode == 65
    assert "_warehouse_state" not in result.stderr.replace("'warehouse_state'", "")
