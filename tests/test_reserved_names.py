"""Names Windows reserves for devices (CON, NUL, COM1 ...) never become an extract's file name."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("name", ["CON", "nul", "LPT9"])
def test_a_reserved_device_name_is_a_configuration_error(name, export_warehouse, run_export, isolated_env):
    result = run_export("--tables", "qi_executive_daily_sales", "--name", name, "--no-publish")
    assert result.returncode == 78, result.stderr
    assert "reserved by Windows" in result.stderr and "Traceback" not in result.stderr
    assert not (isolated_env / "exports").exists() or not any((isolated_env / "exports").iterdir())


def test_a_name_merely_containing_one_is_fine(export_warehouse, run_export, isolated_env):
    result = run_export("--tables", "qi_executive_daily_sales", "--name", "CONSOLE_sales", "--no-publish")
    assert result.returncode == 0, result.stderr
    assert (isolated_env / "exports" / "CONSOLE_sales.hyper").is_file()
