"""``wtlab trace`` (module entry point; the lead registers it in wtlab.cli)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from wtlab import ConfigError, TraceFormatError
from wtlab.trace import qlog, read_trace
from wtlab.trace.cli import cli_main

from .helpers import synthetic_recorder

DATA = Path(__file__).parent / "data"


def test_convert_between_formats(tmp_path, capsys):
    src = tmp_path / "run.parquet"
    synthetic_recorder(40).to_pandas().to_parquet(src)  # a plain pandas file reads too
    assert cli_main(["convert", str(src), str(tmp_path / "run.qlog"), "--flavour",
                     "legacy"]) == 0
    assert "rows" in capsys.readouterr().out
    back = read_trace(tmp_path / "run.qlog")
    pd.testing.assert_frame_equal(back, read_trace(src), check_categorical=False)
    assert cli_main(["convert", str(DATA / "aioquic_03.qlog"), str(tmp_path / "a.parquet"),
                     "--derive-acks"]) == 0
    got = read_trace(tmp_path / "a.parquet")
    want = qlog.read_qlog(DATA / "aioquic_03.qlog", derive_acks=True)
    pd.testing.assert_frame_equal(got, want, check_categorical=False)
    assert (got["kind"] == "packet_acked").sum() == 1


def test_summary_prints_the_monitor_table(capsys):
    assert cli_main(["summary", str(DATA / "ietf_current.qlog")]) == 0
    out = capsys.readouterr().out
    assert "flow 0" in out and "bytes_sent" in out and "2400" in out


def test_errors_are_wtlab_errors(tmp_path):
    with pytest.raises(ConfigError):
        cli_main(["convert", str(DATA / "aioquic_03.qlog"), str(tmp_path / "x.xlsx")])
    bad = tmp_path / "bad.sqlog"
    bad.write_text("\x1e{nope\n")
    with pytest.raises(TraceFormatError):
        cli_main(["summary", str(bad)])
