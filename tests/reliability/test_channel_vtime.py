"""Channels in virtual time: wtlab's own client and server over the simulated network
(deterministic, faster than real time), including outages shorter and longer than the idle
timeout."""

from __future__ import annotations

import asyncio

import pytest

import wtlab
from tests.reliability.scenario import (
    ServerSide,
    client_transfer,
    message_ids,
    payload,
    received_rows,
    sent_rows,
)
from wtlab.net.link import LinkSpec
from wtlab.net.loss import Bernoulli
from wtlab.net.network import VirtualNetwork
from wtlab.net.path import Path

pytestmark = pytest.mark.timeout(120)


def lossy(seed: int = 1, *, loss="10%", outages=(), delay="10ms") -> Path:
    spec = dict(rate_bps="20mbit", delay_s=delay, loss=loss, reorder_p=0.05,
                reorder_delay_s="5ms", duplicate_p=0.03, buffer="1bdp", outages=outages)
    if not loss:
        spec.update(loss=None, reorder_p=0.0, duplicate_p=0.0)
    return Path(down=LinkSpec(**spec), up=LinkSpec(**spec), seed=seed)


def run_virtual(path: Path, server: ServerSide, *, idle_timeout_s: float | None = None,
                until_s: float = 200.0, **transfer_kw):
    """Server on the server host, one client transfer; returns (Result, virtual end time)."""
    net = VirtualNetwork(path)
    ready: dict = {}

    async def server_main():
        async with wtlab.serve(port=4433, cert_kind="rsa",
                               routes={"/chan": server.handler}) as srv:
            if idle_timeout_s is not None:
                srv.quic_config.idle_timeout = idle_timeout_s  # advertised to the client too
            ready["cert"] = srv.cert_sha256
            await asyncio.Event().wait()

    async def client_main():
        while "cert" not in ready:
            await asyncio.sleep(0.001)  # virtual time: the server binds first
        async with wtlab.connect("https://127.0.0.1:4433/chan", cert_hashes=[ready["cert"]],
                                 cert_hash_policy="relaxed", timeout=5.0) as session:
            return await client_transfer(session, server, **transfer_kw)

    net.spawn(server_main())
    host = net.add_client()
    result = net.run_coroutine(client_main(), host=host, until=until_s)
    return result, net.now


@pytest.mark.parametrize("kw", [
    dict(mode="reliable"),
    dict(mode="unordered"),
    dict(mode="reliable", transport="datagram", fragment=True),
    dict(mode="unordered", transport="datagram", fragment=True),
], ids=lambda kw: "-".join(str(v) for v in kw.values()))
def test_reliable_modes_in_virtual_time_at_10pct_loss(kw):
    n = 200
    size = lambda i: 1 + (i * 389) % 3000  # noqa: E731
    res, _ = run_virtual(lossy(seed=2), ServerSide(dict(kw)), n=n, size=size, **kw)
    assert res.error is None and res.resolved
    ids = message_ids(res.received)
    assert sorted(ids) == list(range(n))
    assert all(m == payload(i, size(i)) for i, (_, m) in zip(ids, res.received, strict=True))
    if kw["mode"] == "reliable":
        assert ids == list(range(n))
    assert (sent_rows(res.client)["status"] == "delivered").all()


@pytest.mark.parametrize("kw", [
    dict(mode="partial", lifetime=0.05),
    dict(mode="partial", transport="datagram", lifetime=0.05, ordered=True),
    dict(mode="partial", transport="datagram", max_retransmissions=1),
], ids=lambda kw: "-".join(str(v) for v in kw.values()))
def test_partial_modes_in_virtual_time(kw):
    n = 300
    res, _ = run_virtual(lossy(seed=4, loss="15%"), ServerSide(dict(kw)), n=n,
                         size=lambda i: 300, gap_s=0.002, **kw)
    assert res.error is None and res.resolved
    sent = sent_rows(res.client)
    rx = received_rows(res.server)
    delivered = rx[rx["status"] == "delivered"]
    if "lifetime" in kw:  # the virtual clock is exact: no slack at all
        assert ((delivered["done_s"] - sent.loc[delivered.index, "sent_s"])
                <= kw["lifetime"]).all()
    assert set(sent["status"]) <= {"delivered", "expired"}
    assert set(sent.index[sent["status"] == "delivered"]) == set(delivered.index)
    assert 0 < len(delivered) < n
    if kw.get("ordered"):
        ids = message_ids(res.received)
        assert ids == sorted(ids)


def test_unreliable_in_virtual_time_delivers_about_one_minus_p():
    n, p = 1000, 0.10
    path = Path(down=LinkSpec(rate_bps="20mbit", delay_s="10ms", loss=Bernoulli(p)),
                up=LinkSpec(rate_bps="20mbit", delay_s="10ms", loss=Bernoulli(p)), seed=9)
    res, _ = run_virtual(path, ServerSide(dict(mode="unreliable")), n=n,
                         size=lambda i: 1000, gap_s=0.001, mode="unreliable")
    got = len(set(message_ids(res.received)))
    assert abs(got / n - (1 - p)) < 0.04, got  # sd 0.0095 for 1000 trials


@pytest.mark.parametrize("kw", [dict(mode="reliable"),
                                dict(mode="reliable", transport="datagram")],
                         ids=["stream", "datagram"])
def test_three_second_outage_session_survives_everything_arrives(kw):
    n = 400
    path = lossy(seed=3, loss=0.0, outages=[(1.0, 4.0)])
    res, end = run_virtual(path, ServerSide(dict(kw)), n=n, size=lambda i: 500, gap_s=0.005,
                           **kw)
    assert res.error is None and res.server_error is None, "the session survived"
    assert message_ids(res.received) == list(range(n))
    assert (sent_rows(res.client)["status"] == "delivered").all()
    times = [t for t, _ in res.received]
    assert any(t > 4.0 for t in times) and any(t < 1.0 for t in times)  # spans the outage
    dropped = path.up.stats.dropped_outage + path.down.stats.dropped_outage
    assert dropped > 0


@pytest.mark.parametrize("kw", [dict(mode="reliable"), dict(mode="unordered"),
                                dict(mode="reliable", transport="datagram")],
                         ids=["ordered-stream", "unordered-stream", "datagram"])
def test_outage_longer_than_idle_timeout_ends_with_typed_error(kw):
    n = 400
    path = lossy(seed=5, loss=0.0, outages=[(1.0, 60.0)])
    res, end = run_virtual(path, ServerSide(dict(kw)), idle_timeout_s=2.0, n=n,
                           size=lambda i: 500, gap_s=0.005, resolve_timeout_s=30.0, **kw)
    assert isinstance(res.error, wtlab.SessionClosed)
    assert isinstance(res.server_error, wtlab.SessionClosed)
    assert end < 30.0, "the idle timeout ended it, not a test timeout"
    sent = sent_rows(res.client)
    rx = received_rows(res.server)
    assert set(sent["status"]) <= {"delivered", "failed"}, "no message left pending"
    delivered_rx = set(rx.index[rx["status"] == "delivered"])
    delivered_tx = set(sent.index[sent["status"] == "delivered"])
    # The receiver's report is exact; the sender's confirmations are a subset of it (acks
    # in flight when the path died are the only difference), and nothing else was delivered.
    assert delivered_tx <= delivered_rx <= set(sent.index)
    assert 0 < len(delivered_rx) < len(sent)
    assert len(delivered_rx - delivered_tx) <= 64
    if kw["mode"] == "reliable":
        assert sorted(delivered_rx) == list(range(len(delivered_rx)))  # a prefix, in order


def test_virtual_time_runs_are_deterministic():
    """Same seed, same code: the same per-message fates and times, to the microsecond."""
    kw = dict(mode="partial", transport="datagram", lifetime=0.05, ordered=True)
    runs = []
    for _ in range(2):
        res, _ = run_virtual(lossy(seed=8, loss="15%"), ServerSide(dict(kw)), n=150,
                             size=lambda i: 300, gap_s=0.002, **kw)
        runs.append((res.client[["message_id", "status", "done_s"]],
                     res.server[["message_id", "status", "done_s"]]))
    for a, b in zip(runs[0], runs[1], strict=True):
        assert a.equals(b)
    assert (runs[0][0]["status"] == "expired").any()  # the run did lose messages
