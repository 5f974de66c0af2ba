"""The ns-3 contender: Debian's ns3 (an optional benchmark dependency, never a test one).

``benchmarks/ns3/dumbbell.cc`` runs the classic dumbbell: one TCP CUBIC bulk sender, a
bottleneck of the given rate and one-way delay, a drop-tail buffer of 1 BDP in 1500-byte
packets. It prints the packets offered to the bottleneck and the wall time, and is built
here with g++ once per source version (``apt-get install ns3 libns3-dev``).
"""

from __future__ import annotations

from pathlib import Path as FsPath

NS3_SOURCE = FsPath(__file__).resolve().parent / "ns3" / "dumbbell.cc"
NS3_LIBS = ["-lns3-applications", "-lns3-internet", "-lns3-point-to-point",
            "-lns3-traffic-control", "-lns3-network", "-lns3-core"]


def ns3_binary() -> str | None:
    """The ns-3 dumbbell, compiled once into a cache folder; None without ns-3 or g++."""
    import hashlib
    import shutil
    import subprocess

    if shutil.which("g++") is None or not FsPath("/usr/include/ns3/core-module.h").exists():
        return None
    digest = hashlib.sha256(NS3_SOURCE.read_bytes()).hexdigest()[:16]
    out = FsPath.home() / ".cache" / "wtlab-bench" / f"ns3-dumbbell-{digest}"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        done = subprocess.run(["g++", "-O2", "-std=c++17", "-o", str(tmp), str(NS3_SOURCE),
                               *NS3_LIBS], capture_output=True, text=True)
        if done.returncode != 0:
            print(f"ns-3 dumbbell did not build: {done.stderr.strip()[-300:]}")
            return None
        tmp.replace(out)
    return str(out)


def ns3_packets_per_s(binary: str, rate_bps: float, rtt_s: float, sim_s: float) -> float:
    """Bottleneck packets per wall-second of one ns-3 run of ``sim_s`` simulated seconds."""
    import subprocess

    buffer_packets = max(1, round(rate_bps * rtt_s / 8 / 1500))  # 1 BDP of 1500-byte packets
    out = subprocess.run([binary, f"--rate={rate_bps / 1e6:g}Mbps",
                          f"--delayMs={rtt_s / 2 * 1e3:g}", f"--buffer={buffer_packets}",
                          f"--simS={sim_s:g}"], capture_output=True, text=True, check=True)
    fields = out.stdout.split()
    return int(fields[1]) / float(fields[3])


def ns3_missing_line() -> str:
    """What to print when ns-3 is not there."""
    return ("ns-3 comparison skipped: Debian's ns3 and libns3-dev packages (and g++) are not "
            "installed (apt-get install ns3 libns3-dev)")
