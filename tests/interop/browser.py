"""Drive Debian's headless Chromium from tests (and benchmarks) with Playwright.

Only the system browser is used (``/usr/bin/chromium``, or ``$WTLAB_CHROMIUM``);
Playwright's own browser downloads are never needed. Chromium gets the flags
WebTransport needs in a container (sandbox off, no GPU, no background network
chatter, a fresh profile) and never ``--disable-quic``.

A missing browser is a failure with a clear message, not a skip: CI installs
``chromium`` through ``.ci/run``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")

# --headless is set by Playwright (headless=True) and the profile dir by
# launch_persistent_context; both are listed here for anyone launching by hand.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """Path of the system Chromium, or a pytest failure saying how to install it."""
    candidates = [os.environ.get("WTLAB_CHROMIUM", "")] + list(CHROMIUM_CANDIDATES)
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    found = shutil.which("chromium")
    if found:
        return found
    pytest.fail(
        "browser test needs Debian's chromium: run `apt-get install -y chromium` "
        "(.ci/run does it in CI) or set WTLAB_CHROMIUM to a Chromium binary",
        pytrace=False,
    )


@dataclass
class PageRun:
    """What a page reported: its final title, the JSON result, and the console log."""

    title: str
    result: dict
    console: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.result.get("ok"))

    def describe(self) -> str:
        return (f"title={self.title!r}\nresult={json.dumps(self.result, indent=2)}\n"
                f"console:\n  " + "\n  ".join(self.console[-30:]))


class Browser:
    """A headless Chromium with a fresh profile; ``run_page`` opens one page and reads its result."""

    def __init__(self, context, profile_dir: str) -> None:
        self._context = context
        self.profile_dir = profile_dir

    async def run_page(
        self,
        url: str,
        *,
        done_title_prefix: str = "wtlab echo: ",
        result_selector: str = "#result",
        timeout_s: float = 30.0,
    ) -> PageRun:
        """Open ``url`` and wait until the title is ``<prefix>ok`` or ``<prefix>failed``.

        The page must put a JSON object in ``result_selector`` before changing its title.
        """
        page = await self._context.new_page()
        console: list[str] = []
        page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
        page.on("pageerror", lambda exc: console.append(f"pageerror: {exc}"))
        try:
            await page.goto(url, wait_until="domcontentloaded", timeout=timeout_s * 1000)
            try:
                await page.wait_for_function(
                    """prefix => document.title.startsWith(prefix) &&
                                !document.title.endsWith("running")""",
                    arg=done_title_prefix,
                    timeout=timeout_s * 1000,
                )
            except Exception as exc:  # Playwright's TimeoutError: report what the page shows
                text = await page.text_content(result_selector) or "{}"
                pytest.fail(
                    f"page {url} did not finish within {timeout_s} s ({type(exc).__name__}); "
                    f"title={await page.title()!r} result={text}\nconsole:\n  "
                    + "\n  ".join(console[-30:]),
                    pytrace=False,
                )
            title = await page.title()
            text = await page.text_content(result_selector) or "{}"
            return PageRun(title=title, result=json.loads(text), console=console)
        finally:
            await page.close()


@contextlib.asynccontextmanager
async def launch_chromium(*, extra_args: list[str] | None = None) -> AsyncIterator[Browser]:
    """Launch headless system Chromium with a fresh profile directory; close it on exit."""
    executable = chromium_path()
    from playwright.async_api import async_playwright

    profile_dir = tempfile.mkdtemp(prefix="wtlab-chromium-")
    try:
        async with async_playwright() as pw:
            context = await pw.chromium.launch_persistent_context(
                profile_dir,
                executable_path=executable,
                headless=True,
                args=CHROMIUM_ARGS + list(extra_args or []),
                # Playwright adds these by default; none of them touches QUIC.
                ignore_default_args=["--enable-automation"],
            )
            try:
                yield Browser(context, profile_dir)
            finally:
                await context.close()
    finally:
        shutil.rmtree(profile_dir, ignore_errors=True)
