"""Keep the Windows PC from going back to sleep while the morning refresh runs.

Started by the `DailySalesDagster-Wake` task (scripts/windows_task.py), which wakes the PC a few
minutes before the 07:15 refresh. Windows sends a PC woken by a timer back to sleep after about
two minutes without input; this holds ES_SYSTEM_REQUIRED for `--minutes`, then lets go.

    python scripts/keep_awake.py [--minutes 90]
"""

from __future__ import annotations

import ctypes
import os
import sys
import time
from pathlib import Path


from pipeline_common.script_support import ArgumentParser  # noqa: E402

ES_CONTINUOUS = 0x80000000
ES_SYSTEM_REQUIRED = 0x00000001


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=90.0, help="how long to keep the PC awake (default 90)")
    args = parser.parse_args(argv)
    if os.name != "nt":
        print("keep_awake: nothing to do on this system (Windows only)")
        return 0
    set_state = ctypes.windll.kernel32.SetThreadExecutionState
    set_state.restype = ctypes.c_uint32
    set_state.argtypes = [ctypes.c_uint32]
    if not set_state(ES_CONTINUOUS | ES_SYSTEM_REQUIRED):
        print("keep_awake: SetThreadExecutionState failed", file=sys.stderr)
        return 1
    print(f"keep_awake: keeping the PC awake for {args.minutes:.0f} min", flush=True)
    try:
        time.sleep(args.minutes * 60)
    finally:
        set_state(ES_CONTINUOUS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
