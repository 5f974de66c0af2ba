"""Link model speed: ``Link.transmit`` calls per wall-second, per model.

Run: ``.venv/bin/python -m benchmarks.link [--packets N] [--rounds R]``

Each model is offered the same stream: 1280-byte packets at 1.2x the link's
capacity (so the buffer fills and drop-tail/CoDel work), for N packets. Rounds
interleave the models so machine noise hits them alike; we print min / median /
max packets per second and the ratio to the plain constant-rate link measured
in the same run. The fast flow model needs the whole model (two links, the
controller, loss detection) at >= 200,000 packets per wall-second, so a link
should stay well above 1,000,000.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from wtlab.net.link import Link
from wtlab.net.loss import GilbertElliott

TRACES = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "traces")


def models() -> dict[str, dict]:
    base = dict(rate_bps=10e6, delay_s=0.02, buffer="1bdp", seed=1)
    out = {
        "rate, droptail": base,
        "rate, bernoulli 1%": {**base, "loss": 0.01},
        "rate, gilbert-elliott": {**base, "loss": GilbertElliott.from_burst(0.01, 3)},
        "rate, jitter+reorder+dup": {**base, "jitter_s": 0.002, "reorder_p": 0.01,
                                     "duplicate_p": 0.01},
        "rate, codel": {**base, "aqm": "codel", "buffer": "4bdp"},
    }
    trace = os.path.join(TRACES, "TMobile-LTE-short.down")
    if os.path.exists(trace):
        out["trace TMobile-LTE, droptail"] = dict(trace=trace, delay_s=0.02, buffer="1bdp", seed=1)
        out["trace TMobile-LTE, codel"] = dict(trace=trace, delay_s=0.02, buffer="4bdp",
                                               aqm="codel", seed=1)
    else:
        print(f"(no traces at {TRACES}: trace models skipped)")
    return out


def run_once(params: dict, packets: int) -> tuple[float, int]:
    link = Link(**params)
    gap = 1280 * 8 / (1.2 * link.capacity_bps)
    transmit = link.transmit
    t0 = time.perf_counter()
    now = 0.0
    for _ in range(packets):
        transmit(now, 1280)
        now += gap
    return time.perf_counter() - t0, link.stats.delivered


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.link")
    ap.add_argument("--packets", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    table = models()
    rates: dict[str, list[float]] = {name: [] for name in table}
    # empty loop cost, to show what the harness itself costs
    t0 = time.perf_counter()
    now = 0.0
    for _ in range(args.packets):
        now += 1e-6
    harness = args.packets / (time.perf_counter() - t0)
    for _ in range(args.rounds):
        for name, params in table.items():
            elapsed, _ = run_once(params, args.packets)
            rates[name].append(args.packets / elapsed)
    ref = statistics.median(rates["rate, droptail"])
    print(f"{args.packets} packets x {args.rounds} rounds, interleaved; "
          f"bare harness loop {harness / 1e6:.1f} M iterations/s")
    print(f"{'model':32s} {'min':>10s} {'median':>10s} {'max':>10s}  (packets/s)  vs rate,droptail")
    for name, values in rates.items():
        med = statistics.median(values)
        print(f"{name:32s} {min(values):10,.0f} {med:10,.0f} {max(values):10,.0f}  "
              f"{med / ref:6.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
