"""Tell a mistyped host from a network outage: a source configuration that has never worked and
whose host does not resolve is a configuration error (78, fix the variable), not a transient one
(75, retried by Dagster for half an hour).

A configuration is remembered as working by a fingerprint of its non-secret parts (kind, host,
...) in `$DATA_DIR/state/sources_ok.json`, written the first time a call through it succeeds.
Once it has worked, a failing lookup is a DNS or network outage and stays transient.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
from pathlib import Path

from pipeline_common.script_support import ConfigurationError
from pipeline_common.settings import data_dir

STATE_FILE = "sources_ok.json"
# getaddrinfo answers that mean "no such name" (Linux/macOS EAI_NONAME, Windows WSAHOST_NOT_FOUND,
# WSANO_DATA), as opposed to "try again" (EAI_AGAIN / WSATRY_AGAIN: the resolver is unreachable).
_NO_SUCH_NAME = {socket.EAI_NONAME, 11001, 11004}
if hasattr(socket, "EAI_NODATA"):
    _NO_SUCH_NAME.add(socket.EAI_NODATA)
_cache: tuple[Path, dict[str, str]] | None = None


def fingerprint(*parts: str) -> str:
    """A short hash of a configuration's non-secret parts (never of a secret)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def _state_path() -> Path:
    return data_dir() / "state" / STATE_FILE


def _load() -> dict[str, str]:
    global _cache
    path = _state_path()
    if _cache is None or _cache[0] != path:
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
            known = {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            known = {}
        _cache = (path, known)
    return _cache[1]


def has_worked(kind: str, config_fingerprint: str) -> bool:
    return _load().get(kind) == config_fingerprint


def mark_working(kind: str, config_fingerprint: str) -> None:
    """Remember that this configuration reached its service once (best effort: never fails the run)."""
    known = _load()
    if known.get(kind) == config_fingerprint:
        return
    known[kind] = config_fingerprint
    path = _state_path()
    from pipeline_common.files import atomic_write
    from pipeline_common.script_support import ScriptError

    with contextlib.suppress(OSError, ScriptError), atomic_write(path, fsync=False, timeout=1.0) as temp:
        temp.write_text(json.dumps(known, indent=1, sort_keys=True), encoding="utf-8")


def _unresolvable(host: str) -> bool:
    try:
        socket.getaddrinfo(host, None)
    except socket.gaierror as exc:
        return exc.errno in _NO_SUCH_NAME
    except (OSError, UnicodeError):
        return False
    return False


def _problem(host: str, variable: str) -> ConfigurationError:
    return ConfigurationError(
        f"the host '{host}' in {variable} does not resolve (no such name) and this configuration has never "
        f"worked: check {variable} for a typo or a placeholder, or unset the group to use the local default"
    )


def check_host(kind: str, config_fingerprint: str, host: str | None, variable: str) -> None:
    """Before the first call of a never-working configuration: fail at once when its host has no DNS name."""
    if not host or has_worked(kind, config_fingerprint):
        return
    if _unresolvable(host):
        raise _problem(host, variable)


def is_name_resolution_error(exc: BaseException) -> bool:
    """Whether a client library's network error was a failed DNS lookup (searches the cause chain)."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 10:
        if isinstance(current, socket.gaierror):
            return True
        text = str(current)
        if any(marker in text for marker in ("Name or service not known", "getaddrinfo failed",
                                              "nodename nor servname", "NameResolutionError",
                                              "No address associated with hostname")):
            return True
        current = current.__cause__ or current.__context__
        if current is None and exc.args and isinstance(exc.args[-1], BaseException):
            current = exc.args[-1]
        seen += 1
    return False


def raise_if_unresolvable(exc: BaseException, kind: str, config_fingerprint: str, host: str | None,
                          variable: str) -> None:
    """After a network error: a DNS failure on a never-working configuration is a configuration error."""
    if host and is_name_resolution_error(exc) and not has_worked(kind, config_fingerprint) and _unresolvable(host):
        raise _problem(host, variable) from None


def reset_cache() -> None:
    """Forget the in-process copy of the state file (a long-lived process re-reads it)."""
    global _cache
    _cache = None

