"""Fresh-clone set-up time, before and after: `python scripts/dev/bench.py setup --baseline COMMIT [--candidate COMMIT]`.

For each commit: a fresh `git clone` into a temporary folder runs `scripts/setup.sh` twice, once with
empty package caches (UV_CACHE_DIR and PIP_CACHE_DIR pointing at new empty folders: the cold case)
and once more in a second fresh clone with the caches the first left (the warm case). Prints one
line per measurement and a JSON summary with the candidate/baseline ratios of the same run. Run it
under `flock /tmp/heavy.lock` (it installs the whole stack four times).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def clone(commit: str, into: Path) -> Path:
    subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(REPO_ROOT), str(into)], check=True)
    subprocess.run(["git", "-C", str(into), "checkout", "--quiet", commit], check=True)
    return into


def timed_setup(checkout: Path, caches: Path, python: str) -> float:
    env = {**os.environ, "PYTHON": python, "UV_CACHE_DIR": str(caches / "uv"), "PIP_CACHE_DIR": str(caches / "pip")}
    for name in ("VIRTUAL_ENV", "DAGSTER_HOME", "UV_PYTHON"):
        env.pop(name, None)
    started = time.monotonic()
    result = subprocess.run(["bash", "scripts/setup.sh"], cwd=checkout, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"setup.sh failed at {checkout} (exit {result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return elapsed


def measure(commit: str, work: Path, python: str) -> dict[str, float]:
    caches = work / "caches"
    caches.mkdir(parents=True)
    cold = timed_setup(clone(commit, work / "cold"), caches, python)
    print(f"{commit[:12]} cold cache: {cold:.1f} s", flush=True)
    shutil.rmtree(work / "cold")
    warm = timed_setup(clone(commit, work / "warm"), caches, python)
    print(f"{commit[:12]} warm cache: {warm:.1f} s", flush=True)
    return {"cold_s": round(cold, 1), "warm_s": round(warm, 1)}


def main(argv: list[str] | None = None) -> int:
    from pipeline_common.script_support import ArgumentParser  # wrong arguments exit 78

    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="commit measured first (e.g. the last before the uv set-up)")
    parser.add_argument("--candidate", default="HEAD", help="commit compared with it (default HEAD)")
    parser.add_argument("--python", default=sys.executable if sys.prefix == sys.base_prefix else "python3",
                        help="interpreter that creates the venv (default python3)")
    args = parser.parse_args(argv)
    commits = {}
    for role in ("baseline", "candidate"):
        sha = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", getattr(args, role)],
                             check=True, capture_output=True, text=True).stdout.strip()
        commits[role] = sha
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-setup-") as tmp:
        for role, sha in commits.items():
            results[role] = {"commit": sha, **measure(sha, Path(tmp) / role, args.python)}
    summary = {
        **results,
        "cold_ratio": round(results["candidate"]["cold_s"] / results["baseline"]["cold_s"], 2),
        "warm_ratio": round(results["candidate"]["warm_s"] / results["baseline"]["warm_s"], 2),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
