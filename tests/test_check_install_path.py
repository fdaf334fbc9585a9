"""scripts/check_install_path.py, run by setup.bat before pip: a path too long for Windows, a server
still running from the venv, and a repo / DATA_DIR / home in OneDrive or on a mapped drive."""

from __future__ import annotations

import importlib.util
import ntpath
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "check_install_path.py"
from scripts import check_install_path as check


def _deepest_installed_file() -> str:
    """The longest file path inside this venv's site-packages (same packages as on Windows), counting each
    module's compiled .pyc, which the set-up writes at install whether or not this venv has it yet."""
    site = Path(sysconfig.get_paths()["purelib"])
    files = [p for p in site.rglob("*") if p.is_file()]
    files += [Path(importlib.util.cache_from_source(str(p))) for p in files if p.suffix == ".py"]
    return max((str(p.relative_to(site)).replace("/", "\\") for p in files), key=len)


DEEPEST = _deepest_installed_file()


@given(depth=st.integers(min_value=3, max_value=200))
def test_a_repo_path_is_refused_before_pip_exactly_when_pips_deepest_file_would_pass_260(depth):
    repo = "C:\\" + ("d" * (depth - 3))
    real_path = ntpath.join(repo, r".venv\Lib\site-packages", DEEPEST)
    problem = check.long_path_problem(repo, long_paths_enabled=False)
    # exact: when the pinned packages change their deepest file, update DEEPEST_SITE_PACKAGES_FILE
    assert bool(problem) == (len(real_path) > 259), (len(real_path), DEEPEST, problem)
    if problem:
        assert "too long" in problem and "C:\\pipelines\\daily-sales" in problem
    assert check.long_path_problem(repo, long_paths_enabled=True) is None


def test_the_repo_of_the_issue_is_under_the_limit():
    assert check.long_path_problem(r"C:\Users\Seán O'Brien\OneDrive - Retail (UK) & Co\pipeline (prod)", False) is None


def _warnings(paths, env=None, remote=()):
    return check.location_warnings(paths, env or {}, lambda root: 4 if root[:2].upper() in remote else 3)


def test_onedrive_by_variable_or_by_folder_name_is_a_warning():
    env = {"OneDriveCommercial": r"C:\Users\ana\Retail Co"}
    (by_var,) = _warnings([("DATA_DIR", r"c:\users\ana\retail co\data")], env)
    assert by_var.startswith(r"DATA_DIR c:\users\ana\retail co\data is inside OneDrive") and "fix:" in by_var
    (by_name,) = _warnings([("the repo", r"C:\Users\ana\OneDrive - Retail (UK) & Co\pipeline")])
    assert "inside OneDrive" in by_name


def test_a_mapped_drive_letter_is_a_warning_naming_the_unc_fix():
    (warning,) = _warnings([("DATA_DIR", r"Z:\pipeline-data")], remote={"Z:"})
    assert "mapped drive Z:" in warning and "logon session" in warning and "UNC" in warning


def test_local_and_unc_paths_are_fine():
    assert _warnings([("the repo", r"C:\pipelines\daily-sales"), ("DATA_DIR", r"\\srv\share\data"),
                      ("DAGSTER_HOME", "")], {"OneDrive": r"C:\Users\ana\OneDrive"}) == []


def test_a_loaded_native_module_means_a_running_server(tmp_path: Path):
    (tmp_path / "duckdb").mkdir()
    (tmp_path / "duckdb" / "duckdb.cp311-win_amd64.pyd").write_bytes(b"MZ")

    def sharing_violation(path: Path) -> None:
        raise PermissionError(13, "The process cannot access the file because it is being used by another process")

    assert check.loaded_native_modules(tmp_path, sharing_violation) == [tmp_path / "duckdb" / "duckdb.cp311-win_amd64.pyd"]
    assert check.loaded_native_modules(tmp_path) == []  # nobody holds it


def test_the_script_warns_and_exits_0_on_linux(tmp_path: Path):
    env = {**os.environ, "OneDrive": str(tmp_path), "DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"WARNING  DATA_DIR {tmp_path / 'data'} is inside OneDrive" in result.stdout


@pytest.mark.skipif(os.name != "nt", reason="Windows only: the 260-character rule (covered above by long_path_problem)")
def test_on_windows_the_script_passes_for_this_checkout():  # pragma: no cover - Windows twin
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert result.returncode in (0, 75), result.stderr


def test_the_limit_is_exact_at_the_boundary():
    tail = len(ntpath.join("C:\\", r".venv\Lib\site-packages", DEEPEST)) - len("C:\\")
    for extra in range(-2, 3):
        repo = "C:\\" + "d" * (259 - tail - 3 + extra)  # 259 - the part below the repo, give or take
        real_path = ntpath.join(repo, r".venv\Lib\site-packages", DEEPEST)
        assert bool(check.long_path_problem(repo, long_paths_enabled=False)) == (len(real_path) > 259), len(real_path)
