"""How long to wait before the next attempt: one exponential backoff rule for every retry loop.

Used by the Tableau publisher, the SharePoint (Graph) client, Slack delivery, the warehouse and
publish locks, held-file retries and the supervisors' restarts. Jitter keeps several waiting
processes (sensors, exports) from retrying in lock-step.
"""

from __future__ import annotations

import random


def exponential_delay(attempt: int, initial: float, maximum: float | None = None, spread: float = 0.0) -> float:
    """`initial * 2**attempt` (attempt counts from 0), capped at `maximum`, then scaled by a random
    factor in [1 - spread, 1 + spread] (spread 0.25: +/-25 %)."""
    delay = initial * 2 ** min(attempt, 60)
    if maximum is not None:
        delay = min(delay, maximum)
    if spread:
        delay *= random.uniform(1 - spread, 1 + spread)
    return delay


def jittered_wait(attempt: int, initial: float, maximum: float, remaining: float | None = None) -> float:
    """A wait drawn from [delay / 2, delay] for `exponential_delay(attempt, initial, maximum)`, never
    longer than `remaining` (what is left of the caller's time budget)."""
    delay = exponential_delay(attempt, initial, maximum)
    wait = random.uniform(delay / 2, delay)
    return wait if remaining is None else max(0.0, min(remaining, wait))
