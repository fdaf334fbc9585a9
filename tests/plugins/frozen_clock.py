"""A frozen clock for tests, in this process and in the scripts a test starts.

In-process: `frozen_clock(moment)` (time-machine; `datetime.now`, `time.time` and friends).
Subprocesses: `frozen_clock_env(moment)` gives environment variables under which every Python
started with them begins at `moment` (a `sitecustomize` on PYTHONPATH starts time-machine), so
a script's "today in London" is the test's, not the machine's.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import time_machine

FROZEN_CLOCK_ENV_VAR = "TEST_FROZEN_CLOCK"
_SITE_DIR = Path(__file__).parent / "frozen_clock_site"


def frozen_clock(moment: dt.datetime, tick: bool = False) -> time_machine.travel:
    """Context manager: the clock stands at `moment` (an aware datetime); with tick, it runs on from there."""
    if moment.tzinfo is None:
        raise ValueError("freeze the clock at an aware datetime: naive ones depend on the machine's zone")
    return time_machine.travel(moment, tick=tick)


def frozen_clock_env(moment: dt.datetime) -> dict[str, str]:
    """Environment for a subprocess whose clock starts at `moment` (and runs on, so timeouts work)."""
    if moment.tzinfo is None:
        raise ValueError("freeze the clock at an aware datetime: naive ones depend on the machine's zone")
    path = [str(_SITE_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {FROZEN_CLOCK_ENV_VAR: moment.isoformat(), "PYTHONPATH": os.pathsep.join(path)}
