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
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from wtlab import cc as cc_registry
from wtlab.errors import ConfigError
from wtlab.net.schedule import PathChange, PathSchedule
from wtlab.trace import metrics as M
from wtlab.trace.recorder import Recorder, row_dicts
from wtlab.transport.workloads import Bulk, Messages, Workload

ENGINES = ("model", "emulate")


DEFAULT_PATH = {"rate_bps": 10e6, "rtt_s": 0.05, "buffer_bdp": 1.0}


def make_path(path: Any, seed: int):
    """A fresh :class:`wtlab.net.Path` from a Path, a dict of ``Path.symmetric`` arguments
    or None (10 Mbit/s, 50 ms, 1 BDP); unknown keys raise ConfigError naming the valid ones."""
    from wtlab.net.path import Path

    return Path.from_spec(path, seed=seed, default=DEFAULT_PATH)


@dataclasses.dataclass(frozen=True)
class FlowSpec:
    """One flow of an experiment: its controller, when it starts, and the RTT it adds to
    the path's (its own access delay, half each way, after the shared bottleneck)."""

    cc: Any = "cubic"
    start_s: float = 0.0
    extra_rtt_s: float = 0.0

    def __post_init__(self) -> None:
        for name in ("start_s", "extra_rtt_s"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not (
                    v >= 0 and math.isfinite(v)):
                raise ConfigError(f"flow {name}={v!r} must be a number of seconds >= 0")
            object.__setattr__(self, name, float(v))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready ``{"cc", "start_s", "extra_rtt_s"}`` (``cc`` as its registered name;
        an unregistered controller raises ConfigError)."""
        return {"cc": _cc_name_for_save(self.cc), "start_s": self.start_s,
                "extra_rtt_s": self.extra_rtt_s}


FLOW_KEYS = ("cc", "start_s", "extra_rtt_s")


def _flow_specs(cc: Any, flows: int | Sequence[Any]) -> list[FlowSpec]:
    if isinstance(flows, int) and not isinstance(flows, bool):
        if flows < 1:
            raise ConfigError(f"flows={flows}: need at least one flow")
        return [FlowSpec(cc)] * flows
    if isinstance(flows, str | bytes | Mapping) or not isinstance(flows, Iterable):
        raise ConfigError(f"flows={flows!r}: give a number of flows of cc, or a list with one "
                          "controller (or {'cc': .., 'start_s': .., 'extra_rtt_s': ..}) per flow")
    out = []
    for f in flows:
        if isinstance(f, FlowSpec):
            out.append(f)
        elif isinstance(f, Mapping):
            unknown = [k for k in f if k not in FLOW_KEYS]
            if unknown:
                raise ConfigError(f"flow {dict(f)!r}: unknown key(s) {unknown}; valid: "
                                  f"{', '.join(FLOW_KEYS)}")
            out.append(FlowSpec(**{"cc": cc, **f}))
        else:
            out.append(FlowSpec(f))
    if not out:
        raise ConfigError("flows=[]: give at least one controller name")
    return out


def _flow_ccs(cc: Any, flows: int | Sequence[Any]) -> list[Any]:
    return [f.cc for f in _flow_specs(cc, flows)]


def _cc_label(cc: Any) -> str:
    if isinstance(cc, str):
        return cc
    if isinstance(cc, type):
        return getattr(cc, "name", cc.__name__)
    return getattr(cc, "name", type(cc).__name__)


def _cc_name_for_save(cc: Any) -> str:
    """The registered name a saved state can rebuild ``cc`` from."""
    name = _cc_label(cc)
    try:
        cc_registry.get(name)
    except ConfigError:
        raise ConfigError(f"controller {name!r} is not registered, so a saved state could not "
                          "rebuild it; register it (wtlab.cc.register) first") from None
    return name


@dataclasses.dataclass
class Experiment:
    """What to run. Every field has a default; ``replace(**changes)`` makes a variant.

    ``path``: a :class:`wtlab.net.Path`, a dict of ``Path.symmetric`` arguments, or
    None (10 Mbit/s, 50 ms RTT, 1 BDP drop-tail buffer). ``workload``: ``"bulk"``, a
    dict (``{"kind": "messages", "rate_hz": 100, "size_bytes": 1000}``), or the same as
    a :mod:`wtlab.lab.workloads` object (``Bulk(direction="down")``,
    ``Messages(over="stream")``; see :func:`workload_dict`). ``cc``: a
    registered name, a Controller subclass, or a W3C hint. ``flows``: how many flows
    of ``cc`` share the bottleneck, or a list with one entry per flow: a controller, or
    a dict ``{"cc": "bbr", "start_s": 2.0, "extra_rtt_s": 0.05}`` (when it starts; RTT
    added to the path's, for RTT-unfairness studies). ``schedule``: changes of the path
    during the run (:class:`wtlab.net.schedule.PathSchedule`, or a list of dicts such
    as ``[{"at_s": 5.0, "rate_bps": 5e6}]``), applied by both engines.

    ``max_datagram_size``: the QUIC packet size in bytes (UDP payload): 1200 (QUIC's
    minimum, aioquic's default) up to 1472, what a 1500-byte MTU carries (the size to
    compare with TCP's 1448-byte segments; results state ``payload_per_packet_bytes``).
    ``full_packets``: while the congestion window is the limit, send only whole
    packets (True, as TCP and deployed QUIC stacks) or fill the window's last bytes
    with a short packet (False, aioquic's own).

    ``to_dict()`` / ``Experiment.from_dict(d)``: the experiment as JSON-ready data (for
    saved widget states; needs a dict path and registered controllers).
    """

    path: Any = None
    workload: Any = "bulk"
    cc: Any = "cubic"
    flows: int | Sequence[Any] = 1
    seed: int = 0
    engine: str = "model"
    max_datagram_size: int = 1200
    schedule: Any = None
    full_packets: bool = True

    def __post_init__(self) -> None:
        from wtlab.cc.aioquic import check_full_packets
        from wtlab.transport.driver import check_max_datagram_size

        if self.engine not in ENGINES:
            raise ConfigError(f"engine={self.engine!r}: use one of {', '.join(ENGINES)}")
        check_max_datagram_size(self.max_datagram_size)
        check_full_packets(self.full_packets)
        for f in self.flow_specs():
            if isinstance(f.cc, str):
                cc_registry.get(f.cc)  # typed error now rather than mid-run
        sched = PathSchedule.of(self.schedule)  # typed error now
        self.schedule = sched if sched else None  # one form: a PathSchedule, or None

    def replace(self, **changes: Any) -> Experiment:
        """A copy with ``changes`` applied (``exp.replace(cc="bbr")``); the original is unchanged.
        """
        return dataclasses.replace(self, **changes)

    def flow_specs(self) -> list[FlowSpec]:
        """One :class:`FlowSpec` per flow."""
        return _flow_specs(self.cc, self.flows)

    @property
    def labels(self) -> dict[int, str]:
        """Flow id -> the label of its controller."""
        return {i: _cc_label(f.cc) for i, f in enumerate(self.flow_specs())}

    def base_rtts_s(self, path: Any) -> dict[int, float]:
        """Each flow's propagation RTT on ``path``: the path's plus its extra RTT."""
        return {i: path.rtt_s + f.extra_rtt_s for i, f in enumerate(self.flow_specs())}

    def describe(self) -> dict[str, Any]:
        """The experiment as plain data (controllers, workload, seed, engine, packet size,
        the path's description, flows and schedule where set); JSON-ready.
        """
        p = make_path(self.path, self.seed)
        specs = self.flow_specs()
        out = {"cc": [_cc_label(f.cc) for f in specs],
               "workload": self._plain_workload(), "seed": self.seed, "engine": self.engine,
               "max_datagram_size": self.max_datagram_size,
               "full_packets": self.full_packets, "path": p.describe()}
        if any(f.start_s or f.extra_rtt_s for f in specs):
            out["flows"] = [{"cc": _cc_label(f.cc), "start_s": f.start_s,
                             "extra_rtt_s": f.extra_rtt_s} for f in specs]
        sched = PathSchedule.of(self.schedule)
        if sched:
            out["schedule"] = sched.to_list()
        return out

    def _plain_workload(self) -> Any:
        """The workload as given if it is plain data ("bulk", a dict), else its dict."""
        if isinstance(self.workload, str):
            return self.workload
        return workload_dict(self.workload)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (``from_dict`` rebuilds the experiment)."""
        if self.path is not None and not isinstance(self.path, Mapping):
            raise ConfigError("to_dict: the path must be given as a dict of Path.symmetric "
                              "arguments (a Path object does not save to JSON)")
        path = None if self.path is None else {
            k: (v if isinstance(v, str | int | float | bool | type(None)) else str(v))
            for k, v in self.path.items()}
        specs = self.flow_specs()
        plain = all(f.start_s == 0 and f.extra_rtt_s == 0 for f in specs)
        same = all(_cc_label(f.cc) == _cc_label(specs[0].cc) for f in specs)
        if isinstance(self.flows, int) or (plain and same):
            flows: Any = len(specs)
        else:
            flows = [f.to_dict() for f in specs]
        return {"path": path, "workload": self._plain_workload(),
                "cc": _cc_name_for_save(self.cc if isinstance(self.flows, int) or (plain and same)
                                        else specs[0].cc),
                "flows": flows, "seed": self.seed, "engine": self.engine,
                "max_datagram_size": self.max_datagram_size,
                "full_packets": self.full_packets,
                "schedule": PathSchedule.of(self.schedule).to_list()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Experiment:
        """The experiment of :meth:`to_dict`'s output; unknown keys raise ConfigError."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"experiment: expected a dict, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = [k for k in data if k not in known]
        if unknown:
            raise ConfigError(f"experiment: unknown key(s) {unknown}; valid: {sorted(known)}")
        kwargs = dict(data)
        if isinstance(kwargs.get("flows"), list):
            kwargs["flows"] = [dict(f) if isinstance(f, Mapping) else f for f in kwargs["flows"]]
        return cls(**kwargs)

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


def workload_dict(workload: Any) -> dict[str, Any]:
    """The workload as a new dict with a ``kind``: None or ``"bulk"`` give
    ``{"kind": "bulk"}``, a mapping is copied, a workload object of the two kinds an
    experiment runs is translated (``Bulk(direction="down")``: the server sends, over
    ``path.down``; ``Messages(over="stream")``; the run's duration, not the object's,
    says how long); anything else raises ConfigError."""
    if workload in (None, "bulk"):
        return {"kind": "bulk"}
    if isinstance(workload, Mapping):
        return dict(workload)
    if isinstance(workload, Bulk):
        if workload.direction != "down":
            raise ConfigError(f"workload={workload!r}: an experiment runs a download (the "
                              "server sends, over path.down); use Bulk(..., direction='down')")
        size = workload.size_bytes
        return {"kind": "bulk"} if size is None else {"kind": "bulk", "size_bytes": size}
    if isinstance(workload, Messages) and workload.over == "stream":
        return {"kind": "messages", "rate_hz": workload.rate_hz,
                "size_bytes": workload.size_bytes}
    what = ("'bulk', a dict like {'kind': 'messages', 'rate_hz': 100, 'size_bytes': 1000}, "
            "Bulk(direction='down') or Messages(over='stream')")
    if isinstance(workload, Workload):
        raise ConfigError(f"workload={workload!r}: an experiment runs {what}; run other "
                          "workloads with wtlab.net.emulate(path, cc, workload) or live")
    raise ConfigError(f"workload={workload!r}: use {what}")


class Stepper:
    """A run in progress. Everything it does lands in ``recorder``.

    ``step()`` advances to the next trace event and returns it as a dict (None when
    nothing is left); ``step(kinds={"packet_acked", "packet_lost"})`` skips to the next
    event of those kinds. ``advance(dt_s)`` and ``run(until_s)`` move the clock.
    ``change_path(rate_bps=..)`` changes the path now (a ``path_changed`` row; the
    experiment's schedule grows by that step). ``controllers[i]`` is flow i's
    controller object: its state is readable between steps.
    """

    def __init__(self, experiment: Experiment) -> None:
        from wtlab.lab.engines import EmulateEngine, ModelEngine

        self.experiment = experiment
        self.recorder = Recorder(t0=0.0, meta={**experiment.describe(),
                                               "labels": experiment.labels})
        engine_cls = ModelEngine if experiment.engine == "model" else EmulateEngine
        self.engine = engine_cls(experiment, self.recorder)
        self.controllers = self.engine.controllers
        self._cursor = 0
        self._rows: deque[dict] = deque()

    @property
    def now(self) -> float:
        """The run's clock: seconds of virtual time."""
        return self.engine.now

    @property
    def path(self):
        """The run's live :class:`wtlab.net.Path` (its current state, after any change)."""
        return self.engine.path

    def _pull(self) -> None:
        n = len(self.recorder)
        if n > self._cursor:
            self._rows.extend(row_dicts(self.recorder.to_pandas(self._cursor, n)))
            self._cursor = n

    def step(self, kinds: Iterable[str] | str | None = None, *,
             max_time_s: float | None = None) -> dict | None:
        """The next trace event as a dict (schema columns), restricted to ``kinds`` (one
        kind or several) if given; None when nothing is left or the next event comes after
        ``max_time_s``. Skipped events are still recorded."""
        engine_step = getattr(self.engine, "step", None)
        if engine_step is not None:
            return engine_step(kinds, max_time_s)
        wanted = None if kinds is None else {kinds} if isinstance(kinds, str) else set(kinds)
        limit = math.inf if max_time_s is None else max_time_s
        while True:
            while self._rows:
                row = self._rows.popleft()
                if wanted is None or row["kind"] in wanted:
                    return row
            t_next = self.engine.next_event_time()
            if t_next is None or t_next > limit:
                return None
            before = len(self.recorder)
            self.engine.run(t_next)
            if len(self.recorder) > before:
                self._pull()

    def skip_recorded(self) -> None:
        """Treat every row recorded so far as returned: the next :meth:`step` returns an
        event recorded after this call (for a view that reads the recorder itself)."""
        skip = getattr(self.engine, "skip_recorded", None)
        if skip is not None:
            skip()
        self._cursor = len(self.recorder)
        self._rows.clear()

    def advance(self, dt_s: float) -> int:
        """Run ``dt_s`` more seconds; returns how many events were recorded."""
        before = len(self.recorder)
        self.engine.run(self.now + dt_s)
        self._cursor = len(self.recorder)
        self._rows.clear()
        return len(self.recorder) - before

    def run(self, until_s: float) -> None:
        """Run to ``until_s`` (seconds of virtual time since the start, not a duration);
        the next :meth:`step` returns an event after it."""
        self.engine.run(until_s)
        self._cursor = len(self.recorder)
        self._rows.clear()

    def change_path(self, *, source: str = "stepper", **changes: Any) -> dict:
        """Change the path now (``rate_bps``, ``rtt_s``, ``loss``, ``buffer_bdp``, ``buffer``,
        ``trace``, ``outage_s``: :class:`wtlab.net.schedule.PathChange`); returns the
        ``path_changed`` row's ``extra``. The step joins ``experiment.schedule``, so a
        re-run of ``experiment`` (same seed) replays it."""
        change = PathChange(at_s=self.now, source=source, **changes)
        extra = self.engine.change_path(self.now, change)
        self.experiment = self.experiment.replace(
            schedule=PathSchedule.of(self.experiment.schedule).with_change(change))
        return extra

    def trace(self) -> pd.DataFrame:
        """Every event so far (the recorder's DataFrame)."""
        return self.recorder.to_pandas()

    def queue(self) -> pd.DataFrame:
        """The bottleneck queue (data direction) so far: ``time_s``, ``queue_bytes`` (see
        :meth:`wtlab.net.link.Link.queue_log`)."""
        return _queue_frame(self.path)

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
        """The run so far as a :class:`Result` whose ``duration_s`` is :attr:`now`."""
        return Result(self.experiment, self.recorder, duration_s=self.now, path=self.path)


def _queue_frame(path: Any) -> pd.DataFrame:
    times, occupancy = path.down.queue_log()
    return pd.DataFrame({"time_s": np.frombuffer(times, dtype=float).copy(),
                         "queue_bytes": np.frombuffer(occupancy, dtype=float).copy()})


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

    def queue(self) -> pd.DataFrame:
        """The bottleneck queue over the run: ``time_s``, ``queue_bytes``."""
        return _queue_frame(self.path)

    @property
    def capacity_bps(self) -> float:
        """The bottleneck's capacity over the whole run."""
        return self.path.capacity_bps_between(0.0, self.duration_s)

    def _window(self, from_s: float | None, to_s: float | None) -> tuple[float, float]:
        return (0.0 if from_s is None else float(from_s),
                self.duration_s if to_s is None else float(to_s))

    def _base_rtt(self) -> Any:
        bases = self.experiment.base_rtts_s(self.path)
        values = set(bases.values())
        return next(iter(values)) if len(values) == 1 else bases

    def metrics(self, from_s: float | None = None, to_s: float | None = None) -> pd.DataFrame:
        """One row per flow over ``[from_s, to_s]`` (default: the whole run); the columns
        are :data:`wtlab.trace.metrics.FLOW_METRICS`."""
        lo, hi = self._window(from_s, to_s)
        return M.flow_metrics(self.trace(), from_s=lo, to_s=hi,
                              capacity_bps=self.path.capacity_bps_between(lo, hi),
                              base_rtt_s=self._base_rtt(), labels=self.experiment.labels)

    def summary(self, from_s: float | None = None, to_s: float | None = None) -> dict[str, Any]:
        """Run-level figures (:data:`wtlab.trace.metrics.RUN_METRICS`) over the window."""
        lo, hi = self._window(from_s, to_s)
        flows = self.metrics(lo, hi)
        return M.run_metrics(self.trace(), flows, from_s=lo, to_s=hi,
                             capacity_bps=self.path.capacity_bps_between(lo, hi),
                             base_rtt_s=self._base_rtt())

    def plot(self, **kwargs: Any):
        """A plotly figure: window and bytes in flight, delivery rate (every controller)
        with the capacity line, RTT, and the bottleneck queue
        (:func:`wtlab.lab.plots.trace_figure`)."""
        from wtlab.lab.plots import trace_figure

        kwargs.setdefault("queue", self.queue())
        kwargs.setdefault("capacity", self.path.capacity_steps())
        return trace_figure(self.trace(), labels=self.experiment.labels,
                            bdp_bytes=self.path.bdp_bytes, **kwargs)

    def sequence_plot(self, **kwargs: Any):
        """The time-sequence graph (:func:`wtlab.lab.plots.sequence_figure`)."""
        from wtlab.lab.plots import sequence_figure

        return sequence_figure(self.trace(), labels=self.experiment.labels, **kwargs)

    def __repr__(self) -> str:
        s = self.summary()
        return (f"<Result {self.experiment.labels} {self.duration_s:.1f}s: "
                f"goodput {s['goodput_bps'] / 1e6:.2f} Mbit/s, "
                f"p95 RTT {s['rtt_p95_s'] * 1e3:.1f} ms, loss {s['loss_rate']:.2%}>")


# Comparisons live in their own module; importable from here as before.
from wtlab.lab.comparison import Comparison, compare  # noqa: E402

__all__ = ["ENGINES", "Comparison", "Experiment", "FlowSpec", "Result", "Stepper", "compare",
           "make_path", "workload_dict"]
