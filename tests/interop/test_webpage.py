"""The echo page server (no browser needed): configuration, validation, HTTP answers."""

from __future__ import annotations

import hashlib
import json
import re
import urllib.error
import urllib.request

import pytest

import wtlab
from wtlab.transport.webpage import cert_hash_hex, page_html, serve_page

SHA = hashlib.sha256(b"cert").digest()


def _config_of(html: str) -> dict:
    m = re.search(r'<script id="config" type="application/json">(.*?)</script>', html, re.S)
    assert m, "config element missing"
    return json.loads(m.group(1))


def test_page_carries_url_and_hash():
    html = page_html("https://127.0.0.1:4433/echo", SHA, timeout_ms=1234).decode()
    assert _config_of(html) == {"wt_url": "https://127.0.0.1:4433/echo",
                                "cert_sha256": SHA.hex(), "timeout_ms": 1234}
    assert "serverCertificateHashes" in html and "__WTLAB_CONFIG__" not in html


def test_page_json_cannot_close_its_script_element():
    html = page_html("https://127.0.0.1:4433/echo?x=</script><b>", None).decode()
    assert _config_of(html)["wt_url"] == "https://127.0.0.1:4433/echo?x=</script><b>"


@pytest.mark.parametrize("given", [SHA, SHA.hex(), SHA.hex().upper(),
                                   ":".join(f"{b:02X}" for b in SHA)])
def test_cert_hash_forms(given):
    assert cert_hash_hex(given) == SHA.hex()


@pytest.mark.parametrize("bad", [b"short", "zz" * 32, "ab" * 31, 42])
def test_cert_hash_rejects_bad_input(bad):
    with pytest.raises(wtlab.ConfigError, match="SHA-256|hex|bytes"):
        cert_hash_hex(bad)


def test_serve_page_refuses_non_loopback_and_bad_url():
    with pytest.raises(wtlab.ConfigError, match="loopback"):
        serve_page("0.0.0.0", 0, "https://127.0.0.1:4433/echo", SHA)
    with pytest.raises(wtlab.ConfigError, match="https"):
        serve_page("127.0.0.1", 0, "http://127.0.0.1:4433/echo", SHA)


def test_serve_page_over_http():
    with serve_page("127.0.0.1", 0, "https://127.0.0.1:4433/echo", SHA) as page:
        assert page.url == f"http://127.0.0.1:{page.port}/"
        with urllib.request.urlopen(page.url, timeout=5) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/html")
            assert _config_of(resp.read().decode())["cert_sha256"] == SHA.hex()
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(page.url + "nothing-here", timeout=5)
        assert info.value.code == 404
        assert page.requests == 1
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(page.url, timeout=2)


def test_serve_page_port_in_use():
    with serve_page("127.0.0.1", 0, "https://127.0.0.1:4433/echo", SHA) as page:
        with pytest.raises(wtlab.ConfigError, match="cannot serve"):
            serve_page("127.0.0.1", page.port, "https://127.0.0.1:4433/echo", SHA)


def test_missing_chromium_fails_with_install_hint(monkeypatch):
    from tests.interop import browser

    monkeypatch.setenv("WTLAB_CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setattr(browser, "CHROMIUM_CANDIDATES", ("/nonexistent/chromium-2",))
    monkeypatch.setattr(browser.shutil, "which", lambda name: None)
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y chromium"):
        browser.chromium_path()
