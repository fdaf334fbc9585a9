"""Find a headless-capable Chromium browser the same way on Linux and Windows.

Order: the CHROMIUM environment variable (a path), then `chromium`, `chromium-browser`,
`google-chrome`, `chrome` and `msedge` on PATH, then the usual Windows install folders of
Chrome and Edge (Edge ships with Windows 10/11 and takes the same --headless switches).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ENV_VAR = "CHROMIUM"
NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome", "msedge")
WINDOWS_LOCATIONS = (
    ("PROGRAMFILES", r"Google\Chrome\Application\chrome.exe"),
    ("PROGRAMFILES(X86)", r"Google\Chrome\Application\chrome.exe"),
    ("LOCALAPPDATA", r"Google\Chrome\Application\chrome.exe"),
    ("PROGRAMFILES(X86)", r"Microsoft\Edge\Application\msedge.exe"),
    ("PROGRAMFILES", r"Microsoft\Edge\Application\msedge.exe"),
)
HOW_TO_GET_ONE = (
    "no Chromium-family browser found: set CHROMIUM to its path, or install one "
    "(Debian: `apt-get install -y chromium`, which scripts/test.sh does as root; Windows: Edge or Chrome)"
)


def find_chromium() -> Path | None:
    override = os.environ.get(ENV_VAR, "").strip()
    if override:
        return Path(override) if Path(override).is_file() else None
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return Path(found)
    for variable, relative in WINDOWS_LOCATIONS:
        base = os.environ.get(variable)
        if base and (Path(base) / relative).is_file():
            return Path(base) / relative
    return None
