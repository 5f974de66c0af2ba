"""Sweeps: grids, local processes vs Dask, resume after interruption, failures recorded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

import wtlab
from wtlab import datasets
from wtlab.lab.sweep import expand, load_grid_file, summary

ROOT = Path(__file__).resolve().parents[2]

SMALL = {"algo": ["reno", "cubic"], "loss_pct": [0.5, 2], "seed": [1, 2],
         "rate_mbps": [10], "rtt_ms": [40], "duration_s": [1.5]}


def _frame(path) -> pd.DataFrame:
    df = datasets.load(path)
    keys = ["run_id", "time_s", "flow", "kind", "pn"]
    df = df.assign(kind=df["kind"].astype(str), state=df["state"].astype(str),
                   run_id=df["run_id"].astype(str))
    return df.sort_values(keys, kind="stable").reset_index(drop=True)


# ------------------------------------------------------------------ grids
def test_expand_dict_of_lists_and_list_of_dicts():
    runs = expand({"algo": ["reno", "bbr"], "seed": [1, 2, 3], "rate_mbps": 20})
    assert len(runs) == 6
    assert runs[0] == {"algo": "reno", "seed": 1, "rate_mbps": 20}
    assert runs[-1] == {"algo": "bbr", "seed": 3, "rate_mbps": 20}
    runs = expand([{"cc": "reno", "loss_pct": 1}, {"algo": "cubic"}])
    # the same keys in every run (defaults fill the gaps): one partition layout
    assert runs == [{"algo": "reno", "loss_pct": 1}, {"algo": "cubic", "loss_pct": 0.0}]


@pytest.mark.parametrize("grid, key", [
    ({"rate_mbps": ["fast"]}, "rate_mbps"),
    ({"speed": [1]}, "speed"),
    ({"loss_pct": [150]}, "loss_pct"),
    ({"seed": [1.5]}, "seed"),
    ({"algo": []}, "algo"),
    ({"aqm": ["red"]}, "aqm"),
    ({"msg_rate_hz": [10]}, "msg_size_bytes"),
    ({"flows": [{"n": 2}]}, "flows"),
    ([{"algo": "reno"}, {"algo": ["cubic"]}], "algo"),
])
def test_malformed_grid_names_the_key(grid, key):
    with pytest.raises(wtlab.GridError, match=repr(key)):
        expand(grid)


def test_repeated_run_is_rejected():
    with pytest.raises(wtlab.GridError, match="repeats"):
        expand([{"algo": "reno"}, {"algo": "reno"}])


def test_grid_file_and_cli_errors(tmp_path, capsys):
    from wtlab.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("grid:\n  rtt_ms: [40, -1]\n")
    with pytest.raises(wtlab.GridError, match="'rtt_ms'"):
        load_grid_file(bad)
    assert main(["sweep", str(bad), "-o", str(tmp_path / "ds")]) == 2
    assert "'rtt_ms'" in capsys.readouterr().err
    bad.write_text("grid: {algo: [reno]}\nengines: model\n")
    with pytest.raises(wtlab.GridError, match="'engines'"):
        load_grid_file(bad)
    bad.write_text("algo: [reno\n")
    with pytest.raises(wtlab.GridError, match="not valid YAML"):
        load_grid_file(bad)
    spec = load_grid_file(ROOT / "datasets" / "grids" / "small.yaml")
    assert len(expand(spec["grid"])) == 24 and spec["engine"] == "model"
    for f in sorted((ROOT / "datasets" / "grids").glob("*.yaml")):  # every shipped grid
        spec = load_grid_file(f)
        assert expand(spec["grid"]) and spec.get("title"), f.name


# ------------------------------------------------------------------ executors
def test_local_processes_and_dask_give_identical_datasets(tmp_path):
    from distributed import Client, LocalCluster

    local = wtlab.sweep(SMALL, out=tmp_path / "local", workers=2, progress=False)
    assert (local.ran, local.skipped, local.failed) == (8, 0, 0)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address=None) as cluster, \
            Client(cluster) as client:
        remote = wtlab.sweep(SMALL, executor=client, out=tmp_path / "dask", progress=False)
    assert (remote.ran, remote.failed) == (8, 0)
    a, b = _frame(tmp_path / "local"), _frame(tmp_path / "dask")
    assert len(a) > 5000
    pd.testing.assert_frame_equal(a, b)
    assert datasets.finished_runs(tmp_path / "local") == datasets.finished_runs(
        tmp_path / "dask")
    # the metrics travel with each part and read back as a summary
    s = summary(tmp_path / "dask")
    assert len(s) == 8 and (s["goodput_bps"] > 0).all()
    assert (tmp_path / "dask" / "README.md").exists()


def test_any_executor_runs_it(tmp_path):
    with ThreadPoolExecutor(max_workers=2) as pool:
        res = wtlab.sweep({"algo": ["reno", "bbr"], "duration_s": 0.5}, executor=pool,
                          out=tmp_path / "t", progress=False, trace="cwnd")
    assert res.ran == 2
    df = datasets.load(tmp_path / "t")
    assert set(df["kind"].astype(str)) <= {"cwnd_changed", "rtt_sample", "packet_lost",
                                           "state_changed", "pacing_changed", "pto_expired",
                                           "persistent_congestion"}
    assert set(res.summary["algo"]) == {"reno", "bbr"}


# ------------------------------------------------------------------ resume and failures
def test_resume_runs_only_the_missing_runs(tmp_path):
    out = tmp_path / "ds"
    first = wtlab.sweep({**SMALL, "seed": [1]}, out=out, workers=2, progress=False)
    assert first.ran == 4
    files = {f: f.stat().st_mtime_ns for f in out.rglob("part-*.parquet")}
    second = wtlab.sweep(SMALL, out=out, workers=2, progress=False)
    assert (second.ran, second.skipped) == (4, 4)
    assert set(second.summary["seed"]) == {2}
    for f, mtime in files.items():
        assert f.stat().st_mtime_ns == mtime  # finished runs were not redone
    third = wtlab.sweep(SMALL, out=out, workers=2, progress=False)
    assert (third.ran, third.skipped) == (0, 8)


def test_killed_sweep_resumes(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("grid:\n  algo: [reno, cubic]\n  loss_pct: [1]\n"
                    "  seed: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]\n"
                    "  duration_s: [4]\n")
    out = tmp_path / "ds"
    proc = subprocess.Popen([sys.executable, "-m", "wtlab", "sweep", str(grid), "-o", str(out),
                             "--workers", "1", "--no-progress"], cwd=ROOT,
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(datasets.finished_runs(out)) < 2 and time.monotonic() < deadline:
            assert proc.poll() is None, "the sweep ended before it could be interrupted"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its worker, mid-run
        proc.wait(timeout=30)
    done = datasets.finished_runs(out)
    assert 2 <= len(done) < 30
    # no half-written part is visible (atomic writes)
    assert all(f.name.startswith("part-") for f in out.rglob("*.parquet"))
    res = wtlab.sweep(load_grid_file(grid)["grid"], out=out, workers=2, progress=False)
    assert res.skipped == len(done)
    assert res.ran == 30 - len(done)
    assert len(datasets.finished_runs(out)) == 30


def test_ctrl_c_stops_the_sweep_and_it_resumes(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("grid:\n  algo: [reno, cubic]\n  loss_pct: [1]\n"
                    "  seed: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]\n"
                    "  duration_s: [4]\n")
    out = tmp_path / "ds"
    proc = subprocess.Popen([sys.executable, "-m", "wtlab", "sweep", str(grid), "-o", str(out),
                             "--workers", "2", "--no-progress"], cwd=ROOT,
                            start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while len(datasets.finished_runs(out)) < 2 and time.monotonic() < deadline:
            assert proc.poll() is None, "the sweep ended before it could be interrupted"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert proc.returncode == 130, err
    done = datasets.finished_runs(out)
    assert 2 <= len(done) < 30
    assert (out / "README.md").exists()  # the card says what finished
    res = wtlab.sweep(load_grid_file(grid)["grid"], out=out, workers=2, progress=False)
    assert (res.skipped, res.ran) == (len(done), 30 - len(done))


def test_failing_run_is_recorded_and_others_finish(tmp_path):
    out = tmp_path / "ds"
    res = wtlab.sweep({"algo": ["reno", "no-such-cc"], "seed": [1, 2], "duration_s": 0.5},
                      out=out, workers=2, progress=False)
    assert (res.ran, res.failed) == (2, 2)
    failures = datasets.failed_runs(out)
    assert len(failures) == 2
    rec = next(iter(failures.values()))
    assert rec["params"]["algo"] == "no-such-cc"
    assert "UnknownAlgorithm" in rec["error"]["message"]
    assert len(datasets.finished_runs(out)) == 2
    assert "Failed runs" in (out / "README.md").read_text()
    again = wtlab.sweep({"algo": ["reno", "no-such-cc"], "seed": [1, 2], "duration_s": 0.5},
                        out=out, workers=2, progress=False)
    assert (again.ran, again.skipped, again.failed) == (0, 2, 2)  # failures are retried


def test_cli_runs_a_grid(tmp_path):
    grid = tmp_path / "g.yaml"
    grid.write_text("title: cli test\ntrace: none\ngrid:\n  algo: [bbr]\n  seed: [1, 2]\n"
                    "  duration_s: [0.5]\n")
    out = tmp_path / "ds"
    cp = subprocess.run([sys.executable, "-m", "wtlab", "sweep", str(grid), "-o", str(out),
                         "--workers", "1", "--no-progress"], cwd=ROOT, capture_output=True,
                        text=True, timeout=120)
    assert cp.returncode == 0, cp.stderr
    assert "2 ran" in cp.stdout
    assert len(datasets.finished_runs(out)) == 2
    assert "# cli test" in (out / "README.md").read_text()
    s = summary(out)
    assert (s["goodput_bps"] > 0).all()


@pytest.mark.filterwarnings("ignore")
def test_emulate_engine_runs_the_full_stack(tmp_path):
    # one short full-stack run per controller (aioquic + WebTransport in virtual time)
    grid = {"algo": ["cubic", "bbr"], "rate_mbps": [10], "duration_s": [1.5]}
    res = wtlab.sweep(grid, engine="emulate", out=tmp_path / "emu", workers=2,
                      progress=False)
    assert (res.ran, res.failed) == (2, 0), res.failures
    s = res.summary.set_index("algo")
    assert (s["goodput_packet_bps"] > 4e6).all() and (s["goodput_packet_bps"] < 10e6).all()
    df = datasets.load(tmp_path / "emu")
    assert {"packet_sent", "packet_acked", "cwnd_changed"} <= set(df["kind"].astype(str))
    meta = summary(tmp_path / "emu")
    assert len(meta) == 2


def test_sweep_without_a_dataset_returns_the_summary():
    res = wtlab.sweep({"algo": ["reno", "bbr"], "loss_pct": [0, 2], "duration_s": 1},
                      workers=2, progress=False)
    assert res.path is None and res.ran == 4
    s = res.summary.set_index(["algo", "loss_pct"])["goodput_bps"]
    assert s[("reno", 2)] < s[("reno", 0)]  # loss costs Reno throughput
    assert s[("bbr", 2)] > 2 * s[("reno", 2)]  # and BBR much less
    with pytest.raises(wtlab.ConfigError, match="out=PATH"):
        res.load()
