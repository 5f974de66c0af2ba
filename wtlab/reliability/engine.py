"""Sans-IO retransmission engine for messages over datagrams.

One :class:`Engine` is one end of a datagram message channel: it sends messages and
acknowledgements and receives both. It never reads a clock and never touches a socket: every
call takes ``now`` (seconds), outputs are datagram payloads (``datagrams_to_send(now)``) and
events (``next_event()``), timers are ``next_timer()`` / ``on_timer(now)``. A notebook can
step it by hand, a test can drive two of them through :mod:`wtlab.reliability.sim`, and the
channel layer drives it over a live or emulated WebTransport session.

Modes (``mode=``):

* ``"reliable"``: every message is delivered exactly once, in order;
* ``"unordered"``: every message is delivered exactly once, as soon as it is complete;
* ``"partial"``: acknowledged and retransmitted until ``lifetime_s`` passes (measured from
  ``send()``) or a fragment has been retransmitted ``max_retransmissions`` times; a message is
  never delivered after its lifetime and the sender reports every message it gave up
  (``ordered=True`` adds an in-order delivery buffer that skips abandoned messages);
* ``"unreliable"``: each message goes out once, no acknowledgements (``ordered=True``
  delivers in sequence: a message older than one already delivered is dropped).

Every mode suppresses duplicates (network duplicates and spurious retransmissions).

Loss recovery follows RFC 9002: every transmission gets a fresh packet number, ACK frames
carry packet-number ranges, the RTT is estimated per RFC 9002 section 5 (Karn's problem does
not arise since packet numbers are never reused), a packet is lost once three later ones are
acknowledged or 9/8 RTT has passed since it was sent, and a probe timeout
(``srtt + 4 rttvar + max_ack_delay``, doubled per consecutive expiry) retransmits the oldest
outstanding data when acknowledgements stop. At most ``max_in_flight`` packets are
unacknowledged, so a live session's datagram queue stays bounded.

Wire format (after the channel's own prefix), all integers QUIC varints:

* DATA ``type|flags, [pn, forward], mid, [index, count], [tx_us, age_us, lifetime_us,
  rtt_hint_us], payload``; flags: 0x40 acknowledged modes (pn, forward), 0x10 fragment,
  0x20 timed (lifetime). ``forward`` is the smallest message id the sender may still send:
  everything below is acknowledged or abandoned, so the receiver stops waiting for it.
* ACK ``type, largest, ack_delay_us, range_count, first_range, (gap, length)*`` as in QUIC;
  sent as QUIC does (after two ack-eliciting packets, at once on a gap, else within
  ``max_ack_delay_s``), in front of an outgoing packet when one goes out and it fits.
* FORWARD ``type, pn, forward`` (ack-eliciting), sent when the sender abandons a message.
* NOTICE ``type, pn, count, mid*`` (ack-eliciting, retransmitted when lost): the receiver
  tells the sender that messages it had acknowledged expired in its in-order buffer (a
  partial, ordered channel whose timers ran late), so the sender's view stays exact.

Trace rows (``recorder``): ``message_sent``, ``message_retransmitted``, ``message_acked``,
``message_delivered``, ``message_expired``, ``message_dropped``; ``pn`` is the message id,
``bytes`` the message (or fragment) size, ``srtt_s``/``latest_rtt_s`` the engine's RTT state
on acks, ``extra`` JSON with ``latency_s``, ``side``, ``reason``, ``fragment``, ``trigger``.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass
from typing import Any

from wtlab.cc.rtt import RttStats
from wtlab.errors import ConfigError, MessageTooLarge, ProtocolError
from wtlab.reliability.owd import OneWayDelay, deadline_margin_s
from wtlab.reliability.wire import decode_varint, encode_varint
from wtlab.trace.schema import (
    K_MESSAGE_ACKED,
    K_MESSAGE_DELIVERED,
    K_MESSAGE_DROPPED,
    K_MESSAGE_EXPIRED,
    K_MESSAGE_RETRANSMITTED,
    K_MESSAGE_SENT,
    NAN,
    NO_BYTES_U32,
    NO_STREAM,
)

#: the delivery modes, in order of strength
MODES = ("reliable", "unordered", "partial", "unreliable")

T_DATA = 0x00
T_ACK = 0x01
T_FORWARD = 0x02
T_NOTICE = 0x03
F_FRAG = 0x10
F_TIMED = 0x20
F_ACKED = 0x40
_TYPE_MASK = 0x0F

K_PACKET_THRESHOLD = 3  # RFC 9002 section 6.1.1
K_TIME_THRESHOLD = 9 / 8  # RFC 9002 section 6.1.2
K_GRANULARITY_S = 0.001
MAX_ACK_RANGES = 32  # ranges per ACK frame; older ones are forgotten (the sender retransmits)
_MAX_RX_RANGES = 64
_UNRELIABLE_WINDOW = 1 << 16  # unreliable duplicate suppression remembers this many ids
_EXPIRED_MEMORY = 4096  # abandoned messages kept to credit late acknowledgements
# Bounds of the varints in a DATA header (ids and times below 2**30 use 4 bytes).
_ID_LIMIT = 1 << 30
_HDR_FIXED = 1 + 4 + 4 + 4  # type, pn, forward, mid (no pn/forward when unacknowledged)
_HDR_FRAG = 4 + 4
_HDR_TIMED = 8 + 4 + 4 + 4


@dataclass(frozen=True, slots=True)
class MessageDelivered:
    """A complete message handed to the application (receiver side).

    ``latency_s`` is the estimated time since the sender's ``send()`` (timed messages only,
    see :mod:`wtlab.reliability.owd`), else None.
    """

    message_id: int
    data: bytes
    latency_s: float | None


@dataclass(frozen=True, slots=True)
class MessageAcked:
    """The peer acknowledged every fragment of a message (sender side).

    ``latency_s`` is ``send()`` to acknowledgement. ``late`` is True when the message had
    already been reported expired (its acknowledgement arrived after the lifetime).
    """

    message_id: int
    latency_s: float
    late: bool = False


@dataclass(frozen=True, slots=True)
class MessageExpired:
    """A message will not be delivered (or was not, on the receiver side).

    ``side`` is ``"sender"`` (this end gave up on a message it sent: ``reason``
    ``"lifetime"``, ``"retransmissions"`` or ``"cancelled"``), ``"receiver"`` (a message
    from the peer arrived or completed after its lifetime here: ``"late"``, ``"lifetime"``,
    ``"skipped"``), or ``"peer"`` (the peer reports that a message we sent, and it had
    acknowledged, expired in its in-order buffer: treat it as not delivered).
    """

    message_id: int
    side: str
    reason: str


@dataclass(frozen=True, slots=True)
class MessageDropped:
    """Receiver dropped a complete message: ``"stale"`` (sequenced mode, older than one
    already delivered)."""

    message_id: int
    reason: str


Event = MessageDelivered | MessageAcked | MessageExpired | MessageDropped


class _Out:
    __slots__ = ("mid", "frags", "size", "sent_at", "deadline", "lifetime", "acked", "n_acked",
                 "retx", "done")

    def __init__(self, mid: int, frags: list[bytes], size: int, sent_at: float,
                 lifetime: float | None) -> None:
        self.mid = mid
        self.frags = frags
        self.size = size
        self.sent_at = sent_at
        self.lifetime = lifetime
        self.deadline = sent_at + lifetime if lifetime is not None else float("inf")
        self.acked = [False] * len(frags)
        self.n_acked = 0
        self.retx = [0] * len(frags)
        self.done = False


class _Sent:
    __slots__ = ("pn", "time", "mid", "index", "size", "forward", "notice")

    def __init__(self, pn: int, time: float, mid: int, index: int, size: int,
                 forward: int, notice: list[int] | None = None) -> None:
        self.pn = pn
        self.time = time
        self.mid = mid  # -1 for a FORWARD packet, -2 for a NOTICE
        self.index = index
        self.size = size
        self.forward = forward
        self.notice = notice


class _Partial:
    """A message being reassembled or waiting in the in-order buffer (receiver side)."""

    __slots__ = ("frags", "count", "have", "deadline", "age_at_arrival", "arrival", "data")

    def __init__(self, count: int, deadline: float, age_at_arrival: float | None,
                 arrival: float) -> None:
        self.frags: list[bytes | None] = [None] * count
        self.count = count
        self.have = 0
        self.deadline = deadline
        self.age_at_arrival = age_at_arrival
        self.arrival = arrival
        self.data: bytes | None = None


class Engine:
    """One end of a datagram message channel (see the module docstring).

    Parameters: ``mode`` (one of :data:`MODES`), ``ordered`` (partial/unreliable only; the
    reliable mode is ordered, unordered is not), ``lifetime_s`` and ``max_retransmissions``
    (partial mode; at least one), ``fragment`` (split messages larger than one datagram;
    otherwise they raise :class:`wtlab.MessageTooLarge`), ``max_datagram_size`` (bytes the
    engine may put in one datagram), ``max_in_flight`` (unacknowledged packets),
    ``initial_rtt_s`` (before the first sample), ``recorder``/``flow`` for tracing.
    """

    def __init__(self, mode: str = "reliable", *, ordered: bool | None = None,
                 lifetime_s: float | None = None, max_retransmissions: int | None = None,
                 fragment: bool = False, max_datagram_size: int = 1200,
                 max_in_flight: int = 256, initial_rtt_s: float = 0.1,
                 max_ack_delay_s: float = 0.005, recorder: Any = None, flow: int = 0) -> None:
        if mode not in MODES:
            raise ConfigError(f"unknown reliability mode {mode!r}; use one of {', '.join(MODES)}")
        if mode == "reliable":
            if ordered is False:
                raise ConfigError("mode='reliable' is ordered; use mode='unordered' instead")
            ordered = True
        elif mode == "unordered":
            if ordered:
                raise ConfigError("mode='unordered' cannot be ordered; use mode='reliable'")
            ordered = False
        if mode == "partial" and lifetime_s is None and max_retransmissions is None:
            raise ConfigError("mode='partial' needs lifetime_s or max_retransmissions (or both)")
        if mode != "partial" and (lifetime_s is not None or max_retransmissions is not None):
            raise ConfigError(f"lifetime_s and max_retransmissions apply to mode='partial' "
                              f"only, not {mode!r}")
        if lifetime_s is not None and not (0 < lifetime_s < 1000):
            raise ConfigError(f"lifetime_s must be in (0, 1000) seconds, got {lifetime_s!r}")
        if max_retransmissions is not None and max_retransmissions < 0:
            raise ConfigError(f"max_retransmissions must be >= 0, got {max_retransmissions!r}")
        if max_in_flight < 1:
            raise ConfigError(f"max_in_flight must be >= 1 packet, got {max_in_flight!r}")
        self.mode = mode
        self.ordered = bool(ordered)
        self.lifetime_s = lifetime_s
        self.max_retransmissions = max_retransmissions
        self.fragment = fragment
        self.acked_mode = mode != "unreliable"
        self.timed = lifetime_s is not None
        self.max_datagram_size = max_datagram_size
        self.max_in_flight = max_in_flight
        self.max_ack_delay_s = max_ack_delay_s
        self.recorder = recorder
        self.flow = flow
        hdr = (_HDR_FIXED - (0 if self.acked_mode else 8) + (_HDR_FRAG if fragment else 0)
               + (_HDR_TIMED if self.timed else 0))
        self.max_payload = max_datagram_size - hdr
        if self.max_payload < 16:
            raise ConfigError(f"max_datagram_size {max_datagram_size} leaves no room for data; "
                              f"give at least {hdr + 16} bytes")
        self.rtt = RttStats(initial_rtt_s)
        self.stats = dict.fromkeys(
            ("messages_sent", "messages_acked", "messages_delivered", "messages_expired",
             "packets_sent", "packets_received", "retransmissions", "duplicates", "acks_sent",
             "acks_received", "bytes_sent", "bytes_received", "stale_dropped", "pto_count"), 0)
        # sender
        self._next_mid = 0
        self._next_pn = 0
        self._out: dict[int, _Out] = {}
        self._order: deque[int] = deque()
        self._new: deque[tuple[int, int]] = deque()
        self._retx: deque[tuple[int, int, str]] = deque()
        self._sent: dict[int, _Sent] = {}
        self._lost: dict[int, _Sent] = {}  # declared lost recently: a late ACK still counts
        self._largest_acked = -1
        self._loss_time: float | None = None
        self._last_ack_eliciting_time: float | None = None
        self._pto_count = 0
        self._deadlines: list[tuple[float, int]] = []
        self._expired: dict[int, _Out] = {}
        self._forward_sent = 0  # largest forward point put on the wire in a FORWARD frame
        self._forward_acked = 0
        self._forward_wanted = False
        self._unreliable_out: deque[bytes] = deque()
        self._noticed: set[int] = set()  # peer-reported expiries already turned into events
        # receiver
        self._rx_ranges: list[list[int]] = []
        self._ack_pending = False
        self._ack_eliciting = 0  # ack-eliciting packets received since our last ACK
        self._ack_due: float | None = None
        self._largest_rx_time = 0.0
        self._floor = 0
        self._done: set[int] = set()
        self._late: set[int] = set()  # expired here on arrival: never acknowledged
        self._notices: list[int] = []  # acknowledged here, then expired: tell the sender
        self._prune_at = 1024
        self._partial: dict[int, _Partial] = {}
        self._next_deliver = 0
        self._rx_deadlines: list[tuple[float, int]] = []
        self._highest_rx_mid = -1
        self._owd = OneWayDelay()
        self._events: deque[Event] = deque()

    # ------------------------------------------------------------------ public: sending
    def send(self, data: bytes, now: float, *, lifetime_s: float | None = None) -> int:
        """Queue one message; returns its id. ``lifetime_s`` overrides the engine's."""
        size = len(data)
        if size > self.max_payload and not self.fragment:
            raise MessageTooLarge(
                f"message of {size} bytes does not fit one datagram ({self.max_payload} bytes "
                "of payload here); open the channel with fragment=True or send smaller messages")
        mid = self._next_mid
        if mid >= _ID_LIMIT:
            raise ConfigError("this engine has sent 2**30 messages; open a new channel")
        self._next_mid = mid + 1
        if lifetime_s is None:
            lifetime_s = self.lifetime_s
        elif not self.timed:
            raise ConfigError("a per-message lifetime needs a channel opened with a lifetime "
                              "(mode='partial', lifetime=...)")
        step = self.max_payload
        if size <= step:
            frags = [bytes(data)]
        else:
            frags = [bytes(data[i:i + step]) for i in range(0, size, step)]
        self.stats["messages_sent"] += 1
        if self.recorder is not None:
            self._row(now, K_MESSAGE_SENT, mid, size)
        if not self.acked_mode:
            count = len(frags)
            for i, frag in enumerate(frags):
                self._unreliable_out.append(self._data_packet(None, mid, i, count, frag, now,
                                                              None))
            return mid
        out = _Out(mid, frags, size, now, lifetime_s)
        self._out[mid] = out
        self._order.append(mid)
        if lifetime_s is not None:
            heapq.heappush(self._deadlines, (out.deadline, mid))
        for i in range(len(frags)):
            self._new.append((mid, i))
        return mid

    def abandon(self, message_id: int, now: float) -> bool:
        """Stop sending message ``message_id`` (reported as expired, reason ``"cancelled"``).
        Returns False if it was already acknowledged or abandoned."""
        m = self._out.get(message_id)
        if m is None:
            return False
        self._abandon(m, now, "cancelled")
        return True

    @property
    def held_messages(self) -> int:
        """Complete messages from the peer waiting in the in-order buffer."""
        return sum(1 for p in self._partial.values() if p.data is not None)

    @property
    def notices_outstanding(self) -> int:
        """Expiry notices to the peer not yet acknowledged (see NOTICE)."""
        return len(self._notices) + sum(1 for s in self._sent.values() if s.notice is not None)

    @property
    def queued_packets(self) -> int:
        """Packets waiting to go out (new and retransmissions): the channel's backpressure."""
        return len(self._new) + len(self._retx) + len(self._unreliable_out)

    @property
    def in_flight(self) -> int:
        """Unacknowledged packets."""
        return len(self._sent)

    @property
    def unfinished(self) -> int:
        """Messages sent but neither acknowledged nor abandoned (acknowledged modes)."""
        return len(self._out)

    def datagrams_to_send(self, now: float) -> list[bytes]:
        """Datagram payloads to transmit now (acks first, then retransmissions, then new)."""
        out: list[bytes] = []
        ack = None
        if self._ack_pending and (self._ack_eliciting >= 2 or self._ack_due is None
                                  or self._ack_due <= now):
            ack = self._ack_frame(now)
            out.append(ack)
        if not self.acked_mode:
            if self._unreliable_out:
                n = len(self._unreliable_out)
                out.extend(self._unreliable_out)
                self._unreliable_out.clear()
                self.stats["packets_sent"] += n
            return out
        if self._notices:
            out.append(self._notice_packet(now))
        n_before = len(out)
        sent = self._sent
        limit = self.max_in_flight
        retx = self._retx
        while retx and len(sent) < limit:
            mid, idx, trigger = retx.popleft()
            m = self._out.get(mid)
            if m is None or m.acked[idx]:
                continue
            out.append(self._send_fragment(m, idx, now))
            self.stats["retransmissions"] += 1
            if self.recorder is not None:
                self._row(now, K_MESSAGE_RETRANSMITTED, mid, len(m.frags[idx]),
                          {"fragment": idx, "trigger": trigger, "retransmission": m.retx[idx]})
        new = self._new
        while new and len(sent) < limit:
            mid, idx = new.popleft()
            m = self._out.get(mid)
            if m is None or m.acked[idx]:
                continue
            out.append(self._send_fragment(m, idx, now))
        if self._forward_wanted:
            # DATA packets carry the forward point; a FORWARD of its own only when none
            # goes out (it also serves as an ack-eliciting probe)
            self._forward_wanted = False
            if len(out) == n_before:
                out.append(self._forward_packet(now))
        if self._ack_pending and len(out) > (ack is not None):
            # a delayed ACK rides in front of the first outgoing packet if it fits
            first = 1 if ack is not None else 0
            ack = self._ack_frame(now) if ack is None else ack
            if len(ack) + len(out[first]) <= self.max_datagram_size:
                out[first] = ack + out[first]
                if first:
                    del out[0]
            elif not first:
                out.insert(0, ack)
        return out

    # ------------------------------------------------------------------ public: receiving
    def receive_datagram(self, data: bytes, now: float) -> None:
        """Process one datagram payload from the peer."""
        if not data:
            raise ProtocolError("empty reliability datagram")
        kind = data[0] & _TYPE_MASK
        if kind == T_ACK:
            end = self._on_ack(data, now)
            if end == len(data):
                return
            data = data[end:]  # a packet carried behind the ACK
            kind = data[0] & _TYPE_MASK
            if kind == T_ACK:
                raise ProtocolError("two ACK frames in one reliability datagram")
        if kind == T_DATA:
            self._on_data(data, now)
        elif kind == T_FORWARD:
            pn, pos = decode_varint(data, 1)
            forward, pos = decode_varint(data, pos)
            self._note_rx_pn(pn, now)
            self._advance_floor(forward, now)
        elif kind == T_NOTICE:
            pn, pos = decode_varint(data, 1)
            count, pos = decode_varint(data, pos)
            self._note_rx_pn(pn, now)
            for _ in range(count):
                mid, pos = decode_varint(data, pos)
                self._on_notice(mid, now)
        else:
            raise ProtocolError(f"unknown reliability frame type {kind:#x}")

    def next_event(self) -> Event | None:
        """The next event, or None (like aioquic's ``QuicConnection.next_event``)."""
        return self._events.popleft() if self._events else None

    def events(self) -> list[Event]:
        """All pending events (and clear them)."""
        out = list(self._events)
        self._events.clear()
        return out

    # ------------------------------------------------------------------ public: timers
    def next_timer(self) -> float | None:
        """Absolute time of the next timer, or None."""
        times = []
        if self._loss_time is not None:
            times.append(self._loss_time)
        pto = self._pto_time()
        if pto is not None:
            times.append(pto)
        dl = self._deadlines
        while dl and (dl[0][1] not in self._out):
            heapq.heappop(dl)
        if dl:
            times.append(dl[0][0])
        rdl = self._rx_deadlines
        while rdl and rdl[0][1] not in self._partial:
            heapq.heappop(rdl)
        if rdl:
            times.append(rdl[0][0])
        if self._ack_pending and self._ack_due is not None:
            times.append(self._ack_due)
        return min(times) if times else None

    def on_timer(self, now: float) -> None:
        """Run every timer due at ``now`` (expiries, loss detection, probe timeout)."""
        dl = self._deadlines
        while dl and dl[0][0] <= now:
            _, mid = heapq.heappop(dl)
            m = self._out.get(mid)
            if m is not None:
                self._abandon(m, now, "lifetime")
        rdl = self._rx_deadlines
        while rdl and rdl[0][0] <= now:
            _, mid = heapq.heappop(rdl)
            p = self._partial.get(mid)
            if p is None or p.deadline > now:
                continue
            if p.data is not None and self.ordered:
                # Complete but held behind a gap: skip the gap rather than miss the deadline
                # (whatever fills the gap later would be older, hence later than its own).
                for held in sorted(m for m, q in self._partial.items()
                                   if m < mid and q.data is not None):
                    self._deliver_held(held, now)
                self._deliver_held(mid, now)
                self._next_deliver = mid + 1
                self._release_in_order(now)
            else:
                del self._partial[mid]
                self._mark_done(mid)
                self._expire_rx(mid, now, "lifetime")
        if self._loss_time is not None and self._loss_time <= now:
            self._detect_lost(now)
        pto = self._pto_time()
        if pto is not None and pto <= now:
            self._on_pto(now)

    # ------------------------------------------------------------------ sender internals
    def _data_packet(self, pn: int | None, mid: int, idx: int, count: int, frag: bytes,
                     now: float, m: _Out | None) -> bytes:
        flags = T_DATA
        parts = []
        if pn is not None:
            flags |= F_ACKED
            parts.append(encode_varint(pn))
            parts.append(encode_varint(self._forward_point()))
        parts.append(encode_varint(mid))
        if self.fragment:
            flags |= F_FRAG
            parts.append(encode_varint(idx))
            parts.append(encode_varint(count))
        if m is not None and m.lifetime is not None:
            flags |= F_TIMED
            age = max(0.0, now - m.sent_at)
            hint = self.rtt.min_rtt if self.rtt.has_sample else self.rtt.smoothed_rtt
            parts.append(encode_varint(max(0, int(now * 1e6))))
            parts.append(encode_varint(min(int(age * 1e6), _ID_LIMIT - 1)))
            parts.append(encode_varint(min(int(m.lifetime * 1e6), _ID_LIMIT - 1)))
            parts.append(encode_varint(min(int(hint * 1e6), _ID_LIMIT - 1)))
        packet = bytes((flags,)) + b"".join(parts) + frag
        self.stats["bytes_sent"] += len(packet)
        return packet

    def _send_fragment(self, m: _Out, idx: int, now: float) -> bytes:
        pn = self._next_pn
        self._next_pn = pn + 1
        frag = m.frags[idx]
        packet = self._data_packet(pn, m.mid, idx, len(m.frags), frag, now, m)
        self._sent[pn] = _Sent(pn, now, m.mid, idx, len(packet), -1)
        self._last_ack_eliciting_time = now
        self.stats["packets_sent"] += 1
        return packet

    def _forward_point(self) -> int:
        order = self._order
        out = self._out
        while order and order[0] not in out:
            order.popleft()
        return order[0] if order else self._next_mid

    def _forward_packet(self, now: float) -> bytes:
        pn = self._next_pn
        self._next_pn = pn + 1
        forward = self._forward_point()
        packet = bytes((T_FORWARD,)) + encode_varint(pn) + encode_varint(forward)
        self._sent[pn] = _Sent(pn, now, -1, 0, len(packet), forward)
        self._forward_sent = max(self._forward_sent, forward)
        self._last_ack_eliciting_time = now
        self.stats["packets_sent"] += 1
        self.stats["bytes_sent"] += len(packet)
        return packet

    def _notice_packet(self, now: float) -> bytes:
        pn = self._next_pn
        self._next_pn = pn + 1
        mids = self._notices[:128]
        del self._notices[:128]
        packet = (bytes((T_NOTICE,)) + encode_varint(pn) + encode_varint(len(mids))
                  + b"".join(encode_varint(m) for m in mids))
        self._sent[pn] = _Sent(pn, now, -2, 0, len(packet), -1, mids)
        self._last_ack_eliciting_time = now
        self.stats["packets_sent"] += 1
        self.stats["bytes_sent"] += len(packet)
        return packet

    def _on_notice(self, mid: int, now: float) -> None:
        """The peer says message ``mid`` (acknowledged) expired in its in-order buffer."""
        if mid in self._expired:
            del self._expired[mid]  # already reported expired; a late ACK must not revive it
            return
        if mid in self._noticed or mid in self._out:
            return
        self._noticed.add(mid)
        if len(self._noticed) > 2 * _EXPIRED_MEMORY:
            self._noticed = set(sorted(self._noticed)[-_EXPIRED_MEMORY:])
        self.stats["messages_expired"] += 1
        self._events.append(MessageExpired(mid, "peer", "lifetime"))
        if self.recorder is not None:
            self._row(now, K_MESSAGE_EXPIRED, mid, 0, {"side": "peer", "reason": "lifetime"})

    def _pto_time(self) -> float | None:
        if not self._sent or self._last_ack_eliciting_time is None:
            return None
        pto = self.rtt.pto_s(self.max_ack_delay_s) * (1 << min(self._pto_count, 16))
        return self._last_ack_eliciting_time + pto

    def _on_pto(self, now: float) -> None:
        """Probe timeout: retransmit the oldest outstanding data (at most two packets)."""
        self._pto_count += 1
        self.stats["pto_count"] += 1
        probes = 0
        queued = {(mid, idx) for mid, idx, _ in self._retx}
        for s in self._sent.values():
            if probes == 2:
                break
            if s.mid < 0:
                continue
            m = self._out.get(s.mid)
            if m is None or m.acked[s.index] or (s.mid, s.index) in queued:
                continue
            if self._may_retransmit(m, s.index, now, "pto"):
                queued.add((s.mid, s.index))
                probes += 1
        if probes == 0:
            # Nothing left worth resending: a FORWARD still elicits an ACK, which settles
            # the outstanding packets (and credits late deliveries of abandoned messages).
            self._forward_wanted = True
        # The probe restarts the timer from its own transmission.
        self._last_ack_eliciting_time = now

    def _may_retransmit(self, m: _Out, idx: int, now: float, trigger: str) -> bool:
        """Queue a retransmission of fragment ``idx`` unless the message's limits forbid it."""
        limit = self.max_retransmissions
        if limit is not None and m.retx[idx] >= limit:
            self._abandon(m, now, "retransmissions")
            return False
        if m.deadline != float("inf"):
            # A copy that cannot arrive before the deadline is not worth sending.
            hint = self.rtt.min_rtt if self.rtt.has_sample else self.rtt.smoothed_rtt
            if now + hint / 2 > m.deadline:
                return False
        m.retx[idx] += 1
        self._retx.append((m.mid, idx, trigger))
        return True

    def _abandon(self, m: _Out, now: float, reason: str) -> None:
        if m.done:
            return
        m.done = True
        del self._out[m.mid]
        self._expired[m.mid] = m
        if len(self._expired) > _EXPIRED_MEMORY:
            del self._expired[next(iter(self._expired))]
        self.stats["messages_expired"] += 1
        self._events.append(MessageExpired(m.mid, "sender", reason))
        if self.recorder is not None:
            self._row(now, K_MESSAGE_EXPIRED, m.mid, m.size,
                      {"side": "sender", "reason": reason, "age_s": now - m.sent_at})
        if self._forward_point() > self._forward_sent:
            self._forward_wanted = True

    def _on_ack(self, data: bytes, now: float) -> int:
        """Process the ACK frame at the start of ``data``; returns where it ends."""
        largest, pos = decode_varint(data, 1)
        delay_us, pos = decode_varint(data, pos)
        count, pos = decode_varint(data, pos)
        first, pos = decode_varint(data, pos)
        if first > largest:
            raise ProtocolError("malformed ACK frame (range below zero)")
        self.stats["acks_received"] += 1
        lows = [largest - first]
        highs = [largest]
        low = largest - first
        for _ in range(count):
            gap, pos = decode_varint(data, pos)
            length, pos = decode_varint(data, pos)
            high = low - gap - 2
            low = high - length
            if low < 0:
                raise ProtocolError("malformed ACK frame (range below zero)")
            lows.append(low)
            highs.append(high)
        if largest >= self._next_pn:
            raise ProtocolError(f"ACK for packet {largest} that was never sent")
        lows.reverse()
        highs.reverse()
        sent = self._sent
        # Both the ranges and the sent packets are in ascending packet-number order: merge.
        matched: list[int] = []
        i = 0
        for pn in sent:
            if pn > largest:
                break
            while highs[i] < pn:
                i += 1
            if lows[i] <= pn:
                matched.append(pn)
        newly = [sent.pop(pn) for pn in matched]
        # Packets declared lost too early (reordering) still acknowledge their data.
        lost = self._lost
        if lost:
            horizon = now - 4 * max(self.rtt.smoothed_rtt, self.rtt.latest_rtt)
            stale = []
            matched = []
            for pn, s in lost.items():
                if s.time < horizon:
                    stale.append(pn)
                elif lows[0] <= pn <= largest:
                    j = bisect_right(lows, pn) - 1
                    if pn <= highs[j]:
                        matched.append(pn)
            for pn in stale:
                del lost[pn]
            for pn in matched:
                self._credit(lost.pop(pn), now)
        if not newly:
            return pos
        if largest > self._largest_acked:
            self._largest_acked = largest
        last = newly[-1]
        if last.pn == largest:
            self.rtt.update(max(now - last.time, 1e-6), delay_us / 1e6, now,
                            max_ack_delay_s=self.max_ack_delay_s)
        self._pto_count = 0
        for s in newly:
            self._credit(s, now)
        self._detect_lost(now)
        return pos

    def _credit(self, s: _Sent, now: float) -> None:
        """The peer received packet ``s``: mark its fragment (or forward point) acknowledged."""
        if s.mid < 0:
            if s.forward > self._forward_acked:
                self._forward_acked = s.forward
            return
        m = self._out.get(s.mid)
        late = False
        if m is None:
            m = self._expired.get(s.mid)
            late = True
            if m is None:
                return
        if m.acked[s.index]:
            return
        m.acked[s.index] = True
        m.n_acked += 1
        if m.n_acked == len(m.frags):
            self._on_message_acked(m, now, late)

    def _on_message_acked(self, m: _Out, now: float, late: bool) -> None:
        latency = now - m.sent_at
        if late:
            del self._expired[m.mid]
        else:
            m.done = True
            del self._out[m.mid]
        self.stats["messages_acked"] += 1
        self._events.append(MessageAcked(m.mid, latency, late))
        rec = self.recorder
        if rec is not None:
            rtt = self.rtt
            rec.append(now, K_MESSAGE_ACKED, 0, self.flow, m.mid, NO_STREAM, m.size,
                       NO_BYTES_U32, NO_BYTES_U32, NO_BYTES_U32, rtt.smoothed_rtt,
                       rtt.min_rtt if rtt.has_sample else NAN, rtt.latest_rtt, rtt.rttvar,
                       NAN, NAN)
            rec.set_extra(len(rec) - 1, {"latency_s": latency, "late": late} if late
                          else {"latency_s": latency})

    def _detect_lost(self, now: float) -> None:
        """RFC 9002 section 6.1: packet and time thresholds."""
        self._loss_time = None
        largest = self._largest_acked
        if largest < 0:
            return
        rtt = self.rtt
        loss_delay = max(K_TIME_THRESHOLD * max(rtt.latest_rtt, rtt.smoothed_rtt),
                         K_GRANULARITY_S)
        lost: list[_Sent] = []
        for s in self._sent.values():
            if s.pn > largest:
                break
            t = s.time + loss_delay  # same expression as the timer: no rounding stalemate
            if t <= now or largest - s.pn >= K_PACKET_THRESHOLD:
                lost.append(s)
            elif self._loss_time is None or t < self._loss_time:
                self._loss_time = t
        for s in lost:
            del self._sent[s.pn]
            self._lost[s.pn] = s
            if s.notice is not None:
                self._notices.extend(s.notice)  # resend what the lost NOTICE said
                continue
            if s.mid < 0:
                if s.forward > self._forward_acked and self._forward_point() > self._forward_acked:
                    self._forward_wanted = True
                continue
            m = self._out.get(s.mid)
            if m is None or m.acked[s.index]:
                continue
            trigger = "packet_threshold" if largest - s.pn >= K_PACKET_THRESHOLD else "time"
            self._may_retransmit(m, s.index, now, trigger)

    # ------------------------------------------------------------------ receiver internals
    def _note_rx_pn(self, pn: int, now: float) -> None:
        self._ack_pending = True
        self._ack_eliciting += 1
        if self._ack_due is None:
            self._ack_due = now + self.max_ack_delay_s
        ranges = self._rx_ranges
        if ranges and pn != ranges[-1][1] + 1:
            self._ack_due = now  # a gap or a reordering: acknowledge at once (RFC 9000 13.2.1)
        if not ranges or pn > ranges[-1][1] + 1:
            ranges.append([pn, pn])
            self._largest_rx_time = now
            if len(ranges) > _MAX_RX_RANGES:
                del ranges[0]
            return
        last = ranges[-1]
        if pn == last[1] + 1:
            last[1] = pn
            self._largest_rx_time = now
            return
        # Out of order or duplicate: insert and merge.
        i = bisect_right([r[0] for r in ranges], pn) - 1
        if i >= 0 and ranges[i][0] <= pn <= ranges[i][1]:
            return
        if i >= 0 and ranges[i][1] + 1 == pn:
            ranges[i][1] = pn
        elif i + 1 < len(ranges) and ranges[i + 1][0] - 1 == pn:
            ranges[i + 1][0] = pn
            return
        else:
            ranges.insert(i + 1, [pn, pn])
            return
        if i + 1 < len(ranges) and ranges[i + 1][0] == ranges[i][1] + 1:
            ranges[i][1] = ranges[i + 1][1]
            del ranges[i + 1]

    def _ack_frame(self, now: float) -> bytes:
        self._ack_pending = False
        self._ack_eliciting = 0
        self._ack_due = None
        ranges = self._rx_ranges[-MAX_ACK_RANGES:]
        lo, hi = ranges[-1]
        delay_us = max(0, int((now - self._largest_rx_time) * 1e6))
        parts = [bytes((T_ACK,)), encode_varint(hi), encode_varint(delay_us),
                 encode_varint(len(ranges) - 1), encode_varint(hi - lo)]
        prev_lo = lo
        for lo, hi in reversed(ranges[:-1]):
            parts.append(encode_varint(prev_lo - hi - 2))
            parts.append(encode_varint(hi - lo))
            prev_lo = lo
        self.stats["acks_sent"] += 1
        return b"".join(parts)

    def _mark_done(self, mid: int) -> None:
        done = self._done
        done.add(mid)
        if len(done) > self._prune_at:
            floor = self._floor
            self._done = {m for m in done if m >= floor}
            self._prune_at = max(1024, 2 * len(self._done))

    def _advance_floor(self, forward: int, now: float) -> None:
        if forward <= self._floor:
            return
        self._floor = forward
        # Anything incomplete below the floor was abandoned by the sender: forget it.
        for mid in [m for m, p in self._partial.items() if m < forward and p.data is None]:
            del self._partial[mid]
        if self.ordered and self._next_deliver < forward:
            for mid in sorted(m for m in self._partial if m < forward):
                self._deliver_held(mid, now)
            self._next_deliver = forward
            self._release_in_order(now)

    def _on_data(self, data: bytes, now: float) -> None:
        flags = data[0]
        pos = 1
        self.stats["packets_received"] += 1
        self.stats["bytes_received"] += len(data)
        pn = -1
        if flags & F_ACKED:
            pn, pos = decode_varint(data, pos)
            forward, pos = decode_varint(data, pos)
        else:
            forward = -1
        mid, pos = decode_varint(data, pos)
        if flags & F_FRAG:
            idx, pos = decode_varint(data, pos)
            count, pos = decode_varint(data, pos)
            if count == 0 or idx >= count:
                raise ProtocolError(f"bad fragment {idx}/{count} in reliability datagram")
        else:
            idx, count = 0, 1
        age = None
        deadline = float("inf")
        if flags & F_TIMED:
            tx_us, pos = decode_varint(data, pos)
            age_us, pos = decode_varint(data, pos)
            life_us, pos = decode_varint(data, pos)
            hint_us, pos = decode_varint(data, pos)
            owd = self._owd.observe(tx_us / 1e6, now, hint_us / 1e6)
            age = age_us / 1e6 + owd
            # Times travel in whole microseconds (2 us against rounding), and the one-way
            # delay estimate can be short by the path's asymmetry (see owd.py).
            deadline = now + life_us / 1e6 - age - 2e-6 - deadline_margin_s(life_us / 1e6)
        if mid in self._late:
            # Never acknowledge a message that expired here: the sender then reports it
            # expired too, so both ends agree on what was delivered.
            self.stats["duplicates"] += 1
            return
        if forward > self._floor:
            self._advance_floor(forward, now)
        elif not self.acked_mode and mid > self._highest_rx_mid:
            self._highest_rx_mid = mid
            if mid - _UNRELIABLE_WINDOW > self._floor:
                self._advance_floor(mid - _UNRELIABLE_WINDOW, now)
        if mid < self._floor:
            # Below the sender's forward point: acknowledged or abandoned there. Never
            # acknowledge it again, or an abandoned message would look delivered.
            self.stats["duplicates"] += 1
            return
        if mid in self._done:
            if pn >= 0:
                self._note_rx_pn(pn, now)  # our earlier ACK may have been lost
            self.stats["duplicates"] += 1
            return
        p = self._partial.get(mid)
        skipped = self.ordered and self.acked_mode and mid < self._next_deliver
        if deadline < now or (p is not None and p.deadline < now) or skipped:
            # Too late (or overtaken by a gap skip): never delivered, never acknowledged.
            if p is not None:
                del self._partial[mid]
            self._mark_done(mid)
            self._late.add(mid)
            if len(self._late) > 2 * _EXPIRED_MEMORY:
                self._late = set(sorted(self._late)[-_EXPIRED_MEMORY:])
            self._expire_rx(mid, now, "skipped" if skipped else "late")
            return
        if pn >= 0:
            self._note_rx_pn(pn, now)
        if p is None:
            p = _Partial(count, deadline, age, now)
            self._partial[mid] = p
            if deadline != float("inf"):
                heapq.heappush(self._rx_deadlines, (deadline, mid))
        elif p.data is not None or p.count != count:
            self.stats["duplicates"] += 1
            return
        if p.frags[idx] is not None:
            self.stats["duplicates"] += 1
            return
        p.frags[idx] = bytes(data[pos:])
        p.have += 1
        if p.have < p.count:
            return
        p.data = p.frags[0] if p.count == 1 else b"".join(p.frags)  # type: ignore[arg-type]
        p.frags = []
        if not self.ordered:
            self._deliver_held(mid, now)
        elif not self.acked_mode:
            # Sequenced: deliver unless a newer message was already delivered.
            if mid >= self._next_deliver:
                self._next_deliver = mid + 1
                self._deliver_held(mid, now)
            else:
                del self._partial[mid]
                self._mark_done(mid)
                self.stats["stale_dropped"] += 1
                self._events.append(MessageDropped(mid, "stale"))
                if self.recorder is not None:
                    self._row(now, K_MESSAGE_DROPPED, mid, len(p.data), {"reason": "stale"})
        elif mid == self._next_deliver:
            self._release_in_order(now)

    def _release_in_order(self, now: float) -> None:
        partial = self._partial
        done = self._done
        while True:
            mid = self._next_deliver
            p = partial.get(mid)
            if p is not None and p.data is not None:
                self._deliver_held(mid, now)
            elif mid not in done:  # missing (or incomplete): wait for it or for a skip
                return
            self._next_deliver = mid + 1

    def _deliver_held(self, mid: int, now: float) -> None:
        p = self._partial.pop(mid, None)
        if p is None or p.data is None:
            return
        self._mark_done(mid)
        if p.deadline < now:
            self._expire_rx(mid, now, "lifetime")
            if self.acked_mode:
                self._notices.append(mid)  # we acknowledged it on arrival
            return
        latency = None if p.age_at_arrival is None else p.age_at_arrival + (now - p.arrival)
        self.stats["messages_delivered"] += 1
        self._events.append(MessageDelivered(mid, p.data, latency))
        rec = self.recorder
        if rec is not None:
            if latency is None:
                self._row(now, K_MESSAGE_DELIVERED, mid, len(p.data))
            else:
                self._row(now, K_MESSAGE_DELIVERED, mid, len(p.data), {"latency_s": latency})

    def _expire_rx(self, mid: int, now: float, reason: str) -> None:
        self._events.append(MessageExpired(mid, "receiver", reason))
        if self.recorder is not None:
            self._row(now, K_MESSAGE_EXPIRED, mid, 0, {"side": "receiver", "reason": reason})

    # ------------------------------------------------------------------ tracing
    def _row(self, now: float, kind: int, mid: int, nbytes: int,
             extra: dict[str, Any] | None = None) -> None:
        rec = self.recorder
        rec.append(now, kind, 0, self.flow, mid, NO_STREAM, nbytes, NO_BYTES_U32, NO_BYTES_U32,
                   NO_BYTES_U32, NAN, NAN, NAN, NAN, NAN, NAN)
        if extra is not None:
            rec.set_extra(len(rec) - 1, extra)
