"""docs/benchmarks/latency-trace.patch applies to the tree (issue 12: it rotted once, and
the commands in docs/benchmarks.md that use it stopped working)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PATCH = ROOT / "docs" / "benchmarks" / "latency-trace.patch"


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(),
                    reason="needs git and a git checkout")
def test_the_latency_trace_patch_applies():
    result = subprocess.run(["git", "apply", "--check", str(PATCH)], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
