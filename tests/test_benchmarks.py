"""Every benchmark's quick mode runs to completion (a smoke test: no timing thresholds).

A benchmark that crashes, hangs or reports a failed run turns the suite red; what it
measures is judged by a person reading its output, never here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.__main__ import discover

ROOT = Path(__file__).resolve().parents[1]
TAKES_RUNS = {"cc", "emulation", "model", "reliability", "server", "transport", "widgets"}
LIMIT_S = 240


@pytest.mark.timeout(LIMIT_S + 30)
@pytest.mark.parametrize("name", discover())
def test_benchmark_quick_mode_completes(name):
    args = ["--quick"] + (["--runs", "1"] if name in TAKES_RUNS else [])
    proc = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=LIMIT_S, stdin=subprocess.DEVNULL)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"benchmarks.{name} exited {proc.returncode}:\n{out[-3000:]}"
    assert "Traceback" not in out and "ERROR" not in out, out[-3000:]
    numbers = [ln for ln in proc.stdout.splitlines() if re.search(r"\d", ln)]
    assert len(numbers) >= 3, f"benchmarks.{name} printed no measurements:\n{proc.stdout}"


def test_every_benchmark_is_smoke_tested():
    # a new benchmark module is picked up by discover(); this guards the list above
    assert {"transport", "reliability", "emulation", "model"} <= set(discover())
