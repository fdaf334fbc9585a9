"""A hard time budget for work done inside a Dagster sensor tick (60 s by default).

The network clients get short timeouts and few retries inside a sensor, and on top of that
`within()` runs the work in a helper thread and stops waiting at the budget: the tick then ends in
time with a "deferred to the next tick" TransientError (the thread finishes on its own, its result
dropped), never a tick Dagster times out.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from pipeline_common.script_support import TransientError

T = TypeVar("T")

SENSOR_BUDGET_SECONDS = 40.0
"""Per sensor evaluation: Dagster's default deadline is 60 s; 20 s stay for the cursor and the event log."""


class Deferred(TransientError):
    """The work did not finish inside its budget; the next tick does it."""


def within(seconds: float, what: str, work: Callable[[], T]) -> T:
    """`work()`'s result, or Deferred when it takes longer than `seconds` (its own errors pass through)."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name=f"budget:{what}", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise Deferred(f"{what} did not finish within its {seconds:.0f} s budget; deferred to the next tick")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
