"""ECN for QUIC, sans-IO: codepoints, the receiver's counts, the sender's validation.

Every driver (wtlab's aioquic seam, the fast model) uses these two small state
machines, so ECN means the same in every engine.

Codepoints are the two ECN bits of the IP header (RFC 3168 section 5), as ints:

=========  =====  ===========================================================
name       value  meaning
=========  =====  ===========================================================
not-ect    0b00   the sender does not use ECN (a queue must drop, not mark)
ect1       0b01   ECN-capable, L4S (RFC 9331: a scalable controller, Prague)
ect0       0b10   ECN-capable, classic (RFC 3168 response: like a loss)
ce         0b11   Congestion Experienced: a queue marked the packet
=========  =====  ===========================================================

:class:`EcnCounts` is the receiver's side of RFC 9000 section 13.4.1: per
packet-number space, how many packets arrived with ECT(0), ECT(1) and CE (a
duplicate packet counts nothing; each packet of a coalesced datagram counts
once). The counts travel back in ACK_ECN frames.

:class:`EcnValidator` is the sender's side of RFC 9000 section 13.4.2 and its
sample algorithm (appendix A.4): states ``testing`` (the first
``TESTING_PACKETS`` packets carry the ECT codepoint), ``unknown`` (marking
paused until an ACK validates the path), ``capable`` (every packet carries it)
and ``failed`` (ECN off for the rest of the connection). Validation fails
when (13.4.2.1):

* an ACK frame newly acknowledges ECT-marked packets but carries no ECN counts
  (the path bleaches the ECN field, or the peer does not report);
* the increase of ECT(0)+CE (ECT(1)+CE) counts is smaller than the newly
  acknowledged packets sent with ECT(0) (ECT(1)): CE or ECT remarked away;
* a count exceeds the packets ever sent with that codepoint (for CE: with any
  ECT codepoint), e.g. a non-zero ECT(1) count from a sender of ECT(0) only,
  or the counts decrease: the peer reports impossible counts;
* every packet sent while testing was declared lost (appendix A.4).

Only an ACK frame that raises the largest acknowledged packet number is
validated (13.4.2.1: reordered ACKs MUST NOT fail validation); the others are
ignored. A CE increase in a validated frame is returned to the driver, which
hands it to the controller (RFC 9002 section 7.1, appendix B.7).
"""

from __future__ import annotations

from typing import Any

from wtlab.errors import ConfigError

NOT_ECT = 0b00
ECT1 = 0b01
ECT0 = 0b10
CE = 0b11

#: codepoint -> name, and back
CODEPOINT_NAMES = {NOT_ECT: "not-ect", ECT1: "ect1", ECT0: "ect0", CE: "ce"}
_BY_NAME = {"not-ect": NOT_ECT, "not_ect": NOT_ECT, "notect": NOT_ECT, "none": NOT_ECT,
            "ect1": ECT1, "ect(1)": ECT1, "l4s": ECT1,
            "ect0": ECT0, "ect(0)": ECT0, "classic": ECT0, "ce": CE}

#: packets marked while testing (RFC 9000 A.4 suggests the first ten)
TESTING_PACKETS = 10

STATES = ("testing", "unknown", "capable", "failed", "off")

#: packet-number spaces (aioquic's epochs; 0-RTT shares the application space)
SPACES = ("initial", "handshake", "application")


def as_codepoint(value: Any, name: str = "ecn") -> int:
    """The codepoint of ``value``: an int 0..3, a name (``"ect0"``, ``"ect1"``, ``"ce"``,
    ``"not-ect"``, ``"l4s"``, ``"classic"``), True (ECT(0)) or False/None (not-ECT)."""
    if value is None or value is False:
        return NOT_ECT
    if value is True:
        return ECT0
    if isinstance(value, int) and 0 <= value <= 3:
        return value
    if isinstance(value, str):
        cp = _BY_NAME.get(value.strip().lower())
        if cp is not None:
            return cp
    raise ConfigError(f"{name}: {value!r} is not an ECN codepoint; use 'ect0' (classic), "
                      "'ect1' (L4S), 'not-ect', True (ECT(0)) or False")


def is_ect(codepoint: int) -> bool:
    """ECT(0) or ECT(1): a queue may mark the packet instead of dropping it."""
    return codepoint == ECT0 or codepoint == ECT1


def is_l4s(codepoint: int) -> bool:
    """ECT(1) or CE: the L4S identifier (RFC 9331 section 5.1; DualQ's L queue)."""
    return codepoint & 1 == 1


class EcnCounts:
    """The receiver's ECN counts, per packet-number space (RFC 9000 section 13.4.1).

    ``counts[space]`` is ``[ect0, ect1, ce]``; ``space`` is 0 (initial), 1 (handshake)
    or 2 (application). ``on_packet`` adds one packet; ``report(space)`` is what an
    ACK frame of that space carries (None while all three are zero: a plain ACK).
    """

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts = [[0, 0, 0], [0, 0, 0], [0, 0, 0]]

    def on_packet(self, space: int, codepoint: int) -> None:
        """Count one packet of ``space`` that arrived with ``codepoint`` (not-ECT counts
        nothing); call it once per packet, never for a duplicate."""
        if codepoint == NOT_ECT:
            return
        c = self.counts[space]
        if codepoint == ECT0:
            c[0] += 1
        elif codepoint == ECT1:
            c[1] += 1
        else:
            c[2] += 1

    def report(self, space: int) -> tuple[int, int, int] | None:
        """The ``(ect0, ect1, ce)`` counts an ACK frame of ``space`` carries, or None while
        all three are zero (send a plain ACK)."""
        c = self.counts[space]
        if c[0] or c[1] or c[2]:
            return (c[0], c[1], c[2])
        return None


class AckEcnResult:
    """What the validator made of one ACK frame (see :meth:`EcnValidator.on_ack`)."""

    __slots__ = ("ce_increase", "acked_ect", "acked_ect_bytes", "validated", "counts",
                 "state_change", "reason")

    def __init__(self) -> None:
        self.ce_increase = 0  # new CE marks reported (a congestion signal when > 0)
        self.acked_ect = 0  # newly acknowledged packets that were sent ECT-marked
        self.acked_ect_bytes = 0
        self.validated = False  # the frame was checked (and passed)
        self.counts: tuple[int, int, int] | None = None
        self.state_change: tuple[str, str] | None = None  # (old, new)
        self.reason = ""


class EcnValidator:
    """The sender's ECN state for one path (RFC 9000 section 13.4.2 and appendix A.4).

    ``codepoint``: what the sender marks with (ECT(0) or ECT(1); not-ECT: ECN off, state
    ``"off"``). Drivers call, in this order:

    * ``tx_codepoint`` (property) for the codepoint of the datagram they send now,
      ``on_packet_sent(space, codepoint)`` for each packet in it (counts per space);
    * ``on_ack(space, counts, largest_advanced, acked_ect0, acked_ect1, acked_bytes)``
      for each ACK frame that newly acknowledged packets (counts: the frame's ECN
      counts or None for a plain ACK); it returns an :class:`AckEcnResult`;
    * ``on_packets_lost(lost_ect)`` with how many ECT-marked packets were declared lost.

    ``events`` collects state changes ``(old, new, reason)`` for the driver to record.
    """

    def __init__(self, codepoint: int = ECT0, *, testing_packets: int = TESTING_PACKETS) -> None:
        self.codepoint = as_codepoint(codepoint)
        if self.codepoint == CE:
            raise ConfigError("a sender marks ECT(0) or ECT(1), never CE")
        self.state = "off" if self.codepoint == NOT_ECT else "testing"
        self.testing_packets = int(testing_packets)
        self.sent = [[0, 0], [0, 0], [0, 0]]  # per space: packets sent with ECT(0), ECT(1)
        self.peer = [[0, 0, 0], [0, 0, 0], [0, 0, 0]]  # last validated counts per space
        self.testing_sent = 0
        self.testing_lost = 0
        self.reason = ""
        self.ce_total = 0

    # ---------------------------------------------------------------- sending
    @property
    def tx_codepoint(self) -> int:
        """The codepoint for packets sent now (not-ECT unless testing or capable)."""
        st = self.state
        return self.codepoint if st == "testing" or st == "capable" else NOT_ECT

    def end_of_batch(self) -> tuple[str, str] | None:
        """Called before a new batch of packets: testing ends after ``testing_packets``
        marked packets (so a batch never changes codepoint half-way)."""
        if self.state == "testing" and self.testing_sent >= self.testing_packets:
            return self._set("unknown", "testing period over")
        return None

    def on_packet_sent(self, space: int, codepoint: int) -> None:
        """Count one packet sent in ``space`` with ``codepoint`` (only ECT(0) and ECT(1)
        count); call it for each packet of a datagram, after :attr:`tx_codepoint`."""
        if codepoint == ECT0:
            self.sent[space][0] += 1
        elif codepoint == ECT1:
            self.sent[space][1] += 1
        else:
            return
        if self.state == "testing":
            self.testing_sent += 1

    # ---------------------------------------------------------------- feedback
    def on_packets_lost(self, lost_ect_testing: int) -> tuple[str, str] | None:
        """``lost_ect_testing`` packets marked during the testing period were declared lost."""
        if lost_ect_testing <= 0 or self.state not in ("testing", "unknown"):
            return None
        self.testing_lost += lost_ect_testing
        if self.state == "unknown" and self.testing_lost >= self.testing_sent:
            return self._fail("every packet sent ECT-marked while testing was lost")
        return None

    def on_ack(self, space: int, counts: tuple[int, int, int] | None, largest_advanced: bool,
               acked_ect0: int, acked_ect1: int, acked_bytes: int = 0) -> AckEcnResult:
        """Validate one ACK frame (13.4.2.1) and return the CE increase it carries."""
        res = AckEcnResult()
        res.counts = counts
        res.acked_ect = acked_ect0 + acked_ect1
        res.acked_ect_bytes = acked_bytes
        st = self.state
        if st == "off" or st == "failed":
            return res
        if not largest_advanced:
            return res  # reordered or duplicate: never validated, never a signal
        if counts is None:
            if acked_ect0 or acked_ect1:
                res.state_change = self._fail("an ACK frame acknowledged ECT-marked packets "
                                              "without ECN counts (ECN bleached or not "
                                              "reported)")
                res.reason = self.reason
            return res
        prev = self.peer[space]
        d0, d1, dce = counts[0] - prev[0], counts[1] - prev[1], counts[2] - prev[2]
        sent0, sent1 = self.sent[space]
        if d0 < 0 or d1 < 0 or dce < 0:
            why = "ECN counts decreased"
        elif counts[0] > sent0 or counts[1] > sent1:
            which = "ECT(0)" if counts[0] > sent0 else "ECT(1)"
            why = f"the peer reports more {which} packets than were sent with {which}"
        elif counts[2] > sent0 + sent1:
            why = "the peer reports more CE packets than were sent ECT-marked"
        elif d0 + dce < acked_ect0 or d1 + dce < acked_ect1:
            why = "fewer ECT/CE count increases than newly acknowledged ECT packets " \
                  "(the path remarks ECN)"
        else:
            why = ""
        if why:
            res.state_change = self._fail(why)
            res.reason = why
            return res
        self.peer[space] = [counts[0], counts[1], counts[2]]
        res.validated = True
        res.ce_increase = dce
        self.ce_total += dce
        if (st == "testing" or st == "unknown") and (acked_ect0 or acked_ect1):
            res.state_change = self._set("capable", "an ACK frame validated the ECN counts")
        return res

    def _fail(self, reason: str) -> tuple[str, str]:
        return self._set("failed", reason)

    def _set(self, new: str, reason: str) -> tuple[str, str]:
        old = self.state
        self.state = new
        self.reason = reason
        return (old, new)
