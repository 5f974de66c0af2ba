"""Liveness: thousands of small exchanges, live on loopback and in virtual time.

Each scenario (``tests/transport/liveness.py``) gives every step a deadline and
names the step that stalled. Before the driver's liveness invariant
(``wtlab/transport/driver.py``) a live 1 KB ping-pong stalled within a few dozen
rounds and datagram queues never drained; these tests fail on that code.
"""

from __future__ import annotations

import asyncio

import pytest

import wtlab
from tests.transport import liveness as L
from wtlab.net.network import VirtualNetwork
from wtlab.net.path import Path
from wtlab.reliability import channel_handler

pytestmark = pytest.mark.timeout(240)

CHANNELS = {
    "reliable": dict(mode="reliable"),
    "unordered": dict(mode="unordered"),
    "partial": dict(mode="partial", lifetime=2.0),
    "unreliable": dict(mode="unreliable"),
    "reliable-datagram": dict(mode="reliable", transport="datagram"),
}
ROUTES = {f"/chan-{name}": channel_handler(**kw) for name, kw in CHANNELS.items()}

SCENARIOS = {
    "pingpong-3000": lambda s: L.pingpong(s, 3000),
    "many-streams": L.many_streams,
    "mixed-bursts": L.mixed_bursts,
    "datagram-echo": L.datagram_echo,
    "datagram-queue-drains": L.datagram_queue_drains,
}


# ------------------------------------------------------------------------ live


async def live(path: str, scenario, **connect_kw):
    async with wtlab.serve(port=0, routes=ROUTES) as srv:
        async with wtlab.connect(srv.url(path), cert_hashes=[srv.cert_sha256], timeout=5,
                                 **connect_kw) as session:
            return await scenario(session)


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_live_exchanges_never_stall(name):
    assert await live("/echo", SCENARIOS[name]) > 0


@pytest.mark.parametrize("cc", ["reno", "bbr"])
async def test_live_pingpong_with_other_controllers(cc):
    # BBR paces from its own rate estimate: the pacing rule of the driver is exercised.
    assert await live("/echo", lambda s: L.pingpong(s, 1000), congestion_control=cc) == 1000


@pytest.mark.parametrize("name", list(CHANNELS))
async def test_live_channel_pingpong(name):
    rounds = await live(f"/chan-{name}", lambda s: L.channel_pingpong(s, 500, **CHANNELS[name]))
    assert rounds == 500


# ---------------------------------------------------------------- virtual time


def virtual(path: Path, route: str, scenario, *, cc: str = "cubic", until_s: float = 600.0):
    """Run ``scenario`` against wtlab's server over ``path`` in virtual time."""
    net = VirtualNetwork(path)
    ready: dict = {}

    async def server_main():
        async with wtlab.serve(port=4433, cert_kind="rsa", routes=ROUTES) as srv:
            ready["cert"] = srv.cert_sha256
            await asyncio.Event().wait()

    async def client_main():
        while "cert" not in ready:
            await asyncio.sleep(0.001)
        async with wtlab.connect(f"https://127.0.0.1:4433{route}", cert_hashes=[ready["cert"]],
                                 cert_hash_policy="relaxed",  # RSA: deterministic
                                 timeout=5.0, congestion_control=cc) as session:
            return await scenario(session)

    net.spawn(server_main())
    try:
        return net.run_coroutine(client_main(), host=net.add_client(), until=until_s)
    finally:
        net.close()


LAN = dict(rate_bps="100mbit", rtt_s="1ms", buffer_bdp=None)   # no queue limit: lossless
WAN = dict(rate_bps="10mbit", rtt_s="40ms", buffer_bdp=None)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_virtual_exchanges_never_stall(name):
    assert virtual(Path.symmetric(**LAN, seed=1), "/echo", SCENARIOS[name]) > 0


@pytest.mark.parametrize("cc", ["reno", "cubic", "bbr", "bbr3"])
def test_virtual_pingpong_on_a_paced_wan_path(cc):
    assert virtual(Path.symmetric(**WAN, seed=2), "/echo", lambda s: L.pingpong(s, 300),
                   cc=cc) == 300


@pytest.mark.parametrize("name", ["reliable", "unreliable", "reliable-datagram"])
def test_virtual_channel_pingpong(name):
    rounds = virtual(Path.symmetric(**LAN, seed=3), f"/chan-{name}",
                     lambda s: L.channel_pingpong(s, 500, **CHANNELS[name]))
    assert rounds == 500


async def test_a_stall_is_reported_with_its_step(monkeypatch):
    # The harness itself: an answer that never comes is reported as a stall of its step.
    async def unanswered(session):
        st = await session.open_bidi()
        st.write(b"x")
        await L.step(st.readexactly(2), "round 0")  # the echo has 1 byte, never 2

    monkeypatch.setattr(L, "STEP_S", 0.3)
    with pytest.raises(L.Stalled, match="round 0: no answer within 0.3 s"):
        await live("/echo", unanswered)


# ------------------------------------------------------------------ pacing bursts


def _granularity(session) -> float:
    return session._ep.quic._loss._pacer.granularity_s


async def test_live_connections_pace_in_bursts_and_still_exchange():
    # Live sockets pace in bursts (a loop pass per packet halved a CPU-bound sender on
    # loopback); both ends, and a paced controller's small exchanges still never stall.
    from wtlab.transport.udp import LIVE_PACING_GRANULARITY_S

    async with wtlab.serve(port=0, routes=ROUTES) as srv:
        async with wtlab.connect(srv.url("/echo"), cert_hashes=[srv.cert_sha256], timeout=5,
                                 congestion_control="bbr") as session:
            assert _granularity(session) == LIVE_PACING_GRANULARITY_S == 1e-3
            server_eps = list(srv._endpoints)
            assert [ep.quic._loss._pacer.granularity_s for ep in server_eps] == [1e-3]
            assert await L.pingpong(session, 300) == 300


def test_virtual_connections_pace_every_packet_on_time():
    # In virtual time the CPU costs nothing: each packet keeps its own departure time.
    async def scenario(session):
        return _granularity(session)

    assert virtual(Path.symmetric(**LAN, seed=1), "/echo", scenario) == 0.0
