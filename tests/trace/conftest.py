"""A real aioquic loopback transfer, run once per test session (about half a second)."""

from __future__ import annotations

import asyncio

import pytest

from wtlab.trace import Recorder

from .live import transfer


@pytest.fixture(scope="session")
def live_run(tmp_path_factory):
    """(qlog directory, Recorder) of a 400 kB upload over aioquic on 127.0.0.1."""
    qdir = tmp_path_factory.mktemp("qlog")
    rec = Recorder(meta={"algorithm": "reno", "workload": "upload 300000 + 100000 bytes",
                         "path": "loopback"})
    answers = asyncio.run(transfer(qdir, recorder=rec))
    assert answers == [b"300000", b"100000"]
    return qdir, rec
