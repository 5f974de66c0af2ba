"""The wheel works outside the checkout.

``python -m build`` makes an sdist and a wheel from a copy of the repository's files;
the wheel, with the ``lab`` extra, goes into a fresh virtual environment in a temporary
folder; there, with the checkout nowhere on the path (no PYTHONPATH, run from the
temporary folder), ``wtlab --version``, ``wtlab demo --quick`` and ``wtlab serve`` with
a client connecting to it all work, and the package data is installed.

Dependencies come from the package indexes pip is configured with, once: they are kept
as wheels in a wheelhouse in the user's cache folder (``~/.cache/wtlab-test-wheels``;
pip's own HTTP cache is not always allowed to keep them), and later runs install from it
offline. A wheelhouse that lacks something (a dependency changed) is topped up.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import wtlab

from .test_standalone import ROOT, repository_files

pytestmark = pytest.mark.timeout(1500)
WHEELHOUSE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / \
    "wtlab-test-wheels"

CLIENT = r"""
import asyncio, sys
import wtlab

async def main(url, cert_hash):
    async with wtlab.connect(url, cert_hashes=[cert_hash], congestion_control="bbr") as session:
        stream = await session.open_bidi()
        stream.write(b"outside the checkout")
        stream.write_eof()
        print("echoed:", (await stream.read()).decode())

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def _clean_env() -> dict[str, str]:
    """This process's environment without anything that points at the checkout."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if not p.startswith(str(ROOT)))
    return env


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    for rel in repository_files():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes((ROOT / rel).read_bytes())
    proc = subprocess.run([sys.executable, "-m", "build", "--outdir", str(tmp / "dist"),
                           str(src)], capture_output=True, text=True, timeout=900,
                          env=_clean_env())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # setuptools' deprecation notices (the old license table, ...) would show here
    assert "SetuptoolsDeprecationWarning" not in proc.stdout + proc.stderr
    wheel = next((tmp / "dist").glob("wtlab-*.whl"))
    sdist = next((tmp / "dist").glob("wtlab-*.tar.gz"))
    return {"tmp": tmp, "wheel": wheel, "sdist": sdist}


def test_build_gives_an_sdist_and_a_wheel_with_the_package_data(built):
    assert built["wheel"].name.startswith(f"wtlab-{wtlab.__version__}-py3-none-any")
    names = zipfile.ZipFile(built["wheel"]).namelist()
    assert "wtlab/transport/static/echo.html" in names
    assert "wtlab/net/cellular.py" in names and not any(n.startswith("tests/") for n in names)
    meta = zipfile.ZipFile(built["wheel"]).read(
        f"wtlab-{wtlab.__version__}.dist-info/METADATA").decode()
    assert "License-Expression: BSD-3-Clause" in meta
    assert "Provides-Extra: lab" in meta and "Provides-Extra: docs" in meta
    with tarfile.open(built["sdist"]) as tar:
        members = tar.getnames()
    top = f"wtlab-{wtlab.__version__}"
    assert f"{top}/wtlab/transport/static/echo.html" in members
    assert f"{top}/pyproject.toml" in members and f"{top}/README.md" in members


@pytest.fixture(scope="module")
def venv(built) -> dict[str, Path]:
    home = built["tmp"] / "elsewhere"
    home.mkdir()
    subprocess.run([sys.executable, "-m", "venv", str(home / "venv")], check=True,
                   env=_clean_env(), timeout=300)
    py = home / "venv" / "bin" / "python"
    wanted = f"{built['wheel']}[lab]"
    pip = [str(py), "-m", "pip", "install", "--quiet", "--no-compile"]
    # offline from the wheelhouse when it holds everything; else fill it from the index
    proc = _pip(pip + ["--no-index", "--find-links", str(WHEELHOUSE), wanted], home)
    if proc.returncode != 0:
        WHEELHOUSE.mkdir(parents=True, exist_ok=True)
        fill = _pip([str(py), "-m", "pip", "download", "--quiet", "--dest", str(WHEELHOUSE),
                     wanted], home)
        assert fill.returncode == 0, fill.stdout[-3000:] + fill.stderr[-3000:]
        proc = _pip(pip + ["--no-index", "--find-links", str(WHEELHOUSE), wanted], home)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {"home": home, "py": py, "wtlab": home / "venv" / "bin" / "wtlab"}


def _pip(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env=_clean_env(), capture_output=True, text=True,
                          timeout=1200)


def _run(venv, *args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=venv["home"], env=_clean_env(),
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_the_installed_package_is_not_the_checkout(venv):
    proc = _run(venv, venv["py"], "-c",
                "import sys, wtlab, importlib.resources as r; print(wtlab.__file__); "
                "print(r.files('wtlab.transport').joinpath('static/echo.html').is_file()); "
                "print([p for p in sys.path if p.startswith(sys.argv[1])])", str(ROOT))
    assert proc.returncode == 0, proc.stderr
    where, has_page, on_path = proc.stdout.splitlines()
    assert Path(where).is_relative_to(venv["home"] / "venv"), where
    assert has_page == "True" and on_path == "[]"


def test_version(venv):
    proc = _run(venv, venv["wtlab"], "--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"wtlab {wtlab.__version__} (aioquic 1.7.2, Python 3.")


def test_demo_quick_runs_from_the_wheel(venv):
    proc = _run(venv, venv["wtlab"], "demo", "--quick", "--out", "demo", timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "bulk echo 2 MB" in proc.stdout
    for cc in ("reno", "cubic", "bbr"):
        assert re.search(rf"^\s*{cc}\s+\d", proc.stdout, re.M), proc.stdout
    assert "plotly" in (venv["home"] / "demo" / "report.html").read_text()
    assert (venv["home"] / "demo" / "dataset" / "README.md").is_file()


def test_serve_and_connect_from_the_wheel(venv):
    server = subprocess.Popen([str(venv["wtlab"]), "serve", "--port", "0", "--duration", "60"],
                              cwd=venv["home"], env=_clean_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        url_line = server.stdout.readline()
        hash_line = server.stdout.readline()
        url = re.search(r"listening on (https://\S+)", url_line).group(1)
        cert_hash = hash_line.split(":", 1)[1].strip()
        proc = _run(venv, venv["py"], "-c", CLIENT, url + "echo", cert_hash, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.strip() == "echoed: outside the checkout"
    finally:
        server.terminate()
        server.wait(timeout=30)
