"""The fast flow model's event loop: senders, receivers and links on one virtual clock.

Packet level and event driven (one ``heapq`` of ``(time, seq, kind, flow, arg)``):
the same :mod:`wtlab.cc` controller objects the live and emulated stacks use,
the same :class:`wtlab.cc.RttStats`, the same path links (``Link.transmit(now,
size_bytes) -> arrival times``), the same trace schema. What it leaves out is
what makes full-stack emulation slow: encryption, framing, TLS, HTTP/3. What a
user may rely on:

* **Loss detection and recovery** follow RFC 9002 as aioquic implements them:
  packet threshold 3, time threshold 9/8 x max(latest_rtt, srtt), PTO =
  srtt + max(4 rttvar, 1 ms) + max_ack_delay with exponential backoff; on PTO
  the oldest outstanding packet's data is resent in one probe that may exceed
  cwnd (aioquic declares that packet lost without a congestion event, so do
  we); persistent congestion (a contiguous run of lost packets spanning
  > 3 x PTO) collapses the window, the PTO being the smaller of the current one
  and the one in force when the run's first packet was sent (as wtlab's aioquic
  adapter does: RTT samples of packets a queue held across an outage must not
  stretch the duration; see :mod:`wtlab.cc.aioquic`).
* **ACKs**: the receiver acknowledges cumulatively with implied ranges (an ACK
  carries everything received so far, so a lost ACK is repaired by the next
  one). ``ack_policy="aioquic"`` (default, what the emulator's aioquic peer
  does): one ACK 1 ms after the first unacknowledged ack-eliciting packet;
  ``"rfc9000"``: every 2nd ack-eliciting packet, at once on a gap, else after
  ``max_ack_delay_s`` (25 ms); ``"every"``: an ACK for each packet at once (the
  per-packet feedback fluid analyses such as DCTCP's assume; no QUIC stack does it). ACK frames report their ack delay; RTT samples
  follow RFC 9002 section 5.
* **Pacing**: a token bucket like aioquic's ``QuicPacketPacer`` at the
  controller's ``pacing_rate_bps`` when it sets one, else at cwnd/srtt (inactive
  until the first RTT sample, as in aioquic). Packets are full-size
  (``max_datagram_size``) datagrams carrying ``max_datagram_size -
  overhead_bytes`` of payload; a short tail of data goes in a short packet. With
  less than a datagram of room left in cwnd, ``full_packets=True`` (default, as
  wtlab's aioquic adapter) waits for an ack while something is in flight;
  ``full_packets=False`` fills the window as aioquic itself does, with a smaller
  packet (at least ``overhead_bytes`` + 1). ACK-only packets are ``ack_size_bytes`` (40, what
  aioquic's ACK-only packets measure); on the links each datagram also carries
  ``ip_overhead_bytes`` (28: IPv4 + UDP), as in the emulator.
* **Connection setup**: each flow spends ``setup_rtts`` path RTTs before its
  first data packet (default 3.5: what a wtlab WebTransport download takes in
  the emulator, QUIC handshake + HTTP/3 extended CONNECT + the request; measured
  3.5-3.7 RTT at 10-200 ms) and starts with the RTT sample the handshake would
  have given (the path's base RTT), so its first flight is paced and its PTO
  realistic, as after a real QUIC handshake.
* **Determinism**: no wall clock, no global randomness; every random draw is
  the path links' (seeded). Same inputs, same trace, bit for bit, also when
  ``run(until)`` is called in slices.
* **Trace rows** (flow = the flow's index): from the controller, as everywhere,
  ``packet_sent``, ``packet_acked``, ``packet_lost`` (``extra``: the trigger,
  ``packet_threshold`` / ``time_threshold`` / ``pto``, as wtlab's aioquic adapter
  writes it), ``cwnd_changed``, ``state_changed``, ``pacing_changed``,
  ``persistent_congestion``; from the model, ``rtt_sample``, one ``ack_received``
  per ACK frame that acknowledged something new, after the frame was handled (pn =
  largest acknowledged, bytes / payload_bytes = what it newly acknowledged; no
  ranges in ``extra``, to stay cheap), ``pto_expired`` (``extra``: ``pto_count``),
  ``app_limited``, and for the message workload ``message_sent`` /
  ``message_delivered`` (pn = message id). Rows follow the trace's row contract
  (:mod:`wtlab.trace.schema`), as the emulator's do.

**ECN** (RFC 9000 13.4, RFC 9002 7.1): a flow whose controller marks
(``ecn_codepoint``: ECT(0), or ECT(1) for L4S) sends its packets with that codepoint
while :class:`wtlab.cc.ecn.EcnValidator` allows (testing, capable); the data link
may mark them CE (an ``ecn_marked`` row, pn = the packet); the receiver counts
ECT(0)/ECT(1)/CE and every ACK carries the counts (as ACK_ECN); a CE-marked packet
is acknowledged at once (RFC 9000 13.2.1). The sender validates each ACK's counts
and hands the feedback to the controller (``on_ecn_feedback``: an ``ecn_counts``
row) after the ACK's losses, before sending again, as wtlab's aioquic seam does.
ACK-only packets are not ECN-capable here. ECN runs, and runs over a DualPI2 link
(provisional arrival times, confirmed with ``link.confirm`` when they come), take
the per-packet receive path (no lazy receive: the same trace, about 2x slower).

Differences from the emulator, on purpose: RTT samples go through
:class:`wtlab.cc.RttStats` (RFC 9002) where aioquic keeps its own estimator
(rttvar from ``|min_rtt - latest|``); there is no flow control, stream framing or
ACK-of-ACK traffic, and a message is cut into datagram-sized chunks that each
wait for a whole chunk of window. Those matter little to a bulk flow's
congestion behaviour (``wtlab.model.validate`` measures the agreement) and are
where the emulator is the reference.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_right
from collections import deque
from collections.abc import Sequence
from itertools import repeat
from operator import attrgetter
from typing import Any

from wtlab.cc.ecn import CE, ECT0, ECT1, EcnValidator
from wtlab.cc.recovery import persistent_congestion
from wtlab.cc.rtt import K_GRANULARITY_S, RttStats
from wtlab.errors import ConfigError
from wtlab.trace import schema
from wtlab.trace.schema import NAN, NO_BYTES_U32, NO_STREAM

K_PACKET_THRESHOLD = 3
K_TIME_THRESHOLD = 9 / 8
K_MICRO_SECOND = 1e-6
AIOQUIC_ACK_DELAY_S = K_GRANULARITY_S  # aioquic acks 1 ms after the first unacked packet
# A packet that reaches the receiver at the instant its ACK timer fires waits for the next
# ACK, as in the emulator (aioquic's timer, armed first, runs first). Arrivals within
# TIE_S of the timer count as at its instant (float sums decide the last bit otherwise).
TIE_S = 1e-9

# event kinds (the dispatcher tests the most frequent first: ACK, ACK timer, send)
_EV_DATA = 0  # a data packet reaches its receiver (only off the lazy-receive path)
_EV_ACK = 1  # an ACK reaches the sender
_EV_ACK_TIMER = 2  # the receiver's delayed-ACK timer
_EV_SEND = 3  # the pacer allows the next packet
_EV_LOSS_TIMER = 4  # loss-time or PTO timer
_EV_START = 5  # a flow's first data packet may go
_EV_MESSAGE = 6  # the application hands a message to the sender
_EV_DATA_ECN = 7  # a data packet with its ECN codepoint reaches the receiver (ECN runs)
_EV_CONFIRM = 8  # a provisional arrival (DualPI2 link): confirm it, then dispatch

_K_SENT = schema.K_PACKET_SENT
_K_RTT = schema.K_RTT_SAMPLE
_K_ACK_RECEIVED = schema.K_ACK_RECEIVED
_K_PTO = schema.K_PTO_EXPIRED
_K_APP_LIMITED = schema.K_APP_LIMITED
_K_MSG_SENT = schema.K_MESSAGE_SENT
_K_MSG_DELIVERED = schema.K_MESSAGE_DELIVERED
_K_ECN_MARKED = schema.K_ECN_MARKED
_U32_MAX = NO_BYTES_U32 - 1


class SentPacket:
    """A packet in flight, as controllers see it (aioquic's attribute names)."""

    __slots__ = ("packet_number", "sent_bytes", "sent_time", "payload_bytes", "chunk", "pto_s",
                 "ecn")

    def __init__(self, packet_number: int, sent_bytes: int, sent_time: float,
                 payload_bytes: int, chunk: int, pto_s: float = math.inf, ecn: int = 0) -> None:
        self.packet_number = packet_number
        self.sent_bytes = sent_bytes
        self.sent_time = sent_time
        self.payload_bytes = payload_bytes
        self.chunk = chunk  # message chunk id (-1: bulk data)
        self.pto_s = pto_s  # the persistent-congestion PTO in force when it was sent
        self.ecn = ecn  # ECN codepoint it was sent with

    def __repr__(self) -> str:
        return (f"SentPacket(pn={self.packet_number}, bytes={self.sent_bytes}, "
                f"t={self.sent_time:.6f})")


class Flow:
    """One sender/receiver pair: a controller, its RTT estimate and its loss state.

    Counters a user may read after a run: ``next_pn`` (packets sent), ``packets_acked``,
    ``packets_lost`` (declared lost with a congestion signal), ``pto_count_total``,
    ``probe_packets``, ``acked_payload_bytes`` (goodput bytes), ``acks_sent``,
    ``acks_received``, ``rtt_samples``, ``rtt_sum_s``, ``start_s``, ``data_start_s``,
    ``loss_by_trigger`` (``packet``/``time``/``pto`` counts).
    """

    __slots__ = (
        "index", "cc", "rtt", "sent", "next_pn", "largest_acked", "loss_time", "pto_count",
        "last_ae_sent", "timer_at", "timer_gen", "send_at", "send_gen",
        "pacing_packet_time", "bucket_time", "bucket_max", "eval_time", "rate_paced",
        "recv", "recv_base", "recv_cursor", "largest_received", "largest_received_time",
        "ack_at", "ack_gen", "unacked_ae", "recv_ordered",
        "start_s", "data_start_s", "stop_s", "budget_bytes", "retx_bytes", "queued_bytes",
        "packets_acked", "packets_lost", "pto_count_total", "probe_packets",
        "acked_payload_bytes", "acks_sent", "acks_received", "rtt_samples", "rtt_sum_s",
        "loss_by_trigger", "app_limited", "done_s", "probe_pending",
        "msg_chunks", "msg_chunk_left", "msg_sent_time", "msg_sizes", "msg_delivered",
        "chunk_got", "msg_queue", "chunk_bytes", "latencies_s", "messages",
        "cwnd_time_integral", "cwnd_last_t", "cwnd_last", "pn_chunk",
        "rx_t", "rx_pn", "rx_head", "rx_last", "extra_delay_s", "base_rtt_s",
        "validator", "rx_ecn", "ecn_testing_end",
    )

    def __init__(self, index: int, cc: Any, rtt: RttStats, start_s: float) -> None:
        self.index = index
        self.cc = cc
        self.rtt = rtt
        self.sent: dict[int, SentPacket] = {}
        self.next_pn = 0
        self.largest_acked = -1
        self.loss_time: float | None = None
        self.pto_count = 0
        self.last_ae_sent = 0.0
        self.timer_at: float | None = None
        self.timer_gen = 0
        self.send_at: float | None = None
        self.send_gen = 0
        self.pacing_packet_time: float | None = None
        self.rate_paced = False  # the controller sets pacing_rate_bps (BBR)
        self.bucket_time = 0.0
        self.bucket_max = 0.0
        self.eval_time = 0.0
        # receiver: packet numbers in arrival order; ACKs carry an index into it
        self.recv: list[int] = []
        self.recv_base = 0  # absolute index of recv[0] (the list is trimmed as acks land)
        self.recv_cursor = 0  # absolute index up to which the sender has processed
        self.largest_received = -1
        self.largest_received_time = 0.0
        self.ack_at: float | None = None
        self.ack_gen = 0
        self.unacked_ae = 0
        self.recv_ordered = True
        # in-order arrivals not yet taken by the receiver (times, packet numbers)
        self.rx_t: list[float] = []
        self.rx_pn: list[int] = []
        self.rx_head = 0
        self.rx_last = -math.inf
        self.extra_delay_s = 0.0  # one way, each direction, after the shared links
        self.base_rtt_s = 0.0
        self.start_s = start_s
        self.data_start_s = start_s
        self.stop_s = math.inf
        self.budget_bytes = math.inf  # payload still to hand out for the first time
        self.retx_bytes = 0  # bulk payload declared lost, to resend first
        self.queued_bytes = 0
        self.packets_acked = 0
        self.packets_lost = 0
        self.pto_count_total = 0
        self.probe_packets = 0
        self.acked_payload_bytes = 0
        self.acks_sent = 0
        self.acks_received = 0
        self.rtt_samples = 0
        self.rtt_sum_s = 0.0
        self.loss_by_trigger = {"packet": 0, "time": 0, "pto": 0}
        self.app_limited = False
        self.done_s: float | None = None
        self.probe_pending = False
        # message workload state (None for bulk)
        self.msg_chunks: list[tuple[int, int]] | None = None  # chunk id -> (msg id, bytes)
        self.msg_chunk_left: list[int] = []  # per message: chunks not yet received
        self.msg_sent_time: list[float] = []
        self.msg_sizes: list[int] = []
        self.msg_delivered: list[float] = []
        self.chunk_got = bytearray()
        self.msg_queue: deque[int] = deque()  # chunk ids to send (retransmissions first)
        self.pn_chunk: list[int] = []  # packet number -> chunk it carries
        self.chunk_bytes = 0
        self.latencies_s: list[float] = []
        self.messages = 0
        self.cwnd_time_integral = 0.0
        self.cwnd_last_t = start_s
        self.cwnd_last = cc.cwnd
        # ECN: the sender's validator (None: the controller does not mark), the
        # receiver's ECT(0)/ECT(1)/CE counts, the first packet sent after testing
        cp = getattr(cc, "ecn_codepoint", 0)
        self.validator = EcnValidator(cp) if cp else None
        self.rx_ecn = [0, 0, 0]
        self.ecn_testing_end = math.inf


class FlowModel:
    """Flows sharing one path, run in virtual time.

    ``data_link`` carries data packets (for a download: the path's ``down`` link),
    ``ack_link`` the ACKs. Controllers are ready instances (one per flow). Use
    :func:`wtlab.model.run` unless you need to step or build flows yourself.
    """

    def __init__(self, data_link: Any, ack_link: Any, controllers: Sequence[Any], *,
                 base_rtt_s: float, recorder: Any = None, max_datagram_size: int = 1200,
                 overhead_bytes: int = 40, ack_size_bytes: int = 40,
                 ip_overhead_bytes: int = 28,
                 ack_policy: str = "aioquic", max_ack_delay_s: float = 0.025,
                 setup_rtts: float = 3.5, start_times_s: Sequence[float] | None = None,
                 workload: dict[str, Any] | None = None, record_acks: bool = True,
                 full_packets: bool = True, data_direction: str = "down",
                 extra_rtt_s: Sequence[float] | None = None) -> None:
        if not isinstance(full_packets, bool):
            raise ConfigError(f"full_packets={full_packets!r} must be True or False")
        self.full_packets = full_packets
        if ack_policy not in ("aioquic", "rfc9000", "every"):
            raise ConfigError(f"ack_policy={ack_policy!r}: use 'aioquic', 'rfc9000' or 'every'")
        if not 0 <= overhead_bytes < max_datagram_size:
            raise ConfigError(
                f"overhead_bytes={overhead_bytes} must be >= 0 and below max_datagram_size"
            )
        self.data_link = data_link
        self.ack_link = ack_link
        self.recorder = recorder
        self.max_datagram_size = int(max_datagram_size)
        self.payload_bytes = self.max_datagram_size - int(overhead_bytes)
        self.ack_size_bytes = int(ack_size_bytes)
        # what the links carry: the UDP payload plus IPv4 + UDP headers, as the emulator does
        self.ip_overhead_bytes = int(ip_overhead_bytes)
        self.wire_bytes = self.max_datagram_size + self.ip_overhead_bytes
        # the smallest packet worth sending into a nearly full window: headers and one byte
        self.min_packet_bytes = int(overhead_bytes) + 1
        self.ack_wire_bytes = self.ack_size_bytes + int(ip_overhead_bytes)
        self.ack_policy = ack_policy
        self.max_ack_delay_s = float(max_ack_delay_s)
        self.base_rtt_s = float(base_rtt_s)
        self.setup_rtts = float(setup_rtts)
        self.record_acks = bool(record_acks) and recorder is not None
        self.now = 0.0
        self._until = 0.0  # the horizon of the current run() call
        self._heap: list[tuple] = []
        self._seq = 0
        self._state_codes: dict[str, int] = {}
        n = len(controllers)
        if start_times_s is None:
            start_times_s = [0.0] * n
        if len(start_times_s) != n:
            raise ConfigError(f"start_times_s has {len(start_times_s)} entries for {n} flows")
        self.flows: list[Flow] = []
        if extra_rtt_s is None:
            extra_rtt_s = [0.0] * n
        if len(extra_rtt_s) != n:
            raise ConfigError(f"extra_rtt_s has {len(extra_rtt_s)} entries for {n} flows")
        for i, cc in enumerate(controllers):
            fl = Flow(i, cc, RttStats(), float(start_times_s[i]))
            extra = float(extra_rtt_s[i])
            if not (extra >= 0 and math.isfinite(extra)):
                raise ConfigError(f"extra_rtt_s[{i}]={extra_rtt_s[i]!r} must be >= 0 seconds")
            # half each way, after the shared links (an access link of its own)
            fl.extra_delay_s = extra / 2.0
            fl.base_rtt_s = self.base_rtt_s + extra
            self.flows.append(fl)
        self.workload = dict(workload or {"kind": "bulk"})
        self._setup_workload()
        # Lazy receive: with aioquic's ACK timer and a bulk workload the receiver only acts
        # when its ACK timer runs, so in-order arrivals need no event of their own; they
        # queue per flow and the timer takes those due (the trace is the same, ~2x faster).
        self._lazy_rx = ack_policy == "aioquic" and self.workload.get("kind", "bulk") == "bulk"
        # ECN or a DualPI2 link (provisional arrivals): the per-packet receive path
        self._ecn_mode = (any(fl.validator is not None for fl in self.flows)
                          or getattr(data_link, "deferred", False)
                          or getattr(ack_link, "deferred", False))
        if self._ecn_mode:
            self._lazy_rx = False
        self._mark_extra = f'{{"dir": "{data_direction}"}}'
        for fl in self.flows:
            fl.data_start_s = fl.start_s + self.setup_rtts * fl.base_rtt_s
            self._push(fl.data_start_s, _EV_START, fl, 0)
            if fl.msg_chunks is not None:
                self._push(fl.data_start_s, _EV_MESSAGE, fl, 0)

    # ------------------------------------------------------------------ set-up
    def _setup_workload(self) -> None:
        w = self.workload
        kind = w.get("kind", "bulk")
        if kind == "bulk":
            size = w.get("size_bytes")
            for fl in self.flows:
                fl.budget_bytes = math.inf if size is None else int(size)
        elif kind == "messages":
            try:
                self._msg_rate_hz = float(w["rate_hz"])
                self._msg_size = int(w["size_bytes"])
            except KeyError as exc:
                raise ConfigError(
                    f"workload 'messages' needs {exc.args[0]!r} (rate_hz and size_bytes)"
                ) from None
            if self._msg_rate_hz <= 0 or self._msg_size <= 0:
                raise ConfigError("workload 'messages' needs rate_hz > 0 and size_bytes > 0")
            for fl in self.flows:
                fl.budget_bytes = 0
                fl.msg_chunks = []
        else:
            raise ConfigError(f"unknown workload kind {kind!r}; use 'bulk' or 'messages'")

    def _push(self, t: float, kind: int, fl: Flow, arg: Any) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, kind, fl, arg))

    # ------------------------------------------------------------------ running
    def run(self, until: float) -> None:
        """Process every event up to virtual time ``until`` (seconds)."""
        heap = self._heap
        pop = heapq.heappop
        self._until = until
        on_data = self._on_data
        on_ack = self._on_ack
        on_ack_timer = self._on_ack_timer
        try_send = self._try_send
        on_loss_timer = self._on_loss_timer
        while heap:
            ev = pop(heap)
            t = ev[0]
            if t > until:
                heapq.heappush(heap, ev)  # the next run() call starts with it
                break
            kind = ev[2]
            if kind == _EV_ACK:
                on_ack(t, ev[3], ev[4])
            elif kind == _EV_ACK_TIMER:
                fl = ev[3]
                if ev[4] == fl.ack_gen:
                    on_ack_timer(t, fl)
            elif kind == _EV_SEND:
                fl = ev[3]
                if ev[4] == fl.send_gen:
                    fl.send_at = None
                    try_send(t, fl)
            elif kind == _EV_DATA:
                on_data(t, ev[3], ev[4])
            elif kind == _EV_LOSS_TIMER:
                fl = ev[3]
                if ev[4] == fl.timer_gen:
                    on_loss_timer(t, fl)
            elif kind == _EV_START:
                self._on_start(t, ev[3])
            elif kind == _EV_MESSAGE:
                self._on_message(t, ev[3])
            elif kind == _EV_DATA_ECN:
                self._on_data_ecn(t, ev[3], ev[4])
            elif kind == _EV_CONFIRM:
                link, ticket, inner, arg = ev[4]
                t2 = link.confirm(ticket, t)
                if t2 > t:
                    self._seq += 1
                    heapq.heappush(heap, (t2, self._seq, _EV_CONFIRM, ev[3], ev[4]))
                elif ev[3].extra_delay_s:  # confirmed: on, past the flow's own extra delay
                    self._seq += 1
                    heapq.heappush(heap, (t + ev[3].extra_delay_s, self._seq, inner, ev[3], arg))
                elif inner == _EV_DATA_ECN:
                    self._on_data_ecn(t, ev[3], arg)
                else:
                    on_ack(t, ev[3], arg)
        if until > self.now:
            self.now = until  # (event handlers never read self.now: time is passed in)
        for fl in self.flows:
            self._account_cwnd(fl, self.now)

    # ------------------------------------------------------------------ recording
    def _record(self, t: float, fl: Flow, kind: int, pn: int, nbytes: int,
                stream_id: int = NO_STREAM, payload_bytes: int = NO_BYTES_U32) -> None:
        rec = self.recorder
        cc = fl.cc
        state = cc.state
        code = self._state_codes.get(state)
        if code is None:
            code = self._state_codes[state] = rec.state_code(state)
        rtt = fl.rtt
        ss = cc.ssthresh
        pacing = cc.pacing_rate_bps
        if rtt.has_sample:
            srtt, min_rtt, latest, var = rtt.smoothed_rtt, rtt.min_rtt, rtt.latest_rtt, rtt.rttvar
        else:
            srtt = min_rtt = latest = var = NAN
        cwnd = cc.cwnd
        bif = cc.bytes_in_flight
        rec.append(t, kind, code, fl.index, pn, stream_id, nbytes,
                   cwnd if cwnd < _U32_MAX else _U32_MAX,
                   0 if bif < 0 else bif if bif < _U32_MAX else _U32_MAX,
                   NO_BYTES_U32 if ss is None else ss if ss < _U32_MAX else _U32_MAX,
                   srtt, min_rtt, latest, var, NAN if pacing is None else pacing,
                   cc.delivery_rate_bps(), payload_bytes)

    def _account_cwnd(self, fl: Flow, now: float) -> None:
        # time-weighted mean cwnd, integrated piecewise between events
        if now > fl.cwnd_last_t:
            fl.cwnd_time_integral += fl.cwnd_last * (now - fl.cwnd_last_t)
            fl.cwnd_last_t = now
        fl.cwnd_last = fl.cc.cwnd

    # ------------------------------------------------------------------ sender
    def _on_start(self, now: float, fl: Flow) -> None:
        # the handshake's RTT sample: the path's base RTT (see module docstring)
        if self.setup_rtts > 0 and not fl.rtt.has_sample:
            fl.rtt.update(fl.base_rtt_s, 0.0, now)
            self._update_pacer(fl)
        fl.cwnd_last_t = now
        fl.cwnd_last = fl.cc.cwnd
        self._try_send(now, fl)

    def _update_pacer(self, fl: Flow) -> None:
        """aioquic's QuicPacketPacer.update_rate, at pacing_rate_bps if the controller sets it.

        As wtlab's aioquic adapter does: refreshed after every ACK frame and loss; with a
        controller rate a packet needs a whole packet time of credit (see ``_try_send``).
        """
        cc = fl.cc
        mds = self.max_datagram_size
        cwnd = cc.cwnd
        rate_bps = cc.pacing_rate_bps
        if rate_bps == math.inf:  # the controller asked for no pacing: the window clocks
            fl.pacing_packet_time = None
            fl.rate_paced = False
            return
        if rate_bps is not None and rate_bps > 0:
            rate = rate_bps / 8.0
            fl.rate_paced = True
        elif fl.rtt.has_sample:
            rate = cwnd / max(fl.rtt.smoothed_rtt, K_MICRO_SECOND)
            fl.rate_paced = False
        else:
            return  # aioquic paces only once it has an RTT sample
        pt = mds / rate
        fl.pacing_packet_time = K_MICRO_SECOND if pt < K_MICRO_SECOND else 1.0 if pt > 1.0 else pt
        q = cwnd // 4
        fl.bucket_max = max(2 * mds, q if q < 16 * mds else 16 * mds) / rate
        if fl.bucket_time > fl.bucket_max:
            fl.bucket_time = fl.bucket_max

    def _try_send(self, now: float, fl: Flow) -> None:
        """Send as many packets as cwnd, pacing and the workload allow (the hot path).

        Bulk data without a pending probe (nearly every call) takes a lean copy of the
        general loop below, with the flow's pacing and data counters in locals.
        """
        if fl.probe_pending or fl.msg_chunks is not None or not self._lazy_rx:
            self._try_send_general(now, fl)
            return
        cc = fl.cc
        size = self.max_datagram_size
        wire = self.wire_bytes
        payload_size = self.payload_bytes
        transmit = self.data_link.transmit
        heap = self._heap
        push = heapq.heappush
        sent = fl.sent
        on_sent = cc.on_packet_sent
        rx_t = fl.rx_t
        rx_pn = fl.rx_pn
        pt = fl.pacing_packet_time
        bucket = fl.bucket_time
        eval_t = fl.eval_time
        bmax = fl.bucket_max
        rate_paced = fl.rate_paced
        retx = fl.retx_bytes
        budget = fl.budget_bytes
        more = now < fl.stop_s
        until = self._until
        rx_last = fl.rx_last
        extra_s = fl.extra_delay_s
        seq = self._seq
        pn = fl.next_pn
        first_pn = pn
        min_size = self.min_packet_bytes
        overhead = size - payload_size
        ip = self.ip_overhead_bytes
        full = self.full_packets
        pto_s = self._pc_pto(fl)
        while True:
            room = cc.cwnd - cc.bytes_in_flight
            if room < size:
                # less than a datagram of window: wait for an ack (full_packets), or fill
                # the window with a smaller packet as aioquic does
                if room < min_size or (full and cc.bytes_in_flight > 0):
                    break
                cap = room - overhead
            else:
                cap = payload_size
            if pt is not None:
                if now > eval_t:
                    bucket += now - eval_t
                    if bucket > bmax:
                        bucket = bmax
                    eval_t = now
                if rate_paced:
                    missing = pt - bucket
                    blocked = missing > 1e-9
                    at = now + missing
                else:
                    blocked = bucket <= 0
                    at = now + pt
                if blocked:
                    if at < (heap[0][0] if heap else until) and at <= until:
                        # No event comes before `at`, so nothing can change this flow's
                        # state until then: move to `at` and send, as a pacing timer
                        # would, without the round trip through the heap.
                        now = at
                        continue
                    if fl.send_at is None or at < fl.send_at:
                        fl.send_gen += 1
                        fl.send_at = at
                        seq += 1
                        push(heap, (at, seq, _EV_SEND, fl, fl.send_gen))
                    break
            if retx > 0:
                payload = cap if retx > cap else retx
                retx -= payload
            elif budget > 0 and more:
                payload = cap if budget > cap else budget
                budget -= payload
            else:
                self._app_limited(now, fl)
                break
            if pt is not None:
                bucket = 0.0 if bucket < pt else bucket - pt
            if payload == payload_size:
                pkt = SentPacket(pn, size, now, payload, -1, pto_s)
                w = wire
            else:
                pkt = SentPacket(pn, payload + overhead, now, payload, -1, pto_s)
                w = payload + overhead + ip
            sent[pn] = pkt
            on_sent(now, pkt)
            for arrival in transmit(now, w):
                arrival += extra_s
                if arrival >= rx_last:
                    # in-order arrival: the receiver takes it when its ACK timer runs
                    rx_last = arrival
                    rx_t.append(arrival)
                    rx_pn.append(pn)
                    if fl.ack_at is None:
                        at = arrival + AIOQUIC_ACK_DELAY_S
                        fl.ack_at = at
                        fl.ack_gen += 1
                        seq += 1
                        push(heap, (at, seq, _EV_ACK_TIMER, fl, fl.ack_gen))
                else:
                    seq += 1
                    push(heap, (arrival, seq, _EV_DATA, fl, pn))
            pn += 1
        self._seq = seq
        fl.rx_last = rx_last
        fl.bucket_time = bucket
        fl.eval_time = eval_t
        fl.retx_bytes = retx
        fl.budget_bytes = budget
        if pn != first_pn:
            fl.next_pn = pn
            fl.app_limited = False
            fl.last_ae_sent = now
            if fl.timer_at is None:
                self._arm_timer(now, fl)

    def _try_send_general(self, now: float, fl: Flow) -> None:
        """``_try_send`` for every case: probes, messages, per-packet receive."""
        cc = fl.cc
        size = self.max_datagram_size
        payload_size = self.payload_bytes
        transmit = self.data_link.transmit
        heap = self._heap
        push = heapq.heappush
        sent = fl.sent
        on_sent = cc.on_packet_sent
        msgs = fl.msg_chunks is not None
        lazy = self._lazy_rx
        rx_t = fl.rx_t
        rx_pn = fl.rx_pn
        pt = fl.pacing_packet_time
        pn = fl.next_pn
        first_pn = pn
        min_size = self.min_packet_bytes
        overhead = size - payload_size
        full = self.full_packets
        pto_s = self._pc_pto(fl)
        ecn_mode = self._ecn_mode
        cp = 0
        val = fl.validator
        if val is not None:
            change = val.end_of_batch()
            if change is not None:
                self._ecn_state_changed(now, fl, change)
            cp = val.tx_codepoint
        while True:
            probe = fl.probe_pending
            room = cc.cwnd - cc.bytes_in_flight
            if probe:
                cap = payload_size  # a probe may exceed the window (one datagram)
            elif room >= size:
                cap = payload_size
            elif room < min_size or (full and cc.bytes_in_flight > 0):
                break  # see _try_send
            else:
                cap = room - overhead
            # pacing: aioquic's token bucket of send time (a PTO probe goes at once)
            if pt is not None:
                if now > fl.eval_time:
                    b = fl.bucket_time + (now - fl.eval_time)
                    fl.bucket_time = b if b < fl.bucket_max else fl.bucket_max
                    fl.eval_time = now
                if fl.rate_paced:
                    # a controller's rate needs a whole packet of credit (wtlab's adapter)
                    missing = pt - fl.bucket_time
                    blocked = missing > 1e-9
                    at = now + missing
                else:
                    # aioquic: any credit left lets a packet go, else wait one packet time
                    blocked = fl.bucket_time <= 0
                    at = now + pt
                if blocked and not probe:
                    if fl.send_at is None or at < fl.send_at:
                        fl.send_gen += 1
                        fl.send_at = at
                        self._seq += 1
                        push(heap, (at, self._seq, _EV_SEND, fl, fl.send_gen))
                    break
            # what to send: retransmitted data first, then new data
            chunk = -1
            if msgs:
                queue = fl.msg_queue
                if queue and fl.msg_chunks[queue[0]][1] <= cap:
                    chunk = queue.popleft()
                    payload = fl.msg_chunks[chunk][1]
                elif queue:
                    break  # the next chunk does not fit the window's room: wait for acks
                elif probe:
                    payload = 0  # a PING probe: nothing left to resend, but an ACK is due
                else:
                    self._app_limited(now, fl)
                    break
                fl.pn_chunk.append(chunk)
            elif fl.retx_bytes > 0:
                payload = cap if fl.retx_bytes > cap else fl.retx_bytes
                fl.retx_bytes -= payload
            elif fl.budget_bytes > 0 and now < fl.stop_s:
                payload = cap if fl.budget_bytes > cap else fl.budget_bytes
                fl.budget_bytes -= payload
            elif probe:
                payload = 0
            else:
                self._app_limited(now, fl)
                break
            if pt is not None:
                fl.bucket_time = 0.0 if fl.bucket_time < pt else fl.bucket_time - pt
            if probe:
                fl.probe_pending = False
                fl.probe_packets += 1
            psize = size if payload == payload_size else payload + overhead
            pkt = SentPacket(pn, psize, now, payload, chunk, pto_s, cp)
            sent[pn] = pkt
            on_sent(now, pkt)
            if ecn_mode:
                if cp:
                    val.on_packet_sent(2, cp)
                self._send_data_ecn(now, fl, pn, psize + self.ip_overhead_bytes, cp)
                pn += 1
                continue
            for arrival in transmit(now, psize + self.ip_overhead_bytes):
                arrival += fl.extra_delay_s
                if lazy and arrival >= fl.rx_last:
                    # in-order arrival: the receiver takes it when its ACK timer runs
                    fl.rx_last = arrival
                    rx_t.append(arrival)
                    rx_pn.append(pn)
                    if fl.ack_at is None:
                        at = arrival + AIOQUIC_ACK_DELAY_S
                        fl.ack_at = at
                        fl.ack_gen += 1
                        self._seq += 1
                        push(heap, (at, self._seq, _EV_ACK_TIMER, fl, fl.ack_gen))
                else:
                    self._seq += 1
                    push(heap, (arrival, self._seq, _EV_DATA, fl, pn))
            pn += 1
        if pn != first_pn:
            fl.next_pn = pn
            fl.app_limited = False
            fl.last_ae_sent = now
            if fl.timer_at is None:
                self._arm_timer(now, fl)

    def _send_data_ecn(self, now: float, fl: Flow, pn: int, wire: int, cp: int) -> None:
        """One data packet onto the data link with its codepoint (ECN runs)."""
        link = self.data_link
        arrivals = link.transmit(now, wire, cp) if cp else link.transmit(now, wire)
        out = cp
        if cp:
            out = link.last_ecn
            if out == CE and cp != CE and self.recorder is not None:
                self._record(now, fl, _K_ECN_MARKED, pn, wire)
                queue = getattr(link, "last_queue", None)
                rec = self.recorder
                rec.set_extra(len(rec) - 1, self._mark_extra if queue is None else
                              self._mark_extra[:-1] + f', "queue": "{queue}"}}')
        ticket = link.last_ticket if getattr(link, "deferred", False) else None
        heap = self._heap
        for arrival in arrivals:
            self._seq += 1
            if ticket is None:
                heapq.heappush(heap, (arrival + fl.extra_delay_s, self._seq, _EV_DATA_ECN, fl,
                                      (pn, out)))
            else:
                heapq.heappush(heap, (arrival, self._seq, _EV_CONFIRM, fl,
                                      (link, ticket, _EV_DATA_ECN, (pn, out))))

    def _on_data_ecn(self, now: float, fl: Flow, arg: tuple[int, int]) -> None:
        """A data packet and its ECN codepoint reach the receiver (RFC 9000 13.4.1)."""
        pn, cp = arg
        if fl.ack_at is not None and fl.ack_at - now <= TIE_S:
            self._timer_first(now, fl)  # before this packet's codepoint is counted
        if cp:  # (the model's receiver keeps no duplicate filter: a copy counts again)
            fl.rx_ecn[0 if cp == ECT0 else 1 if cp == ECT1 else 2] += 1
        self._on_data(now, fl, pn)
        if cp == CE and fl.ack_at is not None:
            self._set_ack_timer(fl, now)  # RFC 9000 13.2.1: CE is acknowledged at once

    def _push_ack(self, now: float, fl: Flow, info: tuple) -> None:
        """An ACK frame onto the ACK link."""
        link = self.ack_link
        heap = self._heap
        arrivals = link.transmit(now, self.ack_wire_bytes)
        ticket = link.last_ticket if getattr(link, "deferred", False) else None
        for arrival in arrivals:
            self._seq += 1
            if ticket is None:
                heapq.heappush(heap, (arrival + fl.extra_delay_s, self._seq, _EV_ACK, fl, info))
            else:
                heapq.heappush(heap, (arrival, self._seq, _EV_CONFIRM, fl,
                                      (link, ticket, _EV_ACK, info)))

    def _ecn_state_changed(self, now: float, fl: Flow, change: tuple[str, str]) -> None:
        val = fl.validator
        if change[1] != "testing" and fl.ecn_testing_end == math.inf:
            fl.ecn_testing_end = fl.next_pn
        fl.cc.on_ecn_validation(now, change[0], change[1], val.reason)

    def _on_ack_ecn(self, now: float, fl: Flow, acked: list[SentPacket],
                    counts: tuple[int, int, int] | None, advanced: bool, largest: int,
                    sent_time: float) -> None:
        """The sender validates an ACK frame's ECN counts and tells the controller."""
        n0 = n1 = nbytes = 0
        for p in acked:
            c = p.ecn
            if c == ECT0:
                n0 += 1
                nbytes += p.sent_bytes
            elif c == ECT1:
                n1 += 1
                nbytes += p.sent_bytes
        val = fl.validator
        res = val.on_ack(2, counts, advanced, n0, n1, nbytes)
        if res.state_change is not None:
            self._ecn_state_changed(now, fl, res.state_change)
        if res.validated and val.state != "failed" and (res.acked_ect or res.ce_increase):
            self._account_cwnd(fl, now)
            fl.cc.on_ecn_feedback(now, res.acked_ect, res.acked_ect_bytes, res.ce_increase,
                                  sent_time, counts, pn=largest)
            self._account_cwnd(fl, now)
            self._update_pacer(fl)

    def _app_limited(self, now: float, fl: Flow) -> None:
        if not fl.app_limited:
            fl.app_limited = True
            fl.cc.on_app_limited(now)
            if self.recorder is not None:
                self._record(now, fl, _K_APP_LIMITED, -1, 0)

    # ------------------------------------------------------------------ receiver
    def _on_data(self, now: float, fl: Flow, pn: int) -> None:
        """One packet reaches the receiver (the per-packet path; see ``_lazy_rx``)."""
        if fl.ack_at is not None and fl.ack_at - now <= TIE_S:
            self._timer_first(now, fl)
        fl.recv.append(pn)
        largest = fl.largest_received
        if pn > largest:
            gap = pn != largest + 1
            fl.largest_received = pn
            fl.largest_received_time = now
        else:
            gap = True
        if pn <= largest or self._lazy_rx:
            fl.recv_ordered = False  # the sender sorts what an ACK covers
        if fl.msg_chunks is not None:
            self._deliver_chunk(now, fl, pn)
        if self.ack_policy == "aioquic":
            if fl.ack_at is None:
                self._set_ack_timer(fl, now + AIOQUIC_ACK_DELAY_S)
            return
        if self.ack_policy == "every":
            self._send_ack(now, fl)
            return
        # RFC 9000 section 13.2.1/13.2.2: every 2nd ack-eliciting packet, at once on a gap
        fl.unacked_ae += 1
        if fl.unacked_ae >= 2 or gap:
            self._send_ack(now, fl)
        elif fl.ack_at is None:
            self._set_ack_timer(fl, now + self.max_ack_delay_s)

    def _timer_first(self, now: float, fl: Flow) -> None:
        """An ACK timer due at the instant a packet arrives runs first (TIE_S), as aioquic's
        does in the emulator: the packet waits for the next ACK."""
        if self.ack_policy == "aioquic" and len(fl.rx_t) == fl.rx_head:
            self._send_ack(now, fl)  # (in-order arrivals held lazily: the timer takes them)

    def _set_ack_timer(self, fl: Flow, at: float) -> None:
        fl.ack_at = at
        fl.ack_gen += 1
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, _EV_ACK_TIMER, fl, fl.ack_gen))

    def _on_ack_timer(self, now: float, fl: Flow) -> None:
        rx_t = fl.rx_t
        if rx_t:
            # take the in-order arrivals due by now (they reached the receiver earlier)
            head = fl.rx_head
            cut = bisect_right(rx_t, now - TIE_S, head)
            if cut > head:
                pns = fl.rx_pn
                fl.recv += pns[head:cut]
                pn = pns[cut - 1]
                if pn > fl.largest_received:
                    fl.largest_received = pn
                    fl.largest_received_time = rx_t[cut - 1]
                if cut > 4096:
                    del rx_t[:cut]
                    del pns[:cut]
                    cut = 0
                fl.rx_head = cut
        if fl.ack_at is not None:
            # _send_ack, inlined (once per ACK)
            fl.ack_at = None
            fl.unacked_ae = 0
            fl.acks_sent += 1
            r = fl.rx_ecn
            info = (fl.largest_received, now - fl.largest_received_time,
                    fl.recv_base + len(fl.recv),
                    (r[0], r[1], r[2]) if r[0] or r[1] or r[2] else None)
            heap = self._heap
            if self._ecn_mode:
                self._push_ack(now, fl, info)
            else:
                seq = self._seq
                for arrival in self.ack_link.transmit(now, self.ack_wire_bytes):
                    seq += 1
                    heapq.heappush(heap, (arrival + fl.extra_delay_s, seq, _EV_ACK, fl, info))
                self._seq = seq
            seq = self._seq
            if len(rx_t) > fl.rx_head:
                at = rx_t[fl.rx_head] + AIOQUIC_ACK_DELAY_S
                fl.ack_at = at
                seq += 1
                heapq.heappush(heap, (at, seq, _EV_ACK_TIMER, fl, fl.ack_gen))
            self._seq = seq
        elif len(rx_t) > fl.rx_head:
            self._set_ack_timer(fl, rx_t[fl.rx_head] + AIOQUIC_ACK_DELAY_S)

    def _send_ack(self, now: float, fl: Flow) -> None:
        """An ACK frame covering everything received so far (ranges implied)."""
        fl.ack_at = None
        fl.ack_gen += 1  # cancels a pending delayed-ACK timer
        fl.unacked_ae = 0
        fl.acks_sent += 1
        r = fl.rx_ecn
        info = (fl.largest_received, now - fl.largest_received_time, fl.recv_base + len(fl.recv),
                (r[0], r[1], r[2]) if r[0] or r[1] or r[2] else None)
        if self._ecn_mode:
            self._push_ack(now, fl, info)
            return
        heap = self._heap
        for arrival in self.ack_link.transmit(now, self.ack_wire_bytes):
            self._seq += 1
            heapq.heappush(heap, (arrival + fl.extra_delay_s, self._seq, _EV_ACK, fl, info))

    # ------------------------------------------------------------------ ACK processing
    def _on_ack(self, now: float, fl: Flow, info: tuple[int, float, int]) -> None:
        """An ACK frame reaches the sender (the per-ACK hot path, helpers inlined)."""
        largest, ack_delay, index, ecn_counts = info
        cursor = fl.recv_cursor
        fl.acks_received += 1
        if index <= cursor:
            return  # an older ACK overtaken by a newer one: nothing new in it
        recv = fl.recv
        base = fl.recv_base
        newly = recv[cursor - base:index - base]
        fl.recv_cursor = index
        if index - base > 4096:  # trim what every future ACK has covered
            del recv[:index - base]
            fl.recv_base = index
        sent = fl.sent
        largest_pkt = sent.get(largest)  # present now means: newly acknowledged
        acked = [p for p in map(sent.pop, newly, repeat(None)) if p is not None]
        advanced = largest > fl.largest_acked
        if advanced:
            fl.largest_acked = largest
        if not acked:
            return
        if not fl.recv_ordered:
            acked.sort(key=_pn_key)
        nbytes = sum(map(_payload_of, acked))
        fl.acked_payload_bytes += nbytes
        fl.packets_acked += len(acked)
        rtt = fl.rtt
        if largest_pkt is not None:
            latest = now - largest_pkt.sent_time
            rtt.update(latest if latest > 0.001 else 0.001, ack_delay, now, True,
                       self.max_ack_delay_s)
            fl.rtt_samples += 1
            fl.rtt_sum_s += rtt.latest_rtt
        cc = fl.cc
        rec = self.recorder
        if rec is not None and largest_pkt is not None:
            # rows in the emulator's order: rtt_sample, packet_acked..., [packet_lost...],
            # cwnd_changed, ack_received (written after the frame was handled)
            self._record(now, fl, _K_RTT, -1, 0)
        # time-weighted cwnd (see _account_cwnd), then the controller
        if now > fl.cwnd_last_t:
            fl.cwnd_time_integral += fl.cwnd_last * (now - fl.cwnd_last_t)
            fl.cwnd_last_t = now
        cc.on_packets_acked(now, acked, rtt)
        fl.cwnd_last = cc.cwnd
        self._update_pacer(fl)
        fl.pto_count = 0
        # loss detection, only if something below the largest acked is outstanding
        if sent and next(iter(sent)) < fl.largest_acked:
            self._detect_loss(now, fl)
        else:
            fl.loss_time = None
        if rec is not None and self.record_acks:
            self._record(now, fl, _K_ACK_RECEIVED, largest, sum(map(_size_of, acked)),
                         payload_bytes=nbytes)
        if fl.validator is not None:
            self._on_ack_ecn(now, fl, acked, ecn_counts, advanced, largest,
                             (largest_pkt if largest_pkt is not None else acked[-1]).sent_time)
        if sent:
            # re-arm the loss timer (inlined _arm_timer for the common PTO case)
            if fl.loss_time is not None:
                deadline = fl.loss_time
            else:
                var4 = 4 * rtt.rttvar
                deadline = fl.last_ae_sent + (rtt.smoothed_rtt + (
                    var4 if var4 > K_GRANULARITY_S else K_GRANULARITY_S) + self.max_ack_delay_s)
            if fl.timer_at is None or deadline < fl.timer_at:
                fl.timer_at = deadline
                fl.timer_gen += 1
                self._seq += 1
                heapq.heappush(self._heap, (deadline, self._seq, _EV_LOSS_TIMER, fl,
                                            fl.timer_gen))
        else:
            fl.timer_at = None
            fl.timer_gen += 1
            if fl.budget_bytes <= 0 and fl.retx_bytes <= 0 and fl.done_s is None \
                    and fl.msg_chunks is None:
                fl.done_s = now
        self._try_send(now, fl)

    def _detect_loss(self, now: float, fl: Flow) -> None:
        rtt = fl.rtt
        srtt = rtt.smoothed_rtt
        latest = rtt.latest_rtt
        loss_delay = K_TIME_THRESHOLD * (latest if latest > srtt else srtt)
        if loss_delay < K_GRANULARITY_S:
            loss_delay = K_GRANULARITY_S
        largest_acked = fl.largest_acked
        packet_threshold = largest_acked - K_PACKET_THRESHOLD
        lost = []
        loss_time = None
        by_packet = 0
        for pn, p in fl.sent.items():
            if pn > largest_acked:
                break
            if pn <= packet_threshold:
                lost.append(p)
                by_packet += 1
            else:
                # the same sum as the loss time set below, so a timer set for it fires it
                t = p.sent_time + loss_delay
                if t <= now:
                    lost.append(p)
                elif loss_time is None or t < loss_time:
                    loss_time = t
        fl.loss_time = loss_time
        if lost:
            fl.loss_by_trigger["packet"] += by_packet
            fl.loss_by_trigger["time"] += len(lost) - by_packet
            self._declare_lost(now, fl, lost, congestion=True, packet_threshold=packet_threshold)

    def _declare_lost(self, now: float, fl: Flow, lost: list[SentPacket], *,
                      congestion: bool, packet_threshold: int = -1) -> None:
        sent = fl.sent
        msgs = fl.msg_chunks is not None
        retx_chunks = []
        for p in lost:
            del sent[p.packet_number]
            if msgs:
                if p.chunk >= 0 and not fl.chunk_got[p.chunk]:
                    retx_chunks.append(p.chunk)
            else:
                fl.retx_bytes += p.payload_bytes
        if retx_chunks:
            fl.msg_queue.extendleft(reversed(retx_chunks))  # retransmissions first, oldest first
        cc = fl.cc
        self._account_cwnd(fl, now)
        if not congestion:  # a PTO's probe resends the data: lost, but no congestion signal
            cc.on_packets_probed_lost(now, lost)
            return
        fl.packets_lost += len(lost)
        if fl.validator is not None:
            end = fl.ecn_testing_end
            testing = sum(1 for p in lost if p.ecn and p.packet_number < end)
            if testing:
                change = fl.validator.on_packets_lost(testing)
                if change is not None:
                    self._ecn_state_changed(now, fl, change)
        persistent = self._in_persistent_congestion(fl, lost)  # a detail string, or None
        if self.recorder is None:
            cc.on_packets_lost(now, lost)
        else:
            cc.on_packets_lost(now, lost, [
                "packet_threshold" if p.packet_number <= packet_threshold else "time_threshold"
                for p in lost])
        if persistent is not None:
            cc.on_persistent_congestion_detected(now, persistent)
        self._account_cwnd(fl, now)
        self._update_pacer(fl)

    def _pc_pto(self, fl: Flow) -> float:
        """The PTO of RFC 9002 7.6.1 (with max_ack_delay) as of now (inf before a sample)."""
        rtt = fl.rtt
        return rtt.pto_s(self.max_ack_delay_s) if rtt.has_sample else math.inf

    def _in_persistent_congestion(self, fl: Flow, lost: list[SentPacket]) -> str | None:
        """RFC 9002 7.6.2 as wtlab's aioquic adapter checks it: a contiguous run of lost
        packets spanning more than 3 PTO, the PTO being the smaller of now's and the one
        in force when the run began. Returns the row's detail (JSON text) or None."""
        rtt = fl.rtt
        if not rtt.has_sample:
            return None
        return persistent_congestion(
            lost, first_sample_s=fl.data_start_s if self.setup_rtts > 0 else -1.0,
            now_pto_s=rtt.pto_s(self.max_ack_delay_s), pto_at_send=lambda p: p.pto_s)

    # ------------------------------------------------------------------ timers
    def _arm_timer(self, now: float, fl: Flow) -> None:
        """(Re)arm the loss-detection timer: loss time, else PTO while data is in flight."""
        if fl.loss_time is not None:
            deadline = fl.loss_time
        elif fl.sent:
            rtt = fl.rtt
            if rtt.has_sample:
                pto = rtt.pto_s(self.max_ack_delay_s)
            else:
                pto = 2 * rtt.smoothed_rtt  # aioquic: twice the initial RTT before a sample
            deadline = fl.last_ae_sent + pto * (1 << fl.pto_count)
        else:
            fl.timer_at = None
            fl.timer_gen += 1
            return
        if fl.timer_at is None or deadline < fl.timer_at:
            fl.timer_at = deadline
            fl.timer_gen += 1
            self._seq += 1
            heapq.heappush(self._heap, (deadline, self._seq, _EV_LOSS_TIMER, fl, fl.timer_gen))

    def _on_loss_timer(self, now: float, fl: Flow) -> None:
        fl.timer_at = None
        if fl.loss_time is not None:
            if fl.loss_time > now:
                self._arm_timer(now, fl)
                return
            self._detect_loss(now, fl)
            self._arm_timer(now, fl)
            self._try_send(now, fl)
            return
        if not fl.sent:
            return
        rtt = fl.rtt
        pto = rtt.pto_s(self.max_ack_delay_s) if rtt.has_sample else 2 * rtt.smoothed_rtt
        deadline = fl.last_ae_sent + pto * (1 << fl.pto_count)
        if deadline > now + 1e-12:
            self._arm_timer(now, fl)  # the deadline moved on since this timer was set
            return
        # PTO: back off, resend the oldest packet's data in a probe (aioquic's way)
        fl.pto_count += 1
        fl.pto_count_total += 1
        rec = self.recorder
        if rec is not None:
            self._record(now, fl, _K_PTO, -1, 0)
            rec.set_extra(len(rec) - 1, f'{{"pto_count": {fl.pto_count}}}')
        oldest = next(iter(fl.sent.values()))
        fl.loss_by_trigger["pto"] += 1
        self._declare_lost(now, fl, [oldest], congestion=False)
        fl.cc.on_pto_expired(now, fl.pto_count)
        fl.probe_pending = True
        self._try_send(now, fl)
        fl.probe_pending = False
        self._arm_timer(now, fl)

    # ------------------------------------------------------------------ messages
    def _on_message(self, now: float, fl: Flow) -> None:
        """The application hands one message to the sender; the next is scheduled."""
        if now >= fl.stop_s:
            return
        msg = len(fl.msg_sizes)
        size = self._msg_size
        fl.msg_sizes.append(size)
        fl.msg_sent_time.append(now)
        fl.msg_delivered.append(NAN)
        payload_size = self.payload_bytes
        chunks = fl.msg_chunks
        n = 0
        left = size
        while left > 0:
            b = payload_size if left > payload_size else left
            left -= b
            fl.msg_queue.append(len(chunks))
            chunks.append((msg, b))
            fl.chunk_got.append(0)
            n += 1
        fl.msg_chunk_left.append(n)
        fl.messages += 1
        if self.recorder is not None:
            self._record(now, fl, _K_MSG_SENT, msg, size)
        self._push(now + 1.0 / self._msg_rate_hz, _EV_MESSAGE, fl, 0)
        self._try_send(now, fl)

    def _deliver_chunk(self, now: float, fl: Flow, pn: int) -> None:
        # the receiver learns the chunk from the packet; the sender's table says which
        chunk = fl.pn_chunk[pn]
        if chunk < 0 or fl.chunk_got[chunk]:
            return
        fl.chunk_got[chunk] = 1
        msg = fl.msg_chunks[chunk][0]
        fl.msg_chunk_left[msg] -= 1
        if fl.msg_chunk_left[msg] == 0:
            fl.msg_delivered[msg] = now
            latency = now - fl.msg_sent_time[msg]
            fl.latencies_s.append(latency)
            if self.recorder is not None:
                self._record(now, fl, _K_MSG_DELIVERED, msg, fl.msg_sizes[msg])


_pn_key = attrgetter("packet_number")
_payload_of = attrgetter("payload_bytes")
_size_of = attrgetter("sent_bytes")
