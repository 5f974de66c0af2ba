"""Run a real JupyterLab server from the project's .venv on loopback, for browser tests.

``running_jupyterlab(root_dir)`` starts ``jupyter lab`` headless on 127.0.0.1 with a
free port, a random token, and every Jupyter config/runtime/settings directory inside
a temporary folder (the user's own configuration never leaks in, nothing is written
outside), with update checks and news off (no network beyond loopback). It waits
(bounded) until the REST API answers, yields a :class:`Lab`, and stops the server
(SIGTERM, then SIGKILL after a bounded wait) on exit. The server's log is kept in
``Lab.log_path`` for failure messages.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

VENV_BIN = Path(sys.executable).parent


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    """A running JupyterLab: ``url(path)`` gives an address with the token."""

    port: int
    token: str
    root_dir: Path
    log_path: Path
    process: subprocess.Popen

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/lab") -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.base}{path}{sep}token={self.token}"

    def api(self, path: str, timeout_s: float = 5.0) -> object:
        req = urllib.request.Request(f"{self.base}{path}",
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # loopback only
            return json.loads(resp.read())

    def shutdown_kernels(self) -> None:
        """Ask the server to shut down every kernel it runs (kernels have their own sessions)."""
        try:
            kernels = self.api("/api/kernels")
        except (urllib.error.URLError, OSError):
            return
        for k in kernels if isinstance(kernels, list) else []:
            req = urllib.request.Request(f"{self.base}/api/kernels/{k['id']}", method="DELETE",
                                         headers={"Authorization": f"token {self.token}"})
            with contextlib.suppress(urllib.error.URLError, OSError):
                urllib.request.urlopen(req, timeout=10.0).close()

    def log_tail(self, n: int = 40) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n:])


@contextlib.contextmanager
def running_jupyterlab(root_dir: Path, *, start_timeout_s: float = 60.0) -> Iterator[Lab]:
    jupyter = VENV_BIN / "jupyter"
    if not jupyter.exists():
        pytest.fail(f"{jupyter} is missing: install the lab extra (`pip install -e '.[lab]'`)",
                    pytrace=False)
    home = Path(tempfile.mkdtemp(prefix="wtlab-jupyter-"))
    token = secrets.token_hex(16)
    port = free_port()
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTER_DATA_DIR": str(home / "data"),  # kernels and extensions still come from sys.prefix
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "IPYTHONDIR": str(home / "ipython"),
        "PYTHONUNBUFFERED": "1",
    }
    args = [
        str(jupyter), "lab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root_dir}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",  # no PyPI queries from the extension panel
        "--ServerApp.terminals_enabled=False",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
        args.append("--allow-root")
    # Never fetch news or check for updates (and so never show the toast asking about it).
    settings = home / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    log_path = home / "jupyterlab.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed below, after the process ends
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env,
                            cwd=str(root_dir), start_new_session=True)
    lab = Lab(port=port, token=token, root_dir=root_dir, log_path=log_path, process=proc)
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:  # bounded readiness poll of the REST API
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{lab.log_tail()}",
                            pytrace=False)
            try:
                lab.api("/api/status", timeout_s=2.0)
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                if time.monotonic() > deadline:
                    pytest.fail(f"jupyter lab did not answer within {start_timeout_s} s:\n"
                                f"{lab.log_tail()}", pytrace=False)
                time.sleep(0.2)
        yield lab
    finally:
        if proc.poll() is None:
            lab.shutdown_kernels()
        _stop(proc)
        log.close()
        shutil.rmtree(home, ignore_errors=True)


def _stop(proc: subprocess.Popen, timeout_s: float = 15.0) -> None:
    """SIGTERM the server's process group (it and its kernels), then SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout_s)
