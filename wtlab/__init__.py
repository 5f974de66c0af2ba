"""wtlab: study and compare congestion control and reliability over QUIC/WebTransport.

Importing wtlab is light: it never imports jupyter, plotly or ipywidgets, and the
transport, lab and sweep layers load on first use.
"""

from __future__ import annotations

import importlib

from wtlab.errors import (
    CertificateError,
    ConfigError,
    ConnectTimeout,
    GridError,
    InvalidURL,
    LimitExceeded,
    MessageTooLarge,
    ProtocolError,
    SessionClosed,
    SessionRejected,
    StreamReset,
    TraceFormatError,
    UnknownAlgorithm,
    WtlabError,
)

__version__ = "0.1.0"

# name -> module that defines it; resolved lazily by __getattr__.
_LAZY = {
    "connect": "wtlab.transport.client",
    "serve": "wtlab.transport.server",
    "Recorder": "wtlab.trace.recorder",
    "Experiment": "wtlab.lab.experiment",
    "compare": "wtlab.lab.experiment",
    "sweep": "wtlab.lab.sweep",
    "Path": "wtlab.net.path",
    "PerformanceMonitor": "wtlab.trace.monitor",
    "channel_handler": "wtlab.reliability.channel",
}


# subpackages reachable as attributes (``wtlab.cc.names()``) without importing them all
_SUBMODULES = ("cc", "datasets", "lab", "model", "monitor", "net", "reliability", "trace",
               "transport")


def __getattr__(name: str):
    if name in _SUBMODULES:
        value = importlib.import_module(f"wtlab.{name}")
        globals()[name] = value
        return value
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'wtlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "CertificateError",
    "ConfigError",
    "ConnectTimeout",
    "GridError",
    "InvalidURL",
    "LimitExceeded",
    "MessageTooLarge",
    "ProtocolError",
    "SessionClosed",
    "SessionRejected",
    "StreamReset",
    "TraceFormatError",
    "UnknownAlgorithm",
    "WtlabError",
    *_LAZY,
]
