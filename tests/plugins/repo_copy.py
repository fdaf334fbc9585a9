"""A copy of the project's Python packages in a temporary folder, for tests that need their own `.env`
or `pipeline.yaml` beside the code (settings.repo_root() is the folder holding `pipeline_common/`).

The packages are installed from the real checkout, so a script run from the copy would import the real
ones; PYTHONPATH (read by Python at start, ahead of the installed packages) makes it import the copy's.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_FOLDERS = ("pipeline_common", "bat_file_data_refresh")
"""The core library and the legacy script packages: what the legacy scripts import."""


def copy_packages(root: Path) -> Path:
    """Copy the core library and the legacy scripts under `root`; return `root`."""
    for folder in PACKAGE_FOLDERS:
        shutil.copytree(REPO_ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def copy_import_path(root: Path) -> str:
    """PYTHONPATH under which a script of the copy at `root` imports the copy's packages."""
    return os.pathsep.join([str(root), str(root / "bat_file_data_refresh" / "python")])
