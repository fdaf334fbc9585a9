"""scripts/dev/tier_durations.py: the fast tier keeps the fastest tests that fit its budget; the rest are
recorded slow, and tests/conftest.py puts a recorded test in the `scenario` tier."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="tests.test_a" name="test_quick" time="1.0"/>
<testcase classname="tests.test_a" name="test_medium[x-1]" time="2.0"/>
<testcase classname="tests.test_b" name="test_slow" time="10.0"/>
<testcase classname="tests.test_b.TestGroup" name="test_in_class" time="0.5"/>
<testcase classname="tests.test_b" name="test_skipped" time="99.0"><skipped message="no"/></testcase>
</testsuite></testsuites>"""


def test_the_tests_past_the_budget_are_recorded_slow(tmp_path) -> None:
    junit, out = tmp_path / "run.xml", tmp_path / "tiers.json"
    junit.write_text(JUNIT, encoding="utf-8")
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "dev" / "tier_durations.py"), str(junit),
                           "--budget", "3.6", "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    recorded = json.loads(out.read_text(encoding="utf-8"))
    # 0.5 + 1.0 + 2.0 fit in 3.6 s; the 10 s test does not; a skipped test is not measured
    assert recorded["slow"] == ["tests/test_b.py::test_slow"]
    assert recorded["measured_tests"] == 4


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
