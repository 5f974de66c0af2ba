"""A small browser page that opens a WebTransport session to a wtlab server.

``serve_page(host, http_port, wt_url, cert_sha256)`` serves ``static/echo.html``
over plain HTTP on loopback. The page connects with
``new WebTransport(wt_url, {serverCertificateHashes: [{algorithm: "sha-256",
value: <cert_sha256>}]})``, echoes a bidirectional stream, a datagram and a
unidirectional stream through the server's ``/echo`` route, and shows the result.

What a user (or a test driving a headless browser) may rely on:

- ``document.title`` ends in ``": ok"`` or ``": failed"`` once the page is done
  (it starts as ``"wtlab echo: running"``);
- ``<pre id="result">`` then holds a JSON object with ``ok``, ``sent`` (the
  message), ``bidi``, ``datagram``, ``uni`` (what came back, prefixed with
  ``"bidi:"``, ``"dgram:"``, ``"uni:"``), ``setup_ms``, and ``error`` on failure;
- the query string overrides the configuration: ``?url=...&hash=<hex>&msg=...
  &timeout_ms=...&uni=0`` (``uni=0`` skips the unidirectional echo).

The HTTP server is a thread (``http.server``): it only hands out the page, it is
not on the WebTransport path. Browsers only treat ``http://127.0.0.1`` (and
``localhost``) as a secure context over plain HTTP, which WebTransport needs, so
the page is served on loopback only.
"""

from __future__ import annotations

import ipaddress
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import urlsplit

from wtlab.errors import ConfigError

__all__ = ["PageServer", "serve_page", "page_html", "cert_hash_hex"]

_PLACEHOLDER = "__WTLAB_CONFIG__"


def cert_hash_hex(cert_sha256: bytes | str) -> str:
    """Normalise a certificate SHA-256 (32 raw bytes, or hex with or without colons) to hex."""
    if isinstance(cert_sha256, bytes | bytearray | memoryview):
        raw = bytes(cert_sha256)
    elif isinstance(cert_sha256, str):
        text = cert_sha256.replace(":", "").replace(" ", "").strip()
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise ConfigError(
                f"cert_sha256 {cert_sha256!r} is not hex; pass the 32-byte SHA-256 of the "
                "server certificate (bytes or hex, as `wtlab serve` prints it)"
            ) from None
    else:
        raise ConfigError(
            f"cert_sha256 must be bytes or a hex string, not {type(cert_sha256).__name__}"
        )
    if len(raw) != 32:
        raise ConfigError(
            f"cert_sha256 has {len(raw)} bytes, a SHA-256 has 32; pass the server certificate's "
            "SHA-256 (as `wtlab serve` prints it)"
        )
    return raw.hex()


def page_html(wt_url: str, cert_sha256: bytes | str | None, *, timeout_ms: int = 10_000) -> bytes:
    """The echo page with its configuration filled in (UTF-8 bytes)."""
    config = {
        "wt_url": wt_url,
        "cert_sha256": cert_hash_hex(cert_sha256) if cert_sha256 is not None else "",
        "timeout_ms": int(timeout_ms),
    }
    template = resources.files("wtlab.transport").joinpath("static/echo.html").read_text("utf-8")
    # "</" must not appear inside the <script> element that carries the JSON.
    blob = json.dumps(config).replace("</", "<\\/")
    return template.replace(_PLACEHOLDER, blob).encode("utf-8")


def _check_loopback(host: str) -> None:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(
            f"the echo page is served on loopback only, got host {host!r}; use 127.0.0.1 "
            "(browsers allow WebTransport from plain-HTTP pages only on loopback)"
        )


def _check_wt_url(wt_url: str) -> None:
    parts = urlsplit(wt_url)
    if parts.scheme != "https" or not parts.hostname:
        raise ConfigError(
            f"wt_url {wt_url!r} is not an https:// URL with a host; pass the server's "
            "WebTransport URL, e.g. https://127.0.0.1:4433/echo"
        )


class PageServer:
    """A running page server. ``url`` is the page's address; ``close()`` stops it.

    Usable as a context manager. ``requests`` counts the pages served (handy for
    tests and for telling whether a browser came by).
    """

    def __init__(self, host: str, http_port: int, body: bytes) -> None:
        self._body = body
        self.requests = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                path = urlsplit(self.path).path
                if path in ("/", "/index.html", "/echo.html"):
                    owner.requests += 1
                    self._send(200, "text/html; charset=utf-8", owner._body)
                elif path == "/favicon.ico":
                    self._send(204, "image/x-icon", b"")
                else:
                    self._send(404, "text/plain; charset=utf-8", b"not found: try /\n")

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass  # keep test and notebook output quiet

        try:
            self._httpd = ThreadingHTTPServer((host, http_port), Handler)
        except OSError as exc:
            raise ConfigError(
                f"cannot serve the echo page on {host}:{http_port} ({exc.strerror}); "
                "pick another --page-port (0 picks a free one)"
            ) from exc
        self._httpd.daemon_threads = True
        self.host = host
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name=f"wtlab-page-{self.port}", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """The page's http:// address (append a query string to override its settings)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def close(self) -> None:
        """Stop serving; returns once the server thread has exited."""
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()

    def __enter__(self) -> PageServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve_page(
    host: str,
    http_port: int,
    wt_url: str,
    cert_sha256: bytes | str | None,
    *,
    timeout_ms: int = 10_000,
) -> PageServer:
    """Serve the echo page on ``http://host:http_port/`` (port 0 picks a free one).

    ``wt_url`` is the WebTransport URL the page connects to (the server's
    ``/echo`` route); ``cert_sha256`` the SHA-256 of the server's certificate
    (bytes or hex), passed to the browser as ``serverCertificateHashes``, or
    None for a certificate the browser already trusts. Returns a
    :class:`PageServer`; call ``close()`` when done.
    """
    _check_loopback(host)
    _check_wt_url(wt_url)
    return PageServer(host, http_port, page_html(wt_url, cert_sha256, timeout_ms=timeout_ms))
