"""docs/rejected_inputs.md's generated sections match the declared schema and the exit-code map."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_the_generated_sections_are_up_to_date():
    done = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "dev" / "generate_rejected_inputs.py"), "--check"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_changed_declaration_makes_the_doc_out_of_date(tmp_path, monkeypatch):
    text = (REPO_ROOT / "pipeline.yaml").read_text(encoding="utf-8")
    changed = tmp_path / "pipeline.yaml"
    changed.write_text(text.replace("quantity: {type: integer, min: 1, max: 100000}",
                                    "quantity: {type: integer, min: 1, max: 5000}"), encoding="utf-8")
    env = {**__import__("os").environ, "PIPELINE_CONFIG": str(changed)}
    done = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "dev" / "generate_rejected_inputs.py"), "--check"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 1, done.stdout + done.stderr
