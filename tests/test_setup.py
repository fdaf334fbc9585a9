"""Set-up in a minute, with progress (issue 26, item 5).

Classes: the lock holds every package of the tree, hashed, for Linux and Windows, and every pin of
its requirements file at the same version (else the set-up refuses it, naming the pin); an
interpreter older than 3.11, or none, is refused before anything is created, with the version found
and what to do; every install phase prints its time. The timings themselves are a benchmark
(`python scripts/dev/bench.py setup`, docs/performance.md), not a test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LOCKS = {"requirements.txt": "requirements.lock", "requirements-dev.txt": "requirements-dev.lock"}


def _pins(path: Path) -> dict[str, str]:
    """name -> version of `name==version` lines, following `-r` (read independently of the installer)."""
    found: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r"):
            found.update(_pins(path.parent / line[2:].strip()))
        elif "==" in line:
            name, version = line.split("==", 1)
            found[re.sub(r"[-_.]+", "-", name).lower()] = version.split(";")[0].split("\\")[0].strip()
    return found


def _entries(lock: Path) -> dict[str, str]:
    """Each package entry of a lock (first line through its hashes) by package name."""
    text = lock.read_text(encoding="utf-8")
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text)
    return {re.sub(r"[-_.]+", "-", b.split("==")[0]).lower(): b for b in blocks if "==" in b.split("\n")[0]}


@pytest.mark.parametrize("source", sorted(LOCKS))
def test_the_lock_pins_the_whole_tree_with_hashes_for_linux_and_windows(source):
    lock = REPO / LOCKS[source]
    entries = _entries(lock)
    assert len(entries) > 100  # the whole tree, not just the direct requirements
    unhashed = [name for name, block in entries.items() if "--hash=sha256:" not in block]
    assert unhashed == []
    locked = _pins(lock)
    stale = {name: version for name, version in _pins(REPO / source).items() if locked.get(name) != version}
    assert stale == {}, f"{lock.name} is older than {source}: run scripts/install_packages.py --lock"
    # resolved for Windows too (universal): Windows-only packages are in, with their markers
    assert "sys_platform == 'win32'" in entries["pywin32"]
    assert "uv" in entries  # the installer itself is locked


def _project_copy(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "scripts").mkdir(parents=True)
    for name in ("setup.sh", "install_packages.py"):
        shutil.copy2(REPO / "scripts" / name, root / "scripts" / name)
    return root


def _old_python(tmp_path: Path, version: str) -> Path:
    """An interpreter that reports an older version (a stand-in for an old system python3)."""
    fake = tmp_path / "python3-old"
    fake.write_text(f"#!/bin/sh\necho {version}\n", encoding="utf-8")
    fake.chmod(0o755)
    return fake


@pytest.mark.skipif(os.name == "nt", reason="setup.sh is the Linux/macOS script; setup.bat is checked below")
@pytest.mark.parametrize("version", ["3.10", "3.9", "2.7"])
def test_setup_refuses_an_old_python_before_creating_anything(tmp_path, version):
    root = _project_copy(tmp_path)
    done = subprocess.run(["bash", str(root / "scripts" / "setup.sh")], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHON": str(_old_python(tmp_path, version))})
    assert done.returncode == 78, done.stdout + done.stderr
    assert f"Python 3.11 or newer is needed; '{tmp_path / 'python3-old'}' is Python {version}" in done.stderr
    assert not (root / ".venv").exists()


@pytest.mark.skipif(os.name == "nt", reason="setup.sh is the Linux/macOS script")
def test_setup_without_python_says_so(tmp_path):
    root = _project_copy(tmp_path)
    done = subprocess.run(["bash", str(root / "scripts" / "setup.sh")], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHON": str(tmp_path / "no-such-python")})
    assert done.returncode == 78
    assert "install Python 3.11 or newer" in done.stderr and not (root / ".venv").exists()


def test_setup_bat_checks_the_version_before_the_venv_and_installs_through_the_locked_installer():
    text = (REPO / "scripts" / "setup.bat").read_text(encoding="utf-8")
    check = text.index("sys.version_info < (3, 11)")
    assert check < text.index("-m venv .venv")
    assert "exit /b 78" in text[check:text.index("-m venv .venv")]
    assert "scripts\\install_packages.py" in text and "pip install --quiet --disable-pip-version-check -r" not in text


def test_a_lock_older_than_its_requirements_is_refused_naming_the_pin(tmp_path):
    root = _project_copy(tmp_path)
    shutil.copy2(REPO / "requirements.lock", root / "requirements.lock")
    (root / "requirements.txt").write_text((REPO / "requirements.txt").read_text(encoding="utf-8")
                                           + "humanize==4.99.0\n", encoding="utf-8")
    done = subprocess.run([sys.executable, str(root / "scripts" / "install_packages.py")], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 78
    assert "requirements.lock does not hold humanize==4.99.0" in done.stderr and "--lock" in done.stderr


def test_every_install_phase_prints_its_time():
    """On this checkout's own venv (already installed: uv checks the hashes and changes nothing)."""
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "install_packages.py"), "--dev"],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    phases = [line for line in lines if line.startswith("==> ")]
    assert phases[0] == "==> installing requirements-dev.lock (uv, hashes checked)"
    assert phases[1] == "==> installing this project (editable)"
    assert len([line for line in lines if re.fullmatch(r"    done in \d+\.\d s", line)]) == 2
    assert re.fullmatch(r"==> packages ready in \d+\.\d s", phases[-1])


def test_setting_up_again_needs_no_network_in_a_fresh_shell(tmp_path):
    """A second set-up (every demo.sh and test.sh run) from a new terminal: no proxy settings, no
    certificate variables, an empty uv cache, the index unreachable. With every locked package in
    the venv nothing is downloaded, the project's own build included (its setuptools is the lock's)."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8",
           "UV_OFFLINE": "1", "UV_CACHE_DIR": str(tmp_path / "uv-cache"),
           "UV_INDEX_URL": "https://127.0.0.1:9/simple", "PIP_INDEX_URL": "https://127.0.0.1:9/simple"}
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "install_packages.py"), "--dev"],
                          capture_output=True, text=True, timeout=600, cwd=REPO, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert done.stdout.splitlines()[-1].startswith("==> packages ready in")
