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

The result answers ``trace()``, ``metrics(from_s, to_s)`` (one row per flow) and
``summary(from_s, to_s)`` (run-level) like every wtlab result; the figures are
:mod:`wtlab.trace.metrics`'s, computed from the run's trace over the window.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from wtlab.errors import ConfigError
from wtlab.net.network import VirtualNetwork
from wtlab.trace import metrics as M


@dataclass
class EmulationResult:
    """What :func:`emulate` returns: the network (stopped), its recorder, wall time."""

    network: VirtualNetwork
    path: Any
    until_s: float
    wall_s: float
    flows: list = field(default_factory=list)
    _trace: pd.DataFrame | None = field(default=None, init=False, repr=False)

    @property
    def recorder(self):
        """The network's :class:`~wtlab.trace.recorder.Recorder` (every row of every flow)."""
        return self.network.recorder

    def trace(self) -> pd.DataFrame:
        """Every event of the run (the network is stopped: read once, then kept)."""
        if self._trace is None:
            self._trace = self.network.recorder.to_pandas()
        return self._trace

    def summaries(self) -> pd.DataFrame:
        """The network's per-flow summaries (see
        :meth:`wtlab.net.network.VirtualNetwork.summaries`).
        """
        return self.network.summaries()

    def _labels(self) -> dict[int, str]:
        return {f.id: f.cc for f in self.flows}

    def _window(self, from_s: float | None, to_s: float | None) -> tuple[float, float]:
        return (0.0 if from_s is None else float(from_s),
                self.until_s if to_s is None else float(to_s))

    def metrics(self, from_s: float | None = None, to_s: float | None = None) -> pd.DataFrame:
        """Per-flow figures over ``[from_s, to_s]`` (default: the whole run):
        :func:`wtlab.trace.metrics.flow_metrics`."""
        lo, hi = self._window(from_s, to_s)
        return M.flow_metrics(self.trace(), from_s=lo, to_s=hi,
                              capacity_bps=self.path.capacity_bps_between(lo, hi),
                              base_rtt_s=self.path.rtt_s, labels=self._labels())

    def summary(self, from_s: float | None = None, to_s: float | None = None) -> dict[str, Any]:
        """Run-level figures over the window (:func:`wtlab.trace.metrics.run_metrics`)."""
        lo, hi = self._window(from_s, to_s)
        return M.run_metrics(self.trace(), self.metrics(lo, hi), from_s=lo, to_s=hi,
                             capacity_bps=self.path.capacity_bps_between(lo, hi),
                             base_rtt_s=self.path.rtt_s)

    def speed(self) -> dict[str, float]:
        """Simulated seconds and bottleneck packets per wall-second of this run."""
        path = self.path
        pkts = path.down.stats.offered + path.up.stats.offered
        return {"wall_s": self.wall_s, "virtual_s": self.until_s,
                "virtual_per_wall": self.until_s / self.wall_s if self.wall_s else np.inf,
                "packets": pkts, "packets_per_wall_s": pkts / self.wall_s if self.wall_s else 0}


def emulate(path: Any, cc: str | Sequence[Any] = "cubic", workload: Any = None, *,
            flows: int | None = None, until_s: float | None = 10.0,
            start_s: Sequence[float] | float = 0.0, record_link: str | None = "drops",
            meta: dict | None = None, max_datagram_size: int = 1200, full_packets: bool = True,
            **network_options: Any) -> EmulationResult:
    """Run ``flows`` flows (default: one per entry of ``cc``) over ``path``; each flow
    runs ``workload`` (default: bulk download) under its controller (``cc``: one name for
    all, or one per flow). The run stops at ``until_s`` virtual seconds or when every
    flow's workload has finished, whichever comes first (``until_s=None``: only the
    latter). The path may be reused across calls (a used one is replaced by
    ``path.new()``; ``result.path`` is the one that ran). ``max_datagram_size``
    (1200..1472 bytes of UDP payload) and ``full_packets`` are every flow's
    (:meth:`VirtualNetwork.add_flow`). ``network_options`` go to
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
    from wtlab.transport.workloads import Bulk, create

    describe = getattr(path, "describe", None)
    run_meta = {"engine": "emulate", "cc": [c if isinstance(c, str) else str(c) for c in ccs],
                "path": describe() if callable(describe) else None, "until_s": until_s,
                "max_datagram_size": max_datagram_size, "full_packets": full_packets,
                **(meta or {})}
    net = VirtualNetwork(path, record_link=record_link, meta=run_meta, **network_options)
    path = net.path  # a fresh copy if the given one had been used before
    made = []
    for i in range(n):
        work = create(workload) if workload is not None else Bulk(duration_s=1e6,
                                                                  direction="down")
        if workload is not None and i > 0 and not isinstance(workload, (dict, str)):
            work = type(work)(**work.params())  # one instance per flow
        made.append(net.add_flow(ccs[i], work, start_s=starts[i],
                                 max_datagram_size=max_datagram_size, full_packets=full_packets))
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
