"""Paths that change during a run: a schedule of steps (rate, RTT, loss, buffer, trace, outage).

    >>> from wtlab.net.schedule import PathSchedule
    >>> s = PathSchedule([{"at_s": 5.0, "rate_bps": 5e6}, {"at_s": 8.0, "loss": "1%"}])
    >>> [c.at_s for c in s], s.to_list()[0]
    ([5.0, 8.0], {'at_s': 5.0, 'rate_bps': 5000000.0})
    >>> PathSchedule.outages([(2.0, 2.5)]).to_list()
    [{'at_s': 2.0, 'outage_s': 0.5}]

A :class:`PathChange` sets, at virtual time ``at_s``, any of: the bottleneck
``rate_bps`` (both directions, as ``Path.symmetric``), the propagation ``rtt_s``
(``rtt_s / 2`` each way), the data-direction ``loss`` (``0``: none), the ``buffer``
(``buffer_bdp`` x the BDP at the new rate and RTT, or a size such as ``"64KB"``), a
Mahimahi ``trace`` (given by its file path; the link switches to trace-driven service)
or an outage of ``outage_s`` seconds starting then. Fields left out stay as they were.
Outages and traces, which a :class:`~wtlab.net.path.Path` can also hold from the
start, are thereby special cases of a schedule.

The schedule is data: a list of small dicts (``to_list()`` / ``PathSchedule(list)``)
that an :class:`wtlab.lab.Experiment` carries, a saved widget state holds, and both
engines apply through :meth:`wtlab.net.path.Path.change` at the step's time. Each
applied step is one trace row of kind ``path_changed`` (see :func:`record_change`).
What a change does to packets already in the queue is the link's business
(:meth:`wtlab.net.link.Link.reconfigure`: they keep the times they were given).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any

from wtlab.errors import ConfigError
from wtlab.net.units import parse_duration, parse_loss, parse_rate

#: the keys a change may hold, besides ``at_s`` (and ``source``, who asked for it)
CHANGE_KEYS: tuple[str, ...] = ("rate_bps", "rtt_s", "loss", "buffer_bdp", "buffer", "trace",
                                "outage_s")


@dataclass(frozen=True)
class PathChange:
    """One step of a schedule: at ``at_s``, set the fields that are not None.

    ``source`` says who asked (``"schedule"``: given with the experiment; a widget
    writes ``"explorer"`` for a slider moved during a run); it travels into the trace
    row's ``extra``.
    """

    at_s: float
    rate_bps: float | None = None
    rtt_s: float | None = None
    loss: float | None = None
    buffer_bdp: float | None = None
    buffer: str | int | None = None
    trace: str | None = None
    outage_s: float | None = None
    source: str = "schedule"

    def __post_init__(self) -> None:
        s = object.__setattr__
        at = parse_duration(self.at_s, "at_s")
        if not (at >= 0 and math.isfinite(at)):
            raise ConfigError(f"path change at_s={self.at_s!r} must be a time >= 0 seconds")
        s(self, "at_s", at)
        if self.rate_bps is not None:
            rate = parse_rate(self.rate_bps, "rate_bps")
            if not rate > 0:
                raise ConfigError(f"path change rate_bps={self.rate_bps!r} must be > 0; for a "
                                  "link that carries nothing for a while use outage_s=")
            s(self, "rate_bps", rate)
        if self.rtt_s is not None:
            rtt = parse_duration(self.rtt_s, "rtt_s")
            if not rtt > 0:
                raise ConfigError(f"path change rtt_s={self.rtt_s!r} must be > 0 seconds")
            s(self, "rtt_s", rtt)
        if self.loss is not None:
            s(self, "loss", parse_loss(self.loss, "loss"))
        if self.buffer_bdp is not None and self.buffer is not None:
            raise ConfigError("path change: give buffer_bdp= or buffer=, not both")
        if self.buffer_bdp is not None:
            if not (isinstance(self.buffer_bdp, int | float) and self.buffer_bdp > 0):
                raise ConfigError(f"path change buffer_bdp={self.buffer_bdp!r} must be > 0")
            s(self, "buffer_bdp", float(self.buffer_bdp))
        if self.trace is not None and self.rate_bps is not None:
            raise ConfigError("path change: give rate_bps= or trace=, not both")
        if self.trace is not None and not isinstance(self.trace, str):
            src = getattr(self.trace, "source", None)
            if not src:
                raise ConfigError("path change trace=: give the trace's file path (a schedule "
                                  "is data that saves to JSON), e.g. MahimahiTrace.save() first")
            s(self, "trace", str(src))
        if self.outage_s is not None:
            length = parse_duration(self.outage_s, "outage_s")
            if not length > 0:
                raise ConfigError(f"path change outage_s={self.outage_s!r} must be > 0 seconds")
            s(self, "outage_s", length)
        if not any(getattr(self, k) is not None for k in CHANGE_KEYS):
            raise ConfigError(f"path change at {at:g} s changes nothing; set one of "
                              f"{', '.join(CHANGE_KEYS)}")

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any] | PathChange) -> PathChange:
        """The step a dict such as ``{"at_s": 5.0, "rate_bps": 5e6}`` describes (a
        PathChange is returned as is); a missing ``at_s`` or unknown key raises
        ConfigError."""
        if isinstance(spec, PathChange):
            return spec
        if not isinstance(spec, Mapping):
            raise ConfigError(f"path change {spec!r}: give a dict such as "
                              "{'at_s': 5.0, 'rate_bps': 5e6}")
        known = {f.name for f in fields(cls)}
        unknown = [k for k in spec if k not in known]
        if unknown:
            raise ConfigError(f"path change: unknown key(s) {', '.join(map(repr, unknown))}; "
                              f"valid: at_s, {', '.join(CHANGE_KEYS)}, source")
        if "at_s" not in spec:
            raise ConfigError("path change: at_s (when it happens, in seconds) is missing")
        return cls(**dict(spec))

    def changes(self) -> dict[str, Any]:
        """The fields this step sets (JSON-ready)."""
        return {k: getattr(self, k) for k in CHANGE_KEYS if getattr(self, k) is not None}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready ``at_s`` and the fields this step sets, plus ``source`` unless it is
        ``"schedule"``; :meth:`from_dict` rebuilds the step."""
        out: dict[str, Any] = {"at_s": self.at_s, **self.changes()}
        if self.source != "schedule":
            out["source"] = self.source
        return out


class PathSchedule:
    """Steps sorted by time (steps at one time keep their order). Iterable, JSON-ready."""

    def __init__(self, changes: Iterable[Mapping[str, Any] | PathChange] = ()) -> None:
        items = [PathChange.from_dict(c) for c in changes]
        self.changes: tuple[PathChange, ...] = tuple(sorted(items, key=lambda c: c.at_s))

    @classmethod
    def of(cls, spec: Any) -> PathSchedule:
        """A schedule from a PathSchedule, a list of dicts / PathChanges, or None (empty)."""
        if spec is None:
            return cls()
        if isinstance(spec, PathSchedule):
            return spec
        if isinstance(spec, Mapping) or isinstance(spec, str | bytes):
            raise ConfigError("schedule: give a list of changes, e.g. "
                              "[{'at_s': 5.0, 'rate_bps': 5e6}]")
        return cls(spec)

    @classmethod
    def outages(cls, windows: Iterable[tuple[float, float]]) -> PathSchedule:
        """Outages ``[(start_s, end_s), ...]`` as a schedule (the Path's ``outages=``)."""
        steps = []
        for a, b in windows:
            start, end = parse_duration(a, "outage start"), parse_duration(b, "outage end")
            if not end > start:
                raise ConfigError(f"outage ({a}, {b}) ends before it starts")
            steps.append(PathChange(at_s=start, outage_s=end - start))
        return cls(steps)

    def with_change(self, change: Mapping[str, Any] | PathChange) -> PathSchedule:
        """A new schedule with ``change`` added (after any step at the same time)."""
        return PathSchedule([*self.changes, PathChange.from_dict(change)])

    def until(self, t_s: float) -> PathSchedule:
        """The steps at or before ``t_s`` (a branch point: what happened up to then)."""
        return PathSchedule([c for c in self.changes if c.at_s <= t_s])

    def to_list(self) -> list[dict[str, Any]]:
        """The steps as JSON-ready dicts in time order (:meth:`PathChange.to_dict`);
        ``PathSchedule(list)`` rebuilds the schedule."""
        return [c.to_dict() for c in self.changes]

    def __iter__(self) -> Iterator[PathChange]:
        return iter(self.changes)

    def __len__(self) -> int:
        return len(self.changes)

    def __bool__(self) -> bool:
        return bool(self.changes)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PathSchedule) and self.changes == other.changes

    def __repr__(self) -> str:
        return f"PathSchedule({self.to_list()!r})"


class ScheduleCursor:
    """The steps of a schedule not yet applied to a run (what an engine walks)."""

    def __init__(self, schedule: PathSchedule) -> None:
        self._pending = list(schedule)

    def next_time(self) -> float | None:
        """When the next pending step is due (seconds of virtual time), None if none."""
        return self._pending[0].at_s if self._pending else None

    def pop_due(self, now: float) -> list[PathChange]:
        """The steps due at or before ``now``, in order, removed from the cursor."""
        due = []
        while self._pending and self._pending[0].at_s <= now:
            due.append(self._pending.pop(0))
        return due


def apply_change(path: Any, change: PathChange, now: float, recorder: Any = None) -> dict:
    """Apply ``change`` to ``path`` at ``now`` and (with a recorder) write its trace row;
    returns the row's ``extra`` (the change and the path after it)."""
    after = path.change(now, **change.changes())
    extra = {"source": change.source, "at_s": change.at_s, "changes": change.changes(),
             "path": after}
    if recorder is not None:
        record_change(recorder, now, extra)
    return extra


def record_change(recorder: Any, now: float, extra: Mapping[str, Any]) -> None:
    """One ``path_changed`` row: flow 0 (a path event concerns every flow), bytes 0, no
    controller state; ``extra`` = the change and the path after it."""
    recorder.event(now, "path_changed", flow=0, extra=json.dumps(extra, default=str))
