"""Fixtures: a small generated landing tree (all markets, 7 days) shared by the whole test session."""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
GENERATOR_PATH = REPO_ROOT / "scripts" / "generate_sample_data.py"

SAMPLE_AS_OF = dt.date(2026, 11, 20)
SAMPLE_DAYS = 7
SAMPLE_ROWS_PER_DAY = 300
SAMPLE_SEED = 7


def load_generator() -> ModuleType:
    """scripts/ is not a package; load the generator module from its file (once)."""
    name = "generate_sample_data"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, GENERATOR_PATH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def sample_landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A landing folder (the Azure container layout): orders, reference data, SCV, budget workbook.

    Read-only for tests: copy it first if a test needs to change files.
    """
    out = tmp_path_factory.mktemp("sample_landing")
    load_generator().generate(out, SAMPLE_AS_OF, SAMPLE_DAYS, SAMPLE_ROWS_PER_DAY, SAMPLE_SEED)
    return out
