"""Experiments: a path, a workload, controllers and a seed -> a run you can step or finish.

>>> from wtlab.lab import Experiment, compare
>>> exp = Experiment(path=dict(rate_bps=10e6, rtt_s=0.05, loss=0.01), cc="cubic", seed=1)
>>> result = exp.run(5.0)                      # doctest: +SKIP
>>> result.metrics()                           # per-flow goodput, RTT, loss   # doctest: +SKIP
>>> table = compare(exp, ccs=["reno", "cubic", "bbr"], duration_s=5.0).table  # doctest: +SKIP

Every result here (a run, a comparison, a stepper) answers the same three calls:
``trace()`` (the event DataFrame; a comparison's has a ``cc`` column),
``metrics(from_s=None, to_s=None)`` (one row per flow) and ``summary()`` (run-level
figures). The figures are :mod:`wtlab.trace.metrics`'s, the same in every engine.

Two engines run the same controller objects and write the same trace schema:

* ``engine="model"`` (default): the fast packet-level flow model (``wtlab.model``):
  RFC 9002 loss recovery, no encryption or framing; for teaching, stepping and grids.
* ``engine="emulate"``: the real aioquic client and server (wtlab's WebTransport
  stack) over the same path in virtual time (``wtlab.net``): full protocol fidelity.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from wtlab import cc as cc_registry
from wtlab.errors import ConfigError
from wtlab.lab import analytic
from wtlab.trace import metrics as M
from wtlab.trace.recorder import Recorder, row_dicts

ENGINES = ("model", "emulate")


DEFAULT_PATH = {"rate_bps": 10e6, "rtt_s": 0.05, "buffer_bdp": 1.0}


def make_path(path: Any, seed: int):
    """A fresh :class:`wtlab.net.Path` from a Path, a dict of ``Path.symmetric`` arguments
    or None (10 Mbit/s, 50 ms, 1 BDP); unknown keys raise ConfigError naming the valid ones."""
    from wtlab.net.path import Path

    return Path.from_spec(path, seed=seed, default=DEFAULT_PATH)


def _flow_ccs(cc: Any, flows: int | Sequence[Any]) -> list[Any]:
    if isinstance(flows, int):
        if flows < 1:
            raise ConfigError(f"flows={flows}: need at least one flow")
        return [cc] * flows
    ccs = list(flows)
    if not ccs:
        raise ConfigError("flows=[]: give at least one controller name")
    return ccs


def _cc_label(cc: Any) -> str:
    if isinstance(cc, str):
        return cc
    if isinstance(cc, type):
        return getattr(cc, "name", cc.__name__)
    return getattr(cc, "name", type(cc).__name__)


@dataclasses.dataclass
class Experiment:
    """What to run. Every field has a default; ``replace(**changes)`` makes a variant.

    ``path``: a :class:`wtlab.net.Path`, a dict of ``Path.symmetric`` arguments, or
    None (10 Mbit/s, 50 ms RTT, 1 BDP drop-tail buffer). ``workload``: ``"bulk"`` or a
    dict (``{"kind": "messages", "rate_hz": 100, "size_bytes": 1000}``). ``cc``: a
    registered name, a Controller subclass, or a W3C hint. ``flows``: how many flows
    of ``cc`` share the bottleneck, or a list of controllers, one per flow.
    ``max_datagram_size``: the QUIC packet size in bytes (UDP payload): 1200 (QUIC's
    minimum, aioquic's default) up to 1472, what a 1500-byte MTU carries (the size to
    compare with TCP's 1448-byte segments; results state ``payload_per_packet_bytes``).
    ``full_packets``: while the congestion window is the limit, send only whole
    packets (True, as TCP and deployed QUIC stacks) or fill the window's last bytes
    with a short packet (False, aioquic's own).
    """

    path: Any = None
    workload: Any = "bulk"
    cc: Any = "cubic"
    flows: int | Sequence[Any] = 1
    seed: int = 0
    engine: str = "model"
    max_datagram_size: int = 1200
    full_packets: bool = True

    def __post_init__(self) -> None:
        from wtlab.cc.aioquic import check_full_packets
        from wtlab.transport.driver import check_max_datagram_size

        if self.engine not in ENGINES:
            raise ConfigError(f"engine={self.engine!r}: use one of {', '.join(ENGINES)}")
        check_max_datagram_size(self.max_datagram_size)
        check_full_packets(self.full_packets)
        for c in _flow_ccs(self.cc, self.flows):
            if isinstance(c, str):
                cc_registry.get(c)  # typed error now rather than mid-run

    def replace(self, **changes: Any) -> Experiment:
        return dataclasses.replace(self, **changes)

    @property
    def labels(self) -> dict[int, str]:
        return {i: _cc_label(c) for i, c in enumerate(_flow_ccs(self.cc, self.flows))}

    def describe(self) -> dict[str, Any]:
        p = make_path(self.path, self.seed)
        return {"cc": [_cc_label(c) for c in _flow_ccs(self.cc, self.flows)],
                "workload": self.workload, "seed": self.seed, "engine": self.engine,
                "max_datagram_size": self.max_datagram_size,
                "full_packets": self.full_packets, "path": p.describe()}

    def stepper(self) -> Stepper:
        """A run you advance by hand: ``step()``, ``advance(dt_s)``, ``run(until_s)``."""
        return Stepper(self)

    def run(self, duration_s: float = 10.0) -> Result:
        """Run for ``duration_s`` seconds of (virtual) time and return the Result."""
        if not (duration_s > 0 and math.isfinite(duration_s)):
            raise ConfigError(f"duration_s={duration_s!r} must be a positive number of seconds")
        s = self.stepper()
        try:
            s.run(duration_s)
            return s.result()
        finally:
            s.close()


def _workload_dict(workload: Any) -> dict[str, Any]:
    if workload in (None, "bulk"):
        return {"kind": "bulk"}
    if isinstance(workload, Mapping):
        return dict(workload)
    raise ConfigError(
        f"workload={workload!r}: use 'bulk' or a dict like "
        "{'kind': 'messages', 'rate_hz': 100, 'size_bytes': 1000}"
    )


class _ModelEngine:
    """Adapter of the fast flow model to the stepper."""

    def __init__(self, exp: Experiment, recorder: Recorder) -> None:
        from wtlab.model.api import build

        # the same construction as wtlab.model.run: one door, one model
        built = build(make_path(exp.path, exp.seed), [c for c in _flow_ccs(exp.cc, exp.flows)],
                      recorder=recorder, max_datagram_size=exp.max_datagram_size,
                      full_packets=exp.full_packets, workload=_workload_dict(exp.workload))
        self.path = built.path
        self.sim = built.model
        self.controllers = [fl.cc for fl in self.sim.flows]

    @property
    def now(self) -> float:
        return self.sim.now

    def next_event_time(self) -> float | None:
        heap = self.sim._heap
        return heap[0][0] if heap else None

    def run(self, until: float) -> None:
        self.sim.run(until)


class _EmulateEngine:
    """Adapter of the full-stack virtual-time emulation (``wtlab.net.network``) to the stepper.

    Each flow is a real wtlab WebTransport session (aioquic underneath) from its own
    client host to the server across the shared path; the bulk workload downloads, so
    the controller acts on ``path.down`` as in the flow model.
    """

    def __init__(self, exp: Experiment, recorder: Recorder) -> None:
        from wtlab.lab import workloads as wl
        from wtlab.net.network import VirtualNetwork

        self.path = make_path(exp.path, exp.seed)
        self.net = VirtualNetwork(self.path, recorder=recorder)
        work = _workload_dict(exp.workload)
        self.flows = []
        for c in _flow_ccs(exp.cc, exp.flows):
            if work["kind"] == "bulk":
                w = wl.Bulk(size_bytes=work.get("size_bytes"),
                            duration_s=None if work.get("size_bytes") else 1e6, direction="down")
            elif work["kind"] == "messages":
                w = wl.Messages(rate_hz=work["rate_hz"], size_bytes=work["size_bytes"],
                                duration_s=1e6)
            else:
                w = wl.create({k if k != "kind" else "workload": v for k, v in work.items()})
            self.flows.append(self.net.add_flow(c, w, max_datagram_size=exp.max_datagram_size,
                                                full_packets=exp.full_packets))
        self.controllers = [f.controller for f in self.flows]

    @property
    def now(self) -> float:
        return self.net.now

    def step(self, kinds: Any, max_time_s: float | None) -> dict | None:
        return self.net.step(kinds, max_time_s=max_time_s)

    def run(self, until: float) -> None:
        self.net.run(until=until)

    def close(self) -> None:
        self.net.close()


class Stepper:
    """A run in progress. Everything it does lands in ``recorder``.

    ``step()`` advances to the next trace event and returns it as a dict (None when
    nothing is left); ``step(kinds={"packet_acked", "packet_lost"})`` skips to the next
    event of those kinds. ``advance(dt_s)`` and ``run(until_s)`` move the clock.
    ``controllers[i]`` is flow i's controller object: its state is readable between steps.
    """

    def __init__(self, experiment: Experiment) -> None:
        self.experiment = experiment
        self.recorder = Recorder(t0=0.0, meta={**experiment.describe(),
                                               "labels": experiment.labels})
        engine_cls = _ModelEngine if experiment.engine == "model" else _EmulateEngine
        self.engine = engine_cls(experiment, self.recorder)
        self.controllers = self.engine.controllers
        self._cursor = 0
        self._rows: list[dict] = []

    @property
    def now(self) -> float:
        return self.engine.now

    @property
    def path(self):
        return self.engine.path

    def _pull(self) -> None:
        n = len(self.recorder)
        if n > self._cursor:
            self._rows.extend(row_dicts(self.recorder.to_pandas(self._cursor, n)))
            self._cursor = n

    def step(self, kinds: Iterable[str] | str | None = None, *,
             max_time_s: float | None = None) -> dict | None:
        engine_step = getattr(self.engine, "step", None)
        if engine_step is not None:
            return engine_step(kinds, max_time_s)
        wanted = None if kinds is None else {kinds} if isinstance(kinds, str) else set(kinds)
        limit = math.inf if max_time_s is None else max_time_s
        while True:
            while self._rows:
                row = self._rows.pop(0)
                if wanted is None or row["kind"] in wanted:
                    return row
            t_next = self.engine.next_event_time()
            if t_next is None or t_next > limit:
                return None
            before = len(self.recorder)
            self.engine.run(t_next)
            if len(self.recorder) > before:
                self._pull()

    def advance(self, dt_s: float) -> int:
        """Run ``dt_s`` more seconds; returns how many events were recorded."""
        before = len(self.recorder)
        self.engine.run(self.now + dt_s)
        self._cursor = len(self.recorder)
        self._rows.clear()
        return len(self.recorder) - before

    def run(self, until_s: float) -> None:
        self.engine.run(until_s)
        self._cursor = len(self.recorder)
        self._rows.clear()

    def trace(self) -> pd.DataFrame:
        """Every event so far (the recorder's DataFrame)."""
        return self.recorder.to_pandas()

    def metrics(self, from_s: float | None = None, to_s: float | None = None) -> pd.DataFrame:
        """Per-flow figures of the run so far (:func:`wtlab.trace.metrics.flow_metrics`)."""
        return self.result().metrics(from_s, to_s)

    def summary(self, from_s: float | None = None, to_s: float | None = None) -> dict:
        """Run-level figures of the run so far (:func:`wtlab.trace.metrics.run_metrics`)."""
        return self.result().summary(from_s, to_s)

    def close(self) -> None:
        """Release the engine (the emulator's loop and tasks); the trace stays readable."""
        close = getattr(self.engine, "close", None)
        if close is not None:
            close()

    def result(self) -> Result:
        return Result(self.experiment, self.recorder, duration_s=self.now, path=self.path)


class Result:
    """A finished (or paused) run: ``trace()``, ``metrics()``, ``summary()``, ``plot()``."""

    def __init__(self, experiment: Experiment, recorder: Recorder, *, duration_s: float,
                 path: Any) -> None:
        self.experiment = experiment
        self.recorder = recorder
        self.duration_s = duration_s
        self.path = path
        self._trace: pd.DataFrame | None = None

    def trace(self) -> pd.DataFrame:
        """Every event of the run, one row each (:mod:`wtlab.trace.schema`)."""
        if self._trace is None or len(self._trace) != len(self.recorder):
            self._trace = self.recorder.to_pandas()
        return self._trace

    @property
    def capacity_bps(self) -> float:
        """The bottleneck's capacity over the whole run."""
        return self.path.capacity_bps_between(0.0, self.duration_s)

    def _window(self, from_s: float | None, to_s: float | None) -> tuple[float, float]:
        return (0.0 if from_s is None else float(from_s),
                self.duration_s if to_s is None else float(to_s))

    def metrics(self, from_s: float | None = None, to_s: float | None = None) -> pd.DataFrame:
        """One row per flow over ``[from_s, to_s]`` (default: the whole run); the columns
        are :data:`wtlab.trace.metrics.FLOW_METRICS`."""
        lo, hi = self._window(from_s, to_s)
        return M.flow_metrics(self.trace(), from_s=lo, to_s=hi,
                              capacity_bps=self.path.capacity_bps_between(lo, hi),
                              base_rtt_s=self.path.rtt_s, labels=self.experiment.labels)

    def summary(self, from_s: float | None = None, to_s: float | None = None) -> dict[str, Any]:
        """Run-level figures (:data:`wtlab.trace.metrics.RUN_METRICS`) over the window."""
        lo, hi = self._window(from_s, to_s)
        flows = self.metrics(lo, hi)
        return M.run_metrics(self.trace(), flows, from_s=lo, to_s=hi,
                             capacity_bps=self.path.capacity_bps_between(lo, hi),
                             base_rtt_s=self.path.rtt_s)

    def plot(self, **kwargs: Any):
        """A plotly figure of cwnd / bytes in flight, rates and RTT (BDP line drawn)."""
        from wtlab.lab.plots import trace_figure

        return trace_figure(self.trace(), labels=self.experiment.labels,
                            bdp_bytes=self.path.bdp_bytes, **kwargs)

    def __repr__(self) -> str:
        s = self.summary()
        return (f"<Result {self.experiment.labels} {self.duration_s:.1f}s: "
                f"goodput {s['goodput_bps'] / 1e6:.2f} Mbit/s, "
                f"p95 RTT {s['rtt_p95_s'] * 1e3:.1f} ms, loss {s['loss_rate']:.2%}>")


@dataclasses.dataclass
class Comparison:
    """Several controllers on one path: ``table`` (one row per cc), ``results``, figures.

    ``trace()`` joins the runs' traces with a ``cc`` column; ``metrics()`` joins their
    per-flow tables (``run`` names the run); ``summary()`` is ``table``.
    """

    table: pd.DataFrame
    results: dict[str, Result]

    def trace(self) -> pd.DataFrame:
        from wtlab.trace.schema import concat

        frames = []
        for name, r in self.results.items():
            t = r.trace().copy()
            t["cc"] = name
            frames.append(t)
        out = concat(frames)
        out["cc"] = pd.Categorical(out["cc"], categories=list(self.results))
        return out

    def metrics(self, from_s: float | None = None, to_s: float | None = None) -> pd.DataFrame:
        frames = []
        for name, r in self.results.items():
            m = r.metrics(from_s, to_s)
            m["run"] = name
            frames.append(m)
        return pd.concat(frames, ignore_index=True)

    def summary(self) -> pd.DataFrame:
        return self.table

    def figure(self):
        from wtlab.lab.plots import comparison_figure

        return comparison_figure(self.table)

    def trace_figure(self):
        from wtlab.lab.plots import trace_figure

        frames = []
        labels = {}
        for i, (name, r) in enumerate(self.results.items()):
            t = r.trace().copy()
            t["flow"] = (t["flow"].astype(np.int64) + 100 * i).astype(np.uint16)
            frames.append(t)
            for f, lab in r.experiment.labels.items():
                labels[f + 100 * i] = f"{name}" if len(r.experiment.labels) == 1 else lab
        first = next(iter(self.results.values()))
        return trace_figure(pd.concat(frames, ignore_index=True), labels=labels,
                            bdp_bytes=first.path.bdp_bytes)


def compare(experiment: Experiment, ccs: Sequence[Any] = ("reno", "cubic", "bbr"), *,
            duration_s: float = 10.0) -> Comparison:
    """Run ``experiment`` once per controller in ``ccs`` on identical paths (same seed).

    ``table``: one row per controller with :meth:`Result.summary`'s figures,
    ``payload_per_packet_bytes`` and, on a lossy path, the analytic references at that
    packet size, the unit of ``goodput_bps`` (``mathis_bps``, ``cubic_response_bps``;
    :func:`wtlab.lab.analytic.reference_rates_bps`).
    """
    results: dict[str, Result] = {}
    rows = []
    for c in ccs:
        name = _cc_label(c)
        r = experiment.replace(cc=c, flows=experiment.flows if isinstance(experiment.flows, int)
                               else len(experiment.flows)).run(duration_s)
        results[name] = r
        flows = r.metrics()
        row = {"cc": name, **r.summary()}
        row["payload_per_packet_bytes"] = float(flows["payload_per_packet_bytes"].max())
        rows.append(row)
    table = pd.DataFrame(rows)
    p = next(iter(results.values())).path
    p_loss = getattr(p.down_spec.loss, "p", None)
    if p_loss:
        mss = table["payload_per_packet_bytes"].max()
        if mss == mss:
            for k, v in analytic.reference_rates_bps(mss, p.rtt_s, p_loss).items():
                table[k] = v
    return Comparison(table=table, results=results)
