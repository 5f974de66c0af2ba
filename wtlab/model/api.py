"""``wtlab.model.run``: one run of the fast flow model, and its result."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wtlab import cc as ccmod
from wtlab.errors import ConfigError
from wtlab.model.core import FlowModel
from wtlab.trace import metrics as M


@dataclass
class ModelResult:
    """What a model run gives back; answers ``trace()``, ``metrics()`` and ``summary()``
    like every wtlab result (figures from :mod:`wtlab.trace.metrics`, over the trace).

    * ``metrics(from_s=None, to_s=None)``: one row per flow (goodput, utilisation,
      time-weighted mean cwnd, RTT percentiles, loss rate, ...), default window the
      whole run (set-up time counts, as for a user timing a transfer from the start).
    * ``summary(from_s=None, to_s=None)``: run-level figures plus how the engine ran
      (``events``, ``wall_s``, ``bottleneck_packets_per_wall_s``, ``realtime_factor``,
      ``link`` drop counts by cause).
    * ``flows``: per flow, the model's protocol state at the end (not figures):
      ``cc``, ``loss_by_trigger``, ``probe_packets``, ``acks_sent``, ``acks_received``,
      ``final_cwnd_bytes``, ``final_state``, ``start_s``, ``data_start_s``, ``done_s``.
    * ``recorder``: the :class:`wtlab.trace.Recorder` with every event (``None`` if
      ``record=False``: then there is no trace and no figures, only ``engine``).
    """

    duration_s: float
    recorder: Any
    path: Any
    flows: list[dict[str, Any]]
    engine: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)
    _trace: Any = field(default=None, init=False, repr=False)

    def trace(self):
        """The run's events as a trace DataFrame (``wtlab.trace.schema``)."""
        if self.recorder is None:
            raise ConfigError("this run was made with record=False, which keeps no trace and "
                              "so no figures; rerun with record=True")
        if self._trace is None:
            self._trace = self.recorder.to_pandas()
        return self._trace

    @property
    def labels(self) -> dict[int, str]:
        """Flow id -> the label of its controller."""
        return {f["flow"]: f["cc"] for f in self.flows}

    def _window(self, from_s: float | None, to_s: float | None) -> tuple[float, float]:
        return (0.0 if from_s is None else float(from_s),
                self.duration_s if to_s is None else float(to_s))

    def metrics(self, from_s: float | None = None, to_s: float | None = None):
        """Per-flow figures over ``[from_s, to_s]`` (:func:`wtlab.trace.metrics.flow_metrics`)."""
        lo, hi = self._window(from_s, to_s)
        return M.flow_metrics(self.trace(), from_s=lo, to_s=hi,
                              capacity_bps=self.path.capacity_bps_between(lo, hi),
                              base_rtt_s=self.path.rtt_s, labels=self.labels)

    def summary(self, from_s: float | None = None, to_s: float | None = None) -> dict[str, Any]:
        """Run-level figures over the window, plus how the engine ran (``engine``)."""
        lo, hi = self._window(from_s, to_s)
        out = M.run_metrics(self.trace(), self.metrics(lo, hi), from_s=lo, to_s=hi,
                            capacity_bps=self.path.capacity_bps_between(lo, hi),
                            base_rtt_s=self.path.rtt_s)
        return {**out, **self.engine}

    @property
    def goodput_bps(self) -> float:
        """``summary()["goodput_bps"]``: the whole run's goodput, all flows."""
        return self.summary()["goodput_bps"]

    def __repr__(self) -> str:
        return (f"ModelResult({len(self.flows)} flow(s) over {self.duration_s:g} s, "
                f"{self.engine.get('events', 0)} events)")


def _as_path(path: Any, seed: int | None):
    from wtlab.net.path import Path

    if not isinstance(path, (Path, Mapping)):
        raise ConfigError(f"path must be a wtlab.net.Path or a dict of Path.symmetric "
                          f"arguments, not {type(path).__name__}")
    return Path.from_spec(path, seed=seed)


def _as_workload(workload: Any) -> dict[str, Any]:
    if workload is None or workload == "bulk":
        return {"kind": "bulk"}
    if isinstance(workload, Mapping):
        w = dict(workload)
        w.setdefault("kind", "bulk")
        return w
    raise ConfigError(f"workload={workload!r}: use 'bulk', {{'kind': 'bulk', 'size_bytes': N}}"
                      " or {'kind': 'messages', 'rate_hz': R, 'size_bytes': S}")


def run(path: Any, cc: Any = "cubic", duration_s: float = 10.0, seed: int | None = None,
        flows: int = 1, recorder: Any = None, *, record: bool = True,
        **options: Any) -> ModelResult:
    """Run ``flows`` flows over ``path`` for ``duration_s`` virtual seconds.

    ``path``: a :class:`wtlab.net.Path` (a fresh copy is used, ``path.new(seed)``, so
    the caller's object is untouched and the run repeatable) or a dict of
    ``Path.symmetric`` arguments. ``seed``: the path's randomness (``None``: the
    path's own seed). ``cc``: a controller name, class or instance, or one per flow
    in a list. ``direction="down"`` sends data server -> client (ACKs go up).
    ``workload``: ``"bulk"`` (always data to send), ``{"kind": "bulk",
    "size_bytes": N}`` (N bytes per flow), or ``{"kind": "messages", "rate_hz": R,
    "size_bytes": S}`` (one S-byte message every 1/R s, latency per message).
    ``recorder``: a Recorder to fill (``None``: a new one; ``record=False``: none).
    The other options (``max_datagram_size``, ``full_packets``, ``ack_policy``,
    ``setup_rtts``, ``start_times_s``, ``extra_rtt_s`` (per flow, added to the path's RTT
    half each way after the shared links), ``cc_kwargs``, ...) are :func:`build`'s. See
    :mod:`wtlab.model.core` for the protocol model. Same inputs, same result.
    """
    if not (isinstance(duration_s, (int, float)) and duration_s > 0 and math.isfinite(duration_s)):
        raise ConfigError(f"duration_s={duration_s!r} must be a positive number of seconds")
    built = build(path, cc, seed, flows, recorder, record=record, **options)
    built.params["duration_s"] = float(duration_s)
    t0 = time.perf_counter()
    built.model.run(float(duration_s))
    wall_s = time.perf_counter() - t0
    return _result(built.model, built.path, built.data_link, float(duration_s), wall_s,
                   built.recorder, built.params)


@dataclass
class Built:
    """A model ready to run: what :func:`build` returns."""

    model: FlowModel
    path: Any
    data_link: Any
    recorder: Any
    params: dict[str, Any]

    def sample_queue(self, until_s: float, *, from_s: float = 0.0, dt_s: float = 0.001,
                     packet_bytes: int = 1228) -> tuple[np.ndarray, np.ndarray]:
        """Run the model to ``until_s`` (virtual seconds) and sample the data-direction
        bottleneck's queue every ``dt_s`` from ``from_s``: (times_s, queue in packets of
        ``packet_bytes`` on the wire; default a full 1200-byte QUIC packet + IPv4/UDP).
        The queue is its drain time at the link's rate, as the link itself reports it."""
        link = self.data_link
        rate_bps = link.capacity_bps
        t = 0.0
        step = max(dt_s, from_s)
        times, queue = [], []
        while t < until_s - 1e-12:
            t = min(until_s, t + (step if t < from_s else dt_s))
            self.model.run(t)
            if t >= from_s:
                times.append(t)
                queue.append(link.queue_delay_s(t) * rate_bps / (8 * packet_bytes))
        return np.array(times), np.array(queue)


def build(path: Any, cc: Any = "cubic", seed: int | None = None, flows: int = 1,
          recorder: Any = None, *, record: bool = True, workload: Any = "bulk",
          direction: str = "down", max_datagram_size: int = 1200, overhead_bytes: int = 40,
          ack_size_bytes: int = 40, ip_overhead_bytes: int = 28, ack_policy: str = "aioquic",
          setup_rtts: float = 3.5, start_times_s: Sequence[float] | None = None,
          extra_rtt_s: Sequence[float] | None = None,
          record_acks: bool = True, cc_kwargs: Mapping[str, Any] | None = None,
          full_packets: bool = True) -> Built:
    """The model of :func:`run`, not yet run (``Experiment``'s stepper advances it by hand);
    the arguments are :func:`run`'s. ``max_datagram_size``: the QUIC packet size (UDP
    payload; 1200, QUIC's minimum, as aioquic; 1472 fills a 1500-byte MTU).
    ``full_packets``: with less than a datagram of window left, wait for an ack (True,
    as TCP and deployed QUIC stacks) or send a short packet to fill it (False, as
    aioquic does)."""
    from wtlab.trace import Recorder

    if not isinstance(flows, int) or isinstance(flows, bool) or flows < 1:
        raise ConfigError(f"flows={flows!r} must be a positive integer")
    if direction not in ("down", "up"):
        raise ConfigError(f"direction={direction!r}: use 'down' (server -> client) or 'up'")
    p = _as_path(path, seed)
    data_link, ack_link = (p.down, p.up) if direction == "down" else (p.up, p.down)
    wl = _as_workload(workload)
    if isinstance(cc, (list, tuple)):
        if len(cc) != flows:
            if flows == 1:
                flows = len(cc)
            else:
                raise ConfigError(f"cc lists {len(cc)} controllers for flows={flows}")
        specs = list(cc)
    else:
        if isinstance(cc, ccmod.Controller) and flows > 1:
            raise ConfigError("one controller instance cannot drive several flows; pass a "
                              "name, a class, or a list of instances")
        specs = [cc] * flows
    if record and recorder is None:
        recorder = Recorder()
    if not record:
        recorder = None
    kwargs = dict(cc_kwargs or {})
    controllers = []
    for i, spec in enumerate(specs):
        if isinstance(spec, ccmod.Controller):
            c = spec
            c.recorder = recorder
            c.flow = i
        else:
            c = ccmod.create(spec, max_datagram_size=max_datagram_size, recorder=recorder,
                             flow=i, **kwargs)
        controllers.append(c)
    names = [getattr(c, "name", type(c).__name__) for c in controllers]
    # the base RTT a handshake would measure: propagation plus one small packet each way
    small = ack_size_bytes + ip_overhead_bytes
    base_rtt_s = p.rtt_s + small * 8.0 / data_link.capacity_bps + small * 8.0 / ack_link.capacity_bps
    model = FlowModel(data_link, ack_link, controllers, base_rtt_s=base_rtt_s,
                      recorder=recorder, max_datagram_size=max_datagram_size,
                      overhead_bytes=overhead_bytes, ack_size_bytes=ack_size_bytes,
                      ip_overhead_bytes=ip_overhead_bytes,
                      ack_policy=ack_policy, setup_rtts=setup_rtts,
                      start_times_s=start_times_s, workload=wl, record_acks=record_acks,
                      full_packets=full_packets, data_direction=direction,
                      extra_rtt_s=extra_rtt_s)
    params = {"cc": names if len(names) > 1 else names[0], "flows": len(controllers), "seed": p.seed, "workload": wl,
              "direction": direction, "ack_policy": ack_policy,
              "max_datagram_size": max_datagram_size, "full_packets": full_packets,
              "setup_rtts": setup_rtts}
    if recorder is not None:
        recorder.meta.update({"engine": "model", "algorithm": params["cc"],
                              "path": p.describe(), "workload": wl, "seed": p.seed,
                              "params": {k: v for k, v in params.items() if k != "workload"}})
    return Built(model=model, path=p, data_link=data_link, recorder=recorder, params=params)


def _result(model: FlowModel, path: Any, data_link: Any, duration_s: float, wall_s: float,
            recorder: Any, params: dict[str, Any]) -> ModelResult:
    flows = []
    for fl in model.flows:
        cc = fl.cc
        flows.append({
            "flow": fl.index,
            "cc": getattr(cc, "name", type(cc).__name__),
            "loss_by_trigger": dict(fl.loss_by_trigger),
            "probe_packets": fl.probe_packets,
            "acks_sent": fl.acks_sent,
            "acks_received": fl.acks_received,
            "final_cwnd_bytes": cc.cwnd,
            "final_state": cc.state,
            "start_s": fl.start_s,
            "data_start_s": fl.data_start_s,
            "done_s": fl.done_s,
        })
    stats = data_link.stats
    engine = {
        "engine": "model",
        "duration_s": duration_s,
        "link": stats.as_dict(),
        "events": len(recorder) if recorder is not None else 0,
        "wall_s": wall_s,
        "bottleneck_packets_per_wall_s": stats.offered / wall_s if wall_s > 0 else math.inf,
        "realtime_factor": duration_s / wall_s if wall_s > 0 else math.inf,
    }
    return ModelResult(duration_s=duration_s, recorder=recorder, path=path, flows=flows,
                       engine=engine, params=params)
