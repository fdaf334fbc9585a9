"""Record which tests are slow, for the test tiers (docs/testing.md): `scripts/test.sh --fast` leaves them out.

    scripts/test.sh --junitxml=/tmp/tests.xml              # a full run, with each test's time
    .venv/bin/python scripts/dev/tier_durations.py /tmp/tests.xml

Writes tests/tier_durations.json: the tests whose time, added up from the fastest on, no longer fits the
fast tier's budget (--budget, default 180 s of test time: 2 workers, under 2 minutes). tests/conftest.py
puts those in the `scenario` tier, beside the tests it tiers by marker and fixture. A new test is in the
fast tier until the file is recorded again; mark a test you know to be slow `scenario` at once.
It also writes each test's time from a second up: the run starts the longest tests first.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "tier_durations.json"
ORDER_FROM_SECONDS = 1.0


def node_id(case: ET.Element) -> str:
    """pytest's node id from a junit <testcase> (classname tests.test_x, name test_y[param])."""
    parts = case.get("classname", "").split(".")
    name = case.get("name") or ""
    if name.rfind("@") > name.rfind("]"):  # pytest-xdist's group suffix (--dist loadgroup): test_y@group
        name = name[: name.rfind("@")]
    if parts[-1][:1].isupper():  # a test class: tests.test_x.TestY
        return f"{'/'.join(parts[:-1])}.py::{parts[-1]}::{name}"
    return f"{'/'.join(parts)}.py::{name}"


def main(argv: list[str] | None = None) -> int:
    from pipeline_common.script_support import ArgumentParser

    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("junit_xml", type=Path, help="pytest --junitxml output of a full run")
    parser.add_argument("--budget", type=float, default=180.0, help="seconds of test time the fast tier may take")
    parser.add_argument("--source", default="", help="how the measured run was made (machine, workers, load), kept in the file")
    parser.add_argument("--out", type=Path, default=OUT, help=f"where to write (default {OUT.relative_to(REPO)})")
    args = parser.parse_args(argv)
    try:
        root = ET.parse(args.junit_xml).getroot()
    except (OSError, ET.ParseError) as exc:
        print(f"{args.junit_xml}: cannot read it as a junit XML file: {exc}", file=sys.stderr)
        return 65
    times = {}
    for case in root.iter("testcase"):
        if case.find("skipped") is None:
            times[node_id(case)] = times.get(node_id(case), 0.0) + float(case.get("time") or 0)
    if not times:
        print(f"{args.junit_xml}: no test cases", file=sys.stderr)
        return 65
    spent, slow = 0.0, []
    for name, seconds in sorted(times.items(), key=lambda item: (item[1], item[0])):
        spent += seconds
        if spent > args.budget:
            slow.append(name)
    # Each test of a second or more with its time: tests/conftest.py starts the longest first (pytest-xdist).
    seconds = {name: round(value, 1) for name, value in sorted(times.items()) if value >= ORDER_FROM_SECONDS}
    recorded = {"budget_seconds": args.budget, "measured_tests": len(times), "source": args.source,
                "slow": sorted(slow), "seconds": seconds}
    args.out.write_text(json.dumps(recorded, indent=1) + "\n", encoding="utf-8")
    print(f"{len(slow)} of {len(times)} tests recorded slow in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
