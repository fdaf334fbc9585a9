"""Progress of a long export on the analyst's terminal: rows read, the Hyper load, the publish.

Only when stderr is a terminal and Dagster did not launch the script: in a run's log or a
redirected file, progress lines would be noise (the log lines say what happened).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TextIO

TICK_SECONDS = 0.5


class Progress:
    """One line per stage, redrawn in place while the stage runs, then left with its outcome."""

    def __init__(self, stream: TextIO | None, enabled: bool):
        self._stream = stream
        self.enabled = enabled and stream is not None

    @classmethod
    def for_terminal(cls, under_dagster: bool, stream: TextIO | None = None) -> Progress:
        stream = stream if stream is not None else sys.stderr
        try:
            interactive = bool(stream.isatty())
        except (AttributeError, ValueError):
            interactive = False
        return cls(stream, interactive and not under_dagster)

    def _draw(self, text: str, final: bool = False) -> None:
        assert self._stream is not None
        # \r + clear-to-end-of-line redraws the stage's line in place.
        self._stream.write("\r\x1b[K" + text + ("\n" if final else ""))
        self._stream.flush()

    @contextlib.contextmanager
    def stage(self, label: str, detail: Callable[[], str] | None = None) -> Iterator[Callable[[str], None]]:
        """Show `label` with the elapsed time (and `detail()`, e.g. a percentage) until the block ends.

        The block calls the yielded function with its outcome (e.g. "1,234 rows"), shown when done.
        """
        outcome: list[str] = []
        if not self.enabled:
            yield outcome.append
            return
        started = time.monotonic()
        done = threading.Event()

        def tick() -> None:
            while not done.wait(TICK_SECONDS):
                extra = ""
                if detail is not None:
                    with contextlib.suppress(Exception):
                        extra = detail()
                self._draw(f"{label} ... {time.monotonic() - started:.0f} s{(' ' + extra) if extra else ''}")

        self._draw(f"{label} ...")
        ticker = threading.Thread(target=tick, name="export-progress", daemon=True)
        ticker.start()
        failed = True
        try:
            yield outcome.append
            failed = False
        finally:
            done.set()
            ticker.join()
            elapsed = time.monotonic() - started
            result = "failed" if failed else (outcome[-1] if outcome else "done")
            self._draw(f"{label}: {result} ({elapsed:.1f} s)", final=True)
