"""Experiment, Stepper, compare: both engines, stepping, determinism, typed errors."""

import pandas as pd
import pytest

import wtlab
from wtlab.errors import ConfigError
from wtlab.lab import Experiment, compare

PATH = dict(rate_bps=10e6, rtt_s=0.05, loss=0.01, buffer_bdp=1.0)


def _hash(df: pd.DataFrame) -> int:
    return int(pd.util.hash_pandas_object(df.drop(columns=["extra"]), index=False).sum())


@pytest.mark.parametrize("engine", ["model", "emulate"])
def test_stepper_walks_event_by_event(engine):
    s = Experiment(path=PATH, cc="reno", seed=2, engine=engine).stepper()
    try:
        first = s.step()
        assert first is not None and first["time_s"] >= 0
        times = [first["time_s"]] + [s.step()["time_s"] for _ in range(20)]
        assert times == sorted(times)
        lost = s.step(kinds="packet_lost")
        assert lost["kind"] == "packet_lost" and lost["time_s"] >= times[-1]
        # the row contract: the loss row shows the state after Reno's reduction, which is
        # what the stepped controller shows too
        trace = s.trace()
        at = trace.index[(trace["kind"] == "packet_lost")][0]
        before = trace.loc[:at - 1, "cwnd"].dropna().iloc[-1]
        assert lost["cwnd"] == pytest.approx(before / 2, abs=1200)
        assert lost["state"] == "recovery"
        cc = s.controllers[0]
        assert (cc.cwnd, cc.ssthresh, cc.state) == (lost["cwnd"], lost["ssthresh"],
                                                    lost["state"])
        changed = s.step(kinds="cwnd_changed")  # the same reduction, as its own row
        assert changed["cwnd"] == lost["cwnd"] and changed["state"] == "recovery"
    finally:
        s.close()


def test_model_runs_are_deterministic_for_a_seed():
    a = Experiment(path=PATH, cc="cubic", seed=5).run(3.0).trace()
    b = Experiment(path=PATH, cc="cubic", seed=5).run(3.0).trace()
    c = Experiment(path=PATH, cc="cubic", seed=6).run(3.0).trace()
    assert _hash(a) == _hash(b)
    assert _hash(a) != _hash(c)


def test_model_and_emulation_agree_on_reno_under_loss():
    # 20 s at 1 % loss on a 50 ms path is ~40 loss events per run: enough for the two
    # engines' goodputs to settle within 25 % of each other (seed noise is ~10 % here).
    exp = Experiment(path=PATH, cc="reno", seed=3)
    model = exp.run(20.0).summary()["goodput_bps"]
    emu = exp.replace(engine="emulate").run(20.0).summary()["goodput_bps"]
    assert model == pytest.approx(emu, rel=0.25)


def test_compare_table_and_figures():
    cmp = compare(Experiment(path=PATH, seed=1), ccs=["reno", "bbr"], duration_s=5.0)
    t = cmp.table
    assert list(t["cc"]) == ["reno", "bbr"]
    # BBR does not read random loss as congestion: it keeps far more of the link.
    assert t.set_index("cc").loc["bbr", "goodput_bps"] > 2 * t.set_index("cc").loc[
        "reno", "goodput_bps"]
    assert "mathis_bps" in t and "cubic_response_bps" in t
    assert t["capacity_bps"].iloc[0] == pytest.approx(10e6)
    assert "jain_index" not in t  # one flow per run: no fairness to speak of
    # the analytic overlays use goodput's own packet size (the payload of a full packet)
    assert t["payload_per_packet_bytes"].iloc[0] == 1160
    tr = cmp.trace()
    assert set(tr["cc"].astype(str)) == {"reno", "bbr"} and len(tr) == sum(
        len(r.trace()) for r in cmp.results.values())
    fig = cmp.figure()
    assert len(fig.data) >= 3 and len(cmp.trace_figure().data) >= 4
    labels = [a.text for a in fig.layout.annotations]
    assert "capacity" in labels and any(text.startswith("Mathis") for text in labels)


def test_user_controller_runs_in_both_engines():
    class Fixed(wtlab.cc.Controller):
        name = "fixed-test"

        def on_congestion_event(self, now, sent_time):  # never backs off
            pass

    wtlab.cc.register("fixed-test", Fixed)
    for engine in ("model", "emulate"):
        r = Experiment(path=PATH, cc="fixed-test", seed=1, engine=engine).run(2.0)
        assert (r.trace()["cwnd"].dropna() == 12000).all()  # the base window, never changed


@pytest.mark.parametrize("kwargs,match", [
    ({"engine": "ns3"}, "engine"),
    ({"cc": "no-such"}, "unknown congestion controller"),
    ({"path": 42}, "path="),
    ({"flows": 0}, "flows"),
])
def test_bad_input_is_typed(kwargs, match):
    with pytest.raises(wtlab.WtlabError, match=match):
        Experiment(**kwargs).run(1.0)


def test_bad_duration_is_typed():
    with pytest.raises(wtlab.ConfigError, match="duration_s"):
        Experiment().run(-1)


def test_emulation_is_deterministic_across_processes():
    # Each process makes its own certificate; its length must not vary, or the
    # handshake's packet sizes (and everything after) would differ between runs.
    import subprocess
    import sys

    code = ("import pandas as pd; from wtlab.lab import Experiment; "
            "df = Experiment(path=dict(rate_bps=10e6, rtt_s=0.04, loss=0.01), cc='cubic', "
            "seed=3, engine='emulate').run(1.5).trace(); "
            "print(len(df), int(pd.util.hash_pandas_object(df.drop(columns=['extra']), "
            "index=False).sum()))")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, timeout=300).stdout for _ in range(2)}
    assert len(outs) == 1


def test_workload_objects_run_like_their_dicts_and_others_are_refused():
    from wtlab.lab.workloads import Bulk, Messages, Video

    as_dict = Experiment(workload={"kind": "messages", "rate_hz": 200, "size_bytes": 1000},
                         seed=3)
    as_object = as_dict.replace(
        workload=Messages(rate_hz=200, size_bytes=1000, duration_s=60))
    a, b = as_dict.run(2.0), as_object.run(2.0)
    assert len(a.trace()) > 100
    pd.testing.assert_frame_equal(a.trace(), b.trace())
    assert as_object.to_dict()["workload"] == as_dict.to_dict()["workload"]
    assert Experiment(workload=Bulk(size_bytes=200_000, direction="down")).describe()[
        "workload"] == {"kind": "bulk", "size_bytes": 200_000}
    with pytest.raises(ConfigError, match="direction='down'"):
        Experiment(workload=Bulk(size_bytes=200_000)).run(1.0)  # Bulk's default is "up"
    with pytest.raises(ConfigError, match="wtlab.net.emulate"):
        Experiment(workload=Video()).run(1.0)
