"""A real browser: headless Chromium opens wtlab's echo page and talks WebTransport to wtlab.

The page (``wtlab.transport.webpage``) connects with ``serverCertificateHashes``,
echoes a bidirectional stream, a datagram and a unidirectional stream, and
reports what came back; the test asserts the echoed bytes. A missing Chromium is
a failure, not a skip (CI installs it through ``.ci/run``).

Chromium 156 (Debian) offers draft-02 by default (SETTINGS H3_DATAGRAM 0x33 = 1,
ENABLE_WEBTRANSPORT 0x2b603742 = 1); with ``--enable-features=EnableWebTransportDraft07``
it also offers draft-07 (WEBTRANSPORT_MAX_SESSIONS 0xc671706a). pywebtransport
0.8.1's server cannot serve this Chromium at all: it advertises only the newest
drafts' WT_MAX_SESSIONS (0x14e9cd29), and Chromium fails the CONNECT with
net::ERR_METHOD_NOT_SUPPORTED; hence the raw-aioquic control below.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

import pytest

from tests.interop.browser import launch_chromium
from tests.interop.conftest import running_wtlab, wt_url
from wtlab.transport.webpage import serve_page

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

DRAFT07 = "--enable-features=EnableWebTransportDraft07"


def _assert_echoed(run, msg: str) -> None:
    assert run.ok, run.describe()
    assert run.result["bidi"] == "bidi:" + msg, run.describe()
    assert run.result["datagram"] == "dgram:" + msg, run.describe()
    assert run.result["uni"] == "uni:" + msg, run.describe()


# With draft-07 enabled Chromium 156 adds WEBTRANSPORT_MAX_SESSIONS to its SETTINGS but still
# sends `sec-webtransport-http3-draft02: 1` on the CONNECT, so the session is draft-02 (observed).
@pytest.mark.parametrize(("extra_args", "dialect"), [([], "draft02"), ([DRAFT07], "draft02")],
                         ids=["draft02", "draft07-offered"])
async def test_chromium_echo_against_wtlab_serve(extra_args, dialect):
    """Default server certificate (generated, ECDSA P-256, <= 14 days) and its SHA-256."""
    from wtlab.transport import handlers

    dialects: list[str] = []

    async def echo(session) -> None:  # the built-in echo, noting the negotiated dialect
        dialects.append(session.dialect)
        await handlers.echo(session)

    msg = "wtlab-" + secrets.token_hex(8)
    async with running_wtlab(routes={"/echo": echo}) as srv:
        with serve_page("127.0.0.1", 0, wt_url(srv, "/echo"), srv.cert_sha256) as page:
            async with launch_chromium(extra_args=extra_args) as browser:
                run = await browser.run_page(page.url + "?" + urlencode({"msg": msg}))
            assert page.requests == 1
    _assert_echoed(run, msg)
    assert run.result["setup_ms"] > 0
    assert dialects == [dialect]


async def test_chromium_rejects_wrong_certificate_hash():
    """The hash is what lets the browser in: a wrong one must fail the handshake."""
    async with running_wtlab() as srv:
        wrong = bytes(32) if srv.cert_sha256 != bytes(32) else b"\1" * 32
        with serve_page("127.0.0.1", 0, wt_url(srv, "/echo"), wrong, timeout_ms=5000) as page:
            async with launch_chromium() as browser:
                run = await browser.run_page(page.url + "?msg=x")
    assert not run.ok, run.describe()
    assert run.title == "wtlab echo: failed"
    assert "bidi" not in run.result and run.result.get("error"), run.describe()


async def test_chromium_unknown_route_is_refused():
    async with running_wtlab() as srv:
        with serve_page("127.0.0.1", 0, wt_url(srv, "/no-such-route"), srv.cert_sha256,
                        timeout_ms=5000) as page:
            async with launch_chromium() as browser:
                run = await browser.run_page(page.url + "?msg=x")
    assert not run.ok, run.describe()
    assert "setup_ms" not in run.result, run.describe()


async def test_chromium_echo_against_raw_aioquic_control(interop_cert, monkeypatch):
    """Control: the page and browser work with a bare aioquic server, and Chromium's
    SETTINGS say which drafts it offers (draft-02 by default)."""
    import aioquic.h3.connection as h3c

    from benchmarks.rawh3 import raw_serve
    from tests.interop.pwt import free_udp_port

    seen: list[dict[int, int]] = []
    original = h3c.parse_settings

    def recording(data: bytes) -> dict[int, int]:
        settings = original(data)
        seen.append(settings)
        return settings

    monkeypatch.setattr(h3c, "parse_settings", recording)
    port = free_udp_port()
    server = await raw_serve("127.0.0.1", port, str(interop_cert.certfile),
                             str(interop_cert.keyfile))
    msg = "raw-" + secrets.token_hex(4)
    try:
        url = f"https://127.0.0.1:{port}/echo"
        with serve_page("127.0.0.1", 0, url, interop_cert.sha256) as page:
            async with launch_chromium() as browser:
                run = await browser.run_page(page.url + "?" + urlencode({"msg": msg}))
    finally:
        server.close()
    _assert_echoed(run, msg)
    assert seen, "Chromium sent no SETTINGS"
    chromium = seen[0]
    assert chromium.get(0x33) == 1 and chromium.get(0x2B603742) == 1, chromium


async def test_wtlab_serve_page_cli_in_chromium():
    """The user's path: `wtlab serve --page` prints a page URL; the page echoes in a browser."""
    import asyncio
    import re
    import sys

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wtlab", "serve", "--port", "0", "--page", "--page-port", "0",
        "--duration", "90", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        lines: list[str] = []
        page_url = None
        while page_url is None:
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
            if not line:
                raise AssertionError("wtlab serve --page exited early:\n" + "".join(lines))
            lines.append(line)
            m = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
            if m:
                page_url = m.group(1)
        assert any(re.search(r"SHA-256: [0-9a-f]{64}", ln) for ln in lines), lines
        msg = "cli-" + secrets.token_hex(4)
        async with launch_chromium() as browser:
            run = await browser.run_page(page_url + "?" + urlencode({"msg": msg}))
        _assert_echoed(run, msg)
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()
