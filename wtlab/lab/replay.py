"""Replay a recorded session with another controller, in virtual time.

    >>> from wtlab.lab.replay import replay
    >>> result = replay(recorder, cc="bbr")            # doctest: +SKIP
    >>> result.compare()                               # recorded vs replayed metrics

Input: a recorded session: a :class:`~wtlab.trace.Recorder` (wtlab's own recording of a
live or emulated session), or a DataFrame in the trace schema (e.g. an imported qlog) plus
its metadata. Replay reads the rows of the flow whose end *sent the data*: its
``packet_sent``, ``packet_acked``, ``packet_lost`` and ``rtt_sample`` rows (what wtlab
records at the end whose controller it runs; from an imported qlog, read it with
``read_qlog(path, derive_acks=True)``: RTTs then come from its ``metrics_updated`` rows). Record the sending end: the client for
uploads and messages (``wtlab.connect(recorder=...)``), the server for downloads
(``wtlab.serve(recorder=...)``).

The model (what is derived, and how):

* **Delay.** The propagation RTT is the smallest RTT sample. One end cannot see how it
  splits between the directions; replay gives each direction half.
* **Capacity.** ``capacity="rate"`` (default): a constant bottleneck rate, the largest
  delivery rate seen over any window of ``max(4 x min RTT, 200 ms)`` (bytes acknowledged,
  plus 28 bytes of IP/UDP header each, per second). ``capacity="schedule"``: the recorded
  delivery schedule itself becomes the link's delivery opportunities (Mahimahi style,
  1500-byte opportunities at the times the recorded packets reached the receiver,
  estimated as ack time minus half the minimum RTT), so the path's capacity varies exactly
  as the recording shows; past the recording's end the schedule repeats, as Mahimahi
  traces do.
* **Buffer.** The largest queue seen, (largest RTT - min RTT) x rate: the buffer held
  that much, so it is at least that large (the 95th percentile, used before, sized the
  buffer below a queue the recording showed it holding); at least one BDP (rate x min
  RTT): a queue that never built up says nothing about the buffer's size, and one BDP
  is the common sizing. Override with ``buffer_bytes=``.
* **Losses.** Each recorded loss is classified: a loss of a packet sent while the queue
  was close to the largest it ever was (the RTT within ``QUEUE_FULL`` = 90 % of the way
  from its minimum to its maximum) is a buffer overflow, which the buffer model
  reproduces for the new controller by itself; every other loss found room in the
  buffer, so it was a random loss of the path (when the RTT never varied by 2 ms, every
  loss is). Losses of packets sent during the session's set-up (before its first
  full-size data packet: handshake, SETTINGS, the CONNECT request) are left out: the
  recorded sender repaired them without a congestion response (a PTO), but replayed "at
  the same time" they would hit the replay's data, often in slow start, and end it
  early. ``loss="times"`` (default): random losses are replayed where they fell, as the
  first packet to cross the link at or after each recorded loss's send time;
  ``loss="rate"``: as Bernoulli loss at the random-loss rate; ``loss="none"``.
* **The server's behaviour.** What the server did is the workload's server half:
  ``recorder.meta["workload"]`` (written by :func:`record_workload` and by the emulator)
  names a :mod:`wtlab.transport.workloads` workload and its parameters (sizes, rates, counts),
  so the replayed server receives, echoes and answers exactly as the recorded one did,
  on the same schedule; without it, replay assumes a bulk transfer of the recorded
  number of payload bytes in the recorded direction.

Limits, honestly:

* The recorded delivery schedule is a lower bound of the path's capacity wherever the
  recorded sender did not fill it (slow start, application-limited periods, a
  loss-limited controller). ``capacity="schedule"`` therefore cannot show a controller
  doing *better* than the recording at those times; ``capacity="rate"`` can, but assumes
  a constant rate.
* Loss classification is a heuristic on RTT; random loss while the queue is near its
  largest is counted as an overflow, and the replayed buffer then stands in for it.
* Replayed losses fall on the replay's own packets at the recorded times; a run
  dominated by slow start is sensitive to where they fall (the window slow start ends
  with decides the next seconds). A live recording also carries the live hosts' delays
  (a relay, server and client in one Python process add milliseconds to every RTT); the
  replay runs without them, so even the recorded controller replayed lands near the
  recording, not on it.
* Cross traffic of the recording is folded into the derived capacity and delay; it
  does not react to the new controller.
* The receiver's behaviour (its ACK policy, flow-control windows) is wtlab's, not the
  recorded peer's; server think time is not modelled (responses start when the request
  arrives).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from wtlab.errors import ConfigError
from wtlab.net.network import IP_UDP_OVERHEAD_BYTES

OPPORTUNITY_BYTES = 1500
QUEUE_FULL = 0.9  # a loss with the queue above this share of its largest: an overflow


@dataclass(frozen=True)
class LossAtTimes:
    """Loss model: lose the first packet offered at or after each time in ``times_s``.

    Deterministic (no random draws); a :mod:`wtlab.net.loss` model for ``Link(loss=...)``.
    """

    times_s: tuple[float, ...]

    def make(self, rng: Any):
        """A loss decision function for one link: drops the first packet offered at or after each
        recorded loss time.
        """
        times = sorted(self.times_s)
        state = {"i": 0}

        def lose(now: float, size_bytes: int) -> bool:
            i = state["i"]
            if i < len(times) and now >= times[i]:
                # one loss per recorded time; times already passed collapse into this one
                while i < len(times) and times[i] <= now:
                    i += 1
                state["i"] = i
                return True
            return False

        return lose

    @property
    def mean_loss(self) -> float:
        """0: the losses are given by time, not by rate."""
        return 0.0

    def describe(self) -> dict:
        """The loss model as plain data."""
        return {"model": "loss_at_times", "count": len(self.times_s)}


@dataclass
class DerivedPath:
    """The path as the recording shows it (see the module docstring)."""

    direction: str  # "down": the server sent the data; "up": the client did
    min_rtt_s: float
    p95_rtt_s: float
    capacity_bps: float
    buffer_bytes: int
    delivery_stamps_ms: tuple[int, ...]
    random_loss_times_s: tuple[float, ...]
    congestion_losses: int
    setup_losses: int
    packets_sent: int
    span_s: float
    payload_bytes: int

    @property
    def random_loss_rate(self) -> float:
        """Random losses over packets sent in the recording (0 when nothing was sent)."""
        return len(self.random_loss_times_s) / self.packets_sent if self.packets_sent else 0.0

    def describe(self) -> dict:
        """What replay derived from the recording, as plain data (RTTs, capacity, buffer, losses).
        """
        return {"direction": self.direction, "min_rtt_s": self.min_rtt_s,
                "p95_rtt_s": self.p95_rtt_s, "capacity_bps": self.capacity_bps,
                "buffer_bytes": self.buffer_bytes,
                "random_losses": len(self.random_loss_times_s),
                "random_loss_rate": self.random_loss_rate,
                "congestion_losses": self.congestion_losses,
                "setup_losses": self.setup_losses,
                "packets_sent": self.packets_sent, "span_s": self.span_s,
                "payload_bytes": self.payload_bytes}

    def to_path(self, *, capacity: str = "rate", loss: str = "times", seed: int = 0):
        """A :class:`wtlab.net.path.Path` reproducing this path."""
        from wtlab.net.link import LinkSpec
        from wtlab.net.loss import Bernoulli
        from wtlab.net.path import Path
        from wtlab.net.traces import MahimahiTrace

        if capacity not in ("rate", "schedule"):
            raise ConfigError(f"capacity={capacity!r}; use 'rate' or 'schedule'")
        if loss not in ("times", "rate", "none"):
            raise ConfigError(f"loss={loss!r}; use 'times', 'rate' or 'none'")
        one_way = self.min_rtt_s / 2
        if loss == "times" and self.random_loss_times_s:
            loss_model: Any = LossAtTimes(self.random_loss_times_s)
        elif loss == "rate" and self.random_loss_rate > 0:
            loss_model = Bernoulli(self.random_loss_rate)
        else:
            loss_model = None
        buffer = f"{self.buffer_bytes}b"
        if capacity == "schedule":
            if len(self.delivery_stamps_ms) < 2:
                raise ConfigError("the recording delivered too little to derive a schedule; "
                                  "use capacity='rate'")
            trace = MahimahiTrace(self.delivery_stamps_ms, opportunity_bytes=OPPORTUNITY_BYTES,
                                  name="replayed delivery schedule")
            data = LinkSpec(trace=trace, delay_s=one_way, loss=loss_model, buffer=buffer)
        else:
            data = LinkSpec(rate_bps=self.capacity_bps, delay_s=one_way, loss=loss_model,
                            buffer=buffer)
        # the reverse direction carries ACKs: same rate, no loss (none was observable)
        back = LinkSpec(rate_bps=self.capacity_bps, delay_s=one_way, buffer=buffer)
        if self.direction == "down":
            return Path(down=data, up=back, seed=seed)
        return Path(down=back, up=data, seed=seed)


def _pick_flow(df: pd.DataFrame, flow: int | None) -> int:
    sent = df[df["kind"] == "packet_sent"]
    if flow is not None:
        if not (sent["flow"] == flow).any():
            raise ConfigError(f"flow {flow} has no packet_sent rows in this recording; "
                              "record the end that sends the data")
        return int(flow)
    if sent.empty:
        raise ConfigError("the recording has no packet_sent rows; replay needs the trace of "
                          "the sending end (pass recorder= to the end that sends the data)")
    # the flow that sent the most bytes is the data sender
    return int(sent.groupby("flow")["bytes"].sum().idxmax())


def _data_start_s(sent: pd.DataFrame) -> float:
    """Send time of the first full-size data packet (-inf when payloads are unknown)."""
    if "payload_bytes" not in sent.columns or not sent["payload_bytes"].notna().any():
        return -math.inf
    payload = sent["payload_bytes"].to_numpy(dtype=float, na_value=np.nan)
    full = payload >= 0.5 * np.nanmax(payload)
    return float(sent["time_s"].to_numpy(dtype=float)[full][0]) if full.any() else -math.inf


def derive_path(frame: pd.DataFrame, *, flow: int | None = None, direction: str | None = None,
                overhead_bytes: int = IP_UDP_OVERHEAD_BYTES) -> DerivedPath:
    """Derive the path a recorded flow crossed (module docstring: the model)."""
    f = _pick_flow(frame, flow)
    df = frame[frame["flow"] == f]
    kind = df["kind"].astype(str)
    # RTT samples: wtlab's rtt_sample rows, or the metrics_updated rows an imported qlog
    # (aioquic's recovery:metrics_updated with latest_rtt) becomes
    rtt = df.loc[kind.isin(["rtt_sample", "metrics_updated"]),
                 ["time_s", "latest_rtt_s"]].dropna()
    acked = df.loc[kind == "packet_acked", ["time_s", "pn", "bytes"]]
    sent = df.loc[kind == "packet_sent", ["time_s", "pn", "bytes"]]
    lost = df.loc[kind == "packet_lost", ["time_s", "pn"]]
    if rtt.empty or acked.empty:
        raise ConfigError(f"flow {f} has no rtt_sample or packet_acked rows; replay needs the "
                          "sender's recovery trace (wtlab records it with recorder=...)")
    rtts = rtt["latest_rtt_s"].to_numpy(dtype=float)
    min_rtt = float(rtts.min())
    p95 = float(np.percentile(rtts, 95))
    max_rtt = float(rtts.max())
    # delivery times at the receiver: ack time minus the return half of the base RTT
    t_deliv = acked["time_s"].to_numpy(dtype=float) - min_rtt / 2
    wire = acked["bytes"].to_numpy(dtype=np.int64) + overhead_bytes
    order = np.argsort(t_deliv, kind="stable")
    t_deliv, wire = t_deliv[order], wire[order]
    # capacity: the largest delivery rate over any window of W seconds
    win = max(4 * min_rtt, 0.2)  # long enough that late, bunched acks barely matter
    cum = np.concatenate([[0], np.cumsum(wire)])
    j = np.searchsorted(t_deliv, t_deliv + win, side="right")
    bytes_in = cum[j] - cum[np.arange(len(t_deliv))]
    capacity = float(bytes_in.max() * 8 / win)
    # the delivery schedule: one opportunity per 1500 bytes delivered
    n_opp = int(cum[-1] // OPPORTUNITY_BYTES)
    crossing = np.searchsorted(cum, (np.arange(1, n_opp + 1)) * OPPORTUNITY_BYTES, side="left")
    stamps_s = t_deliv[np.clip(crossing - 1, 0, len(t_deliv) - 1)]
    stamps = tuple(int(max(1, math.ceil(t * 1000))) for t in stamps_s)
    # losses: random (no queue when sent) or congestion (the buffer overflowed)
    send_time = dict(zip(sent["pn"].to_numpy(), sent["time_s"].to_numpy(dtype=float),
                         strict=False))
    rt_t = rtt["time_s"].to_numpy(dtype=float)
    threshold = min_rtt + QUEUE_FULL * (max_rtt - min_rtt)
    data_start = _data_start_s(df.loc[kind == "packet_sent"])
    random_times = []
    congestion = 0
    setup = 0
    for pn in lost["pn"].dropna().to_numpy():
        ts = send_time.get(pn)
        if ts is None:
            continue
        if ts < data_start:
            setup += 1  # lost during the session's set-up: see the module docstring
            continue
        k = int(np.searchsorted(rt_t, ts, side="left"))  # first RTT sample after the send
        near = rtts[min(k, len(rtts) - 1)]
        if max_rtt - min_rtt < 0.002 or near < threshold:
            random_times.append(float(ts))
        else:
            congestion += 1
    # buffer: the largest standing queue seen; where none built up the recording cannot
    # tell, and one BDP (a common sizing) stands in
    queue_s = max(max_rtt - min_rtt, 0.0)
    buffer_bytes = int(max(queue_s, min_rtt) * capacity / 8)
    buffer_bytes = max(buffer_bytes, 4 * OPPORTUNITY_BYTES)
    if direction is None:
        direction = "up"  # caller knows better; replay() passes the workload's
    return DerivedPath(
        direction=direction, min_rtt_s=min_rtt, p95_rtt_s=p95, capacity_bps=capacity,
        buffer_bytes=buffer_bytes, delivery_stamps_ms=stamps,
        random_loss_times_s=tuple(sorted(random_times)), congestion_losses=congestion,
        setup_losses=setup,
        packets_sent=len(sent), span_s=float(df["time_s"].max() - df["time_s"].min()),
        payload_bytes=int(acked["bytes"].sum()))


def derive_workload(frame: pd.DataFrame, meta: dict | None, *, flow: int | None = None,
                    payload_bytes: int | None = None):
    """The workload the recorded session ran (from ``meta["workload"]``), else a bulk
    transfer of the recorded payload."""
    from wtlab.transport import workloads as wl

    spec = (meta or {}).get("workload")
    if isinstance(spec, dict) and "workload" in spec:
        return wl.create(dict(spec))
    if isinstance(spec, list) and flow is not None and flow < len(spec):
        return wl.create(dict(spec[flow]))
    if not payload_bytes:
        raise ConfigError("the recording names no workload (meta['workload']) and delivered "
                          "no payload; record with wtlab.lab.replay.record_workload")
    return wl.Bulk(size_bytes=int(payload_bytes), direction="up")


def record_workload(recorder: Any, workload: Any) -> None:
    """Note in ``recorder.meta`` which workload a live session runs, so it can be replayed."""
    recorder.meta["workload"] = workload.describe()


@dataclass
class ReplayResult:
    """A replay: the derived path and workload, the recorded and the replayed run."""

    derived: DerivedPath
    workload: Any
    cc: Any
    recorded: pd.DataFrame
    recorded_flow: int
    emulation: Any
    options: dict = field(default_factory=dict)

    def trace(self) -> pd.DataFrame:
        """The replayed run's trace (the schema of :mod:`wtlab.trace.schema`)."""
        return self.emulation.trace()

    def compare(self) -> pd.DataFrame:
        """Recorded vs replayed, one row each: goodput, RTT, queueing delay, losses and
        mean cwnd, as :mod:`wtlab.trace.metrics` defines them (each over its own run)."""
        from wtlab.trace.metrics import flow_metrics

        rec = self.recorded[self.recorded["flow"] == self.recorded_flow]
        t0, t1 = float(rec["time_s"].min()), float(rec["time_s"].max())
        base = self.derived.min_rtt_s
        a = flow_metrics(rec, from_s=t0, to_s=t1, base_rtt_s=base).iloc[0]
        rep = self.emulation.trace()
        b = flow_metrics(rep, from_s=0.0, to_s=float(rep["time_s"].max()),
                         base_rtt_s=base).iloc[0]
        cols = ["goodput_bps", "rtt_mean_s", "queueing_delay_mean_s", "packets_sent",
                "packets_lost", "loss_rate", "mean_cwnd_bytes"]
        out = pd.DataFrame([a[cols], b[cols]], index=["recorded", "replayed"])
        out.insert(0, "cc", [self.options.get("recorded_cc"), str(self.cc)])
        return out

    def metrics(self, from_s: float | None = None, to_s: float | None = None) -> pd.DataFrame:
        """The replayed run's per-flow figures (:meth:`wtlab.net.emulate.EmulationResult.metrics`).
        """
        return self.emulation.metrics(from_s, to_s)

    def summary(self, from_s: float | None = None, to_s: float | None = None) -> dict:
        """The replayed run's run-level figures."""
        return self.emulation.summary(from_s, to_s)


def replay(recording: Any, cc: Any = "bbr", *, meta: dict | None = None,
           flow: int | None = None, capacity: str = "rate", loss: str = "times",
           capacity_bps: float | None = None, buffer_bytes: int | None = None,
           until_s: float | None = None, seed: int = 0) -> ReplayResult:
    """Run the recorded session again over the derived path, against the recorded
    server behaviour, with controller ``cc`` at the sending end, in virtual time.

    ``recording``: a Recorder or a trace DataFrame (then pass ``meta``).
    ``capacity_bps`` / ``buffer_bytes`` override the derived values (e.g. when the
    recorded sender never filled the path, so its capacity is unknown). ``until_s``
    bounds the replay (default: until the workload ends, at most 10x the recording's span
    plus 30 s). Deterministic: the derived path has no randomness unless ``loss="rate"``,
    which uses ``seed``.
    """
    from wtlab.net.emulate import emulate

    if hasattr(recording, "to_pandas"):
        frame = recording.to_pandas()
        meta = {**getattr(recording, "meta", {}), **(meta or {})}
    elif isinstance(recording, pd.DataFrame):
        frame = recording
        meta = dict(meta or {})
    else:
        raise ConfigError("replay() needs a wtlab Recorder or a trace DataFrame, got "
                          f"{type(recording).__name__}")
    f = _pick_flow(frame, flow)
    probe = derive_path(frame, flow=f)
    work = derive_workload(frame, meta, flow=f, payload_bytes=probe.payload_bytes)
    direction = "up" if work.sender == "client" else "down"
    derived = derive_path(frame, flow=f, direction=direction)
    if capacity_bps is not None:
        if not capacity_bps > 0:
            raise ConfigError(f"capacity_bps={capacity_bps!r} must be > 0")
        derived.capacity_bps = float(capacity_bps)
    if buffer_bytes is not None:
        if not buffer_bytes > 0:
            raise ConfigError(f"buffer_bytes={buffer_bytes!r} must be > 0")
        derived.buffer_bytes = int(buffer_bytes)
    path = derived.to_path(capacity=capacity, loss=loss, seed=seed)
    limit = until_s if until_s is not None else 10 * derived.span_s + 30.0
    em = emulate(path, cc=cc, workload=work, until_s=limit,
                 meta={"replay_of": meta.get("run_id"), "replay": derived.describe()})
    recorded_cc = meta.get("cc") or meta.get("algorithm")
    return ReplayResult(derived=derived, workload=work, cc=cc, recorded=frame,
                        recorded_flow=f, emulation=em,
                        options={"capacity": capacity, "loss": loss, "seed": seed,
                                 "recorded_cc": recorded_cc})
