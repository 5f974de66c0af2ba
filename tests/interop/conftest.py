"""Fixtures for interoperability tests: certificates and a running ``wtlab.serve``."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from tests.interop.certs import CertFiles, make_cert


@pytest.fixture(scope="session")
def interop_cert(tmp_path_factory) -> CertFiles:
    """An ECDSA P-256 certificate for 127.0.0.1, valid 10 days (browser-acceptable)."""
    return make_cert(Path(tmp_path_factory.mktemp("interop-cert")))


@contextlib.asynccontextmanager
async def running_wtlab(**kw):
    """``wtlab.serve(...)`` on 127.0.0.1, a free port, as an async context manager."""
    import wtlab

    server = wtlab.serve("127.0.0.1", 0, **kw)
    async with server as running:
        yield running if running is not None else server


def wt_url(server, path: str = "/echo") -> str:
    return f"https://127.0.0.1:{server.port}{path}"
