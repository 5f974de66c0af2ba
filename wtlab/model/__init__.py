"""The fast flow model (``engine="model"``): packet-level, event-driven, no encryption.

The same :mod:`wtlab.cc` controllers, RFC 9002 loss detection and ACK handling,
the same path models (:mod:`wtlab.net`) and the same trace schema as the
full-stack emulation, at a fraction of its cost, for large grids::

    >>> import wtlab.model
    >>> r = wtlab.model.run({"rate_bps": "10mbit", "rtt_s": "40ms", "loss": "0.5%"},
    ...                     cc="reno", duration_s=5, seed=1)
    >>> r.goodput_bps > 1e6, r.trace()["kind"].iloc[0]
    (True, 'packet_sent')

See :mod:`wtlab.model.core` for what is modelled and what is not, and
:mod:`wtlab.model.validate` for the comparison with the full-stack emulation
(``benchmarks/model.py --validate`` prints it; ``benchmarks/model.py`` the speed).
"""

from wtlab.model.api import ModelResult, run
from wtlab.model.core import Flow, FlowModel, SentPacket

__all__ = ["Flow", "FlowModel", "ModelResult", "SentPacket", "run"]
