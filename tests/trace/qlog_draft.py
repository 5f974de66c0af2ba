"""A structural check of qlog files, written from the drafts' text (not from wtlab's code).

* draft-ietf-quic-qlog-main-schema-14: LogFile (Section 3), QlogFile and Trace (4, 4.2),
  QlogFileSeq and TraceSeq (5), VantagePoint (6), Event and ReferenceTime (7, 7.1),
  event schema URIs (8.1), RawInfo (10), JSON-SEQ records (11.2).
* draft-ietf-quic-qlog-quic-events-13: the event names of Table 1 and the data
  definitions of the events wtlab writes (Sections 5-8), PacketType, PacketNumberSpace,
  PacketHeader, AckFrame (Section 9).
* qlog 0.3 (draft-ietf-quic-qlog-main-schema-02, quic-events-01), for the legacy
  flavour, and the fields qvis reads.

``problems_*`` return a list of human-readable problems (empty: conforms).
"""

from __future__ import annotations

import json
import re
from typing import Any

# quic-events-13, Table 1 (Section 4)
QUIC13_EVENTS = {
    "server_listening", "connection_started", "connection_closed", "connection_id_updated",
    "spin_bit_updated", "connection_state_updated", "tuple_assigned", "mtu_updated",
    "version_information", "alpn_information", "parameters_set", "parameters_restored",
    "packet_sent", "packet_received", "packet_dropped", "packet_buffered", "packets_acked",
    "udp_datagrams_sent", "udp_datagrams_received", "udp_datagram_dropped",
    "stream_state_updated", "frames_created", "frames_parsed", "frames_processed",
    "stream_data_moved", "datagram_data_moved", "connection_data_blocked_updated",
    "stream_data_blocked_updated", "datagram_data_blocked_updated",
    "migration_state_updated", "timer_updated", "key_updated", "key_discarded",
    "recovery_parameters_set", "recovery_metrics_updated", "congestion_state_updated",
    "packet_lost", "marked_for_retransmit", "ecn_state_updated"}
PACKET_TYPES = {"initial", "handshake", "0RTT", "1RTT", "retry", "version_negotiation",
                "stateless_reset", "unknown"}
PN_SPACES = {"initial", "handshake", "application_data"}
STREAM_STATES = {"idle", "open", "closed", "half_closed_local", "half_closed_remote",
                 "ready", "send", "data_sent", "reset_sent", "reset_received", "receive",
                 "size_known", "data_read", "reset_read", "data_received", "destroyed"}
DATA_LOCATIONS = {"application", "transport", "network"}
TIMER_TYPES = {"ack", "pto", "loss_timeout", "path_validation", "handshake_timeout",
               "idle_timeout"}
LOSS_TRIGGERS = {"reordering_threshold", "time_threshold", "pto_expired"}
U64 = (0, 2**64 - 1)
U32 = (0, 2**32 - 1)


def _uint(v: Any, rng: tuple[int, int] = U64) -> bool:
    return type(v) is int and rng[0] <= v <= rng[1]


def _num(v: Any) -> bool:
    return type(v) in (int, float)


def _text(v: Any) -> bool:
    return isinstance(v, str)


def _obj(v: Any) -> bool:
    return isinstance(v, dict)


# data definitions: field -> (required, check); other fields are not in the definition
# (wtlab declares no extension of these events, so it must not add any)
def _raw(v: Any) -> bool:
    return _obj(v) and set(v) <= {"length", "payload_length", "data"} and all(
        _uint(v[k]) for k in ("length", "payload_length") if k in v)


def _header(v: Any) -> bool:
    allowed = {"packet_type", "packet_type_bytes", "spin_bit", "key_phase", "key_phase_bit",
               "packet_number_length", "packet_number", "token", "length", "version",
               "scil", "dcil", "scid", "dcid"}
    return (_obj(v) and v.get("packet_type") in PACKET_TYPES and set(v) <= allowed
            and ("packet_number" not in v or _uint(v["packet_number"])))


def _ack_frame(f: Any) -> bool:
    if not (_obj(f) and f.get("frame_type") == "ack"):
        return False
    if set(f) - {"frame_type", "ack_delay", "acked_ranges", "ect1", "ect0", "ce", "raw"}:
        return False
    ranges = f.get("acked_ranges", [[0]])
    return ("ack_delay" not in f or _num(f["ack_delay"])) and isinstance(ranges, list) and \
        len(ranges) >= 1 and all(isinstance(r, list) and 1 <= len(r) <= 2
                                 and all(_uint(x) for x in r) for r in ranges)


def _frames(v: Any) -> bool:
    return isinstance(v, list) and all(_obj(f) and _text(f.get("frame_type")) for f in v) \
        and all(_ack_frame(f) for f in v if f.get("frame_type") == "ack")


QUIC13_DATA: dict[str, dict[str, tuple[bool, Any]]] = {
    "packet_sent": {"header": (True, _header), "frames": (False, _frames),
                    "stateless_reset_token": (False, _text),
                    "supported_versions": (False, lambda v: isinstance(v, list)),
                    "raw": (False, _raw), "datagram_id": (False, lambda v: _uint(v, U32)),
                    "is_mtu_probe_packet": (False, lambda v: isinstance(v, bool)),
                    "trigger": (False, lambda v: v in {
                        "retransmit_reordered", "retransmit_timeout", "pto_probe",
                        "retransmit_crypto", "cc_bandwidth_probe"})},
    "packet_received": {"header": (True, _header), "frames": (False, _frames),
                        "stateless_reset_token": (False, _text),
                        "supported_versions": (False, lambda v: isinstance(v, list)),
                        "raw": (False, _raw),
                        "datagram_id": (False, lambda v: _uint(v, U32)),
                        "trigger": (False, lambda v: v == "keys_available")},
    "packets_acked": {"packet_number_space": (False, lambda v: v in PN_SPACES),
                      "packet_numbers": (False, lambda v: isinstance(v, list) and len(v) >= 1
                                         and all(_uint(x) for x in v))},
    "packet_lost": {"header": (False, _header), "frames": (False, _frames),
                    "is_mtu_probe_packet": (False, lambda v: isinstance(v, bool)),
                    "trigger": (False, lambda v: v in LOSS_TRIGGERS)},
    "recovery_metrics_updated": {
        **{k: (False, _num) for k in ("min_rtt", "smoothed_rtt", "latest_rtt",
                                      "rtt_variance")},
        "pto_count": (False, lambda v: _uint(v, (0, 65535))),
        **{k: (False, _uint) for k in ("congestion_window", "bytes_in_flight", "ssthresh",
                                       "packets_in_flight", "pacing_rate")}},
    "congestion_state_updated": {"old": (False, _text), "new": (True, _text),
                                 "trigger": (False, _text)},
    "timer_updated": {"timer_type": (False, lambda v: v in TIMER_TYPES),
                      "timer_id": (False, _uint),
                      "packet_number_space": (False, lambda v: v in PN_SPACES),
                      "event_type": (True, lambda v: v in {"set", "expired", "cancelled"}),
                      "delta": (False, _num)},
    "stream_state_updated": {"stream_id": (True, _uint),
                             "stream_type": (False, lambda v: v in {"unidirectional",
                                                                    "bidirectional"}),
                             "old": (False, lambda v: v in STREAM_STATES),
                             "new": (True, lambda v: v in STREAM_STATES),
                             "stream_side": (True, lambda v: v in {"sending", "receiving"}),
                             "trigger": (False, lambda v: v in {"local", "remote"})},
    "stream_data_moved": {"stream_id": (False, _uint), "offset": (False, _uint),
                          "from": (False, lambda v: v in DATA_LOCATIONS),
                          "to": (False, lambda v: v in DATA_LOCATIONS),
                          "additional_info": (False, lambda v: v in {"fin_set",
                                                                     "stream_reset"}),
                          "raw": (False, _raw)},
    "datagram_data_moved": {"from": (False, lambda v: v in DATA_LOCATIONS),
                            "to": (False, lambda v: v in DATA_LOCATIONS),
                            "raw": (False, _raw)},
}
# recovery_metrics_updated: "only guaranteed to contain at least one of the listed metrics"
_AT_LEAST_ONE = {"recovery_metrics_updated"}
_ABSOLUTE_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")


def _check_data(name: str, data: Any, where: str, out: list[str]) -> None:
    ns, _, ev = name.partition(":")
    if ns == "quic":
        if ev not in QUIC13_EVENTS:
            out.append(f"{where}: {name} is not an event of quic-events-13")
            return
        spec = QUIC13_DATA.get(ev)
        if spec is None:
            return
        for field, (required, check) in spec.items():
            if field not in data:
                if required:
                    out.append(f"{where}: {name} needs data.{field}")
            elif not check(data[field]):
                out.append(f"{where}: {name} data.{field} = {data[field]!r} is not valid")
        extra = set(data) - set(spec)
        if extra:
            out.append(f"{where}: {name} has fields {sorted(extra)} quic-events-13 does not "
                       "define")
        if ev in _AT_LEAST_ONE and not set(data) & set(spec):
            out.append(f"{where}: {name} holds no metric")


def _check_event(ev: Any, where: str, schemas: list[str], out: list[str]) -> None:
    if not _obj(ev):
        out.append(f"{where}: an event must be an object")
        return
    for k, check in (("time", _num), ("name", _text), ("data", _obj)):
        if k not in ev or not check(ev[k]):
            out.append(f"{where}: Event.{k} missing or of the wrong type")
            return
    ns, colon, ev_type = ev["name"].partition(":")
    if not colon or not ns or not ev_type:
        out.append(f"{where}: name {ev['name']!r} is not namespace:event_type")
        return
    if not any(ns in uri.rsplit(":", 1)[-1].split("-")[0] for uri in schemas):
        out.append(f"{where}: namespace {ns!r} has no URI in event_schemas")
    if "time_format" in ev and ev["time_format"] not in ("relative_to_epoch",
                                                           "relative_to_previous_event"):
        out.append(f"{where}: time_format {ev['time_format']!r}")
    if "group_id" in ev and not _text(ev["group_id"]):
        out.append(f"{where}: group_id must be text")
    _check_data(ev["name"], ev["data"], where, out)


def _check_trace_header(tr: Any, where: str, out: list[str]) -> list[str]:
    if not _obj(tr):
        out.append(f"{where}: a trace must be an object")
        return []
    schemas = tr.get("event_schemas")
    if not (isinstance(schemas, list) and schemas and all(_text(s) for s in schemas)):
        out.append(f"{where}: event_schemas must be a non-empty list of URIs")
        return []
    for uri in schemas:
        if not _ABSOLUTE_URI.match(uri):
            out.append(f"{where}: event schema {uri!r} is not an absolute URI")
        if uri.startswith("urn:ietf:params:qlog:events:quic") and uri not in (
                "urn:ietf:params:qlog:events:quic-13",):
            out.append(f"{where}: {uri} is not the URI of quic-events-13 (a draft names "
                       "its number)")
    vp = tr.get("vantage_point")
    if vp is not None and not (_obj(vp) and vp.get("type") in {"client", "server",
                                                                "network", "unknown"}):
        out.append(f"{where}: vantage_point.type")
    common = tr.get("common_fields") or {}
    ref = common.get("reference_time")
    if ref is not None:
        if not (_obj(ref) and _text(ref.get("epoch"))):
            out.append(f"{where}: reference_time needs clock_type and epoch")
        elif ref.get("clock_type") == "monotonic" and ref.get("epoch") != "unknown":
            out.append(f"{where}: a monotonic clock's epoch must be 'unknown'")
    if common.get("time_format", "relative_to_epoch") not in ("relative_to_epoch",
                                                               "relative_to_previous_event"):
        out.append(f"{where}: common_fields.time_format")
    return schemas


def problems_ietf(text: str) -> list[str]:
    """Problems of an IETF qlog file (JSON or JSON-SEQ) against main-schema-14 and
    quic-events-13."""
    out: list[str] = []
    if text.startswith("\x1e"):
        if not all(r.endswith("\n") for r in text.split("\x1e")[1:]):
            out.append("every JSON-SEQ record must end with a line feed (RFC 7464)")
        records = [json.loads(r) for r in text.split("\x1e") if r.strip()]
        head = records[0]
        if head.get("file_schema") != "urn:ietf:params:qlog:file:sequential":
            out.append("file_schema of a JSON-SEQ file")
        if head.get("serialization_format") != "application/qlog+json-seq":
            out.append("serialization_format of a JSON-SEQ file")
        if '"file_schema"' not in text[:256] or '"serialization_format"' not in text[:256]:
            out.append("file_schema and serialization_format SHOULD be in the first 256 bytes")
        schemas = _check_trace_header(head.get("trace"), "trace", out)
        if _obj(head.get("trace")) and "events" in head["trace"]:
            out.append("TraceSeq has no events member")
        for i, ev in enumerate(records[1:]):
            _check_event(ev, f"record {i + 1}", schemas, out)
        return out
    doc = json.loads(text)
    if doc.get("file_schema") != "urn:ietf:params:qlog:file:contained":
        out.append("file_schema of a JSON file")
    if doc.get("serialization_format") != "application/qlog+json":
        out.append("serialization_format of a JSON file")
    if '"file_schema"' not in text[:256] or '"serialization_format"' not in text[:256]:
        out.append("file_schema and serialization_format SHOULD be in the first 256 bytes")
    traces = doc.get("traces")
    if not isinstance(traces, list) or not traces:
        return [*out, "traces must be a non-empty list"]
    for t, tr in enumerate(traces):
        schemas = _check_trace_header(tr, f"trace {t}", out)
        if not isinstance(tr.get("events"), list):
            out.append(f"trace {t}: events must be a list")
            continue
        for i, ev in enumerate(tr["events"]):
            _check_event(ev, f"trace {t} event {i}", schemas, out)
    return out


# qlog 0.3 (quic-events-01): names, and the fields qvis reads
LEGACY_EVENTS = {
    "transport": {"packet_sent", "packet_received", "packets_acked", "stream_state_updated",
                  "data_moved", "parameters_set", "datagrams_sent", "datagrams_received",
                  "packet_dropped", "packet_buffered", "frames_processed"},
    "recovery": {"metrics_updated", "congestion_state_updated", "loss_timer_updated",
                 "packet_lost", "parameters_set", "marked_for_retransmit"},
}


def problems_legacy(text: str) -> list[str]:
    out: list[str] = []
    seq = text.startswith("\x1e")
    if seq:
        records = [json.loads(r) for r in text.split("\x1e") if r.strip()]
        head, events = records[0], records[1:]
        if head.get("qlog_format") != "JSON-SEQ" or not _obj(head.get("trace")):
            out.append("a 0.3 JSON-SEQ header needs qlog_format JSON-SEQ and a trace")
    else:
        head = json.loads(text)
        events = [e for tr in head.get("traces", []) for e in tr.get("events", [])]
        if head.get("qlog_format", "JSON") != "JSON":
            out.append("qlog_format")
    if head.get("qlog_version") != "0.3":
        out.append("qlog_version must be 0.3")
    if "qlog_version" not in text[:1024]:
        out.append("qvis looks for qlog_version in the first 1024 bytes")
    for i, ev in enumerate(events):
        cat, _, typ = str(ev.get("name", "")).partition(":")
        if cat == "wtlab":
            continue
        if typ not in LEGACY_EVENTS.get(cat, set()):
            out.append(f"event {i}: {ev.get('name')!r} is not a qlog 0.3 event")
            continue
        d = ev.get("data") or {}
        if typ == "metrics_updated":
            if "cwnd" in d:
                out.append(f"event {i}: 0.3 calls it congestion_window, not cwnd")
            if "pacing_rate" in d and not _uint(d["pacing_rate"]):
                out.append(f"event {i}: pacing_rate must be an integer (uint64)")
            for k in ("congestion_window", "bytes_in_flight", "ssthresh"):
                if k in d and not _uint(d[k]):
                    out.append(f"event {i}: {k} must be an integer")
        if typ in ("packet_sent", "packet_received", "packet_lost") and (
                typ != "packet_received" or "frames" not in d):
            h = d.get("header")
            if not (_obj(h) and h.get("packet_type") in PACKET_TYPES
                    and _uint(h.get("packet_number"))):
                out.append(f"event {i}: {typ} needs header.packet_type and packet_number")
        if typ == "loss_timer_updated" and d.get("event_type") not in ("set", "expired",
                                                                       "cancelled"):
            out.append(f"event {i}: loss_timer_updated.event_type")
    return out
