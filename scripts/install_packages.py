"""Install the locked packages into the venv running this script, printing each phase with its time.

`python scripts/install_packages.py [--dev]` (called by scripts/setup.sh and setup.bat with the
venv's Python) installs `requirements.lock` (`--dev`: `requirements-dev.lock`): every package of
the whole dependency tree pinned with its SHA-256 hashes, resolved for Linux and Windows at once
(`uv pip compile --universal`). The installer is uv (pinned in the lock; put into the venv by pip
when missing); where uv cannot be had, pip installs the same lock with `--require-hashes`.
`--lock` regenerates both lock files from requirements.txt / requirements-dev.txt (developers,
after changing a pin). Exit codes: 0 done, 75 a download failed (network), 78 configuration.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCKS = {False: "requirements.lock", True: "requirements-dev.lock"}
SOURCES = {False: "requirements.txt", True: "requirements-dev.txt"}
MIN_PYTHON = (3, 11)
EXIT_TRANSIENT = 75
EXIT_CONFIG = 78
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


class Phases:
    """Prints `==> name` when a phase starts and `    done in N s` when it ends, then the total."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def run(self, name: str, command: Sequence[str]) -> int:
        print(f"==> {name}", flush=True)
        begun = time.monotonic()
        code = subprocess.call(list(command), cwd=REPO_ROOT)
        if code == 0:
            print(f"    done in {time.monotonic() - begun:.1f} s", flush=True)
        return code

    def total(self) -> str:
        return f"{time.monotonic() - self.started:.1f} s"


def pins(path: Path) -> dict[str, str]:
    """{normalised name: version} of the `name==version` lines of a requirements or lock file (and its -r files)."""
    found: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith("-r "):
            found.update(pins(path.parent / line[3:].strip()))
            continue
        match = PIN.match(line)
        if match:
            found[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return found


def stale_pins(dev: bool) -> list[str]:
    """Pins of the requirements file the lock does not hold at that version (the lock is out of date)."""
    wanted = pins(REPO_ROOT / SOURCES[dev])
    locked = pins(REPO_ROOT / LOCKS[dev])
    return sorted(f"{name}=={version}" for name, version in wanted.items() if locked.get(name) != version)


def have_uv() -> bool:
    probe = subprocess.run([sys.executable, "-m", "uv", "--version"], capture_output=True, text=True)
    return probe.returncode == 0


def regenerate_locks() -> int:
    if not have_uv():
        print("uv is not installed in this venv: run scripts/setup.sh (or setup.bat) first", file=sys.stderr)
        return EXIT_CONFIG
    for dev in (False, True):
        command = [sys.executable, "-m", "uv", "pip", "compile", "--quiet", "--universal", "--generate-hashes",
                   "--python-version", "{}.{}".format(*MIN_PYTHON),
                   "--custom-compile-command", "scripts/install_packages.py --lock",
                   SOURCES[dev], "-o", LOCKS[dev]]
        if subprocess.call(command, cwd=REPO_ROOT) != 0:
            return EXIT_TRANSIENT
        print(f"wrote {LOCKS[dev]} from {SOURCES[dev]}")
    return 0


def install(dev: bool) -> int:
    phases = Phases()
    lock = LOCKS[dev]
    stale = stale_pins(dev)
    if stale:
        print(f"{lock} does not hold {', '.join(stale)} of {SOURCES[dev]}: regenerate it with "
              f"`{Path(sys.executable).name} scripts/install_packages.py --lock`", file=sys.stderr)
        return EXIT_CONFIG
    uv_version = pins(REPO_ROOT / lock).get("uv")
    python = [sys.executable, "-m"]
    if not have_uv() and uv_version:
        # uv itself from PyPI, by the pip every venv has; a failure here falls back to pip below.
        phases.run(f"installing the installer (uv {uv_version}, by pip)",
                   [*python, "pip", "install", "--quiet", "--disable-pip-version-check", f"uv=={uv_version}"])
    # The project itself is built with the lock's setuptools, already in the venv (no build
    # isolation): a second set-up, or one behind a proxy, needs no download for it.
    if have_uv():
        # --system-certs: the platform's certificate store (Windows' store on the desk), so a
        # TLS-inspecting corporate proxy whose root IT installed there is trusted, as truststore
        # does for the pipeline's own connections.
        uv = [*python, "uv", "pip", "install", "--python", sys.executable, "--system-certs"]
        # --compile-bytecode: the .pyc files are written here, once, in parallel, instead of by the first
        # `dagster dev`, run and test processes, each compiling the same modules (pip does this by default).
        code = phases.run(f"installing {lock} (uv, hashes checked)",
                          [*uv, "--compile-bytecode", "--require-hashes", "-r", lock])
        if code == 0:
            code = phases.run("installing this project (editable)",
                              [*uv, "--quiet", "--no-deps", "--no-build-isolation", "-e", "."])
    else:
        print("uv could not be installed: pip installs the same lock (slower)", flush=True)
        pip = [*python, "pip", "install", "--disable-pip-version-check", "--progress-bar", "off"]
        code = phases.run(f"installing {lock} (pip, hashes checked)", [*pip, "--require-hashes", "-r", lock])
        if code == 0:
            code = phases.run("installing this project (editable)",
                              [*pip, "--quiet", "--no-deps", "--no-build-isolation", "-e", "."])
    if code != 0:
        print(f"installing packages failed (exit {code}); nothing else was changed. Check the network "
              "(PyPI, or PIP_INDEX_URL/UV_INDEX_URL for a mirror) and run the set-up again.", file=sys.stderr)
        return EXIT_TRANSIENT
    print(f"==> packages ready in {phases.total()}", flush=True)
    return 0


class _Parser(argparse.ArgumentParser):
    """Wrong arguments are a configuration error (78); pipeline_common's parser is not installed yet here."""

    def error(self, message: str):  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev", action="store_true", help="the test requirements too (requirements-dev.lock)")
    parser.add_argument("--lock", action="store_true", help="regenerate requirements.lock and requirements-dev.lock")
    args = parser.parse_args(argv)
    if sys.version_info < MIN_PYTHON:
        print("Python {}.{} or newer is needed; this is {}".format(*MIN_PYTHON, sys.version.split()[0]), file=sys.stderr)
        return EXIT_CONFIG
    return regenerate_locks() if args.lock else install(args.dev)


if __name__ == "__main__":
    raise SystemExit(main())
