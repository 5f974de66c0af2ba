"""The fast flow model against analytic references (numbers recorded in the lead's note).

Tolerances: Mathis et al.'s formula is a first-order model (periodic loss, no timeouts,
no delayed-ACK details); DESIGN.md and the emulation issue ask for +-25%, which the
model meets with room at these durations (hundreds of loss events per run).
"""

from __future__ import annotations

import pytest

import wtlab.model
from wtlab.lab.analytic import bdp_bytes, mathis_goodput_bps

PAYLOAD = 1200 - 40  # the model's default datagram minus QUIC/stream overhead
IP_UDP = 28  # what each datagram adds on the link


def _wire_rate_bps(acked) -> float:
    """Link-level rate of the acknowledged packets (datagram + IP/UDP headers)."""
    span = acked["time_s"].max() - acked["time_s"].min()
    return (acked["bytes"].sum() + IP_UDP * len(acked)) * 8 / span


@pytest.mark.parametrize("loss_p", [0.005, 0.01, 0.02])
def test_reno_follows_mathis(loss_p):
    # 10 Mbit/s, 100 ms; a 120 s run has 150+ loss events even at 0.5% (about 0.2 s wall)
    path = {"rate_bps": 10e6, "rtt_s": 0.1, "loss": loss_p, "buffer_bdp": 1.0}
    goodputs = [wtlab.model.run(path, cc="reno", duration_s=120, seed=s, record=False)
                .goodput_bps for s in (1, 2)]
    ratio = sum(goodputs) / 2 / mathis_goodput_bps(PAYLOAD, 0.1, loss_p)
    print(f"reno p={loss_p:.3f}: goodput/mathis = {ratio:.3f}")
    assert 0.75 <= ratio <= 1.25


@pytest.mark.parametrize("cc", ["reno", "cubic", "bbr"])
def test_saturating_flow_fills_the_link(cc):
    # 1 BDP of drop-tail buffer keeps a loss-based flow at ~100% after its start-up
    r = wtlab.model.run({"rate_bps": "20mbit", "rtt_s": "40ms", "buffer_bdp": 1.0}, cc=cc,
                        duration_s=10, seed=1)
    df = r.trace()
    late = df[(df["kind"] == "packet_acked") & (df["time_s"] >= 2.0)]
    rate = _wire_rate_bps(late)
    print(f"{cc}: link utilisation after 2 s = {rate / 20e6:.4f}")
    assert rate / 20e6 >= 0.98
    assert r.metrics["link_utilisation"] >= 0.93  # whole run, start-up included


def test_buffer_bdp_rule_for_reno():
    # Reno halves its window: with >= 1 BDP of buffer the link never drains; with a
    # small buffer it does, and utilisation falls. The queueing delay never exceeds the
    # buffer's drain time.
    rate, rtt = 20e6, 0.04
    util = {}
    for b in (0.1, 1.0):
        r = wtlab.model.run({"rate_bps": rate, "rtt_s": rtt, "buffer_bdp": b}, cc="reno",
                            duration_s=30, seed=1)
        df = r.trace()
        late = df[(df["kind"] == "packet_acked") & (df["time_s"] >= 5.0)]
        util[b] = _wire_rate_bps(late) / rate
        max_rtt = df.loc[df["kind"] == "rtt_sample", "latest_rtt_s"].max()
        buffer_delay = b * bdp_bytes(rate, rtt) * 8 / rate
        # + one packet's serialization each way and aioquic's 1 ms ACK delay
        assert max_rtt <= rtt + buffer_delay + 0.004
        cwnd = df.loc[df["kind"] == "cwnd_changed", ["time_s", "cwnd"]]
        peak = cwnd[cwnd["time_s"] > 5.0]["cwnd"].max()
        # the window peaks near BDP + buffer before a drop-tail loss
        assert peak <= (1 + b) * bdp_bytes(rate, rtt) * 1.2 + 3 * 1200
    print(f"reno utilisation: 0.1 BDP buffer {util[0.1]:.3f}, 1 BDP {util[1.0]:.3f}")
    assert util[1.0] >= 0.98
    assert util[0.1] < util[1.0] - 0.03
