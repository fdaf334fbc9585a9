"""Where the suite's CPU goes: `--cpu-times FILE` records each test's CPU seconds (docs/testing.md, "Suite time").

The suite is CPU-bound on 2 cores (its wall time is about its CPU seconds over 2), so a test's cost is its CPU,
not its wall time (a test that waits on a sensor costs little; the other workers use the cores meanwhile).
Each test appends one JSON line to FILE: its node id, wall seconds, the test process's own CPU seconds
(user + system) and its children's (the processes it started and waited for, with their own waited-for
children). Processes a test kills without waiting for, and their children (a killed `dagster dev`'s run
workers), are not counted: the figures of the end-to-end tests are a floor. With pytest-xdist every
worker appends to the same FILE (one short write per line); the summary at the end lists the files that
cost the most.

    scripts/test.sh --cpu-times /tmp/cpu.jsonl        # then the top files are printed at the end
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--cpu-times", metavar="FILE", default=None,
                     help="append each test's CPU seconds (own and children's) to FILE as JSON lines")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    out = item.config.getoption("cpu_times")
    if not out:
        yield
        return
    before, started = os.times(), time.monotonic()
    yield
    after, wall = os.times(), time.monotonic() - started
    line = {
        "test": item.nodeid.split("@", 1)[0],  # without pytest-xdist's group suffix
        "wall": round(wall, 3),
        "own": round((after.user - before.user) + (after.system - before.system), 3),
        "children": round((after.children_user - before.children_user)
                          + (after.children_system - before.children_system), 3),
    }
    with open(out, "a", encoding="utf-8") as file:  # one write per line: workers never interleave a line
        file.write(json.dumps(line) + "\n")


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    out = config.getoption("cpu_times")
    if not out or hasattr(config, "workerinput"):  # the summary once, by the controller
        return
    by_file: Counter[str] = Counter()
    count: Counter[str] = Counter()
    try:
        lines = Path(out).read_text(encoding="utf-8").splitlines()
    except OSError:
        return
    for text in lines:
        try:
            line = json.loads(text)
            seconds = float(line["own"]) + float(line["children"])
            name = str(line["test"]).split("::", 1)[0]
        except (ValueError, KeyError, TypeError):
            continue
        by_file[name] += seconds
        count[name] += 1
    total = sum(by_file.values())
    terminalreporter.write_sep("-", f"CPU seconds by test file ({out}): {total:.0f} s in {sum(count.values())} tests")
    for name, seconds in by_file.most_common(15):
        terminalreporter.write_line(f"{seconds:8.1f} s  {count[name]:4d} tests  {name}")
