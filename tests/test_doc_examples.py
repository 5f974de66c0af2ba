"""Every Python example of the documentation runs as written.

Each page's ``python`` blocks run in order in one namespace (a page is a walk-through),
as notebook cells would (top-level ``await`` allowed), in a temporary folder (where
``datasets/`` is the repository's, as from its root). A block
that needs something only the reader has (their qlog file, their cluster, a browser)
says so just above it in an HTML comment, ``<!-- not run by the tests: why -->``, and is
left out; nothing else is.
"""

from __future__ import annotations

import ast
import asyncio
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(p for p in (ROOT / "docs").rglob("*.md") if "_build" not in p.parts)
BLOCK = re.compile(r"(<!-- not run by the tests: [^>]*-->\n)?```python\n(.*?)```", re.S)


def test_pages_have_examples():
    assert sum(len(BLOCK.findall(p.read_text())) for p in PAGES) >= 15


@pytest.mark.timeout(600)
@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT / "docs").as_posix()
                                             for p in PAGES])
def test_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # pages read the shipped dataset as a reader in the repository's root would
    (tmp_path / "datasets").symlink_to(ROOT / "datasets")
    scope: dict = {"__name__": "__doc_example__"}
    for i, (skip, code) in enumerate(BLOCK.findall(page.read_text())):
        if skip:
            continue
        compiled = compile(code, f"{page.name} example {i + 1}", "exec",
                           flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)

        async def cell(compiled=compiled):
            result = eval(compiled, scope)
            if result is not None:
                await result

        asyncio.run(cell())
