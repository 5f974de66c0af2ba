"""The two-command setup stays consistent: pyproject, environment.yml, Makefile, CI, README."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_installs_every_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    spec = next(s for s in pip_section if s.startswith("-e ."))
    extras = set(re.search(r"\[(.*)\]", spec).group(1).split(","))
    assert extras == set(project["optional-dependencies"]), "environment.yml misses an extra"
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert project["requires-python"].lstrip(">=") in python


def test_make_targets_and_ci():
    makefile = (ROOT / "Makefile").read_text()
    for target in ("demo:", "test:", "bench:", "lab:"):
        assert target in makefile
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme


def test_cli_help_runs():
    from wtlab.cli import main

    assert main(["--help"]) == 0


def test_the_readme_ten_lines_run_as_written():
    """The README's "Ten lines" block, run as a notebook cell runs it (top-level await)."""
    import ast
    import asyncio

    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Ten lines", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert 8 <= len(code.strip().splitlines()) <= 13
    assert code in (ROOT / "docs" / "getting-started.md").read_text()  # the same ten lines
    compiled = compile(code, "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    scope: dict = {}

    async def cell():
        result = eval(compiled, scope)  # a coroutine: the block awaits
        if result is not None:
            await result

    asyncio.run(cell())
    assert scope["stream"] is not None and scope["session"] is not None
    assert list(scope["exp"].describe()["cc"]) == ["cubic"]


def test_version_and_help():
    import subprocess
    import sys

    import wtlab

    out = subprocess.run([sys.executable, "-m", "wtlab", "--version"], capture_output=True,
                         text=True, check=True).stdout
    assert out.startswith(f"wtlab {wtlab.__version__} (aioquic ")
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dynamic"] == \
        ["version"]  # one place for the version: wtlab.__version__
