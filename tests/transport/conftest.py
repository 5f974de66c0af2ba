"""Fixtures for transport tests: ``server``, a running ``wtlab.serve`` on a free loopback port.

Other test packages may reuse it: ``from tests.transport.conftest import server`` (pytest
fixture) or call ``running_server()`` directly.
"""

from __future__ import annotations

import contextlib

import pytest

import wtlab


class ServerHandle:
    """What the ``server`` fixture yields: ``.url(path)``, ``.cert_sha256``, ``.server``."""

    def __init__(self, server: wtlab.transport.Server) -> None:
        self.server = server
        self.cert_sha256 = server.cert_sha256
        self.port = server.port

    def url(self, path: str = "/echo") -> str:
        return self.server.url(path)

    def connect(self, path: str = "/echo", **kw):
        """``wtlab.connect`` to ``path`` with the right certificate hash."""
        kw.setdefault("cert_hashes", [self.cert_sha256])
        kw.setdefault("timeout", 5.0)
        return wtlab.connect(self.url(path), **kw)


@contextlib.asynccontextmanager
async def running_server(**kw):
    kw.setdefault("port", 0)
    async with wtlab.serve(**kw) as srv:
        yield ServerHandle(srv)


@pytest.fixture
async def server():
    async with running_server() as handle:
        yield handle
