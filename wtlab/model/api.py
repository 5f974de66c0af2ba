"""``wtlab.model.run``: one run of the fast flow model, and its result."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from wtlab import cc as ccmod
from wtlab.errors import ConfigError
from wtlab.model.core import FlowModel


@dataclass
class ModelResult:
    """What a model run gives back.

    * ``goodput_bps``: application payload acknowledged by ``duration_s``, all flows,
      x 8 / ``duration_s`` (the connection set-up time counts, as for a user timing a
      transfer from the start of the session).
    * ``flows``: one dict per flow (``goodput_bps``, ``packets_sent``, ``packets_lost``,
      ``mean_cwnd_bytes`` (time-weighted), ``mean_rtt_s``, ...).
    * ``metrics``: run-level numbers (aggregate goodput, utilisation, Jain's index,
      link drops by cause, events recorded, wall time, packets per wall-second).
    * ``recorder``: the :class:`wtlab.trace.Recorder` with every event (``None`` if
      ``record=False``); ``trace()`` is its DataFrame.
    """

    goodput_bps: float
    duration_s: float
    flows: list[dict[str, Any]]
    metrics: dict[str, Any]
    recorder: Any
    params: dict[str, Any] = field(default_factory=dict)

    def trace(self):
        """The run's events as a trace DataFrame (``wtlab.trace.schema``)."""
        if self.recorder is None:
            raise ConfigError("this run was made with record=False; rerun with record=True "
                              "to get a trace")
        return self.recorder.to_pandas()

    def __repr__(self) -> str:
        return (f"ModelResult(goodput {self.goodput_bps / 1e6:.3f} Mbit/s over "
                f"{self.duration_s:g} s, {len(self.flows)} flow(s), "
                f"{self.metrics.get('events', 0)} events)")


def _as_path(path: Any, seed: int | None):
    from wtlab.net.path import Path

    if isinstance(path, Path):
        return path.new(seed=seed)
    if isinstance(path, Mapping):
        kwargs = dict(path)
        if seed is not None:
            kwargs["seed"] = seed
        return Path.symmetric(**kwargs)
    raise ConfigError(f"path must be a wtlab.net.Path or a dict of Path.symmetric arguments, "
                      f"not {type(path).__name__}")


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
        workload: Any = "bulk", direction: str = "down", max_datagram_size: int = 1200,
        overhead_bytes: int = 40, ack_size_bytes: int = 40, ip_overhead_bytes: int = 28,
        ack_policy: str = "aioquic",
        setup_rtts: float = 3.5, start_times_s: Sequence[float] | None = None,
        record_acks: bool = True, cc_kwargs: Mapping[str, Any] | None = None) -> ModelResult:
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
    See :mod:`wtlab.model.core` for the protocol model. Same inputs, same result.
    """
    from wtlab.trace import Recorder

    if not (isinstance(duration_s, (int, float)) and duration_s > 0 and math.isfinite(duration_s)):
        raise ConfigError(f"duration_s={duration_s!r} must be a positive number of seconds")
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
                      start_times_s=start_times_s, workload=wl, record_acks=record_acks)
    params = {"cc": names if len(names) > 1 else names[0], "duration_s": float(duration_s),
              "flows": len(controllers), "seed": p.seed, "workload": wl,
              "direction": direction, "ack_policy": ack_policy,
              "max_datagram_size": max_datagram_size, "setup_rtts": setup_rtts}
    if recorder is not None:
        recorder.meta.update({"engine": "model", "algorithm": params["cc"],
                              "path": p.describe(), "workload": wl, "seed": p.seed,
                              "params": {k: v for k, v in params.items() if k != "workload"}})
    t0 = time.perf_counter()
    model.run(float(duration_s))
    wall_s = time.perf_counter() - t0
    return _result(model, p, data_link, float(duration_s), wall_s, recorder, params)


def _result(model: FlowModel, path: Any, data_link: Any, duration_s: float, wall_s: float,
            recorder: Any, params: dict[str, Any]) -> ModelResult:
    from wtlab.lab.analytic import jain_fairness

    flows = []
    total_payload = 0
    packets = 0
    for fl in model.flows:
        cc = fl.cc
        active = duration_s - fl.data_start_s
        total_payload += fl.acked_payload_bytes
        packets += fl.next_pn
        lat = sorted(fl.latencies_s)
        row = {
            "flow": fl.index,
            "cc": getattr(cc, "name", type(cc).__name__),
            "goodput_bps": fl.acked_payload_bytes * 8.0 / duration_s,
            "acked_payload_bytes": fl.acked_payload_bytes,
            "packets_sent": fl.next_pn,
            "packets_acked": fl.packets_acked,
            "packets_lost": fl.packets_lost,
            "loss_rate": fl.packets_lost / fl.next_pn if fl.next_pn else 0.0,
            "loss_by_trigger": dict(fl.loss_by_trigger),
            "pto_count": fl.pto_count_total,
            "probe_packets": fl.probe_packets,
            "acks_sent": fl.acks_sent,
            "acks_received": fl.acks_received,
            "rtt_samples": fl.rtt_samples,
            "mean_rtt_s": fl.rtt_sum_s / fl.rtt_samples if fl.rtt_samples else math.nan,
            "min_rtt_s": fl.rtt.min_rtt if fl.rtt.has_sample else math.nan,
            "srtt_s": fl.rtt.smoothed_rtt if fl.rtt.has_sample else math.nan,
            "mean_cwnd_bytes": (fl.cwnd_time_integral / (duration_s - fl.data_start_s)
                                if active > 0 else math.nan),
            "final_cwnd_bytes": cc.cwnd,
            "final_state": cc.state,
            "start_s": fl.start_s,
            "data_start_s": fl.data_start_s,
            "done_s": fl.done_s,
        }
        if fl.msg_chunks is not None:
            row.update(_latency_stats(lat, fl.messages))
        flows.append(row)
    stats = data_link.stats
    capacity = data_link.capacity_bps
    goodput = total_payload * 8.0 / duration_s
    metrics = {
        "engine": "model",
        "duration_s": duration_s,
        "goodput_bps": goodput,
        # QUIC datagram bytes acknowledged per second (the emulator's trace-based measure)
        "acked_bps": sum(f.packets_acked for f in model.flows) * model.max_datagram_size
        * 8.0 / duration_s,
        "capacity_bps": capacity,
        "utilisation": goodput / capacity if capacity else math.nan,
        "link_utilisation": (stats.delivered_bytes * 8.0 / (capacity * duration_s)
                             if capacity else math.nan),
        "jain_index": jain_fairness([f["goodput_bps"] for f in flows]),
        "packets_sent": packets,
        "packets_lost": sum(f["packets_lost"] for f in flows),
        "link": stats.as_dict(),
        "events": len(recorder) if recorder is not None else 0,
        "wall_s": wall_s,
        "bottleneck_packets_per_wall_s": stats.offered / wall_s if wall_s > 0 else math.inf,
        "realtime_factor": duration_s / wall_s if wall_s > 0 else math.inf,
        "path": path.describe(),
    }
    return ModelResult(goodput_bps=goodput, duration_s=duration_s, flows=flows,
                       metrics=metrics, recorder=recorder, params=params)


def _latency_stats(lat: list[float], messages: int) -> dict[str, Any]:
    def q(x: float) -> float:
        if not lat:
            return math.nan
        return lat[min(len(lat) - 1, int(x * (len(lat) - 1) + 0.5))]

    return {"messages_sent": messages, "messages_delivered": len(lat),
            "latency_p50_s": q(0.5), "latency_p95_s": q(0.95), "latency_p99_s": q(0.99),
            "latency_mean_s": sum(lat) / len(lat) if lat else math.nan}
