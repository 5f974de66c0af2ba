"""Small deterministic traces for the trace tests (written through the real Recorder)."""

from __future__ import annotations

import random

from wtlab.trace import Recorder


def synthetic_recorder(n_packets: int = 200, *, flows: int = 1, seed: int = 0,
                       meta: dict | None = None) -> Recorder:
    """A Reno-like sender: sends, acks, a few losses, RTT samples, state changes, messages."""
    rng = random.Random(seed)
    rec = Recorder(meta=meta or {"algorithm": "reno", "seed": seed})
    t = 0.0
    for flow in range(flows):
        cwnd, inflight, srtt, min_rtt = 12000, 0, 0.05, 0.05
        state = "slow_start"
        for pn in range(n_packets):
            t += 0.001
            inflight += 1200
            rec.event(t, "packet_sent", flow=flow, pn=pn, bytes=1200, cwnd=cwnd,
                      bytes_in_flight=inflight, state=state)
            if pn % 10 == 0:
                rec.event(t, "message_sent", flow=flow, pn=pn // 10, stream_id=4 * (pn % 3),
                          bytes=5000)
            if pn >= 5:
                acked = pn - 5
                inflight -= 1200
                if rng.random() < 0.03:
                    rec.event(t, "packet_lost", flow=flow, pn=acked, bytes=1200, cwnd=cwnd,
                              bytes_in_flight=inflight, state=state,
                              extra={"trigger": "time_threshold"})
                    cwnd = max(2400, cwnd // 2)
                    state = "recovery"
                    rec.event(t, "state_changed", flow=flow, cwnd=cwnd, ssthresh=cwnd,
                              state=state)
                else:
                    latest = 0.05 + rng.random() * 0.02
                    srtt = 0.875 * srtt + 0.125 * latest
                    min_rtt = min(min_rtt, latest)
                    rec.event(t, "rtt_sample", flow=flow, latest_rtt_s=latest, srtt_s=srtt,
                              min_rtt_s=min_rtt, rttvar_s=0.003)
                    cwnd += 1200 if state == "slow_start" else 1200 * 1200 // cwnd
                    rec.event(t, "packet_acked", flow=flow, pn=acked, bytes=1200, cwnd=cwnd,
                              bytes_in_flight=inflight, srtt_s=srtt, state=state,
                              pacing_rate_bps=cwnd * 8 / srtt)
                if acked % 10 == 0:
                    rec.event(t + 0.02, "message_delivered", flow=flow, pn=acked // 10,
                              stream_id=4 * (acked % 3), bytes=5000)
    return rec


# ------------------------------------------------------------------ hypothesis strategies
def trace_strategy(max_rows: int = 40):
    """Recorders with arbitrary (valid) events: standard and custom kinds, NA anywhere."""
    from hypothesis import strategies as st

    from wtlab.trace.schema import EVENT_KINDS

    f32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
    u32 = st.integers(0, 2**32 - 2)
    custom = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_:0123456789", min_size=1,
                     max_size=12)
    row = st.fixed_dictionaries(
        {"kind": st.one_of(st.sampled_from(EVENT_KINDS), custom),
         "dt": st.floats(0, 10, allow_nan=False),
         "flow": st.integers(0, 3)},
        optional={
            "pn": st.integers(0, 2**63 - 1), "stream_id": st.integers(0, 2**31 - 1),
            "bytes": st.integers(0, 2**32 - 1), "cwnd": u32, "bytes_in_flight": u32,
            "ssthresh": u32, "srtt_s": f32, "min_rtt_s": f32, "latest_rtt_s": f32,
            "rttvar_s": f32, "pacing_rate_bps": f32, "delivery_rate_bps": f32,
            "state": st.sampled_from(["", "slow_start", "recovery", "probe_bw", "my state"]),
            "extra": st.one_of(
                st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5),
                                max_size=3),
                st.text(max_size=10)),
        })

    def build(rows):
        rec = Recorder(meta={"algorithm": "hypothesis"})
        t = 0.0
        for r in rows:
            r = dict(r)
            t += r.pop("dt")
            kind = r.pop("kind")
            rec.event(t, kind, **r)
        return rec

    return st.lists(row, max_size=max_rows).map(build)


def sort_rows(df):
    """Rows in (time, flow) order: qlog keeps per-flow order, not the interleaving."""
    return df.sort_values(["time_s", "flow"], kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------- an ACK oracle for qlog files
def _qlog_events(path):
    """(path id, name, data) of every event of a qlog file, whatever its layout (a
    deliberately plain reader, independent of wtlab's)."""
    import json

    text = open(path, encoding="utf-8-sig").read()
    if str(path).endswith(".sqlog"):  # JSON-SEQ: RS-separated or one record per line
        records = [json.loads(r) for r in text.replace("\x1e", "\n").split("\n") if r.strip()]
        return [(None, e["name"], e.get("data") or {}) for e in records[1:]]
    doc = json.loads(text)
    out = []
    for tr in doc["traces"]:
        fields = tr.get("event_fields")
        for ev in tr["events"]:
            if fields is None:
                out.append((None, ev["name"], ev.get("data") or {}))
            else:
                row = dict(zip([f.lower() for f in fields], ev, strict=True))
                out.append((row.get("path_id"),
                            f"{row['category']}:{row.get('event', row.get('event_type'))}",
                            row["data"]))
    return out


_SPACE = {"initial": "initial", "handshake": "handshake", "0rtt": "app", "1rtt": "app",
          "initialspace": "initial", "handshakespace": "handshake", "appdataspace": "app",
          "application_data": "app"}


def acked_by_file(path):
    """{(path, space, pn): bytes} of the packets the file says were acknowledged: by its
    ACK frames (ranges as numbers or strings; path_ack frames name their path) and by its
    packets_acked / packet_ack events; bytes are those of the matching packet_sent."""
    sizes, acked = {}, set()
    for path_id, name, data in _qlog_events(path):
        ev = name.rpartition(":")[2].lower()
        header = data.get("header") or {}
        ptype = str(header.get("packet_type", data.get("packet_type", "1RTT"))).lower()
        space = _SPACE.get(ptype, "app")
        if ev == "packet_sent":
            pn = int(header.get("packet_number", data.get("packet_number")))
            size = (data.get("raw") or {}).get("length", header.get("packet_size"))
            sizes[(path_id or 0, space, pn)] = int(size)
        elif ev == "packet_received":
            for fr in data.get("frames") or []:
                if "ack" not in fr.get("frame_type", "") or "acked_ranges" not in fr:
                    continue
                target = fr.get("path_id", path_id or 0) if space == "app" else (path_id or 0)
                for r in fr["acked_ranges"]:
                    lo, hi = int(r[0]), int(r[-1])
                    acked.update((target, space, pn) for pn in range(lo, hi + 1))
        elif ev in ("packets_acked", "packet_ack"):
            sp = _SPACE.get(str(data.get("packet_number_space",
                                         data.get("packet_num_space", "app"))).lower(), "app")
            for pn in data.get("packet_numbers", [data.get("packet_num")]):
                acked.add((path_id or 0, sp, int(pn)))
    return {k: sizes[k] for k in acked if k in sizes}


# ---------------------------------------------------------------- dataset readers
def _five_readers(data_dir):
    """Each reader opens the folder with no options; returns {reader: (rows, dtypes)}."""
    import dask
    import dask.dataframe as dd
    import duckdb
    import pandas as pd
    import polars as pl
    import pyarrow.dataset as pa_ds

    out = {}
    df = pd.read_parquet(data_dir)
    out["pandas"] = (len(df), {c: str(t) for c, t in df.dtypes.items()})
    t = pa_ds.dataset(data_dir).to_table()
    out["pyarrow"] = (t.num_rows, {f.name: str(f.type) for f in t.schema})
    p = pl.read_parquet(data_dir)
    out["polars"] = (p.height, {c: str(t) for c, t in p.schema.items()})
    rel = duckdb.sql(f"select * from read_parquet('{data_dir}')")
    out["duckdb"] = (duckdb.sql(f"select count(*) from read_parquet('{data_dir}')")
                     .fetchall()[0][0],
                     dict(zip(rel.columns, (str(t) for t in rel.types), strict=True)))
    with dask.config.set(scheduler="synchronous"):
        d = dd.read_parquet(str(data_dir))
        out["dask"] = (len(d), {c: str(t) for c, t in d.dtypes.items()})
    return out


NUMERIC = {"pandas": ("int64", "float64"), "pyarrow": ("int64", "double"),
           "polars": ("Int64", "Float64"), "duckdb": ("BIGINT", "DOUBLE"),
           "dask": ("int64", "float64")}
CATEGORY = {"pandas": "category", "pyarrow": "dictionary<values=string, indices=int32, "
            "ordered=0>", "polars": "Categorical", "duckdb": "VARCHAR", "dask": "category"}


def check_five_readers(root, numeric_params, text_params):
    got = _five_readers(root / "data")
    from wtlab import datasets

    rows = len(datasets.load(root))
    for reader, (n, types) in got.items():
        assert n == rows, reader
        for p in numeric_params:
            assert types[p] in NUMERIC[reader], (reader, p, types[p])
        for p in text_params:
            assert types[p] == CATEGORY[reader], (reader, p, types[p])
        assert types["kind"] == CATEGORY[reader], reader
        assert types["time_s"] in NUMERIC[reader], reader
