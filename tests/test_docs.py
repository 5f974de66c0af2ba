"""The documentation site builds strictly, offline, and holds what it promises.

One build (``make docs``'s command, into a temporary folder, notebooks executed afresh)
serves every test here. The build is strict: ``-W`` turns every warning into an error
(a broken cross-reference, a public name without a docstring, a module the reference
leaves out, a notebook cell that fails).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# one build of a few minutes (the notebooks run) serves every test of the module
pytestmark = pytest.mark.timeout(1800)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("docs")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WTLAB_DOCS_EXECUTE": "force",
           "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-n", "-W", "--keep-going", "-q",
         "-d", str(out / "doctrees"), str(DOCS), str(out / "html")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, f"the docs build failed:\n{proc.stderr[-6000:]}"
    return out / "html"


def test_every_page_is_built(site):
    pages = {p.relative_to(site).as_posix() for p in site.rglob("*.html")}
    for page in ("index.html", "getting-started.html", "concepts/engines.html",
                 "concepts/paths.html", "concepts/trace.html", "concepts/metrics.html",
                 "concepts/reliability.html", "concepts/controllers.html",
                 "howto/export.html", "howto/import-qlog.html", "howto/controller.html",
                 "howto/dask.html", "howto/browser.html", "howto/relay.html",
                 "howto/reproduce.html", "howto/link-traces.html", "reference/errors.html",
                 "reference/lab.html", "reference/net.html", "notebooks/index.html"):
        assert page in pages, page
    notebooks = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks and all(f"notebooks/{n}.html" in pages for n in notebooks)


def test_metric_definitions_are_generated_from_the_metrics_module(site):
    from wtlab.trace import metrics

    html = (site / "concepts" / "metrics.html").read_text()
    for m in metrics.METRICS:
        assert f"<span class=\"pre\">{m.name}</span>" in html, m.name
        # the meaning as written in the module (HTML-escaped the way Sphinx does it)
        assert _escape(m.meaning) in html, m.meaning


def test_path_keys_and_errors_are_generated(site):
    from wtlab import errors
    from wtlab.net.path import PATH_KEYS

    paths = (site / "concepts" / "paths.html").read_text()
    assert all(f"<span class=\"pre\">{k}</span>" in paths for k in PATH_KEYS)
    errs = (site / "reference" / "errors.html").read_text()
    family = [c for c in vars(errors).values()
              if isinstance(c, type) and issubclass(c, errors.WtlabError)]
    assert all(f"<span class=\"pre\">{c.__name__}</span>" in errs for c in family)
    # "raised by" was found in the code: the registry's get() raises UnknownAlgorithm
    row = re.search(r'<tr[^>]*><td><p><code[^>]*><span class="pre">UnknownAlgorithm</span>'
                    r'.*?</tr>', errs, re.S).group(0)
    assert "cc.base.get" in row and "cc.base.create" in row


def test_the_reference_documents_every_module_with_raised_errors(site):
    import pkgutil

    import wtlab

    text = "".join(p.read_text() for p in (site / "reference").glob("*.html"))
    for info in pkgutil.walk_packages(wtlab.__path__, "wtlab."):
        if info.name.split(".")[-1].startswith("_"):
            continue
        assert f'id="module-{info.name}"' in text, info.name
    # the Raises field, found in the code
    lab = (site / "reference" / "lab.html").read_text()
    replay = re.search(r'id="wtlab.lab.replay.replay".*?</dl>', lab, re.S).group(0)
    assert "Raises" in replay and "ConfigError" in replay
    net = (site / "reference" / "net.html").read_text()
    symmetric = re.search(r'id="wtlab.net.path.Path.symmetric".*?</dl>', net, re.S).group(0)
    assert "Raises" in symmetric and "ConfigError" in symmetric


def test_notebooks_are_rendered_with_their_outputs(site):
    quick = (site / "notebooks" / "01_quickstart.html").read_text()
    assert "echoed:" in quick and "hello, WebTransport" in quick  # a printed output
    steps = (site / "notebooks" / "02_stepping.html").read_text()
    assert "Plotly.newPlot" in steps  # an interactive figure, drawn by the page itself
    assert "needs a live Python kernel" in steps  # the widget's note, not its repr


def test_the_site_opens_offline(site):
    """No page loads a script, style sheet or font from the web."""
    remote = re.compile(r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=["'](?:https?:)?//""",
                        re.I)
    offenders = {}
    for page in site.rglob("*.html"):
        found = remote.findall(page.read_text(errors="replace"))
        if found:
            offenders[page.relative_to(site).as_posix()] = found[:3]
    assert not offenders, offenders
    # pages with figures load the one local copy of plotly.js; no page carries its own
    comparing = (site / "notebooks" / "03_comparing.html").read_text()
    # loaded before the figures' inline scripts draw (else they would find no Plotly)
    assert 0 < comparing.find("_static/wtlab/plotly.min.js") < comparing.find("Plotly.newPlot")
    assert (site / "_static" / "wtlab" / "plotly.min.js").stat().st_size > 1_000_000
    heavy = {p.name: p.stat().st_size for p in site.rglob("*.html") if p.stat().st_size > 3e6}
    assert not heavy, heavy


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
