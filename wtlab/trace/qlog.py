"""qlog out and in: the public face of :mod:`wtlab.trace.qlog_write`,
:mod:`wtlab.trace.qlog_read` and :mod:`wtlab.trace.qlog_acks`.

Writing (:func:`~wtlab.trace.qlog_write.write_qlog`, :func:`~wtlab.trace.qlog_write.to_qlog`) follows draft-ietf-quic-qlog-main-schema-14
with the events of draft-ietf-quic-qlog-quic-events-13 (``flavour="ietf"``, default) or
qlog 0.3 as qvis reads it (``flavour="legacy"``); JSON, or JSON-SEQ for ``.sqlog``;
streamed, atomic, umask-respecting. Reading (:func:`~wtlab.trace.qlog_read.read_qlog`,
:func:`~wtlab.trace.qlog_read.parse_qlog`)
takes qlog from aioquic, quic-go, picoquic (single and multipath), mvfst, the IETF
drafts up to and after -12, and wtlab itself; :func:`~wtlab.trace.qlog_acks.derive_acks` turns ACK frames into
``packet_acked`` rows. See each module's docstring for what may be relied on.
"""

from wtlab.trace.qlog_acks import derive_acks
from wtlab.trace.qlog_read import QlogValueError, parse_qlog, read_qlog
from wtlab.trace.qlog_schema import (
    FLAVOURS,
    MAIN_SCHEMA_DRAFT,
    QUIC_EVENTS_DRAFT,
    QUIC_EVENTS_URI,
    RS,
    WTLAB_EVENTS_URI,
)
from wtlab.trace.qlog_write import to_qlog, write_qlog, write_qlog_to

__all__ = ["read_qlog", "parse_qlog", "write_qlog", "write_qlog_to", "to_qlog",
           "derive_acks", "QlogValueError", "FLAVOURS", "RS", "QUIC_EVENTS_URI",
           "WTLAB_EVENTS_URI", "MAIN_SCHEMA_DRAFT", "QUIC_EVENTS_DRAFT"]
