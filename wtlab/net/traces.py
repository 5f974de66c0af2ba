"""Mahimahi link traces: reading, checking, writing.

A Mahimahi trace has one line per *delivery opportunity*, the line being an
integer millisecond timestamp; a repeated timestamp means several opportunities
in that millisecond. Timestamps never decrease, the last one is > 0, and the
file repeats forever with a period equal to its last timestamp (so a file
holding just ``1`` is a 12 Mbit/s link: one 1500-byte opportunity per ms).

Each opportunity carries ``opportunity_bytes`` bytes (1500 by default, the
figure the trace capacities are quoted with; Mahimahi's code uses 1504: pass
``opportunity_bytes=1504`` for byte-exact Mahimahi). How packets use them is the
link's business, see :class:`wtlab.net.link.Link`.

Malformed files raise :class:`wtlab.TraceFormatError` naming the file and the
1-based line.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path as FsPath

from wtlab.errors import ConfigError, TraceFormatError

MAHIMAHI_OPPORTUNITY_BYTES = 1500


class MahimahiTrace:
    """A delivery-opportunity schedule, repeating with period ``period_ms``.

    ``timestamps_ms`` is the tuple of opportunity times within one period.
    ``capacity_bps`` is the mean rate: opportunities x opportunity_bytes x 8 /
    period. Instances are immutable and can be shared by any number of links.
    """

    __slots__ = ("timestamps_ms", "period_ms", "opportunity_bytes", "name", "source")

    def __init__(self, timestamps_ms: Sequence[int], *, opportunity_bytes: int =
                 MAHIMAHI_OPPORTUNITY_BYTES, name: str | None = None,
                 source: str | None = None) -> None:
        stamps = tuple(int(t) for t in timestamps_ms)
        where = source or name or "<trace>"
        if not stamps:
            raise TraceFormatError("trace has no delivery opportunities; a Mahimahi trace "
                                   "needs at least one millisecond timestamp line", path=where)
        for i, t in enumerate(stamps):
            if t < 0:
                raise TraceFormatError(f"negative timestamp {t}", path=where, line=i + 1)
            if i and t < stamps[i - 1]:
                raise TraceFormatError(f"timestamp {t} is smaller than the previous one "
                                       f"({stamps[i - 1]}); timestamps must never decrease",
                                       path=where, line=i + 1)
        if stamps[-1] <= 0:
            raise TraceFormatError("the last timestamp must be > 0 (it is the period after "
                                   "which the trace repeats)", path=where, line=len(stamps))
        if not isinstance(opportunity_bytes, int) or opportunity_bytes <= 0:
            raise ConfigError(f"opportunity_bytes: {opportunity_bytes!r} must be a positive "
                              "integer (1500, or Mahimahi's 1504)")
        self.timestamps_ms = stamps
        self.period_ms = stamps[-1]
        self.opportunity_bytes = opportunity_bytes
        self.name = name or (os.path.basename(source) if source else "trace")
        self.source = source

    # construction --------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike, *, opportunity_bytes: int =
             MAHIMAHI_OPPORTUNITY_BYTES) -> MahimahiTrace:
        """Read a Mahimahi trace file (cached by path, size and mtime)."""
        fspath = os.fspath(path)
        try:
            st = os.stat(fspath)
        except OSError as exc:
            raise ConfigError(f"trace file {fspath!r} cannot be read ({exc.strerror}); "
                              "give the path of a Mahimahi trace") from None
        stamps = _read_stamps(os.path.realpath(fspath), st.st_size, st.st_mtime_ns, fspath)
        trace = cls.__new__(cls)
        # _read_stamps already checked the file; skip re-validation of a big tuple.
        trace.timestamps_ms = stamps
        trace.period_ms = stamps[-1]
        if not isinstance(opportunity_bytes, int) or opportunity_bytes <= 0:
            raise ConfigError(f"opportunity_bytes: {opportunity_bytes!r} must be a positive "
                              "integer (1500, or Mahimahi's 1504)")
        trace.opportunity_bytes = opportunity_bytes
        trace.name = os.path.basename(fspath)
        trace.source = fspath
        return trace

    @classmethod
    def constant(cls, rate_bps: float, *, opportunity_bytes: int =
                 MAHIMAHI_OPPORTUNITY_BYTES, period_ms: int = 1000) -> MahimahiTrace:
        """A constant-rate trace (opportunities spread evenly over ``period_ms``)."""
        per_period = rate_bps * period_ms / 1000.0 / (8 * opportunity_bytes)
        n = round(per_period)
        if n < 1:
            raise ConfigError(f"rate_bps: {rate_bps} is below one opportunity per {period_ms} ms; "
                              "use a longer period_ms")
        stamps = [max(1, round((i + 1) * period_ms / n)) for i in range(n)]
        return cls(stamps, opportunity_bytes=opportunity_bytes,
                   name=f"constant-{rate_bps:g}bps")

    def save(self, path: str | os.PathLike) -> None:
        """Write as a Mahimahi file (atomically, mode per the umask: 0644 under 022)."""
        from wtlab.trace.files import write_text

        write_text(path, "\n".join(map(str, self.timestamps_ms)) + "\n")

    # properties ----------------------------------------------------------------
    @property
    def opportunities(self) -> int:
        """Delivery opportunities per period."""
        return len(self.timestamps_ms)

    @property
    def period_s(self) -> float:
        """The period in seconds."""
        return self.period_ms / 1000.0

    @property
    def capacity_bps(self) -> float:
        """Mean capacity over one period, bit/s."""
        return len(self.timestamps_ms) * self.opportunity_bytes * 8 * 1000.0 / self.period_ms

    def capacity_bytes(self, start_s: float, end_s: float) -> int:
        """Bytes the link can carry in opportunities with start_s < t <= end_s."""
        return self.opportunities_between(start_s, end_s) * self.opportunity_bytes

    def opportunities_between(self, start_s: float, end_s: float) -> int:
        """Number of opportunities at times t with start_s < t <= end_s."""
        from bisect import bisect_right

        stamps, period, n = self.timestamps_ms, self.period_ms, len(self.timestamps_ms)

        def upto(t_s: float) -> int:  # opportunities at times <= t_s (t >= 0)
            t_ms = t_s * 1000.0
            cycle = int(t_ms // period)
            return cycle * n + bisect_right(stamps, t_ms - cycle * period)

        return upto(end_s) - upto(start_s)

    def describe(self) -> dict:
        """The trace as plain data (name, source, capacity, period, opportunities)."""
        return {"trace": self.name, "trace_source": self.source,
                "trace_capacity_bps": self.capacity_bps, "trace_period_s": self.period_s,
                "trace_opportunities": self.opportunities,
                "opportunity_bytes": self.opportunity_bytes}

    def __repr__(self) -> str:
        return (f"MahimahiTrace({self.name!r}, {self.opportunities} opportunities, "
                f"period {self.period_s:g} s, {self.capacity_bps / 1e6:.3f} Mbit/s)")

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, MahimahiTrace) and self.timestamps_ms == other.timestamps_ms
                and self.opportunity_bytes == other.opportunity_bytes)

    def __hash__(self) -> int:
        return hash((self.timestamps_ms, self.opportunity_bytes))


@lru_cache(maxsize=16)
def _read_stamps(realpath: str, size: int, mtime_ns: int, shown: str) -> tuple[int, ...]:
    try:
        with open(realpath, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise ConfigError(f"trace file {shown!r} cannot be read ({exc.strerror})") from None
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise TraceFormatError("non-ASCII byte; a Mahimahi trace holds one integer "
                               "millisecond timestamp per line", path=shown, line=line) from None
    lines = text.split("\n")
    while lines and lines[-1].strip() == "":  # trailing newline(s) are fine
        lines.pop()
    stamps: list[int] = []
    append = stamps.append
    prev = 0
    for i, line in enumerate(lines):
        s = line.strip()
        if not s.isdigit():
            what = "an empty line" if not s else f"{s[:40]!r}"
            raise TraceFormatError(f"expected one integer millisecond timestamp, found {what}",
                                   path=shown, line=i + 1)
        t = int(s)
        if t < prev:
            raise TraceFormatError(f"timestamp {t} is smaller than the previous one ({prev}); "
                                   "timestamps must never decrease", path=shown, line=i + 1)
        prev = t
        append(t)
    if not stamps:
        raise TraceFormatError("the file holds no timestamps; a Mahimahi trace needs at least "
                               "one line", path=shown, line=None)
    if stamps[-1] <= 0:
        raise TraceFormatError("the last timestamp must be > 0 (it is the period after which the "
                               "trace repeats)", path=shown, line=len(stamps))
    return tuple(stamps)


def as_trace(value: object, name: str = "trace") -> MahimahiTrace:
    """A MahimahiTrace from a trace or a file path."""
    if isinstance(value, MahimahiTrace):
        return value
    if isinstance(value, str | os.PathLike | FsPath):
        return MahimahiTrace.load(value)
    raise ConfigError(f"{name}: {value!r} is not a trace; pass a MahimahiTrace or the path of a "
                      "Mahimahi trace file")
