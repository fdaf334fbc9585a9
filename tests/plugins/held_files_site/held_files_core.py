"""Simulate a file held open by another program on Windows (Excel, Tableau Desktop, a log tail).

On Windows such a file cannot be replaced, renamed or deleted: `os.replace`, `os.rename` and
`os.remove` raise PermissionError carrying `winerror` 5 (ACCESS_DENIED) or 32
(SHARING_VIOLATION). This patches those three functions of the `os` module so that, for paths
matching a glob pattern, they raise exactly that, a given number of times or for ever.
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Callable
from typing import Any

ENV_VAR = "TEST_HELD_FILES"

WINDOWS_TEXT = {
    5: "Access is denied",
    32: "The process cannot access the file because it is being used by another process",
}


def windows_held_error(path: str, winerror: int = 32) -> PermissionError:
    error = PermissionError(13, WINDOWS_TEXT[winerror], str(path))
    error.winerror = winerror  # as on Windows, where errno 13 comes with the Win32 code
    return error


class HeldFiles:
    """Glob pattern -> remaining failures (None = for ever) and the Win32 error to raise."""

    def __init__(self) -> None:
        self.rules: list[dict[str, Any]] = []
        self.blocked: list[tuple[str, str]] = []  # (operation, path) that raised

    def hold(self, pattern: str, failures: int | None = None, winerror: int = 32) -> None:
        self.rules.append({"pattern": str(pattern), "failures": failures, "winerror": winerror})

    def release(self, pattern: str) -> None:
        self.rules = [r for r in self.rules if r["pattern"] != str(pattern)]

    def _check(self, operation: str, *paths: Any) -> None:
        for path in paths:
            text = os.fspath(path) if not isinstance(path, int) else ""
            for rule in self.rules:
                if rule["failures"] == 0 or not fnmatch.fnmatch(text, rule["pattern"]):
                    continue
                if rule["failures"] is not None:
                    rule["failures"] -= 1
                self.blocked.append((operation, text))
                raise windows_held_error(text, rule["winerror"])

    def install(self, setattr_: Callable[[Any, str, Any], None] | None = None) -> None:
        setattr_ = setattr_ or setattr
        real_replace, real_rename, real_remove = os.replace, os.rename, os.remove

        def replace(src, dst, *args, **kwargs):
            self._check("replace", src, dst)
            return real_replace(src, dst, *args, **kwargs)

        def rename(src, dst, *args, **kwargs):
            self._check("rename", src, dst)
            return real_rename(src, dst, *args, **kwargs)

        def remove(path, *args, **kwargs):
            self._check("remove", path)
            return real_remove(path, *args, **kwargs)

        setattr_(os, "replace", replace)
        setattr_(os, "rename", rename)
        setattr_(os, "remove", remove)
        setattr_(os, "unlink", remove)

    def to_env(self) -> str:
        return json.dumps(self.rules)


def install_from_env() -> HeldFiles:
    held = HeldFiles()
    held.rules = json.loads(os.environ[ENV_VAR])
    held.install()
    return held
