"""The supervisor's documented behaviour (docs/operations.md), on a real supervision loop whose child
is a small stand-in for `dagster dev` that crashes, runs a while or prints a lot, as planned:
restart delays double and reset after a stable run, `--max-restarts` gives up with exit 75 (contract section 8: a retry may help), and
`logs/dagster.log` rotates (5 x 5 MB) keeping the newest output, in order.
"""

from __future__ import annotations

import json
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from scripts import supervisor

REPO = Path(__file__).resolve().parents[1]

# The stand-in for `dagster dev`: the n-th start follows plan[n] (default: the last entry).
CHILD = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    state = Path(sys.argv[1])
    plan = json.loads((state / "plan.json").read_text())
    starts = state / "starts.txt"
    n = len(starts.read_text().splitlines()) if starts.exists() else 0
    with starts.open("a") as f:
        f.write(f"{time.time()}\\n")
    step = plan[min(n, len(plan) - 1)]
    for i in range(step.get("lines", 0)):
        print(f"line {i:08d} " + "x" * 990)
    time.sleep(step.get("run_s", 0))
    with (state / "exits.txt").open("a") as f:
        f.write(f"{time.time()}\\n")
    sys.exit(step.get("code", 3))
    """
)


@pytest.fixture
def run_supervisor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Run supervisor.main(args) in this process with the stand-in child; return (exit code, state dir)."""
    state = tmp_path / "state"
    state.mkdir()
    child = tmp_path / "child.py"
    child.write_text(CHILD, encoding="utf-8")
    monkeypatch.setattr(supervisor, "dagster_command", lambda *a, **k: [sys.executable, str(child), str(state)])
    monkeypatch.setattr(supervisor, "recover_interrupted_runs", lambda home: None)  # needs a Dagster instance
    monkeypatch.setattr(supervisor, "TREE_POLL_S", 0.05)  # notice an exit within 50 ms, not 1 s
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def _run(plan: list[dict], *args: str) -> tuple[int, Path]:
        (state / "plan.json").write_text(json.dumps(plan), encoding="utf-8")
        try:
            code = supervisor.main(
                ["--dagster-home", str(tmp_path / "home"), "--log-dir", str(tmp_path / "logs"), *args]
            )
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        return code, state

    return _run


def _times(path: Path) -> list[float]:
    return [float(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_max_restarts_gives_up_with_exit_75_after_that_many_restarts(run_supervisor, tmp_path):
    code, state = run_supervisor(
        [{"code": 1}], "--max-restarts", "2", "--backoff-initial", "0.1", "--backoff-max", "0.1"
    )
    assert code == 75
    assert len(_times(state / "starts.txt")) == 3  # the first start and two restarts, no more
    log = (tmp_path / "logs" / "supervisor.log").read_text(encoding="utf-8")
    assert "max-restarts" in log


def test_restart_delays_double_and_reset_after_a_stable_run(run_supervisor, monkeypatch):
    """Delays 0.3, 0.6, 1.2 s (doubling, as 5, 10, 20 s by default), then a run longer than the
    stable time (10 min by default, 1.5 s here) resets them: 0.3, 0.6 again."""
    monkeypatch.setattr(supervisor, "STABLE_AFTER_S", 1.5)
    plan = [{"run_s": 0}, {"run_s": 0}, {"run_s": 0}, {"run_s": 2.0}, {"run_s": 0}, {"run_s": 0}]
    code, state = run_supervisor(
        plan, "--max-restarts", "5", "--backoff-initial", "0.3", "--backoff-max", "10"
    )
    assert code == 75
    starts, exits = _times(state / "starts.txt"), _times(state / "exits.txt")
    assert len(starts) == len(exits) == 6
    gaps = [start - exit_ for exit_, start in zip(exits, starts[1:])]
    expected = [0.3, 0.6, 1.2, 0.3, 0.6]
    for gap, delay in zip(gaps, expected):
        assert gap >= delay, (gaps, expected)
    # after the stable run: the first delay again, not the 2.4 s the doubling would have reached
    assert gaps[3] < 1.2, gaps
    assert gaps[3] < gaps[2] and gaps[4] < gaps[2], gaps


def test_a_crash_loop_is_capped_at_backoff_max(run_supervisor):
    code, state = run_supervisor(
        [{"run_s": 0}], "--max-restarts", "4", "--backoff-initial", "0.2", "--backoff-max", "0.4"
    )
    assert code == 75
    starts, exits = _times(state / "starts.txt"), _times(state / "exits.txt")
    gaps = [start - exit_ for exit_, start in zip(exits, starts[1:])]
    assert len(gaps) == 4
    assert gaps[0] >= 0.2 and all(gap >= 0.4 for gap in gaps[1:]), gaps
    assert all(gap < 0.4 + 0.8 for gap in gaps[2:]), gaps  # 0.4, not 0.8 and 1.6


def test_dagster_log_rotates_5_by_5_mb_keeping_the_newest_output_in_order(run_supervisor, tmp_path):
    lines = 33_000  # about 33 MB of output: more than the 6 files (dagster.log + 5 backups) can hold
    code, _ = run_supervisor([{"lines": lines, "code": 1}], "--max-restarts", "0")
    assert code == 75
    logs = tmp_path / "logs"
    files = [logs / "dagster.log", *(logs / f"dagster.log.{n}" for n in range(1, 6))]
    assert all(f.is_file() for f in files), sorted(p.name for p in logs.iterdir())
    assert not (logs / "dagster.log.6").exists()
    limit = 5_000_000
    assert all(f.stat().st_size <= limit for f in files), [f.stat().st_size for f in files]
    # Oldest backup first, newest file last: the kept output is one contiguous, ordered tail.
    numbers = [
        int(line.split()[1])
        for f in reversed(files)
        for line in f.read_text(encoding="utf-8").splitlines()
        if line.startswith("line ")
    ]
    assert numbers == list(range(numbers[0], lines))
    assert len(numbers) * 1000 > 4 * limit  # the backups are used, not just one file
