"""A long run of the server-abuse state machine (``tests/transport/fuzz.py``).

    .venv/bin/python -m benchmarks.fuzz                 # 2000 examples x 40 steps
    .venv/bin/python -m benchmarks.fuzz --quick         # 40 examples x 12 steps
    .venv/bin/python -m benchmarks.fuzz --examples 10000 --seed 7

Each example is a fresh in-memory connection with a healthy session beside whatever
the machine sends; a failure prints the shortest sequence of steps that breaks an
invariant (an exception out of the server, held bytes over budget, the healthy
session starved without the connection being closed for the peer's fault) and exits 1.
Printed: examples run, steps, wall time, how many connections the server closed
(and with which codes), the largest ``held_bytes`` seen and its budget.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time

from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test


def main() -> int:
    p = argparse.ArgumentParser(prog="benchmarks.fuzz", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--examples", type=int, default=None)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--seed", type=int, default=None, help="derandomize with this seed")
    args = p.parse_args()
    examples = args.examples or (40 if args.quick else 2000)
    steps = args.steps or (12 if args.quick else 40)

    from tests.transport.fuzz import LIMITS, ServerAbuse, ServerAbuseLatest

    seen = {"examples": 0, "steps": 0, "max_held": 0}
    closes: collections.Counter = collections.Counter()

    def counted(machine: type) -> type:
        class Counted(machine):
            def __init__(self) -> None:
                super().__init__()
                seen["examples"] += 1

            def teardown(self) -> None:
                seen["steps"] += self.pings
                seen["max_held"] = max(seen["max_held"], self.max_held)
                if self.closed_code is not None:
                    closes[hex(self.closed_code)] += 1

        Counted.__name__ = machine.__name__
        return Counted

    config = settings(max_examples=examples, stateful_step_count=steps, deadline=None,
                      derandomize=args.seed is not None, database=None,
                      suppress_health_check=list(HealthCheck))
    print(f"server abuse fuzz: {examples} examples x up to {steps} steps per dialect "
          f"(draft02, latest; limits: header {LIMITS.max_header_bytes} B, early "
          f"{LIMITS.max_early_bytes} B, {LIMITS.max_sessions} sessions)", flush=True)
    t0 = time.perf_counter()
    failed = False
    for machine in (ServerAbuse, ServerAbuseLatest):
        try:
            run_state_machine_as_test(counted(machine), settings=config)
        except Exception as exc:  # hypothesis printed the falsifying steps
            failed = True
            print(f"FAILED ({machine.__name__}): {type(exc).__name__}: {exc}", flush=True)
    elapsed = time.perf_counter() - t0
    print(f"examples run: {seen['examples']}", flush=True)
    print(f"healthy-session checks: {seen['steps']}", flush=True)
    print(f"wall time: {elapsed:.1f} s ({seen['examples'] / elapsed:.1f} examples/s)", flush=True)
    print(f"connections the server closed for the peer's fault: {sum(closes.values())} "
          f"{dict(closes)}", flush=True)
    print(f"largest held_bytes seen: {seen['max_held']} (budget per connection: "
          f"{LIMITS.max_early_bytes} early + {LIMITS.max_header_bytes} + capsule per request "
          "stream)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
