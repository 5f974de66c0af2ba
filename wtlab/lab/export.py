"""Figures to files for slides and handouts: PNG, SVG, PDF and self-contained HTML.

    from wtlab.lab.export import save_figure
    save_figure(result.plot(), "cubic.svg")          # or .png (scale=2), .pdf, .html

Static formats (PNG, SVG, PDF) need a browser to lay the figure out: plotly's own
exporter (kaleido) drives a Chrome too. wtlab uses the Chromium the browser tests
already need (Debian's ``/usr/bin/chromium``, or ``$WTLAB_CHROMIUM``) directly, headless,
so exporting adds no Python dependency: the figure is drawn by the plotly.js that ships
with the ``plotly`` package (loaded from its file, no network), PNG and SVG come from
``Plotly.toImage``, PDF from Chromium's print-to-PDF of the SVG (vector, one page the
size of the figure). WebGL traces (``Scattergl``) are drawn as SVG scatters, so the
output does not depend on a GPU. HTML needs no browser: plotly.js is written inline.

Every file is written atomically (a temporary file beside it, then renamed), with the
permissions the process's umask gives a new file.
"""

from __future__ import annotations

import base64
import contextlib
import html
import json
import os
import shutil
import subprocess
import tempfile
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from wtlab.errors import ConfigError, WtlabError

FORMATS = ("png", "svg", "pdf", "html")
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
EXPORT_TIMEOUT_S = 90.0


class ExportError(WtlabError, RuntimeError):
    """A figure could not be exported (the browser failed or is missing)."""


def chromium_path() -> str:
    """The Chromium used for static export: ``$WTLAB_CHROMIUM``, Debian's, or on PATH."""
    for path in (os.environ.get("WTLAB_CHROMIUM", ""), *CHROMIUM_CANDIDATES):
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise ExportError("PNG, SVG and PDF export need Chromium: install it (Debian: "
                      "`apt-get install chromium`) or set WTLAB_CHROMIUM to a Chromium or "
                      "Chrome binary; .html export needs no browser")


def _plotly_js_path() -> Path:
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise ExportError(f"plotly.js not found at {path}; reinstall plotly")
    return path


def _umask_mode() -> int:
    """0o666 minus the umask (read from /proc where it can be, which changes nothing)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def write_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename;
    the file gets the mode a plain ``open(path, "w")`` would (0o666 minus the umask)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return target


def _static_figure(fig: Any):
    """A copy of ``fig`` with WebGL scatters as SVG scatters (no GPU needed)."""
    import plotly.graph_objects as go

    out = go.Figure(fig)
    data = []
    for tr in out.data:
        if tr.type == "scattergl":
            props = tr.to_plotly_json()
            props.pop("type", None)
            data.append(go.Scatter(**props))
        else:
            data.append(tr)
    out.data = ()
    out.add_traces(data)
    return out


def _size(fig: Any, width: int | None, height: int | None) -> tuple[int, int]:
    w = width or fig.layout.width or 1000
    h = height or fig.layout.height or 600
    return int(w), int(h)


_PAGE = """<!doctype html><html><head><meta charset="utf-8">
<style>@page {{ size: {w}px {h}px; margin: 0 }} html, body {{ margin: 0; padding: 0 }}</style>
<script src="{plotly}"></script></head><body><div id="fig"></div><pre id="out"></pre>
<script>
const fig = {fig};
const opts = {opts};
Plotly.newPlot("fig", fig.data, fig.layout, {{staticPlot: true}}).then(gd => {{
  if (opts.format === "pdf") {{ document.getElementById("out").textContent = "drawn"; return; }}
  return Plotly.toImage(gd, opts).then(url => {{
    document.getElementById("fig").remove();
    document.getElementById("out").textContent = url; }});
}}).catch(e => {{ document.getElementById("out").textContent = "ERROR " + e; }});
</script></body></html>"""


def _render(fig: Any, fmt: str, width: int, height: int, scale: float) -> bytes:
    exe = chromium_path()
    spec = _static_figure(fig)
    spec.update_layout(width=width, height=height)
    opts = {"format": fmt, "width": width, "height": height, "scale": scale}
    with tempfile.TemporaryDirectory(prefix="wtlab-export-") as tmp:
        page = Path(tmp) / "figure.html"
        page.write_text(_PAGE.format(w=width, h=height, plotly=_plotly_js_path().as_uri(),
                                     fig=spec.to_json(), opts=json.dumps(opts)),
                        encoding="utf-8")
        args = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update",
                f"--user-data-dir={Path(tmp) / 'profile'}", "--virtual-time-budget=30000",
                "--hide-scrollbars"]
        out_pdf = Path(tmp) / "figure.pdf"
        if fmt == "pdf":
            args += [f"--print-to-pdf={out_pdf}", "--no-pdf-header-footer"]
        else:
            args += ["--dump-dom"]
        try:
            proc = subprocess.run([*args, page.as_uri()], capture_output=True,
                                  timeout=EXPORT_TIMEOUT_S, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise ExportError(f"Chromium did not finish the {fmt} export within "
                              f"{EXPORT_TIMEOUT_S:g} s") from None
        if fmt == "pdf":
            if proc.returncode != 0 or not out_pdf.is_file():
                raise ExportError(f"Chromium could not print the PDF (exit {proc.returncode}): "
                                  f"{proc.stderr.decode(errors='replace')[-500:]}")
            return out_pdf.read_bytes()
        dom = proc.stdout.decode("utf-8", errors="replace")
        start = dom.find('<pre id="out">')
        end = dom.find("</pre>", start)
        text = html.unescape(dom[start + len('<pre id="out">'):end]) if start >= 0 else ""
        if not text.startswith("data:"):
            raise ExportError(f"Chromium did not draw the figure (exit {proc.returncode}): "
                              f"{text[:200] or proc.stderr.decode(errors='replace')[-500:]}")
        head, _, payload = text.partition(",")
        if head.endswith(";base64"):
            return base64.b64decode(payload)
        return urllib.parse.unquote(payload).encode("utf-8")


def figure_bytes(fig: Any, fmt: str, *, width: int | None = None, height: int | None = None,
                 scale: float = 2.0) -> bytes:
    """The figure as ``fmt`` (png, svg, pdf, html) bytes; see :func:`save_figure`."""
    fmt = fmt.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ConfigError(f"format {fmt!r}: use one of {', '.join(FORMATS)}")
    if fmt == "html":
        return fig.to_html(include_plotlyjs=True, full_html=True).encode("utf-8")
    w, h = _size(fig, width, height)
    return _render(fig, fmt, w, h, scale)


def save_figure(fig: Any, path: str | os.PathLike, *, format: str | None = None,
                width: int | None = None, height: int | None = None,
                scale: float = 2.0) -> Path:
    """Write ``fig`` (a plotly Figure or FigureWidget) to ``path``; the format is the
    suffix's (``.png``, ``.svg``, ``.pdf``, ``.html``) unless ``format`` is given. The
    size is the figure's own (or ``width`` x ``height`` CSS pixels); PNGs are drawn at
    ``scale`` x that (2: sharp on a projector)."""
    fmt = (format or Path(path).suffix).lower().lstrip(".")
    if not fmt:
        raise ConfigError(f"{str(path)!r} has no suffix: name the file .png, .svg, .pdf or "
                          ".html, or pass format=")
    return write_atomic(path, figure_bytes(fig, fmt, width=width, height=height, scale=scale))


def html_document(path: str | os.PathLike, title: str,
                  parts: Iterable[tuple[str, Any]]) -> Path:
    """One self-contained HTML file: ``parts`` are ``("figure", fig)``, ``("table", html)``
    or ``("text", str)``, in order; plotly.js is inlined once. Written atomically."""
    import plotly.io as pio

    body = [f"<h1>{html.escape(title)}</h1>"]
    first = True
    for kind, item in parts:
        if kind == "figure":
            body.append(pio.to_html(item, include_plotlyjs=True if first else False,
                                    full_html=False))
            first = False
        elif kind == "table":
            body.append(f"<div class='table'>{item}</div>")
        elif kind == "text":
            body.append(f"<p>{html.escape(str(item))}</p>")
        else:
            raise ConfigError(f"html_document: unknown part {kind!r}; use figure, table or text")
    doc = ("<!doctype html><html><head><meta charset='utf-8'>"
           f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif;"
           "margin:2em}} table{border-collapse:collapse} td,th{padding:2px 10px;"
           "text-align:right} h1{font-size:1.4em}</style></head><body>"
           + "\n".join(body) + "</body></html>")
    return write_atomic(path, doc.encode("utf-8"))
