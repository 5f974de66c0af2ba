"""Paths and networks: link models, the virtual-time network, the live relay.

Path models (sans-IO; ``Link.transmit(now, size_bytes) -> arrival times``)::

    from wtlab.net import Path
    path = Path.symmetric(rate_bps="10mbit", rtt_s="40ms", loss="1%", buffer_bdp=1, seed=1)

The virtual-time network runs wtlab's real WebTransport client and server (aioquic
underneath) over a path, deterministically, faster than real time; it loads on first
use (it pulls in aioquic and pandas)::

    from wtlab.net import VirtualNetwork, emulate
    from wtlab.transport.workloads import Bulk
    net = VirtualNetwork(path)
    flow = net.add_flow("cubic", Bulk(duration_s=10, direction="down"))
    net.step(kinds="packet_acked")      # one ack: a dict with cwnd, srtt_s, state, ...
    net.step(kinds="packet_lost")       # then one loss
    net.run(until=10.0)                 # the rest, in virtual seconds
    df = net.recorder.to_pandas()       # every event of every flow
    res = emulate(path.new(), cc=["reno", "cubic", "bbr"], until_s=10.0)  # 3 flows, one call
    res.metrics(from_s=2.0)             # goodput, utilisation, mean cwnd, queueing delay

The live relay (``wtlab.net.relay.Relay``, ``wtlab relay``) applies the same path models
in real time between a live client and server on loopback.
"""

from wtlab.net.link import Buffer, CoDel, Link, LinkSpec, LinkStats
from wtlab.net.loss import Bernoulli, DropIndices, GilbertElliott, Periodic
from wtlab.net.path import Path
from wtlab.net.traces import MahimahiTrace

_LAZY = {
    "VirtualNetwork": "wtlab.net.network",
    "Flow": "wtlab.net.network",
    "VirtualTimeLoop": "wtlab.net.vtime",
    "SimulationStalled": "wtlab.net.vtime",
    "emulate": "wtlab.net.emulate",
    "EmulationResult": "wtlab.net.emulate",
    "cellular_trace": "wtlab.net.cellular",
    "markov_trace": "wtlab.net.cellular",
    "poisson_trace": "wtlab.net.cellular",
}

__all__ = ["Bernoulli", "Buffer", "CoDel", "DropIndices", "GilbertElliott", "Link", "LinkSpec",
           "LinkStats", "MahimahiTrace", "Path", "Periodic", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'wtlab.net' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
