"""A run you can move through both ways: a cursor over its trace, steps forward and back,
path changes at the cursor, and a saved state that reopens the same place.

    >>> from wtlab.lab import Experiment
    >>> from wtlab.lab.timeline import Timeline
    >>> tl = Timeline(Experiment(path=dict(rate_bps=10e6, rtt_s=0.05, loss=0.01), seed=7))
    >>> tl.step(kinds="packet_lost")["kind"]          # doctest: +SKIP
    'packet_lost'
    >>> tl.back()["kind"], tl.back(kinds="state_changed")   # doctest: +SKIP

How going back works, and why: **the trace is the snapshot.** Every row holds the
controller's state after its event (cwnd, bytes in flight, ssthresh, the RTT
estimator, pacing and delivery rate, the state name: the trace's row contract), so
moving the cursor back shows the state as it was at that event exactly, at the cost of
a binary search: nothing is rewound or copied. Stepping forward from an earlier cursor
walks the recorded rows first and runs the engine only past the end. Where the
controller *object* itself is wanted as it was (for the internals a row does not hold,
say BBR's bandwidth filter), :meth:`Timeline.controller_at` re-runs the experiment
deterministically (same seed, same schedule, so the same trace) to that event. Object
snapshots were the alternative; they were not taken because the emulator's state (an
asyncio loop, aioquic's TLS and stream state, sockets in flight) cannot be copied, and
copying the model at every event would cost memory for what a re-run gives anyway
(10 simulated seconds of a 20 Mbit/s flow re-run in well under a second).

Changing the path at a cursor in the past *branches* the run: the experiment is re-run
to the cursor with the schedule so far, the change is applied there, and what had been
recorded after the cursor is dropped (the future was rewritten). At the live end a
change is applied in place (:meth:`wtlab.lab.experiment.Stepper.change_path`); either
way it is one ``path_changed`` row and a step of ``experiment.schedule``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from wtlab.errors import ConfigError
from wtlab.lab.experiment import Experiment, Stepper
from wtlab.net.schedule import PathChange, PathSchedule
from wtlab.trace.recorder import row_dicts

STATE_VERSION = 1
MAX_STEP_AHEAD_S = 60.0  # a step that finds nothing within a minute of virtual time stops


class Timeline:
    """A stepper with a cursor (see the module docstring).

    ``cursor`` is the index of the row at the cursor (-1: before the first row);
    ``time_s`` the cursor's time (at the live end: the engine's clock). ``stepper`` is
    the run (``stepper.recorder`` holds every row, ``stepper.controllers`` the live
    controller objects, at the live end).
    """

    def __init__(self, experiment: Experiment | None = None) -> None:
        self.experiment = experiment or Experiment()
        self.stepper: Stepper = self.experiment.stepper()
        self.cursor = -1
        self._time_s = 0.0
        self._t = np.zeros(0, dtype=float)  # every recorded row's time and kind code
        self._k = np.zeros(0, dtype=np.int16)

    # -------------------------------------------------------------- the index
    def _sync(self) -> None:
        rec = self.stepper.recorder
        n, have = len(rec), len(self._t)
        if n > have:
            new = rec.records(have, n)
            self._t = np.concatenate((self._t, new["time_s"].astype(float)))
            self._k = np.concatenate((self._k, new["kind"].astype(np.int16)))

    def __len__(self) -> int:
        return len(self.stepper.recorder)

    @property
    def now_s(self) -> float:
        """The engine's clock: how far the run has been computed."""
        return self.stepper.now

    @property
    def at_end(self) -> bool:
        """Whether the cursor is at the live end (the last recorded row)."""
        return self.cursor >= len(self) - 1

    @property
    def time_s(self) -> float:
        """The cursor's time in seconds of virtual time (0 before the first row); after
        :meth:`seek` or :meth:`advance` it may lie between two events."""
        return self._time_s

    def _codes(self, kinds: Iterable[str] | str | None) -> np.ndarray | None:
        if kinds is None:
            return None
        names = {kinds} if isinstance(kinds, str) else set(kinds)
        table = self.stepper.recorder.kinds
        return np.array([table.index(k) for k in names if k in table], dtype=np.int16)

    def _find(self, kinds: Any, start: int, direction: int) -> int | None:
        self._sync()
        codes = self._codes(kinds)
        if direction > 0:
            seg = self._k[start:]
            hits = np.flatnonzero(np.isin(seg, codes)) if codes is not None else (
                np.arange(len(seg)))
            return start + int(hits[0]) if len(hits) else None
        seg = self._k[:max(start + 1, 0)]
        hits = np.flatnonzero(np.isin(seg, codes)) if codes is not None else np.arange(len(seg))
        return int(hits[-1]) if len(hits) else None

    def row(self, index: int | None = None) -> dict | None:
        """Row ``index`` (default: the cursor's) as a dict, None before the first row."""
        i = self.cursor if index is None else index
        if i < 0 or i >= len(self):
            return None
        df = self.stepper.recorder.to_pandas(i, i + 1)
        df.attrs = {}  # (pandas would deep-copy the run's metadata at every step below)
        out = row_dicts(df)[0]
        out["index"] = i
        return out

    def _set(self, index: int) -> dict | None:
        self.cursor = index
        self._time_s = float(self._t[index]) if index >= 0 else 0.0
        return self.row()

    # -------------------------------------------------------------- moving
    def step(self, kinds: Iterable[str] | str | None = None) -> dict | None:
        """To the next event (of ``kinds``): a recorded one, else the engine runs on (at
        most a minute of virtual time). None, cursor kept, if there is none."""
        found = self._find(kinds, self.cursor + 1, +1)
        if found is None:  # every recorded row has been searched: the engine runs on
            self.stepper.skip_recorded()
            if self.stepper.step(kinds=kinds, max_time_s=self.stepper.now + MAX_STEP_AHEAD_S
                                 ) is None:
                self._sync()
                return None
            found = self._find(kinds, self.cursor + 1, +1)
            if found is None:  # the stepper's row lies before the cursor: cannot happen
                return None
        return self._set(found)

    def back(self, kinds: Iterable[str] | str | None = None) -> dict | None:
        """To the previous event (of ``kinds``); None, cursor kept, if there is none."""
        found = self._find(kinds, self.cursor - 1, -1)
        return None if found is None else self._set(found)

    def seek(self, t_s: float) -> dict | None:
        """The cursor to the last event at or before ``t_s`` (clamped to what was run)."""
        self._seek(t_s)
        return self.row()

    def _seek(self, t_s: float) -> None:
        self._sync()
        t = max(0.0, min(float(t_s), self.now_s))
        self.cursor = int(np.searchsorted(self._t, t, side="right")) - 1
        self._time_s = t

    def cursor_state(self, flow: int = 0) -> tuple[int | None, str]:
        """(cwnd, state name) of ``flow`` as of the cursor, straight from the packed records
        (cheap: what a status line shows every frame)."""
        if self.cursor < 0:
            return None, ""
        self._sync()
        rec = self.stepper.recorder
        lo = max(0, self.cursor - 256)
        block = rec.records(lo, self.cursor + 1)
        from wtlab.trace.schema import NO_BYTES_U32

        mine = np.flatnonzero((block["flow"] == flow) & (block["cwnd"] != NO_BYTES_U32))
        if not len(mine):
            return None, ""
        last = block[mine[-1]]
        return int(last["cwnd"]), rec.states[int(last["state"])]

    def advance(self, dt_s: float) -> int:
        """Move ``dt_s`` of virtual time forward from the cursor: through recorded rows,
        then running the engine; returns how many rows the cursor passed."""
        before = self.cursor
        target = self._time_s + dt_s
        if target > self.stepper.now:
            self.stepper.run(target)
        self._seek(target)
        return self.cursor - before

    def to_end(self) -> dict | None:
        """The cursor to the live end."""
        self._sync()
        self.cursor = len(self) - 1
        self._time_s = self.stepper.now
        return self.row()

    # -------------------------------------------------------------- changing the path
    def change_path(self, *, source: str = "explorer", **changes: Any) -> dict:
        """Change the path at the cursor (see the module docstring: in place at the live
        end, a branch before it); returns the ``path_changed`` row's ``extra``."""
        t = self._time_s
        if self.at_end and t >= self.stepper.now - 1e-12:
            extra = self.stepper.change_path(source=source, **changes)
            self.experiment = self.stepper.experiment
        else:
            change = PathChange(at_s=t, source=source, **changes)
            sched = PathSchedule.of(self.experiment.schedule).until(t)
            self._rebuild(self.experiment.replace(schedule=sched.with_change(change)), t)
            extra = json.loads(self.stepper.recorder.to_pandas(len(self) - 1)["extra"].iloc[-1])
        self.to_end()
        return extra

    def _rebuild(self, experiment: Experiment, run_to_s: float) -> None:
        self.stepper.close()
        self.experiment = experiment
        self.stepper = experiment.stepper()
        self._t = np.zeros(0, dtype=float)
        self._k = np.zeros(0, dtype=np.int16)
        if run_to_s > 0:
            self.stepper.run(run_to_s)
        self._sync()

    def reset(self, experiment: Experiment | None = None) -> None:
        """A fresh run of ``experiment`` (default: the same one), cursor at the start."""
        self._rebuild(experiment or self.experiment, 0.0)
        self.cursor, self._time_s = -1, 0.0

    # -------------------------------------------------------------- the past, exactly
    def controller_at(self, index: int | None = None, flow: int = 0) -> Any:
        """Flow ``flow``'s controller object as it was right after row ``index`` (default:
        the cursor's) was recorded: the experiment re-run deterministically to there (see
        the module docstring; several rows written in one instant share one state)."""
        i = self.cursor if index is None else index
        if not 0 <= i < len(self):
            raise ConfigError(f"row {i} does not exist: the run has {len(self)} rows")
        self._sync()
        s = self.experiment.stepper()
        try:
            s.run(float(self._t[i]))  # everything up to that instant, nothing after it
            if len(s.recorder) <= i:
                raise ConfigError(f"the re-run did not reach row {i}: the experiment no "
                                  "longer runs the same way")
            return s.controllers[flow]
        finally:
            s.close()

    # -------------------------------------------------------------- saving
    def state(self) -> dict[str, Any]:
        """JSON-ready: the experiment (with its schedule), how far it was run, the cursor."""
        return {"version": STATE_VERSION, "experiment": self.experiment.to_dict(),
                "run_to_s": self.stepper.now,
                "cursor": {"index": self.cursor, "time_s": self._time_s}}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Timeline:
        """The timeline of :meth:`state`: the experiment re-run to where it was (same seed,
        same schedule: the same rows), the cursor on the same row."""
        if not isinstance(state, Mapping) or state.get("version") != STATE_VERSION:
            raise ConfigError(f"not a saved wtlab timeline (version {STATE_VERSION} expected)")
        try:
            exp = Experiment.from_dict(state["experiment"])
            run_to = float(state["run_to_s"])
            index = int(state["cursor"]["index"])
            t_cursor = float(state["cursor"]["time_s"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"saved timeline is incomplete or damaged ({exc!r})") from None
        tl = cls(exp)
        if run_to > 0 and math.isfinite(run_to):
            tl.stepper.run(run_to)
        tl._sync()
        if index >= len(tl):
            raise ConfigError(f"the re-run has {len(tl)} rows, the saved cursor was at row "
                              f"{index}: the experiment no longer runs the same way (another "
                              "wtlab version?)")
        tl.cursor, tl._time_s = index, t_cursor
        return tl
