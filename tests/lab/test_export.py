"""Figures to PNG, SVG, PDF (through Debian's headless Chromium) and self-contained HTML."""

from __future__ import annotations

import os

import pytest

from wtlab.errors import ConfigError
from wtlab.lab import Experiment, compare
from wtlab.lab.export import ExportError, figure_bytes, save_figure

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def result():
    return Experiment(path=dict(rate_bps=10e6, rtt_s=0.04, loss=0.01), cc="cubic",
                      seed=1).run(2.0)


def test_static_formats_are_real_files_with_the_umask_mode(result, tmp_path):
    fig = result.plot()
    old = os.umask(0o027)
    try:
        png = save_figure(fig, tmp_path / "fig.png")
        svg = save_figure(fig, tmp_path / "fig.svg")
        pdf = save_figure(result.sequence_plot(), tmp_path / "seq.pdf")
    finally:
        os.umask(old)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = svg.read_text()
    assert text.startswith("<svg") and "congestion window" in text and "cubic cwnd" in text
    assert pdf.read_bytes()[:5] == b"%PDF-"
    for p in (png, svg, pdf):
        assert (p.stat().st_mode & 0o777) == 0o640  # 0o666 minus the umask
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def test_png_is_drawn_at_scale(result):
    import struct

    data = figure_bytes(result.plot(), "png", width=400, height=300, scale=2)
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (800, 600)


def test_comparison_is_one_self_contained_html_file(tmp_path):
    cmp = compare(Experiment(path=dict(rate_bps=5e6, rtt_s=0.04, loss=0.01), seed=1),
                  ccs=["reno", "bbr"], duration_s=2, seeds=2)
    out = cmp.to_html(tmp_path / "cmp.html")
    text = out.read_text()
    assert text.count("<script") >= 3 and "<script src=" not in text
    assert "Plotly.newPlot" in text and "goodput ±95% (Mbit/s)" in text
    assert len(text) > 3_000_000  # plotly.js inline: opens without a network


def test_export_errors_are_typed(result, tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="format"):
        save_figure(result.plot(), tmp_path / "fig.bmp")
    monkeypatch.setenv("WTLAB_CHROMIUM", "/nonexistent")
    monkeypatch.setattr("wtlab.lab.export.CHROMIUM_CANDIDATES", ())
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ExportError, match="Chromium"):
        save_figure(result.plot(), tmp_path / "fig.png")
    save_figure(result.plot(), tmp_path / "fig.html")  # needs no browser
