"""Run a legacy script's `main` in the test's own process: the script's code path without a Python start.

For tests of the rules a script applies, not of its command line (those keep a few runs of the real
script as a subprocess). Returns the exit code, stdout and what the script logged (stderr), like
subprocess.run would.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


@dataclass
class InProcessRun:
    returncode: int
    stdout: str
    stderr: str


def run_main(main: Callable[[list[str]], object], args: Sequence[str], env: Mapping[str, str] | None = None) -> InProcessRun:
    out, err = io.StringIO(), io.StringIO()
    # The scripts' log handlers hold the stream they were made with: point them at this run's stderr.
    handlers = [h for lg in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
                for h in getattr(lg, "handlers", []) if type(h) is logging.StreamHandler]
    streams = [h.setStream(err) for h in handlers]
    saved = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                returned = main(list(args))
                code = returned if isinstance(returned, int) else 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        for handler, stream in zip(handlers, streams):
            handler.setStream(stream)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return InProcessRun(code, out.getvalue(), err.getvalue())
