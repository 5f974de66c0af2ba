"""Files people can share: every file wtlab writes follows the umask (0644 under 022,
0600 under 077), is written atomically, and only private keys are 0600 whatever the
umask. CSV nulls read as nulls in pandas, polars and DuckDB."""

from __future__ import annotations

import os
import stat

import pandas as pd
import pytest

from wtlab import datasets
from wtlab.trace import export, files, qlog

from .helpers import synthetic_recorder


@pytest.fixture(params=[0o022, 0o077], ids=["umask022", "umask077"])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _every_file_wtlab_writes(root):
    from wtlab.net.traces import MahimahiTrace

    rec = synthetic_recorder(20)
    out = [export.write_parquet(rec, root / "t.parquet"),
           export.write_csv(rec, root / "t.csv"),
           qlog.write_qlog(rec, root / "t.qlog"),
           qlog.write_qlog(rec, root / "t.sqlog", flavour="legacy"),
           export.write_text_atomic(root / "report.html", "<html></html>")]
    ds = root / "ds"
    out.append(datasets.write_run(ds, rec, {"algo": "reno", "seed": 1}))
    out.append(datasets.write_failure(ds, {"algo": "bbr", "seed": 1}, "boom"))
    out.append(datasets.write_card(ds, how_made="test"))
    out.append(ds / datasets.TYPES_NAME)
    trace = MahimahiTrace.constant(12e6)
    trace.save(root / "link.trace")
    out.append(root / "link.trace")
    return out


def test_every_file_follows_the_umask(tmp_path, umask):
    written = _every_file_wtlab_writes(tmp_path)
    assert len(written) == 10
    for f in written:
        assert _mode(f) == 0o666 & ~umask, f"{f.name}: {oct(_mode(f))}"
    # and nothing half-written is left beside them
    assert not [p for p in tmp_path.rglob(".*")]


def test_private_keys_stay_private(tmp_path):
    from wtlab.transport.certs import generate_certificate

    old = os.umask(0o022)
    try:
        generate_certificate(kind="rsa").write(str(tmp_path / "c.pem"), str(tmp_path / "k.pem"))
    finally:
        os.umask(old)
    assert _mode(tmp_path / "k.pem") == 0o600
    assert _mode(tmp_path / "c.pem") == 0o644


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "keep.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), files.atomic_open(target, "w") as fh:
        fh.write("half")
        raise RuntimeError("disk on fire")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
    files.write_text(target, "new")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
    with pytest.raises(ValueError):
        with files.atomic_open(target, "a"):
            pass


def test_csv_nulls_are_nulls_for_pandas_polars_and_duckdb(tmp_path):
    import duckdb
    import polars as pl

    df = synthetic_recorder(30).to_pandas()
    assert df["cwnd"].isna().any() and df["cwnd"].notna().any()
    p = export.write_csv(df, tmp_path / "t.csv")
    pol = pl.read_csv(p)
    for col in ("pn", "stream_id", "cwnd", "bytes_in_flight", "bytes"):
        assert pol.schema[col] == pl.Int64, col
        assert pol[col].null_count() == int(df[col].isna().sum()), col
    assert pol.schema["time_s"] == pl.Float64
    plain = pd.read_csv(p)
    assert plain["cwnd"].isna().sum() == df["cwnd"].isna().sum()
    assert plain["cwnd"].dtype == "float64"  # numbers, NaN for the missing ones
    rel = duckdb.sql(f"select count(cwnd), count(*) from read_csv('{p}')").fetchall()[0]
    assert rel == (int(df["cwnd"].notna().sum()), len(df))
    pd.testing.assert_frame_equal(export.read_csv(p), df, check_categorical=False)
