"""The two engines an :class:`~wtlab.lab.experiment.Experiment` runs on, behind one interface.

Both run the same controller objects over the same :class:`wtlab.net.Path`, write the
same trace schema into the stepper's recorder, apply the experiment's path schedule at
each step's time (one ``path_changed`` row each, :mod:`wtlab.net.schedule`) and log the
bottleneck queue (``path.down.queue_log()``):

* :class:`ModelEngine`: the fast packet-level flow model (``wtlab.model``).
* :class:`EmulateEngine`: the real aioquic client and server over the virtual-time
  network (``wtlab.net.network``).

The interface a stepper uses: ``path``, ``controllers``, ``now``, ``run(until_s)``,
``change_path(now, change)``, ``close()``; the model engine also ``next_event_time()``
(the stepper steps it by event), the emulator ``step(kinds, max_time_s)``.
"""

from __future__ import annotations

from typing import Any

from wtlab.net.schedule import PathChange, PathSchedule, ScheduleCursor, apply_change


def _flow_start_and_extra(exp: Any) -> tuple[list[Any], list[float], list[float]]:
    specs = exp.flow_specs()
    return ([f.cc for f in specs], [f.start_s for f in specs], [f.extra_rtt_s for f in specs])


class ModelEngine:
    """The fast flow model, advanced by hand; path steps split its runs at their times."""

    def __init__(self, exp: Any, recorder: Any) -> None:
        from wtlab.lab.experiment import make_path, workload_dict
        from wtlab.model.api import build

        ccs, starts, extras = _flow_start_and_extra(exp)
        # the same construction as wtlab.model.run: one door, one model
        built = build(make_path(exp.path, exp.seed), ccs, recorder=recorder,
                      max_datagram_size=exp.max_datagram_size,
                      full_packets=exp.full_packets,
                      workload=workload_dict(exp.workload), start_times_s=starts,
                      extra_rtt_s=extras)
        self.path = built.path
        self.path.down.record_queue()
        self.sim = built.model
        self.recorder = recorder
        self.controllers = [fl.cc for fl in self.sim.flows]
        self.schedule = ScheduleCursor(PathSchedule.of(exp.schedule))

    @property
    def now(self) -> float:
        """The model's clock: seconds of virtual time."""
        return self.sim.now

    def next_event_time(self) -> float | None:
        """Virtual time (seconds) of the next model event or path step, whichever comes
        first; None when neither remains."""
        heap = self.sim._heap
        times = [t for t in (heap[0][0] if heap else None, self.schedule.next_time())
                 if t is not None]
        return min(times) if times else None

    def run(self, until: float) -> None:
        """Process every event up to ``until`` (seconds of virtual time, inclusive),
        applying each path step due by then at its own time."""
        # events at a step's instant run before the step (the model runs to it inclusive)
        while (t := self.schedule.next_time()) is not None and t <= until:
            self.sim.run(t)
            for change in self.schedule.pop_due(t):
                apply_change(self.path, change, t, self.recorder)
        self.sim.run(until)

    def change_path(self, now: float, change: PathChange) -> dict:
        """Run to ``now`` (seconds of virtual time), apply ``change`` there and record its
        ``path_changed`` row; returns that row's ``extra`` (the change, the path after)."""
        self.run(now)
        return apply_change(self.path, change, self.sim.now, self.recorder)


class EmulateEngine:
    """The full-stack virtual-time emulation (``wtlab.net.network``).

    Each flow is a real wtlab WebTransport session (aioquic underneath) from its own
    client host to the server across the shared path; the bulk workload downloads, so
    the controller acts on ``path.down`` as in the flow model. A flow's extra RTT is
    half each way on its own access (``VirtualNetwork.add_flow(extra_delay_s=)``).
    Path steps are loop callbacks at their exact times.
    """

    def __init__(self, exp: Any, recorder: Any) -> None:
        from wtlab.lab.experiment import make_path, workload_dict
        from wtlab.net.network import VirtualNetwork
        from wtlab.transport import workloads as wl

        self.net = VirtualNetwork(make_path(exp.path, exp.seed), recorder=recorder)
        self.path = self.net.path
        self.path.down.record_queue()
        self.recorder = recorder
        work = workload_dict(exp.workload)
        self.flows = []
        for spec in exp.flow_specs():
            if work["kind"] == "bulk":
                w = wl.Bulk(size_bytes=work.get("size_bytes"),
                            duration_s=None if work.get("size_bytes") else 1e6, direction="down")
            elif work["kind"] == "messages":
                w = wl.Messages(rate_hz=work["rate_hz"], size_bytes=work["size_bytes"],
                                duration_s=1e6)
            else:
                w = wl.create({k if k != "kind" else "workload": v for k, v in work.items()})
            self.flows.append(self.net.add_flow(spec.cc, w, start_s=spec.start_s,
                                                extra_delay_s=spec.extra_rtt_s / 2.0,
                                                max_datagram_size=exp.max_datagram_size,
                                                full_packets=exp.full_packets))
        self.controllers = [f.controller for f in self.flows]
        for change in PathSchedule.of(exp.schedule):
            self.net.loop.call_exact_at(change.at_s, self._apply, change)

    def _apply(self, change: PathChange) -> None:
        now = self.net.now  # the loop's clock counts integer nanoseconds: 5.0 reads 5.000000001
        apply_change(self.path, change, change.at_s if abs(now - change.at_s) < 1e-6 else now,
                     self.recorder)

    @property
    def now(self) -> float:
        """The network loop's clock: seconds of virtual time."""
        return self.net.now

    def step(self, kinds: Any, max_time_s: float | None) -> dict | None:
        """The next trace row of one of ``kinds`` (None: any) as a dict, or None if the
        run ends or ``max_time_s`` passes first (:meth:`VirtualNetwork.step
        <wtlab.net.network.VirtualNetwork.step>`)."""
        return self.net.step(kinds, max_time_s=max_time_s)

    def run(self, until: float) -> None:
        """Run the emulation up to ``until`` (seconds of virtual time); a later
        :meth:`step` returns only rows recorded after this run."""
        self.net.run(until=until)

    def skip_recorded(self) -> None:
        """Treat every row recorded so far as returned: the next :meth:`step` returns a
        row recorded after this call."""
        self.net.skip_recorded()

    def change_path(self, now: float, change: PathChange) -> dict:
        """Run to ``now`` (seconds of virtual time) unless already past it, apply ``change``
        at the loop's clock and record its ``path_changed`` row; returns that row's
        ``extra`` (the change, the path after)."""
        if now > self.net.now:
            self.net.run(until=now)
        return apply_change(self.path, change, self.net.now, self.recorder)

    def close(self) -> None:
        """Cancel the flows' tasks still running, let them clean up and close the loop."""
        self.net.close()
