"""Congestion controllers: the interface, the registry and the built-ins."""

from dataclasses import dataclass

from wtlab.cc.base import HINTS, Controller, create, ecn_variant, get, names, on_register, register
from wtlab.cc.rtt import RttStats


@dataclass(slots=True)
class Packet:
    """A sent packet as controllers see it (the same attribute names as aioquic's)."""

    packet_number: int
    sent_bytes: int
    sent_time: float
    payload_bytes: int | None = None  # application payload among sent_bytes (None: unknown)


__all__ = ["HINTS", "Controller", "Packet", "RttStats", "create", "ecn_variant", "get", "names",
           "on_register", "register"]


# Built-in controllers register themselves on import (after Packet exists).
from wtlab.cc import bbr as _bbr  # noqa: E402,F401,I001
from wtlab.cc import bbr3 as _bbr3  # noqa: E402,F401
from wtlab.cc import cubic as _cubic  # noqa: E402,F401
from wtlab.cc import dctcp as _dctcp  # noqa: E402,F401
from wtlab.cc import prague as _prague  # noqa: E402,F401
from wtlab.cc import copa as _copa  # noqa: E402,F401
from wtlab.cc import ledbat as _ledbat  # noqa: E402,F401
from wtlab.cc import reno as _reno  # noqa: E402,F401
from wtlab.cc import vegas as _vegas  # noqa: E402,F401
