"""The repository stands alone: its tests need nothing beside it.

Two checks, because each catches what the other misses:

* a copy of the repository's files (``git ls-files``: what a clone holds, with this
  working tree's edits) into an empty temporary directory, where a fast subset of the
  suite runs: the tests that read files (link traces, qlog samples, the shipped
  dataset, package data) and the ones that once needed ``../shared``. A copy rather
  than a second CI pass with ``../shared`` hidden: CI's copy of that folder is
  read-only and cannot be moved aside, and this check runs on every developer's
  machine too, in seconds;
* a scan of every source file for paths that leave the repository: only tests that
  skip without ``../shared`` may name it.

The full proof is by hand: ``git clone <repo> /tmp/x && cd /tmp/x && make test``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP_REASON = "needs the public Mahimahi traces"
# test modules that read files, and those that used to read ../shared/traces
SUBSET = [
    "tests/net/test_link_trace.py",
    "tests/net/test_trace_generators.py",
    "tests/net/test_path.py",
    "tests/net/test_relay.py::test_loss_and_trace_through_the_relay",
    "tests/trace/test_cli.py",
    "tests/trace/test_mahimahi.py",
    "tests/test_shipped_dataset.py::test_shipped_dataset_loads_with_card",
    "tests/test_packaging.py",
    "tests/interop/test_webpage.py::test_serve_page_over_http",
]
# not part of the repository: made by make, pytest, builds
NOT_SOURCE = {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis",
              "build", "dist", "_build", "wtlab-demo", "test-artifacts", ".ipynb_checkpoints",
              ".jupyter_cache"}


def repository_files() -> list[Path]:
    """The files a clone holds: ``git ls-files`` (tracked, as in this working tree); in a
    tree that is not a git checkout, every file but build and tool outputs."""
    git = shutil.which("git")
    if git and (ROOT / ".git").exists():
        out = subprocess.run([git, "ls-files", "-z", "--cached"], cwd=ROOT, check=True,
                             capture_output=True).stdout.decode()
        return [Path(p) for p in out.split("\0") if p and (ROOT / p).is_file()]
    files = []
    for folder, dirs, names in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in NOT_SOURCE and not d.endswith(".egg-info")]
        files += [Path(folder, n).relative_to(ROOT) for n in names]
    return files


def test_a_copy_with_nothing_beside_it_passes_the_file_reading_tests(tmp_path):
    alone = tmp_path / "empty" / "wtlab"
    for rel in repository_files():
        (alone / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, alone / rel)
    assert sorted(os.listdir(alone.parent)) == ["wtlab"]  # no ../shared, nothing else
    # the copy's package, not this checkout's (installed editable in .venv), is imported
    env = {**os.environ, "PYTHONPATH": str(alone), "PYTHONDONTWRITEBYTECODE": "1"}
    where = subprocess.run([sys.executable, "-c", "import wtlab; print(wtlab.__file__)"],
                           cwd=alone, env=env, capture_output=True, text=True, check=True)
    assert Path(where.stdout.strip()).is_relative_to(alone), where.stdout
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p",
                           "no:cacheprovider", *SUBSET], cwd=alone, env=env,
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    passed = int(re.search(r"(\d+) passed", out).group(1))
    assert passed >= 100, out[-2000:]
    # the public-trace checks skipped, saying what they need; nothing else skipped
    skips = [ln for ln in out.splitlines() if ln.startswith("SKIPPED")]
    assert skips and all(SKIP_REASON in ln for ln in skips), "\n".join(skips)


OUTSIDE = re.compile(r"""["']shared["']|\.\./shared|/work/""")


def test_only_skipping_tests_name_paths_outside_the_repository():
    offenders = []
    for rel in repository_files():
        if rel.suffix not in (".py", ".ipynb", ".yaml", ".yml", ".toml", "") or \
                rel.parts[0] == "benchmarks":  # benchmarks use the public traces if present
            continue
        text = (ROOT / rel).read_text(errors="replace")
        if OUTSIDE.search(text) and not (rel.parts[0] == "tests" and SKIP_REASON in text):
            offenders.append(str(rel))
    assert not offenders, f"these files reach outside the repository: {offenders}"
