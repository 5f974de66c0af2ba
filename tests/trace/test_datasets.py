"""wtlab.datasets: streaming writes, resume, failures, card, load, DuckDB and Dask."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from wtlab import ConfigError, datasets
from wtlab.trace import schema

from .helpers import check_five_readers, synthetic_recorder

PARAMS = [
    {"algo": "cubic", "rate_mbps": 10, "loss": 0.01, "seed": 1},
    {"algo": "cubic", "rate_mbps": 20, "loss": 0.0, "seed": 2},
    {"algo": "bbr", "rate_mbps": 10, "loss": 0.01, "seed": 1},
]


def _write_three(root):
    files = []
    for i, p in enumerate(PARAMS):
        rec = synthetic_recorder(50 + 10 * i, seed=i)
        files.append(datasets.write_run(root, rec, p, {"note": f"run {i}"}))
    return files


def test_run_id_is_stable_and_param_order_free():
    a = datasets.run_id({"algo": "cubic", "seed": 1})
    assert a == datasets.run_id({"seed": 1, "algo": "cubic"})
    assert len(a) == 16 and int(a, 16) >= 0
    assert a != datasets.run_id({"algo": "cubic", "seed": 2})


def test_write_run_layout_and_resume(tmp_path):
    files = _write_three(tmp_path)
    assert files[0] == tmp_path / "data" / f"part-{datasets.run_id(PARAMS[0])}.parquet"
    assert all(f.exists() for f in files)
    assert datasets.finished_runs(tmp_path) == {datasets.run_id(p) for p in PARAMS}
    assert datasets.finished_runs(tmp_path / "nope") == set()
    # no temporary files left behind, and nothing but Parquet parts in data/
    assert not [f for f in tmp_path.rglob("*") if f.name.startswith(".")]
    assert {f.suffix for f in (tmp_path / "data").iterdir()} == {".parquet"}
    # rewriting the same run replaces its file, it does not add one
    datasets.write_run(tmp_path, synthetic_recorder(5), PARAMS[0])
    assert len(list(tmp_path.rglob("*.parquet"))) == 3


def test_parameters_are_typed_columns_of_every_part(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = _write_three(tmp_path)
    for f, p in zip(files, PARAMS, strict=True):
        table = pq.read_table(f)
        sch = table.schema
        assert sch.field("rate_mbps").type == pa.int64()
        assert sch.field("loss").type == pa.float64()
        assert pa.types.is_dictionary(sch.field("algo").type)
        assert table.column("rate_mbps").to_pylist() == [p["rate_mbps"]] * len(table)
        assert table.column("run_id").to_pylist() == [datasets.run_id(p)] * len(table)


def test_a_parameter_keeps_one_type_in_the_dataset(tmp_path):
    """buffer_bdp: [2, 0.5] (as YAML gives it): float64 in every part, the earlier
    part rewritten; None fits any type; incompatible values become text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    a = datasets.write_run(tmp_path, synthetic_recorder(3), {"buffer_bdp": 2, "tag": None})
    assert pq.read_schema(a).field("buffer_bdp").type == pa.int64()
    b = datasets.write_run(tmp_path, synthetic_recorder(3), {"buffer_bdp": 0.5, "tag": 7})
    c = datasets.write_run(tmp_path, synthetic_recorder(3), {"buffer_bdp": None,
                                                             "tag": "x"})
    for f in (a, b, c):
        sch = pq.read_schema(f)
        assert sch.field("buffer_bdp").type == pa.float64()
        assert pa.types.is_dictionary(sch.field("tag").type)
    df = datasets.load(tmp_path)
    assert df["buffer_bdp"].dtype == "float64"
    assert sorted(df["buffer_bdp"].dropna().unique()) == [0.5, 2.0]
    assert set(df["tag"].dropna().astype(str)) == {"7", "x"}
    assert pd.read_parquet(tmp_path / "data")["buffer_bdp"].dtype == "float64"


def test_old_key_value_layout_is_refused(tmp_path):
    from wtlab import TraceFormatError

    (tmp_path / "algo=cubic").mkdir()
    with pytest.raises(TraceFormatError, match="old key=value"):
        datasets.finished_runs(tmp_path)
    with pytest.raises(TraceFormatError, match="old key=value"):
        datasets.write_run(tmp_path, synthetic_recorder(2), {"algo": "reno"})


def test_failed_run_recorded_then_cleared(tmp_path):
    p = {"algo": "reno", "rate_mbps": 5, "seed": 3}
    try:
        raise RuntimeError("model diverged")
    except RuntimeError as exc:
        f = datasets.write_failure(tmp_path, p, exc)
    rec = json.loads(f.read_text())
    assert rec["error"]["type"] == "RuntimeError" and "model diverged" in rec["error"]["message"]
    assert "Traceback" in rec["error"]["traceback"] and rec["params"] == p
    rid = datasets.run_id(p)
    assert set(datasets.failed_runs(tmp_path)) == {rid}
    assert rid not in datasets.finished_runs(tmp_path)
    datasets.write_run(tmp_path, synthetic_recorder(5), p)
    assert datasets.failed_runs(tmp_path) == {} and rid in datasets.finished_runs(tmp_path)


def test_atomic_write_leaves_nothing_on_error(tmp_path):
    class Boom:
        meta: dict = {}

        def to_pandas(self):
            raise RuntimeError("half way")

    with pytest.raises(RuntimeError):
        datasets.write_run(tmp_path, Boom(), {"algo": "x"})
    assert not list(tmp_path.rglob("*.parquet*"))


def test_bad_params_are_config_errors(tmp_path):
    for bad in ({}, {"kind": 1}, {"a/b": 1}, {"x": [1, 2]}, {"x": float("nan")}, {"x": ""}):
        with pytest.raises(ConfigError):
            datasets.write_run(tmp_path, synthetic_recorder(2), bad)


def test_load_round_trip_types_and_filters(tmp_path):
    _write_three(tmp_path)
    df = datasets.load(tmp_path)
    assert list(df.columns[: len(schema.COLUMNS)]) == list(schema.COLUMNS)
    assert {"run_id", "algo", "rate_mbps", "loss", "seed"} <= set(df.columns)
    assert str(df["rate_mbps"].dtype) == "Int64" and df["loss"].dtype == "float64"
    assert str(df["algo"].dtype) == "category" and str(df["kind"].dtype) == "category"
    expected = sum(len(synthetic_recorder(50 + 10 * i, seed=i).to_pandas()) for i in range(3))
    assert len(df) == expected
    # each run's rows equal its own trace
    one = df[df["run_id"] == datasets.run_id(PARAMS[1])]
    orig = synthetic_recorder(60, seed=1).to_pandas()
    pd.testing.assert_frame_equal(
        one[list(schema.COLUMNS)].reset_index(drop=True), orig, check_categorical=False)
    assert set(one["kind"].astype(str)) == set(orig["kind"].astype(str))
    cubic = datasets.load(tmp_path, filters={"algo": "cubic"})
    assert set(cubic["algo"].astype(str)) == {"cubic"} and cubic["run_id"].nunique() == 2
    lossy = datasets.load(tmp_path, filters=[("loss", ">", 0.0), ("kind", "=", "packet_lost")])
    assert set(lossy["kind"].astype(str)) == {"packet_lost"}
    assert set(lossy["loss"]) == {0.01} and len(lossy) > 0
    none = datasets.load(tmp_path, filters={"algo": "vegas"})
    assert len(none) == 0 and "algo" in none.columns
    with pytest.raises(ConfigError):
        datasets.load(tmp_path, filters=[("nosuch", "=", 1)])


def test_write_batch_and_card(tmp_path):
    runs = [(synthetic_recorder(20, seed=i), p) for i, p in enumerate(PARAMS)]
    datasets.write_failure(tmp_path, {"algo": "reno", "rate_mbps": 1, "loss": 0.5, "seed": 9},
                           "timed out")
    root = datasets.write(runs, tmp_path, title="Tiny sweep",
                          how_made="`wtlab sweep grid.yaml -o tiny`")
    card = (root / "README.md").read_text()
    assert card.startswith("# Tiny sweep")
    assert "3 finished runs" in card and "1 failed runs" in card and "timed out" in card
    total = len(datasets.load(root))
    assert f"{total:,} trace rows" in card
    for p in PARAMS:
        assert datasets.run_id(p) in card
    for col in schema.COLUMNS:
        assert f"`{col}`" in card
    assert "wtlab sweep grid.yaml" in card


def test_strings_needing_escape_round_trip(tmp_path):
    duckdb = pytest.importorskip("duckdb")
    datasets.write_run(tmp_path, synthetic_recorder(3),
                       {"path": "trace/verizon lte=1+x", "flag": True, "x": None})
    datasets.write_run(tmp_path, synthetic_recorder(3), {"path": "plain", "flag": False, "x": 2})
    df = datasets.load(tmp_path)
    assert set(df["path"].astype(str)) == {"trace/verizon lte=1+x", "plain"}
    assert str(df["flag"].dtype) == "boolean" and str(df["x"].dtype) == "Int64"
    odd = df[df["path"] == "plain"]
    assert odd["flag"].eq(False).all() and odd["x"].eq(2).all()
    assert df.loc[df["path"] != "plain", "x"].isna().all()
    got = duckdb.sql(f"select distinct path, x from read_parquet('{tmp_path}/data') "
                     "order by path").fetchall()
    assert got == [("plain", 2), ("trace/verizon lte=1+x", None)]


def test_duckdb_reads_dataset(tmp_path):
    duckdb = pytest.importorskip("duckdb")
    _write_three(tmp_path)
    mine = datasets.load(tmp_path)
    got = duckdb.sql(
        f"select algo, rate_mbps, count(*) as n, sum(bytes) as b "
        f"from read_parquet('{tmp_path}/data') group by algo, rate_mbps "
        "order by algo, rate_mbps").df()
    want = (mine.assign(algo=mine["algo"].astype(str))
            .groupby(["algo", "rate_mbps"], observed=True)
            .agg(n=("bytes", "size"), b=("bytes", "sum")).reset_index()
            .sort_values(["algo", "rate_mbps"]).reset_index(drop=True))
    assert got["algo"].tolist() == want["algo"].astype(str).tolist()
    assert got["rate_mbps"].tolist() == want["rate_mbps"].tolist()
    assert got["n"].tolist() == want["n"].tolist() and got["b"].tolist() == want["b"].tolist()
    # a numeric filter on a numeric parameter (a text '2.0' matched nothing before)
    n = duckdb.sql(f"select count(*) from read_parquet('{tmp_path}/data') "
                   "where loss = 0.01").fetchall()[0][0]
    assert n == int((mine["loss"] == 0.01).sum()) > 0


def test_dask_reads_dataset(tmp_path):
    dd = pytest.importorskip("dask.dataframe")
    import dask

    _write_three(tmp_path)
    mine = datasets.load(tmp_path)
    with dask.config.set(scheduler="synchronous"):
        ddf = dd.read_parquet(str(tmp_path / "data"))
        assert len(ddf) == len(mine)
        by = ddf.groupby("run_id")["bytes"].sum().compute()
        assert ddf["rate_mbps"].dtype == "int64" and "algo" in ddf.columns
    want = mine.groupby("run_id", observed=True)["bytes"].sum()
    assert {str(k): int(v) for k, v in by.items()} == {str(k): int(v) for k, v in want.items()}


def test_runs_table_and_column_subset(tmp_path):
    _write_three(tmp_path)
    info = datasets.runs(tmp_path)
    assert set(info["run_id"]) == {datasets.run_id(p) for p in PARAMS}
    assert (info["rows"] > 0).all() and str(info["rate_mbps"].dtype) == "Int64"
    for _, r in info.iterrows():
        assert r["meta"]["params"]["algo"] == r["algo"]
        assert r["meta"]["note"].startswith("run ")
    df = datasets.load(tmp_path, columns=["time_s", "kind", "bytes"])
    assert df["cwnd"].isna().all() and len(df) == info["rows"].sum()
    assert (df["bytes"] > 0).any()


def test_corrupt_part_is_a_trace_format_error(tmp_path):
    from wtlab import TraceFormatError

    files = _write_three(tmp_path)
    files[1].write_bytes(b"PAR1 broken PAR1")
    with pytest.raises(TraceFormatError, match=files[1].name):
        datasets.load(tmp_path)
    with pytest.raises(TraceFormatError, match=files[1].name):
        datasets.runs(tmp_path)


def test_pandas_reads_dataset_folder(tmp_path):
    from wtlab.trace import Recorder

    plain = Recorder()  # no extra text at all: its column must still be text in the file
    for i in range(5):
        plain.event(i * 0.1, "packet_sent", pn=i, bytes=1200)
    runs = [(synthetic_recorder(20, seed=i), p) for i, p in enumerate(PARAMS)]
    runs.append((plain, {"algo": "reno", "rate_mbps": 5, "loss": 0.0, "seed": 9}))
    root = datasets.write(runs, tmp_path)
    df = pd.read_parquet(root / "data")
    mine = datasets.load(root)
    assert len(df) == len(mine)
    assert set(df["algo"].astype(str)) == {"cubic", "bbr", "reno"}
    assert df.groupby("run_id", observed=True).size().to_dict() == \
        mine.groupby("run_id", observed=True).size().to_dict()


def test_card_lists_columns_units_values_and_command(tmp_path):
    runs = [(synthetic_recorder(20, seed=i), p) for i, p in enumerate(PARAMS)]
    root = datasets.write(runs, tmp_path, title="Tiny", how_made="`wtlab sweep g.yaml -o t`",
                          param_docs={"rate_mbps": "bottleneck rate"})
    card = (root / "README.md").read_text()
    rows = {line.split("|")[1].strip(): line for line in card.splitlines()
            if line.startswith("| `")}
    for col, (unit, meaning) in datasets.COLUMN_DOCS.items():
        assert f"`{col}`" in rows and meaning in rows[f"`{col}`"]
        if unit:
            assert f"| {unit} |" in rows[f"`{col}`"]
    assert "| int64 | Mbit/s | bottleneck rate |" in rows["`rate_mbps`"]
    assert "`loss` (float64): 0.0, 0.01" in card
    assert "`rate_mbps` (int64): 10, 20" in card
    assert "`wtlab sweep g.yaml -o t`" in card
    for reader in ("pd.read_parquet", "ds.dataset", "pl.read_parquet", "duckdb.sql",
                   "dd.read_parquet"):
        assert reader in card


def test_five_readers_open_a_fresh_sweep(tmp_path):
    from wtlab.lab.sweep import sweep

    root = tmp_path / "s"
    sweep({"algo": ["reno", "bbr"], "buffer_bdp": [2, 0.5], "duration_s": [0.5],
           "seed": [1]}, out=root, progress=False, workers=1, trace="cwnd")
    check_five_readers(root, ["buffer_bdp", "duration_s", "seed"], ["algo"])
