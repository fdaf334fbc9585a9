"""Fixtures: files "held open by another program" as on Windows, in-process or in a script run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.plugins.held_files_site.held_files_core import ENV_VAR, HeldFiles, windows_held_error  # noqa: F401

SITE_DIR = Path(__file__).resolve().parent / "held_files_site"


@pytest.fixture
def held_files(monkeypatch: pytest.MonkeyPatch) -> HeldFiles:
    """Patch os.replace/rename/remove/unlink in this process; `held_files.hold(pattern, failures)`."""
    monkeypatch.setenv("PIPELINE_HELD_FILE_RETRY_SECONDS", "0.3")
    held = HeldFiles()
    held.install(monkeypatch.setattr)
    return held


def held_env(held: HeldFiles, retry_seconds: float = 0.3) -> dict[str, str]:
    """Environment for a script run in which `held`'s files are held open (via sitecustomize)."""
    path = os.pathsep.join(p for p in (str(SITE_DIR), os.environ.get("PYTHONPATH", "")) if p)
    return {ENV_VAR: held.to_env(), "PYTHONPATH": path, "PIPELINE_HELD_FILE_RETRY_SECONDS": str(retry_seconds)}
