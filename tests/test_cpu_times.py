"""`--cpu-times FILE` (tests/plugins/cpu_times.py): each test's own CPU and its children's, and a summary by file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

BURNS = '''
import subprocess, sys, time

def _burn(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass

def test_burns_in_its_own_process():
    _burn(0.6)

def test_burns_in_a_child():
    subprocess.run([sys.executable, "-c", "import time\\nend = time.process_time() + 0.6\\nwhile time.process_time() < end: pass"], check=True)

def test_waits():
    time.sleep(0.6)
'''


def test_each_test_has_its_own_and_its_childrens_cpu_and_the_files_are_summed(tmp_path):
    tests = tmp_path / "test_burns.py"
    tests.write_text(BURNS, encoding="utf-8")
    out = tmp_path / "cpu.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-p", "tests.plugins.cpu_times",
         "--rootdir", str(tmp_path), "--confcutdir", str(tmp_path), "-c", "/dev/null" if sys.platform != "win32" else "NUL",
         "--cpu-times", str(out), str(tests)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = {line["test"].rsplit("::", 1)[1]: line for line in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    assert set(lines) == {"test_burns_in_its_own_process", "test_burns_in_a_child", "test_waits"}
    own, child, waits = lines["test_burns_in_its_own_process"], lines["test_burns_in_a_child"], lines["test_waits"]
    assert own["own"] >= 0.5 and own["children"] < 0.2, own
    assert child["children"] >= 0.5 and child["own"] < 0.5, child
    assert waits["wall"] >= 0.5 and waits["own"] + waits["children"] < 0.3, waits  # waiting costs no CPU
    total = sum(line["own"] + line["children"] for line in lines.values())
    assert f"CPU seconds by test file ({out}): {total:.0f} s in 3 tests" in done.stdout, done.stdout
    assert "test_burns.py" in done.stdout.split("CPU seconds by test file", 1)[1]
