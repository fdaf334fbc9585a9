"""A separate process that holds a Dagster instance's lock (orchestration.instance_lock), as a
running supervisor or serve.py would, until it is told to let go or is killed."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

HOLD = """
import sys
from pathlib import Path
from orchestration.instance_lock import acquire_instance_lock
settings = Path(sys.argv[2]) if len(sys.argv) > 2 else None
lock = acquire_instance_lock(Path(sys.argv[1]), settings)
print("held", flush=True)
sys.stdin.read()  # until the test closes stdin (or kills this process)
"""


@contextlib.contextmanager
def holding_instance_lock(home: Path, settings_file: Path | None = None, env: dict | None = None) -> Iterator[subprocess.Popen]:
    args = [sys.executable, "-c", HOLD, str(home)] + ([str(settings_file)] if settings_file else [])
    holder = subprocess.Popen(
        args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})},
    )
    try:
        line = holder.stdout.readline()
        assert line.strip() == "held", f"the lock holder did not get the lock: {line!r} {holder.stderr.read()[-2000:]}"
        yield holder
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(timeout=30)
        for stream in (holder.stdin, holder.stdout, holder.stderr):
            stream.close()
