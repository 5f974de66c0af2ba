"""ECN inside aioquic: the one contained seam (RFC 9000 section 13.4, RFC 9002 section 7.1).

aioquic 1.7.2 parses ACK_ECN frames but throws the counts away, never writes them, and
``QuicConnection.receive_datagram(data, addr, now)`` has no codepoint argument. This
module adds ECN to one connection, on that connection's objects only (never on
aioquic's classes), after :func:`wtlab.cc.aioquic.attach`:

==================================  =========================================================
aioquic internal it wraps           what ECN needs from it
==================================  =========================================================
``quic._payload_received``          receiver: count the datagram's codepoint for each packet
                                    of it that was processed (not duplicates), per packet-
                                    number space (13.4.1); a CE-marked ack-eliciting packet
                                    is acknowledged at once (``ack_at`` just before now, 13.2.1)
``quic._write_ack_frame``           receiver: write ACK_ECN (type 0x03, three more varints)
                                    whenever the space's counts are not all zero (19.3.2);
                                    aioquic's own writer otherwise
ACK frame handlers (0x02, 0x03)     ``quic._QuicConnection__frame_handlers``; sender: read
                                    the counts of an ACK_ECN frame before aioquic's handler
                                    parses (and drops) them, then validate once the frame's
                                    acks and losses are handled
``recovery.on_packet_sent``         sender: tag each sent packet with the codepoint of the
                                    datagram it leaves in (``packet.ecn``)
``recovery._cc.on_packet_acked``    sender: count newly acknowledged ECT packets per frame
``recovery._cc.on_packets_lost``    sender: losses of packets marked while testing (A.4)
``quic.datagrams_to_send``          sender: end the testing period between batches, so one
                                    batch of datagrams carries one codepoint
==================================  =========================================================

The driver (:class:`wtlab.transport.driver.Endpoint`) does the rest: it hands each
datagram's codepoint to :meth:`EcnSeam.receive_datagram` and sends each batch with
:attr:`EcnSeam.tx_codepoint`. ``tests/cc/test_aioquic_ecn.py`` fails loudly when an
aioquic release moves any of these internals.

Sender side (RFC 9000 13.4.2, RFC 9002 7.1 and B.7): :class:`wtlab.cc.ecn.EcnValidator`
decides; its state changes reach the controller as ``on_ecn_validation`` (an
``ecn_validation`` row) and every validated frame's feedback as ``on_ecn_feedback``
(an ``ecn_counts`` row; a CE increase is the congestion signal). One order differs
from RFC 9002's pseudocode: the ECN feedback of an ACK frame is handled after the
losses that frame revealed (aioquic detects them inside its ACK handler); both are
congestion events of the same recovery period, so the window sees one reduction.
"""

from __future__ import annotations

import math
from typing import Any

from aioquic import tls
from aioquic.buffer import UINT_VAR_MAX_SIZE
from aioquic.quic.connection import ACK_FRAME_CAPACITY
from aioquic.quic.packet import QuicFrameType, pull_ack_frame, push_ack_frame

from wtlab.cc.ecn import CE, ECT0, ECT1, NOT_ECT, SPACES, EcnCounts, EcnValidator
from wtlab.errors import ConfigError

__all__ = ["EcnSeam", "enable_ecn"]

ACK_ECN_FRAME_CAPACITY = ACK_FRAME_CAPACITY + 3 * UINT_VAR_MAX_SIZE
_FRAME_HANDLERS = "_QuicConnection__frame_handlers"


def _space_index(quic: Any, space: Any) -> int:
    if space.is_application_data:
        return 2
    return 0 if quic._spaces.get(tls.Epoch.INITIAL) is space else 1


def _epoch_index(epoch: Any) -> int:
    if epoch == tls.Epoch.INITIAL:
        return 0
    if epoch == tls.Epoch.HANDSHAKE:
        return 1
    return 2  # 0-RTT and 1-RTT share the application space


class EcnSeam:
    """ECN state of one aioquic connection: receiver counts and sender validation.

    ``counts`` (:class:`wtlab.cc.ecn.EcnCounts`): what this endpoint received, reported
    in its ACK_ECN frames. ``validator`` (:class:`wtlab.cc.ecn.EcnValidator`): the state
    of this endpoint's own marking. ``acks_ecn_sent`` counts ACK_ECN frames written.
    """

    def __init__(self, quic: Any, controller: Any) -> None:
        self.quic = quic
        self.controller = controller
        self.counts = EcnCounts()
        codepoint = getattr(controller, "ecn_codepoint", NOT_ECT)
        self.validator = EcnValidator(codepoint)
        self.rx_codepoint = NOT_ECT
        self.acks_ecn_sent = 0
        self.largest_acked = [-1, -1, -1]
        # the ACK frame being handled
        self._frame_counts: tuple[int, int, int] | None = None
        self._frame_largest = -1
        self._acked_ect0 = self._acked_ect1 = self._acked_bytes = 0
        self._largest_sent_time = 0.0

    @property
    def tx_codepoint(self) -> int:
        """The codepoint of the datagrams this connection sends now."""
        return self.validator.tx_codepoint

    def receive_datagram(self, data: bytes, addr: Any, now: float, codepoint: int) -> None:
        """``quic.receive_datagram`` for a datagram that arrived with ``codepoint``."""
        self.rx_codepoint = codepoint
        try:
            self.quic.receive_datagram(data, addr, now=now)
        finally:
            self.rx_codepoint = NOT_ECT

    # ---------------------------------------------------------------- state changes
    def _state_changed(self, now: float, change: tuple[str, str] | None) -> None:
        if change is None:
            return
        old, new = change
        controller = self.controller
        if controller is not None:
            controller.on_ecn_validation(now, old, new, self.validator.reason)

    def _end_frame(self, now: float, epoch: Any) -> None:
        space = _epoch_index(epoch)
        largest = self._frame_largest
        advanced = largest > self.largest_acked[space]
        if advanced:
            self.largest_acked[space] = largest
        ect0, ect1 = self._acked_ect0, self._acked_ect1
        res = self.validator.on_ack(space, self._frame_counts, advanced, ect0, ect1,
                                    self._acked_bytes)
        self._state_changed(now, res.state_change)
        controller = self.controller
        if (controller is not None and res.validated and self.validator.state != "failed"
                and (res.acked_ect or res.ce_increase)):
            controller.on_ecn_feedback(now, res.acked_ect, res.acked_ect_bytes,
                                       res.ce_increase, self._largest_sent_time,
                                       res.counts, pn=largest, epoch=SPACES[space])
            shim = getattr(self.quic._loss, "_wtlab_shim", None)
            if shim is not None and shim.pacer is not None:
                shim.pacer.refresh()


def enable_ecn(quic: Any, controller: Any = None) -> EcnSeam:
    """Give ``quic`` (an aioquic ``QuicConnection`` with a wtlab controller attached by
    :func:`wtlab.cc.aioquic.attach`) ECN: receiver counts and ACK_ECN, and, when the
    controller marks (``controller.ecn_codepoint``), the sender's marking, validation and
    congestion response. Call before the connection sends anything. Returns the seam
    (also ``quic._wtlab_ecn``)."""
    recovery = quic._loss
    shim = getattr(recovery, "_wtlab_shim", None)
    if shim is None:
        raise ConfigError("enable_ecn() needs wtlab.cc.aioquic.attach() on the connection "
                          "first")
    if getattr(quic, "_wtlab_ecn", None) is not None:
        raise ConfigError("ECN is already enabled on this connection")
    handlers = getattr(quic, _FRAME_HANDLERS, None)
    if not isinstance(handlers, dict) or 0x02 not in handlers or 0x03 not in handlers:
        raise ConfigError("this aioquic has no per-connection ACK frame handlers: "
                          "wtlab.cc.aioquic_ecn needs updating for it")
    if controller is None:
        controller = shim.controller
    seam = EcnSeam(quic, controller)
    quic._wtlab_ecn = seam
    _wrap_receiver(quic, seam)
    _wrap_sender(quic, seam, recovery, shim, handlers)
    return seam


# ------------------------------------------------------------------------ receiver
def _wrap_receiver(quic: Any, seam: EcnSeam) -> None:
    counts = seam.counts
    orig_payload_received = quic._payload_received

    def _payload_received(context: Any, plain: bytes, crypto_frame_required: bool = False
                          ) -> tuple[bool, bool]:
        result = orig_payload_received(context, plain,
                                       crypto_frame_required=crypto_frame_required)
        cp = seam.rx_codepoint
        if cp:
            epoch = context.epoch
            counts.on_packet(_epoch_index(epoch), cp)
            if cp == CE and result[0]:
                # RFC 9000 13.2.1: acknowledge a CE-marked packet without delay. Due one ulp
                # *before* now: aioquic holds an ACK due exactly now behind its pacer (and a
                # timer at that same instant would find the same), an overdue one it sends.
                space = quic._spaces[tls.Epoch.ONE_RTT if epoch == tls.Epoch.ZERO_RTT
                                     else epoch]
                space.ack_at = math.nextafter(context.time, -math.inf)
        return result

    quic._payload_received = _payload_received

    orig_write_ack_frame = quic._write_ack_frame

    def _write_ack_frame(builder: Any, space: Any, now: float) -> None:
        report = counts.report(_space_index(quic, space))
        if report is None:
            orig_write_ack_frame(builder=builder, space=space, now=now)
            return
        # aioquic's ACK frame, as type ACK_ECN with the space's three counts after it
        ack_delay = now - space.largest_received_time
        ack_delay_encoded = int(ack_delay * 1000000) >> quic._local_ack_delay_exponent
        buf = builder.start_frame(QuicFrameType.ACK_ECN, capacity=ACK_ECN_FRAME_CAPACITY,
                                  handler=quic._on_ack_delivery,
                                  handler_args=(space, space.largest_received_packet))
        ranges = push_ack_frame(buf, space.ack_queue, ack_delay_encoded,
                                builder.remaining_buffer_space - 3 * UINT_VAR_MAX_SIZE)
        for value in report:
            buf.push_uint_var(value)
        space.ack_at = None
        seam.acks_ecn_sent += 1
        logger = quic._quic_logger
        if logger is not None:
            frame = logger.encode_ack_frame(ranges=list(space.ack_queue)[-ranges:],
                                            delay=ack_delay)
            frame.update(ect0=report[0], ect1=report[1], ce=report[2])
            builder.quic_logger_frames.append(frame)
        if ranges > 1 and builder.packet_number % 8 == 0:
            quic._write_ping_frame(builder, comment="ACK-of-ACK trigger")

    quic._write_ack_frame = _write_ack_frame


# -------------------------------------------------------------------------- sender
def _wrap_sender(quic: Any, seam: EcnSeam, recovery: Any, shim: Any, handlers: dict) -> None:
    validator = seam.validator

    def make_handler(orig: Any) -> Any:
        def handle_ack_frame(context: Any, frame_type: int, buf: Any) -> None:
            pos = buf.tell()
            counts = None
            try:
                rangeset, _ = pull_ack_frame(buf)
                largest = rangeset.bounds().stop - 1
                if frame_type == QuicFrameType.ACK_ECN:
                    counts = (buf.pull_uint_var(), buf.pull_uint_var(), buf.pull_uint_var())
            except Exception:  # noqa: BLE001 - aioquic's handler reports the encoding error
                largest = -1
            buf.seek(pos)
            seam._frame_counts = counts
            seam._frame_largest = largest
            seam._acked_ect0 = seam._acked_ect1 = seam._acked_bytes = 0
            orig(context, frame_type, buf)
            if largest >= 0:
                seam._end_frame(context.time, context.epoch)

        return handle_ack_frame

    for frame_type in (0x02, 0x03):
        orig, epochs = handlers[frame_type]
        handlers[frame_type] = (make_handler(orig), epochs)

    orig_on_packet_sent = recovery.on_packet_sent

    def on_packet_sent(*, packet: Any, space: Any) -> None:
        cp = validator.tx_codepoint
        packet.ecn = cp
        packet.ecn_testing = validator.state == "testing"
        if cp:
            validator.on_packet_sent(_space_index(quic, space), cp)
        orig_on_packet_sent(packet=packet, space=space)

    recovery.on_packet_sent = on_packet_sent

    orig_on_packet_acked = shim.on_packet_acked

    def on_packet_acked(*, now: float, packet: Any) -> None:
        cp = getattr(packet, "ecn", NOT_ECT)
        if cp == ECT0:
            seam._acked_ect0 += 1
            seam._acked_bytes += packet.sent_bytes
        elif cp == ECT1:
            seam._acked_ect1 += 1
            seam._acked_bytes += packet.sent_bytes
        seam._largest_sent_time = packet.sent_time
        orig_on_packet_acked(now=now, packet=packet)

    shim.on_packet_acked = on_packet_acked

    orig_on_packets_lost = shim.on_packets_lost

    def on_packets_lost(*, now: float, packets: Any) -> None:
        packets = list(packets)
        testing = sum(1 for p in packets if getattr(p, "ecn_testing", False)
                      and getattr(p, "ecn", NOT_ECT))
        orig_on_packets_lost(now=now, packets=packets)
        if testing:
            seam._state_changed(now, validator.on_packets_lost(testing))

    shim.on_packets_lost = on_packets_lost

    orig_datagrams_to_send = quic.datagrams_to_send

    def datagrams_to_send(now: float) -> list:
        seam._state_changed(now, validator.end_of_batch())
        return orig_datagrams_to_send(now)

    quic.datagrams_to_send = datagrams_to_send
