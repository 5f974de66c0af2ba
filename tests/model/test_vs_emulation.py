"""The fast flow model against the full-stack emulation (aioquic + WebTransport in virtual time).

Measured the same way on both traces (see ``wtlab.model.validate``): goodput from the
packet_acked rows over a 5 s window starting 1 s after each engine's first data packet;
cwnd as 100 ms bins of the window's step function, compared by normalised RMS
difference. Paths without random loss, so that both engines see the same drops
(buffer overflows) and a single short run decides: random loss falls on different
packets in each engine (different packet sequences), which the benchmark averages
over seeds instead (benchmarks/model.py --validate).

Tolerances: goodput within 5% (the issue's target); cwnd: mean within 10%, the
sawtooth's size (std of the bins) within 35%, window reductions within a factor 2 (+1),
nRMSD below 0.5. The phase of a sawtooth drifts between the engines (the emulator's
handshake, flow-control and ACK traffic shift packets by fractions of a millisecond,
which moves each buffer overflow), so pointwise distance is the loosest check.
"""

from __future__ import annotations

import pytest

from wtlab.model.validate import compare, describe, emulator_available

# The emulator is another helper's part of the project; it is present in this tree,
# and the comparison is what validates the model, so its absence is a failure.
assert emulator_available(), "wtlab.net.network (the full-stack emulator) must import"

CASES = [
    ({"rate_bps": 20e6, "rtt_s": 0.04, "buffer_bdp": 1.0}, "cubic"),
    ({"rate_bps": 20e6, "rtt_s": 0.04, "buffer_bdp": 1.0}, "bbr"),
    ({"rate_bps": 10e6, "rtt_s": 0.04, "buffer_bdp": 0.25}, "reno"),
    ({"rate_bps": 10e6, "rtt_s": 0.04, "buffer_bdp": 0.25}, "cubic"),
]


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("path_args, cc", CASES, ids=[f"{c}-{p['buffer_bdp']}bdp"
                                                      for p, c in CASES])
def test_model_matches_emulation(path_args, cc):
    c = compare(path_args, cc, duration_s=6.0, seed=1)
    print(describe(c))
    assert c["goodput_ratio"] == pytest.approx(1.0, abs=0.05)
    assert c["cwnd_mean_ratio"] == pytest.approx(1.0, abs=0.10)
    if c["emu_cwnd_std"] > 0.05 * c["emu_cwnd_bins"].mean():  # a sawtooth to compare
        assert c["cwnd_std_ratio"] == pytest.approx(1.0, abs=0.35)
    m, e = c["model_reductions"], c["emu_reductions"]
    assert m <= 2 * e + 1 and e <= 2 * m + 1
    assert c["cwnd_nrmsd"] < 0.5
    assert c["model_packets_per_wall_s"] > c["emu_packets_per_wall_s"]
