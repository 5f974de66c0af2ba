"""The sans-IO WebTransport layer under a bounded stateful fuzz (see tests/transport/fuzz.py).

A longer run of the same machines: ``python -m benchmarks.fuzz``.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

from tests.transport.fuzz import ServerAbuse, ServerAbuseLatest

BOUNDED = settings(max_examples=25, stateful_step_count=12, deadline=None, derandomize=True,
                   database=None, suppress_health_check=list(HealthCheck))

TestServerAbuse = ServerAbuse.TestCase
TestServerAbuse.settings = BOUNDED
TestServerAbuseLatest = ServerAbuseLatest.TestCase
TestServerAbuseLatest.settings = BOUNDED
