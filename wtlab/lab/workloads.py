"""The application workloads, as the lab names them: :mod:`wtlab.transport.workloads`.

The workloads live next to the sessions they drive (the emulator in :mod:`wtlab.net`
installs them too, and a lower floor may not import the lab); this module keeps the
name ``wtlab.lab.workloads`` that notebooks and scripts use. Every name here is the
same object as there.
"""

from __future__ import annotations

from wtlab.transport.workloads import (
    Bulk,
    Messages,
    RequestResponse,
    Video,
    Workload,
    WorkloadContext,
    create,
)

__all__ = ["Bulk", "Messages", "RequestResponse", "Video", "Workload", "WorkloadContext",
           "create"]
