"""``emulate(...)``: one full-stack run in virtual time, and metrics read off its trace.

    >>> from wtlab.net.emulate import emulate
    >>> from wtlab.net.path import Path
    >>> res = emulate(Path.symmetric(rate_bps="10mbit", rtt_s="40ms", buffer_bdp=1, seed=1),
    ...               cc=["cubic", "bbr"], until_s=5.0)            # doctest: +SKIP
    >>> res.metrics(from_s=1.0)                                     # doctest: +SKIP

Every flow is a real wtlab WebTransport session (aioquic underneath) between its own
client host and the server, across the shared path; see
:class:`wtlab.net.network.VirtualNetwork`. The default workload is a bulk download
(the server sends, so the controller acts on ``path.down``, the direction
``path.bdp_bytes`` and ``path.capacity_bps`` describe).

Metrics (:func:`flow_metrics`) are computed from the sender's trace rows in a window
``[from_s, to_s]``:

* ``goodput_bps``: payload bytes of packets acknowledged in the window, per second
  (QUIC packet bytes, the unit of Mathis' MSS);
* ``wire_bps``: the same plus ``overhead_bytes`` per packet (what the link carried);
  ``utilisation`` = aggregate ``wire_bps`` / capacity;
* ``mean_cwnd_packets``: time-weighted mean congestion window, in ``mss_bytes`` units;
* ``mean_packet_bytes``: mean size of the packets sent in the window (aioquic fills the
  last bytes of a window with a short packet, so under a window limit this is below
  ``mss_bytes``: divide by it to count windows in packets as a loss rate counts them);
* ``mean_rtt_s`` / ``min_rtt_s`` / ``mean_queueing_delay_s``: RTT samples in the window,
  queueing delay = mean RTT minus the path's propagation RTT;
* ``loss_rate``: packets declared lost / packets sent in the window.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from wtlab.errors import ConfigError
from wtlab.net.network import IP_UDP_OVERHEAD_BYTES, VirtualNetwork


@dataclass
class EmulationResult:
    """What :func:`emulate` returns: the network (stopped), its recorder, wall time."""

    network: VirtualNetwork
    path: Any
    until_s: float
    wall_s: float
    flows: list = field(default_factory=list)

    @property
    def recorder(self):
        return self.network.recorder

    def trace(self) -> pd.DataFrame:
        return self.network.recorder.to_pandas()

    def summaries(self) -> pd.DataFrame:
        return self.network.summaries()

    def metrics(self, from_s: float = 0.0, to_s: float | None = None) -> pd.DataFrame:
        """Per-flow metrics in ``[from_s, to_s]`` (see the module docstring), plus a
        ``utilisation`` column (aggregate over all flows, repeated per row)."""
        to = self.until_s if to_s is None else to_s
        return flow_metrics(self.trace(), from_s, to, capacity_bps=_capacity(self.path),
                            rtt_s=getattr(self.path, "rtt_s", None))

    def speed(self) -> dict[str, float]:
        """Simulated seconds and bottleneck packets per wall-second of this run."""
        path = self.path
        pkts = path.down.stats.offered + path.up.stats.offered
        return {"wall_s": self.wall_s, "virtual_s": self.until_s,
                "virtual_per_wall": self.until_s / self.wall_s if self.wall_s else np.inf,
                "packets": pkts, "packets_per_wall_s": pkts / self.wall_s if self.wall_s else 0}


def _capacity(path: Any) -> float | None:
    cap = getattr(path, "capacity_bps", None)
    if callable(cap):
        cap = cap()
    return cap


def emulate(path: Any, cc: str | Sequence[Any] = "cubic", workload: Any = None, *,
            flows: int | None = None, until_s: float | None = 10.0,
            start_s: Sequence[float] | float = 0.0, record_link: str | None = "drops",
            meta: dict | None = None, **network_options: Any) -> EmulationResult:
    """Run ``flows`` flows (default: one per entry of ``cc``) over ``path``; each flow
    runs ``workload`` (default: bulk download) under its controller (``cc``: one name for
    all, or one per flow). The run stops at ``until_s`` virtual seconds or when every
    flow's workload has finished, whichever comes first (``until_s=None``: only the
    latter). The path may be reused across calls (a used one is replaced by
    ``path.new()``; ``result.path`` is the one that ran). ``network_options`` go to
    :class:`VirtualNetwork` (``timer_granularity_s``,
    ``rx_coalesce_s``). Deterministic for a path with a fixed seed."""
    ccs = [cc] if isinstance(cc, str) or not isinstance(cc, Sequence) else list(cc)
    n = flows if flows is not None else len(ccs)
    if n < 1:
        raise ConfigError(f"flows={flows!r}: need at least one flow")
    if len(ccs) == 1:
        ccs = ccs * n
    if len(ccs) != n:
        raise ConfigError(f"cc has {len(ccs)} entries for {n} flows; give one or one per flow")
    starts = [start_s] * n if isinstance(start_s, (int, float)) else list(start_s)
    if len(starts) != n:
        raise ConfigError(f"start_s has {len(starts)} entries for {n} flows")
    from wtlab.lab.workloads import Bulk, create

    describe = getattr(path, "describe", None)
    run_meta = {"engine": "emulate", "cc": [c if isinstance(c, str) else str(c) for c in ccs],
                "path": describe() if callable(describe) else None, "until_s": until_s,
                **(meta or {})}
    net = VirtualNetwork(path, record_link=record_link, meta=run_meta, **network_options)
    path = net.path  # a fresh copy if the given one had been used before
    made = []
    for i in range(n):
        work = create(workload) if workload is not None else Bulk(duration_s=1e6,
                                                                  direction="down")
        if workload is not None and i > 0 and not isinstance(workload, (dict, str)):
            work = type(work)(**work.params())  # one instance per flow
        made.append(net.add_flow(ccs[i], work, start_s=starts[i]))
    net.recorder.meta["workload"] = [f.workload.describe() for f in made]
    running = [len(made)]

    def finished(_task: Any) -> None:
        running[0] -= 1

    for f in made:
        f.task.add_done_callback(finished)
    wall0 = time.perf_counter()
    net.run(until=until_s, stop=lambda: running[0] <= 0)
    wall = time.perf_counter() - wall0
    until_s = net.now
    net.recorder.meta["wall_s"] = wall
    net.close()
    return EmulationResult(network=net, path=path, until_s=until_s, wall_s=wall, flows=made)


def flow_metrics(df: pd.DataFrame, from_s: float, to_s: float, *,
                 capacity_bps: float | None = None, rtt_s: float | None = None,
                 mss_bytes: int = 1200,
                 overhead_bytes: int = IP_UDP_OVERHEAD_BYTES) -> pd.DataFrame:
    """Per-flow metrics of a trace in the window ``[from_s, to_s]`` (module docstring)."""
    if not to_s > from_s:
        raise ConfigError(f"window [{from_s}, {to_s}] is empty; need to_s > from_s")
    span = to_s - from_s
    rows = []
    kind = df["kind"].astype(str).to_numpy()
    t = df["time_s"].to_numpy()
    flow = df["flow"].to_numpy()
    for f in sorted(np.unique(flow[(kind == "packet_sent") | (kind == "packet_acked")])):
        mine = flow == f
        win = mine & (t >= from_s) & (t <= to_s)
        acked = win & (kind == "packet_acked")
        acked_bytes = float(df["bytes"].to_numpy()[acked].sum())
        n_acked = int(acked.sum())
        sent_rows = win & (kind == "packet_sent")
        sent = int(sent_rows.sum())
        mean_packet = float(df["bytes"].to_numpy()[sent_rows].mean()) if sent else float("nan")
        lost = int((win & (kind == "packet_lost")).sum())
        rtt_rows = win & (kind == "rtt_sample")
        rtts = df["latest_rtt_s"].to_numpy()[rtt_rows].astype(float)
        mean_rtt = float(np.nanmean(rtts)) if len(rtts) else float("nan")
        # time-weighted cwnd: each cwnd value holds until the next change
        cw = df.loc[mine & df["cwnd"].notna().to_numpy(), ["time_s", "cwnd"]]
        mean_cwnd = _time_weighted(cw["time_s"].to_numpy(), cw["cwnd"].to_numpy(dtype=float),
                                   from_s, to_s)
        rows.append({
            "flow": int(f), "goodput_bps": acked_bytes * 8 / span,
            "wire_bps": (acked_bytes + overhead_bytes * n_acked) * 8 / span,
            "mean_cwnd_packets": mean_cwnd / mss_bytes,
            "mean_rtt_s": mean_rtt,
            "min_rtt_s": float(np.nanmin(rtts)) if len(rtts) else float("nan"),
            "mean_queueing_delay_s": (mean_rtt - rtt_s) if rtt_s is not None else float("nan"),
            "mean_packet_bytes": mean_packet,
            "packets_sent": sent, "packets_lost": lost,
            "loss_rate": lost / sent if sent else float("nan"),
        })
    out = pd.DataFrame(rows)
    if capacity_bps and len(out):
        out["utilisation"] = out["wire_bps"].sum() / capacity_bps
    return out


def _time_weighted(times: np.ndarray, values: np.ndarray, t0: float, t1: float) -> float:
    if len(times) == 0:
        return float("nan")
    # value in force at t0 is the last change at or before t0 (or the first value)
    idx = np.searchsorted(times, t0, side="right") - 1
    ts = [t0]
    vs = [values[max(idx, 0)]]
    inside = (times > t0) & (times < t1)
    ts.extend(times[inside].tolist())
    vs.extend(values[inside].tolist())
    ts.append(t1)
    dur = np.diff(np.asarray(ts))
    return float(np.dot(dur, np.asarray(vs)) / (t1 - t0))


def jain_index(values: Sequence[float]) -> float:
    """Jain's fairness index (sum x)^2 / (n sum x^2): 1 = equal shares, 1/n = one takes all."""
    x = np.asarray(values, dtype=float)
    return float(x.sum() ** 2 / (len(x) * (x * x).sum())) if len(x) and (x * x).sum() else 0.0
