"""The qlog vocabulary wtlab writes and reads: versions, event names, field mappings.

Two flavours are written (see :mod:`wtlab.trace.qlog_write`):

* ``"ietf"``: draft-ietf-quic-qlog-main-schema-14 (file and trace layout, JSON and
  JSON-SEQ) with the QUIC events of draft-ietf-quic-qlog-quic-events-13, declared as
  ``urn:ietf:params:qlog:events:quic-13`` (a draft must name its number).
* ``"legacy"``: qlog 0.3 (draft-ietf-quic-qlog-main-schema-02 with the event names of
  draft-ietf-quic-qlog-quic-events-01: ``transport:``/``recovery:`` categories,
  ``recovery:metrics_updated`` with ``congestion_window``), which qvis reads.

The reader (:mod:`wtlab.trace.qlog_read`) knows these names, the ones used up to
quic-events-12 (``loss_timer_updated``, ``length`` in the data-moved events,
``recovery:``/``transport:`` categories), draft-00 event arrays and the stack-specific
spellings listed in ``EVENT_ALIASES``.
"""

from __future__ import annotations

FLAVOURS = ("ietf", "legacy")
RS = "\x1e"

MAIN_SCHEMA_DRAFT = "draft-ietf-quic-qlog-main-schema-14"
QUIC_EVENTS_DRAFT = "draft-ietf-quic-qlog-quic-events-13"
QUIC_EVENTS_URI = "urn:ietf:params:qlog:events:quic-13"
# kinds qlog has no event for are wtlab:<kind>, declared under wtlab's own URI (a private
# schema must not use the urn:ietf:params:qlog form, main schema Section 7.1)
WTLAB_EVENTS_URI = "urn:wtlab:qlog:events:wtlab"
FILE_SCHEMA_CONTAINED = "urn:ietf:params:qlog:file:contained"
FILE_SCHEMA_SEQUENTIAL = "urn:ietf:params:qlog:file:sequential"
SERIALIZATION_JSON = "application/qlog+json"
SERIALIZATION_JSON_SEQ = "application/qlog+json-seq"
LEGACY_VERSION = "0.3"

# wtlab kind -> (ietf event name, legacy event name); kinds not listed are wtlab:<kind>
EVENT_NAMES: dict[str, tuple[str, str]] = {
    "packet_sent": ("quic:packet_sent", "transport:packet_sent"),
    "packet_received": ("quic:packet_received", "transport:packet_received"),
    # the ACK frame a sender received: a packet_received carrying it (qvis reads that)
    "ack_received": ("quic:packet_received", "transport:packet_received"),
    "packet_lost": ("quic:packet_lost", "recovery:packet_lost"),
    "packet_acked": ("quic:packets_acked", "transport:packets_acked"),
    "metrics_updated": ("quic:recovery_metrics_updated", "recovery:metrics_updated"),
    "cwnd_changed": ("quic:recovery_metrics_updated", "recovery:metrics_updated"),
    "rtt_sample": ("quic:recovery_metrics_updated", "recovery:metrics_updated"),
    "pacing_changed": ("quic:recovery_metrics_updated", "recovery:metrics_updated"),
    "state_changed": ("quic:congestion_state_updated", "recovery:congestion_state_updated"),
    "pto_expired": ("quic:timer_updated", "recovery:loss_timer_updated"),
    "stream_opened": ("quic:stream_state_updated", "transport:stream_state_updated"),
    "stream_closed": ("quic:stream_state_updated", "transport:stream_state_updated"),
    "stream_reset": ("quic:stream_state_updated", "transport:stream_state_updated"),
    "stream_data_sent": ("quic:stream_data_moved", "transport:data_moved"),
    "stream_data_received": ("quic:stream_data_moved", "transport:data_moved"),
    "datagram_sent": ("quic:datagram_data_moved", "transport:data_moved"),
    "datagram_received": ("quic:datagram_data_moved", "transport:data_moved"),
    # the sender's ECN validation (RFC 9000 13.4.2): the draft's ecn_state_updated
    "ecn_validation": ("quic:ecn_state_updated", "recovery:ecn_state_updated"),
}
PACKET_KINDS = ("packet_sent", "packet_received", "packet_lost")
METRIC_KINDS = ("metrics_updated", "cwnd_changed", "rtt_sample", "pacing_changed")
STREAM_STATE_KINDS = ("stream_opened", "stream_closed", "stream_reset")
DATA_MOVED_KINDS = ("stream_data_sent", "stream_data_received", "datagram_sent",
                    "datagram_received")
STREAM_STATE = {"stream_opened": "open", "stream_closed": "closed",
                "stream_reset": "reset_received"}

# recovery_metrics_updated: (column, qlog field, RTT in s -> ms, uint64 field)
METRIC_COLUMNS: tuple[tuple[str, str, bool, bool], ...] = (
    ("min_rtt_s", "min_rtt", True, False),
    ("srtt_s", "smoothed_rtt", True, False),
    ("latest_rtt_s", "latest_rtt", True, False),
    ("rttvar_s", "rtt_variance", True, False),
    ("cwnd", "congestion_window", False, True),
    ("bytes_in_flight", "bytes_in_flight", False, True),
    ("ssthresh", "ssthresh", False, True),
    ("pacing_rate_bps", "pacing_rate", False, True),
)
# other spellings of the metrics found in real files (aioquic writes cwnd)
METRIC_ALIASES = {"cwnd": "congestion_window"}

# wtlab's loss triggers (wtlab.cc.aioquic) -> the qlog packet_lost trigger names
LOSS_TRIGGERS = {"packet_threshold": "reordering_threshold", "pto": "pto_expired"}

# packet type <-> packet number space (quic-events-13 Sections 9.6, 9.7)
PACKET_TYPES = ("initial", "handshake", "0RTT", "1RTT", "retry", "version_negotiation",
                "stateless_reset", "unknown")
SPACE_OF_TYPE = {"initial": "initial", "handshake": "handshake", "0rtt": "application_data",
                 "1rtt": "application_data"}
TYPE_OF_SPACE = {"initial": "initial", "handshake": "handshake",
                 "application_data": "1RTT", "application": "1RTT"}
# packet number space spellings seen in the wild -> the draft's names
SPACE_ALIASES = {"initial": "initial", "handshake": "handshake",
                 "application_data": "application_data", "application": "application_data",
                 "appdata": "application_data", "initialspace": "initial",
                 "handshakespace": "handshake", "appdataspace": "application_data",
                 "1rtt": "application_data", "0rtt": "application_data"}

# event names of other stacks and older drafts -> the name the reader understands
EVENT_ALIASES = {
    "loss_timer_updated": "timer_updated",
    "metrics_updated": "recovery_metrics_updated",
    "packet_ack": "packets_acked",  # mvfst: one packet per event (packet_num)
}
# packet type spellings seen in the wild (draft-00 upper case, mvfst RETRY) -> the draft's
CANONICAL_TYPES = {t.lower(): t for t in PACKET_TYPES} | {"onertt": "1RTT", "zerortt": "0RTT"}
