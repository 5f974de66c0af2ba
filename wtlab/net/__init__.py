"""wtlab.net"""

# Path models (helper E1): links, loss models, buffers, traces.
from wtlab.net.link import Buffer, CoDel, Link, LinkSpec, LinkStats  # noqa: E402, F401
from wtlab.net.loss import Bernoulli, DropIndices, GilbertElliott  # noqa: E402, F401
from wtlab.net.path import Path  # noqa: E402, F401
from wtlab.net.traces import MahimahiTrace  # noqa: E402, F401

# Virtual-time network (helper E2), loaded on first use (it pulls in aioquic and pandas):
#
#     from wtlab.net import Path, VirtualNetwork, emulate
#     from wtlab.lab.workloads import Bulk
#     net = VirtualNetwork(Path.symmetric(rate_bps="10mbit", rtt_s="40ms", loss="1%", seed=1))
#     flow = net.add_flow("cubic", Bulk(duration_s=10, direction="down"))
#     net.step(kinds="packet_acked")      # one ack: a dict with cwnd, srtt_s, state, ...
#     net.step(kinds="packet_lost")       # then one loss
#     net.run(until=10.0)                 # the rest, in virtual seconds
#     df = net.recorder.to_pandas()       # every event of every flow
#     res = emulate(path, cc=["reno", "cubic", "bbr"], until_s=10.0)  # one call, 3 flows
#     res.metrics(from_s=2.0)             # goodput, utilisation, mean cwnd, queueing delay
_E2_LAZY = {
    "VirtualNetwork": "wtlab.net.network",
    "Flow": "wtlab.net.network",
    "VirtualTimeLoop": "wtlab.net.vtime",
    "SimulationStalled": "wtlab.net.vtime",
    "emulate": "wtlab.net.emulate",
    "EmulationResult": "wtlab.net.emulate",
    "flow_metrics": "wtlab.net.emulate",
    "jain_index": "wtlab.net.emulate",
}


def __getattr__(name: str):
    module = _E2_LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'wtlab.net' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
