"""scripts/dev/tier_durations.py: the fast tier keeps the fastest tests that fit its budget; the rest are
recorded slow, and tests/conftest.py puts a recorded test in the `scenario` tier."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="tests.test_a" name="test_quick" time="1.0"/>
<testcase classname="tests.test_a" name="test_medium[x-1]" time="2.0"/>
<testcase classname="tests.test_b" name="test_slow" time="10.0"/>
<testcase classname="tests.test_b.TestGroup" name="test_in_class" time="0.5"/>
<testcase classname="tests.test_c" name="test_grouped[a@b]@built_warehouse" time="20.0"/>
<testcase classname="tests.test_b" name="test_skipped" time="99.0"><skipped message="no"/></testcase>
</testsuite></testsuites>"""


def test_the_tests_past_the_budget_are_recorded_slow(tmp_path) -> None:
    junit, out = tmp_path / "run.xml", tmp_path / "tiers.json"
    junit.write_text(JUNIT, encoding="utf-8")
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "dev" / "tier_durations.py"), str(junit),
                           "--budget", "3.6", "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    recorded = json.loads(out.read_text(encoding="utf-8"))
    # 0.5 + 1.0 + 2.0 fit in 3.6 s; the 10 s and 20 s tests do not; a skipped test is not measured; the node id
    # is pytest's, without pytest-xdist's group suffix
    assert recorded["slow"] == ["tests/test_b.py::test_slow", "tests/test_c.py::test_grouped[a@b]"]
    assert recorded["measured_tests"] == 5
    assert recorded["seconds"] == {"tests/test_a.py::test_quick": 1.0, "tests/test_a.py::test_medium[x-1]": 2.0,
                                   "tests/test_b.py::test_slow": 10.0, "tests/test_c.py::test_grouped[a@b]": 20.0}


def test_a_recorded_slow_test_is_in_the_scenario_tier() -> None:
    from tests.conftest import _measured_slow

    listed = sorted(_measured_slow())
    files = sorted({name.split("::")[0] for name in listed})[:3]
    wanted = [name for name in listed if name.split("::")[0] in files]

    def collect(tier: str) -> str:
        done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                               "-m", tier, *files], cwd=REPO, capture_output=True, text=True, timeout=300)
        return done.stdout

    slow_tier, fast_tier = collect("scenario"), collect("not scenario")
    assert wanted and all(name in slow_tier.splitlines() for name in wanted), slow_tier
    assert not any(name in fast_tier.splitlines() for name in wanted), fast_tier


SHARED_FIXTURE_TESTS = '''
import os, pytest

@pytest.fixture(scope="module")
def expensive(tmp_path_factory):
    with open(os.environ["SETUPS_FILE"], "a", encoding="utf-8") as out:
        out.write(f"{os.getpid()}\\n")
    return 1

@pytest.mark.parametrize("n", range(8))
def test_uses_it(expensive, n):
    assert expensive == 1

@pytest.mark.parametrize("n", range(8))
def test_alone(n):
    assert n >= 0
'''


def test_a_module_fixture_is_set_up_once_when_its_tests_run_on_two_workers(tmp_path) -> None:
    """pytest-xdist sets a fixture up on each worker that runs a test using it: the project's collection hook
    keeps a module's tests that share a module-scoped fixture (a supervised dagster dev, a dbt build) on one."""
    (tmp_path / "conftest.py").write_text("from tests.conftest import pytest_collection_modifyitems  # noqa: F401\n",
                                          encoding="utf-8")
    (tmp_path / "test_shared.py").write_text(SHARED_FIXTURE_TESTS, encoding="utf-8")
    setups = tmp_path / "setups.txt"
    env = {**os.environ, "SETUPS_FILE": str(setups), "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "--dist",
                           "loadgroup", "--rootdir", str(tmp_path), str(tmp_path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "16 passed" in done.stdout, done.stdout[-2000:]
    assert len(setups.read_text(encoding="utf-8").splitlines()) == 1


def test_the_longest_recorded_tests_are_collected_first() -> None:
    """pytest-xdist hands tests out in collection order: the recorded longest go first, so no long test starts
    last and keeps one worker busy alone."""
    recorded = json.loads((REPO / "tests" / "tier_durations.json").read_text(encoding="utf-8"))["seconds"]
    files = sorted({name.split("::")[0] for name in recorded})[:6]
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *files],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    collected = [line for line in done.stdout.splitlines() if "::" in line]
    timed = [recorded[name] for name in collected if name in recorded]
    assert len(timed) >= 2 and timed == sorted(timed, reverse=True), timed
    # every recorded test comes before every test without a record
    first_unrecorded = next((i for i, name in enumerate(collected) if name not in recorded), len(collected))
    assert all(name not in recorded for name in collected[first_unrecorded:])
