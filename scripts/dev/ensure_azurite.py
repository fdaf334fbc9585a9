"""Install the Azurite storage emulator (pinned) into `.tools/azurite/` if missing; print its executable.

Used by the test runners (scripts/test.sh, scripts/test.bat) and by the `azurite` pytest fixture, on
Windows and Linux alike. Needs Node.js and npm on PATH; exits 1 with a clear message otherwise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from pipeline_common.script_support import ArgumentParser  # wrong arguments exit 78, not 2

AZURITE_VERSION = "3.35.0"
REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_DIR = REPO_ROOT / ".tools" / "azurite"
INSTALL_TIMEOUT_S = 600


class AzuriteInstallError(RuntimeError):
    """Azurite could not be installed; the message says what is missing."""


def executable_path(tools_dir: Path = TOOLS_DIR) -> Path:
    """Where npm puts the `azurite-blob` launcher (a .cmd shim on Windows)."""
    name = "azurite-blob.cmd" if os.name == "nt" else "azurite-blob"
    return tools_dir / "node_modules" / ".bin" / name


def installed_version(tools_dir: Path = TOOLS_DIR) -> str | None:
    package_json = tools_dir / "node_modules" / "azurite" / "package.json"
    if not package_json.is_file():
        return None
    import json

    return json.loads(package_json.read_text(encoding="utf-8")).get("version")


def _npm() -> str:
    npm = shutil.which("npm.cmd" if os.name == "nt" else "npm") or shutil.which("npm")
    if npm is None:
        raise AzuriteInstallError(
            "npm was not found on PATH; install Node.js 18+ (https://nodejs.org) to run the Azurite tests"
        )
    return npm


def ensure_azurite(tools_dir: Path = TOOLS_DIR) -> Path:
    """Return the Azurite blob executable, installing azurite@AZURITE_VERSION first when needed."""
    exe = executable_path(tools_dir)
    if exe.is_file() and installed_version(tools_dir) == AZURITE_VERSION:
        return exe
    tools_dir.mkdir(parents=True, exist_ok=True)
    command = [
        _npm(), "install", "--prefix", str(tools_dir), "--no-audit", "--no-fund", "--no-save",
        "--loglevel=error", f"azurite@{AZURITE_VERSION}",
    ]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise AzuriteInstallError(f"npm install azurite@{AZURITE_VERSION} timed out after {exc.timeout}s") from None
    if result.returncode != 0 or not exe.is_file():
        detail = (result.stderr or result.stdout).strip()[-2000:]
        raise AzuriteInstallError(
            f"npm install azurite@{AZURITE_VERSION} into {tools_dir} failed (exit {result.returncode}): {detail}"
        )
    return exe


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  python scripts/dev/ensure_azurite.py        # prints .tools/azurite/node_modules/.bin/azurite-blob",
    )
    parser.parse_args(argv)
    try:
        print(ensure_azurite())
    except AzuriteInstallError as exc:
        print(f"ensure_azurite: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
