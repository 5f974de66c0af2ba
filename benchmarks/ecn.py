"""ECN, L4S and delay-based control: the fidelity ratios of issue 18, over longer runs and
more settings than the tests (``tests/fidelity/test_ecn_l4s_delay.py``) can afford.

    .venv/bin/python -m benchmarks.ecn            # every table (a few minutes)
    .venv/bin/python -m benchmarks.ecn --quick    # one short setting each (smoke test)

Tables (fast model, seeded; queue figures sampled from the bottleneck link every ms):

* dctcp: measured sawtooth amplitude and alpha against Alizadeh et al.'s analysis (as
  published, and with alpha at the trough of RFC 8257's EWMA), the fraction of packets
  marked, and the mean queue against its [Q_min, Q_max] band, per rate / RTT / K, paced
  and not, per receiver ACK policy;
* reno-ecn: Reno with random CE marks against Mathis at the mark rate, next to the same
  with drops, per p and seed;
* dualpi2: Prague / CUBIC goodput ratio and the L queue's mean sojourn, per RTT;
* delay: Vegas' per-RTT minimum queue, Copa's standing queue per flow and its share next
  to CUBIC with and without the competitive mode, LEDBAT's queueing delay alone and its
  share next to CUBIC.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

WIRE = 1228


def _queue(built, until_s, from_s, dt=0.001):
    return built.sample_queue(until_s, from_s=from_s, dt_s=dt, packet_bytes=WIRE)


def _window_min(times, q, width):
    bins = ((times - times[0]) // width).astype(int)
    return float(np.mean([q[bins == b].min() for b in np.unique(bins)]))


def dctcp(quick: bool) -> None:
    from wtlab import cc as C
    from wtlab.lab import analytic
    from wtlab.model.api import build
    from wtlab.net.aqm import StepMark

    settings = [(20e6, 0.04, 20)] if quick else [
        (10e6, 0.04, 10), (20e6, 0.04, 20), (50e6, 0.01, 30), (100e6, 0.01, 20)]
    dur, warm = (10.0, 4.0) if quick else (30.0, 8.0)
    print("dctcp (one flow, step marking at K packets): amplitude and alpha vs the analysis")
    print("(acks: the receiver's ACK policy; the analysis assumes one ACK per packet)")
    print(f"{'rate':>8} {'rtt':>6} {'K':>4} {'paced':>6} {'acks':>8} {'a_pred':>7} {'alpha':>7} "
          f"{'D_pred':>7} {'D':>6} {'ratio':>6} {'marked':>7} {'D/D_ewma':>9} {'queue':>6} "
          f"{'band':>12}")
    print("(marked: fraction of packets marked, eq. 7's alpha in the analysis; D_ewma: the "
          "analysis with alpha at its EWMA trough, analytic.dctcp_alpha_at_cut)")
    variants = [(True, "aioquic"), (True, "every")] + ([] if quick else [(False, "aioquic"),
                                                                       (True, "rfc9000")])
    for rate, rtt, k in settings:
        for paced, acks in variants:
            c = C.create("dctcp", max_datagram_size=1200, paced=paced)
            built = build(dict(rate_bps=rate, rtt_s=rtt, buffer="1000p",
                               aqm=StepMark(threshold_packets=k)), cc=c, seed=1,
                          ack_policy=acks)
            _, q = _queue(built, dur, warm)
            tr = built.recorder.to_pandas()
            min_rtt = tr[tr.kind == "rtt_sample"].latest_rtt_s.min()
            pred = analytic.dctcp_sawtooth(rate * min_rtt / (8 * WIRE), k)
            w = tr[(tr.time_s > warm) & tr.cwnd.notna()][["kind", "cwnd", "state"]]
            w = w.reset_index(drop=True)
            drops = []
            for i in w.index[(w.kind == "state_changed") & (w.state == "cwr")]:
                j = i - 1
                while j > 0 and w.cwnd[j] == w.cwnd[i]:
                    j -= 1
                drops.append((w.cwnd[j] - w.cwnd[i]) / 1200)
            d = float(np.mean(drops)) if drops else math.nan
            after = tr[tr.time_s > warm]
            marked = (after.kind == "ecn_marked").sum() / (after.kind == "packet_sent").sum()
            cuts = after[(after.kind == "state_changed") & (after.state == "cwr")].time_s
            srtt = after[after.kind == "rtt_sample"].latest_rtt_s.mean()
            cycle = np.diff(cuts.to_numpy()).mean() / srtt if len(cuts) > 1 else math.nan
            d_ewma = pred["d_packets"] * analytic.dctcp_alpha_at_cut(cycle) / pred["alpha"]
            print(f"{rate / 1e6:7.0f}M {rtt * 1e3:5.0f}m {k:4d} {str(paced):>6} {acks:>8} "
                  f"{pred['alpha']:7.3f} {c.alpha:7.3f} {pred['d_packets']:7.2f} {d:6.2f} "
                  f"{d / pred['d_packets']:6.2f} {marked:7.3f} {d / d_ewma:9.2f} {q.mean():6.1f} "
                  f"[{pred['q_min_packets']:4.1f},{pred['q_max_packets']:4.1f}]")


def reno_ecn(quick: bool) -> None:
    from wtlab.lab import analytic
    from wtlab.model import run

    ps = [0.01] if quick else [0.005, 0.01, 0.02]
    seeds = [1] if quick else [1, 2, 3]
    dur = 30.0 if quick else 60.0
    print("\nreno with CE marks vs with drops, goodput / Mathis at the measured rate "
          "(50 Mbit/s, 40 ms)")
    print(f"{'p':>6} {'seed':>4} {'marks':>7} {'drops':>7} {'retx(marks)':>12}")
    for p in ps:
        for seed in seeds:
            ratios = []
            for key, cc in (("mark", "reno+ecn"), ("loss", "reno")):
                r = run(dict(rate_bps=50e6, rtt_s=0.04, buffer_bdp=2, **{key: p}), cc=cc,
                        duration_s=dur, seed=seed)
                m = r.metrics(10, dur).iloc[0]
                rate = m.mark_rate if key == "mark" else m.loss_rate
                ratios.append(m.goodput_bps / analytic.mathis_goodput_bps(
                    m.payload_per_packet_bytes, m.rtt_mean_s, rate))
                if key == "mark":
                    retx = int(m.packets_lost)
            print(f"{p:6.3f} {seed:4d} {ratios[0]:7.3f} {ratios[1]:7.3f} {retx:12d}")


def dualpi2(quick: bool) -> None:
    from wtlab.model import run

    rtts = [0.02] if quick else [0.01, 0.02, 0.04, 0.08]
    dur = 15.0 if quick else 40.0
    print("\ndualpi2, one prague + one cubic flow, 20 Mbit/s: goodput ratio and L sojourn")
    print(f"{'rtt':>6} {'prague':>8} {'cubic':>8} {'ratio':>6} {'L ms':>6} {'C ms':>6} {'p_':>6}")
    for rtt in rtts:
        r = run(dict(rate_bps=20e6, rtt_s=rtt, buffer_bdp=4, aqm="dualpi2"),
                cc=["prague", "cubic"], duration_s=dur, seed=1)
        m = r.metrics(dur / 3, dur)
        s = r.path.down.aqm_stats()
        a, b = m.goodput_bps.iloc[0], m.goodput_bps.iloc[1]
        print(f"{rtt * 1e3:5.0f}m {a / 1e6:8.2f} {b / 1e6:8.2f} {a / b:6.2f} "
              f"{s['l_sojourn_mean_s'] * 1e3:6.2f} {s['c_sojourn_mean_s'] * 1e3:6.1f} "
              f"{s['p_prime']:6.3f}")


def delay(quick: bool) -> None:
    from wtlab import cc as C
    from wtlab.model import run
    from wtlab.model.api import build

    dur = 12.0 if quick else 30.0
    print("\ndelay-based control (10 Mbit/s, 40 ms): queue in packets of 1228 bytes")
    built = build(dict(rate_bps=10e6, rtt_s=0.04, buffer_bdp=2), cc="vegas", seed=1)
    t, q = _queue(built, dur, 5.0)
    print(f"vegas: per-RTT minimum queue {_window_min(t, q, 0.04):.2f} (alpha 2 .. beta 4), "
          f"mean {q.mean():.2f}")
    for flows in (1, 2):
        ccs = [C.create("copa", max_datagram_size=1200, competitive=flows == 1)
               for _ in range(flows)]
        built = build(dict(rate_bps=10e6, rtt_s=0.04, buffer_bdp=2), cc=ccs, seed=1)
        t, q = _queue(built, dur, 5.0)
        st = _window_min(t, q, 0.02)
        print(f"copa x{flows}: standing queue {st / flows:.2f} per flow (1/delta = 2), "
              f"mean {q.mean():.2f}")
    for competitive in (True, False):
        copa = C.create("copa", max_datagram_size=1200, competitive=competitive)
        r = run(dict(rate_bps=10e6, rtt_s=0.04, buffer_bdp=2), cc=[copa, "cubic"],
                duration_s=dur, seed=1)
        m = r.metrics(5.0, dur)
        print(f"copa next to cubic, competitive mode {'on ' if competitive else 'off'}: "
              f"share {m.goodput_bps.iloc[0] / m.goodput_bps.sum():.2f} of the goodput "
              f"(fair 0.5)")
    path = dict(rate_bps=10e6, rtt_s=0.04, buffer_bdp=5)
    built = build(path, cc="ledbat", seed=1)
    _, q = _queue(built, dur, dur / 2, dt=0.005)
    shared = run(path, cc=["ledbat", "cubic"], duration_s=dur, seed=1,
                 start_times_s=[0, min(5.0, dur / 6)])
    share = shared.metrics(dur / 2, dur).goodput_bps.iloc[0] / 10e6
    print(f"ledbat: queueing delay alone {q.mean() * 8 * WIRE / 10e6 * 1e3:.1f} ms "
          f"(target 100), share next to cubic {share:.1%} (< 10%)")


def main() -> None:
    ap = argparse.ArgumentParser(prog="benchmarks.ecn", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="one short setting each")
    args = ap.parse_args()
    t0 = time.perf_counter()
    dctcp(args.quick)
    reno_ecn(args.quick)
    dualpi2(args.quick)
    delay(args.quick)
    print(f"\n(wall {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
