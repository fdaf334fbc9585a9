"""Checks setup.bat runs before pip touches the venv (standard library only: nothing is installed yet).

- a repo path so long that the deepest file pip installs would pass Windows' 260-character limit
  (long paths not enabled): exit 78 now, instead of an obscure failure halfway through pip;
- a server (or any Python) still running from this .venv: its loaded .pyd files cannot be replaced,
  so pip would leave the venv half upgraded: exit 75, stop it first (scripts\\pause_pipeline.bat);
- a repo, DATA_DIR or Dagster home inside OneDrive (files-on-demand, sync conflicts while DuckDB
  writes) or on a mapped drive letter (it does not exist in the scheduled task's logon session):
  a WARNING with the fix, exit 0. scripts/doctor.py shows the same warnings.

    python scripts/check_install_path.py [--repo PATH]
"""

from __future__ import annotations

import argparse
import json
import ntpath
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import NoReturn

REPO_ROOT = Path(__file__).resolve().parents[1]
WINDOWS_MAX_PATH = 259
"""Longest path Windows accepts without long-path support (MAX_PATH 260 with the terminating NUL)."""
DEEPEST_SITE_PACKAGES_FILE = 165
"""Characters of the longest file path inside site-packages that requirements.txt installs: the compiled
bytecode of one of office365's intune models (`...\\__pycache__\\<module>.cpython-3XX.pyc`; the set-up, like
pip, writes every .pyc at install). tests/test_check_install_path.py measures the installed venv and keeps
this honest."""
SITE_PACKAGES = r".venv\Lib\site-packages"
EXIT_OK, EXIT_TRANSIENT, EXIT_CONFIG = 0, 75, 78
LOADED_MODULES = ("pydantic_core", "duckdb", "psutil", "pyarrow", "tableauhyperapi")
"""Packages with native modules the server always has loaded."""
DRIVE_REMOTE = 4  # GetDriveTypeW


def deepest_install_path(repo: str) -> int:
    return len(ntpath.join(repo, SITE_PACKAGES)) + 1 + DEEPEST_SITE_PACKAGES_FILE


def long_path_problem(repo: str, long_paths_enabled: bool) -> str | None:
    length = deepest_install_path(repo)
    if length <= WINDOWS_MAX_PATH or long_paths_enabled:
        return None
    return (f"the repo path is too long for Windows: pip would write paths of {length} characters "
            f"(limit {WINDOWS_MAX_PATH + 1}) under {ntpath.join(repo, SITE_PACKAGES)} | fix: move the repo to a "
            "short folder such as C:\\pipelines\\daily-sales, or enable long paths (elevated PowerShell: "
            "New-ItemProperty -Path HKLM:\\SYSTEM\\CurrentControlSet\\Control\\FileSystem -Name LongPathsEnabled "
            "-Value 1 -PropertyType DWORD -Force; then sign out and in)")


def loaded_native_modules(site_packages: Path, try_open: Callable[[Path], None] | None = None) -> list[Path]:
    """Native modules of the venv that another process has loaded (Windows refuses to open them for writing)."""
    opener = try_open or (lambda path: path.open("r+b").close())
    held = []
    for package in LOADED_MODULES:
        for module in sorted((site_packages / package).glob("*.pyd"))[:3]:
            try:
                opener(module)
            except PermissionError:
                held.append(module)
            except OSError:
                continue
    return held


def _under(path: str, folder: str) -> bool:
    path, folder = ntpath.normcase(ntpath.normpath(path)), ntpath.normcase(ntpath.normpath(folder))
    return path == folder or path.startswith(folder.rstrip("\\") + "\\")


def location_warnings(named: Iterable[tuple[str, str]], env: Mapping[str, str],
                      drive_type: Callable[[str], int]) -> list[str]:
    """A WARNING line for each (label, Windows path) inside OneDrive or on a mapped network drive."""
    clouds = [env[name] for name in ("OneDrive", "OneDriveCommercial", "OneDriveConsumer") if env.get(name)]
    warnings = []
    for label, path in named:
        if not path:
            continue
        cloud = next((c for c in clouds if _under(path, c)), None)
        if cloud or any(part.lower().startswith("onedrive") for part in ntpath.normpath(path).split("\\")[1:]):
            warnings.append(
                f"{label} {path} is inside OneDrive: files-on-demand and sync conflicts can pull or lock "
                "the warehouse and Parquet files while the pipeline writes them | fix: move it to a local "
                "folder (e.g. C:\\pipelines\\daily-sales, DATA_DIR=C:\\pipeline-data)")
        drive, _ = ntpath.splitdrive(path)
        if len(drive) == 2 and drive[1] == ":" and drive_type(drive + "\\") == DRIVE_REMOTE:
            warnings.append(
                f"{label} {path} is on the mapped drive {drive}, which does not exist in the scheduled "
                "task's logon session | fix: use the UNC path (\\\\server\\share\\...) instead of the drive letter")
    return warnings


def _drive_type(root: str) -> int:  # pragma: no cover - Windows only
    if os.name != "nt":
        return 0
    import ctypes

    return ctypes.windll.kernel32.GetDriveTypeW(root)


def _long_paths_enabled() -> bool:  # pragma: no cover - Windows only
    if os.name != "nt":
        return True
    import winreg

    try:
        with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, r"SYSTEM\CurrentControlSet\Control\FileSystem") as key:
            return winreg.QueryValueEx(key, "LongPathsEnabled")[0] == 1
    except OSError:
        return False


def _dotenv_value(repo: Path, name: str) -> str:
    """A value from the repo's .env, read without python-dotenv (not installed yet)."""
    try:
        lines = (repo / ".env").read_text(encoding="utf-8-sig").splitlines()
    except OSError:
        return ""
    for line in lines:
        key, sep, value = line.strip().removeprefix("export ").partition("=")
        if sep and key.strip() == name:
            return value.strip().strip("'\"")
    return ""


class _ArgumentParser(argparse.ArgumentParser):
    """Wrong arguments are a configuration error (78) with the JSON line (contract section 8); the
    project's own parser (pipeline_common.script_support) is not importable before set-up."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print(json.dumps({"error": {"code": EXIT_CONFIG, "message": f"{self.prog}: {message}"}}))
        self.exit(EXIT_CONFIG, f"{self.prog}: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    parser = _ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=REPO_ROOT, help="the repo folder (default: this one)")
    args = parser.parse_args(argv)
    repo = args.repo.resolve()
    if os.name == "nt":  # the 260-character limit and loaded .pyd files are Windows' rules
        problem = long_path_problem(str(repo), _long_paths_enabled())
        if problem:
            print(f"PROBLEM  {problem}", file=sys.stderr)
            return EXIT_CONFIG
        held = loaded_native_modules(repo / ".venv" / "Lib" / "site-packages")
        if held:
            print(f"PROBLEM  a Python process is running from this .venv (it has {held[0]} loaded), so pip "
                  "would leave the venv half upgraded | fix: stop it first (scripts\\pause_pipeline.bat "
                  "stops the server and its tasks; scripts\\resume_pipeline.bat starts them again), then run "
                  "set-up again", file=sys.stderr)
            return EXIT_TRANSIENT
    data_dir = os.environ.get("DATA_DIR") or _dotenv_value(repo, "DATA_DIR")
    named = [("the repo", str(repo)), ("DATA_DIR", data_dir), ("DAGSTER_HOME", os.environ.get("DAGSTER_HOME", ""))]
    for warning in location_warnings(named, os.environ, _drive_type):
        print(f"WARNING  {warning}")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
