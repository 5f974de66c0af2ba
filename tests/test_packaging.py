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
