"""Parse and format the quantities of a path: rates, durations, sizes, fractions.

Numbers (int or float) are always taken in base units: bit/s, seconds, bytes,
and fractions in [0, 1]. Strings carry a unit:

* rates: ``"10mbit"``, ``"10Mbit/s"``, ``"10mbps"``, ``"500kbit"``, ``"1gbit"``;
  ``bit``/``bps``/``b/s`` are bits per second in any case. Only an upper-case
  ``B`` means bytes per second (``"1MB/s"``, ``"1MBps"`` = 8 Mbit/s). Unlike
  ``tc``, lower-case ``mbps`` is megabits, as most people mean it. A bare
  number string is bit/s.
* durations: ``"25ms"``, ``"0.5s"``, ``"100us"``, ``"1min"``. A bare number
  string is refused (is ``"25"`` seconds or milliseconds?).
* sizes: ``"1500"``, ``"1500B"``, ``"64KB"``, ``"64kB"``, ``"64KiB"``, ``"1MB"``,
  ``"512kbit"``; ``k``/``M``/``G`` are powers of 1000, ``Ki``/``Mi``/``Gi`` of
  1024. A bare number string is bytes.
* fractions: ``"1%"``, ``"0.5 %"``, ``"0.01"``.
* loss probabilities (:func:`parse_loss`): as fractions, except that a bare number
  of 0.1 or more must be written in percent (``loss=0.5`` is refused: is it 50 %
  or half a percent? write ``"50%"`` or ``"0.5%"``).

Every parser takes ``name`` (e.g. ``"--rate"`` or ``"rate_bps"``) and raises
:class:`wtlab.ConfigError` naming it, with the accepted forms.
"""

from __future__ import annotations

import math
import re

from wtlab.errors import ConfigError

_NUMBER = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z/%]*)\s*$")

_RATE_PREFIX = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}
_DURATION = {"s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
             "ms": 1e-3, "msec": 1e-3, "millisecond": 1e-3, "milliseconds": 1e-3,
             "us": 1e-6, "usec": 1e-6, "microsecond": 1e-6, "microseconds": 1e-6,
             "ns": 1e-9, "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0}
_SIZE_PREFIX = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3,
                "ki": 1024, "mi": 1024**2, "gi": 1024**3}


def _split(text: str, name: str, what: str, examples: str) -> tuple[float, str]:
    m = _NUMBER.match(text)
    if m is None:
        raise ConfigError(f"{name}: cannot read {text!r} as {what}; write e.g. {examples}")
    return float(m.group(1)), m.group(2)


def _check_number(value: float, name: str, what: str, *, allow_zero: bool = True) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        need = "a positive" if not allow_zero else "a non-negative"
        raise ConfigError(f"{name}: {value!r} is not {need} finite {what}")
    return value


def _strip_bits(unit: str) -> str:
    low = unit.lower()
    for suffix in ("bits", "bit", "b"):
        if low.endswith(suffix):
            return unit[: -len(suffix)]
    return unit


def parse_rate(value: str | float | int, name: str = "rate") -> float:
    """Rate in bit/s (> 0) from a number (bit/s) or a string such as ``"10mbit"``."""
    examples = "'10mbit', '10Mbit/s', '500kbps' or a number of bit/s"
    if isinstance(value, bool):
        raise ConfigError(f"{name}: {value!r} is not a rate; write e.g. {examples}")
    if isinstance(value, int | float):
        return _check_number(value, name, "rate in bit/s", allow_zero=False)
    if not isinstance(value, str):
        raise ConfigError(f"{name}: {value!r} is not a rate; write e.g. {examples}")
    number, unit = _split(value, name, "a rate", examples)
    per_byte = False
    u = unit
    if u.endswith("/s"):
        u = u[:-2]
        if u.endswith("B"):
            per_byte, u = True, u[:-1]
        else:
            u = _strip_bits(u)
    elif u.endswith("Bps"):
        per_byte, u = True, u[:-3]
    elif u.lower().endswith("bps"):
        u = u[:-3]
    else:
        u = _strip_bits(u)
    prefix = _RATE_PREFIX.get(u.lower())
    if prefix is None:
        raise ConfigError(f"{name}: unknown rate unit {unit!r} in {value!r}; write e.g. {examples}")
    rate = number * prefix * (8.0 if per_byte else 1.0)
    return _check_number(rate, name, "rate in bit/s", allow_zero=False)


def parse_duration(value: str | float | int, name: str = "duration") -> float:
    """Duration in seconds (>= 0) from a number (seconds) or a string such as ``"25ms"``."""
    examples = "'25ms', '0.5s', '100us' or a number of seconds"
    if isinstance(value, bool):
        raise ConfigError(f"{name}: {value!r} is not a duration; write e.g. {examples}")
    if isinstance(value, int | float):
        return _check_number(value, name, "duration in seconds")
    if not isinstance(value, str):
        raise ConfigError(f"{name}: {value!r} is not a duration; write e.g. {examples}")
    number, unit = _split(value, name, "a duration", examples)
    if not unit:
        raise ConfigError(f"{name}: {value!r} has no unit; write e.g. {examples}")
    scale = _DURATION.get(unit.lower())
    if scale is None:
        raise ConfigError(f"{name}: unknown duration unit {unit!r} in {value!r}; "
                          f"write e.g. {examples}")
    return _check_number(number * scale, name, "duration")


def parse_size(value: str | float | int, name: str = "size") -> int:
    """Size in bytes (>= 0, rounded down) from a number or a string such as ``"64KB"``."""
    examples = "'1500B', '64KB', '64KiB', '1MB' or a number of bytes"
    if isinstance(value, bool):
        raise ConfigError(f"{name}: {value!r} is not a size; write e.g. {examples}")
    if isinstance(value, int | float):
        return int(_check_number(value, name, "size in bytes"))
    if not isinstance(value, str):
        raise ConfigError(f"{name}: {value!r} is not a size; write e.g. {examples}")
    number, unit = _split(value, name, "a size", examples)
    u = unit.lower()
    bits = False
    if u.endswith("bytes"):
        u = u[:-5]
    elif u.endswith("bit") or u.endswith("bits"):
        bits, u = True, u[: -4 if u.endswith("bits") else -3]
    elif u.endswith("b"):
        u = u[:-1]
    prefix = _SIZE_PREFIX.get(u)
    if prefix is None:
        raise ConfigError(f"{name}: unknown size unit {unit!r} in {value!r}; write e.g. {examples}")
    size = number * prefix / (8 if bits else 1)
    return int(_check_number(size, name, "size in bytes"))


def parse_fraction(value: str | float | int, name: str = "fraction") -> float:
    """A probability in [0, 1] from a number or a string such as ``"1%"`` or ``"0.01"``."""
    examples = "'1%', '0.5%' or a number in [0, 1]"
    if isinstance(value, bool):
        raise ConfigError(f"{name}: {value!r} is not a fraction; write e.g. {examples}")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        number, unit = _split(value, name, "a fraction", examples)
        if unit == "%":
            number /= 100.0
        elif unit:
            raise ConfigError(f"{name}: unknown unit {unit!r} in {value!r}; write e.g. {examples}")
    else:
        raise ConfigError(f"{name}: {value!r} is not a fraction; write e.g. {examples}")
    if not (0.0 <= number <= 1.0):
        raise ConfigError(f"{name}: {value!r} is outside [0, 1] (0%..100%); write e.g. {examples}")
    return number


LOSS_NUMBER_LIMIT = 0.1  # bare numbers at or above this need the percent form


def parse_loss(value: str | float | int, name: str = "loss") -> float:
    """A packet-loss probability in [0, 1]: a fraction (``0.01``) or percent (``"1%"``).

    A bare number (or number string) of 0.1 or more raises :class:`~wtlab.ConfigError`:
    ``loss=0.5`` meant as half a percent would silently drop half the packets. Write
    such rates in percent (``"50%"``), or pass ``Bernoulli(0.5)`` to say it explicitly.
    """
    p = parse_fraction(value, name)
    is_percent = isinstance(value, str) and value.strip().endswith("%")
    if p >= LOSS_NUMBER_LIMIT and not is_percent:
        raise ConfigError(
            f"{name}={value!r} would drop {p:.0%} of packets; loss probabilities of "
            f"{LOSS_NUMBER_LIMIT:g} or more must be written in percent: {name}='{p * 100:g}%' "
            f"if you mean it, or {name}='{p:g}%' for {p:g} percent "
            "(Bernoulli(p) also says it explicitly)")
    return p


def format_rate(rate_bps: float) -> str:
    """Short human form: ``10e6 -> '10mbit'``, ``1.5e6 -> '1.5mbit'``."""
    for scale, unit in ((1e9, "gbit"), (1e6, "mbit"), (1e3, "kbit")):
        if rate_bps >= scale:
            return f"{rate_bps / scale:.6g}{unit}"
    return f"{rate_bps:.6g}bit"


def format_duration(seconds: float) -> str:
    """Short human form: ``0.025 -> '25ms'``."""
    if seconds == 0:
        return "0s"
    if seconds >= 1:
        return f"{seconds:.6g}s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.6g}ms"
    return f"{seconds * 1e6:.6g}us"
