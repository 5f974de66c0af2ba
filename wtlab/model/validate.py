"""The fast flow model against the full-stack emulation, on the same path.

``compare(path_args, cc, duration_s, seed)`` runs one bulk download (server ->
client) both ways, the emulator's being aioquic + wtlab's WebTransport client
and server over :class:`wtlab.net.network.VirtualNetwork`, and measures both
traces the same way:

* **goodput** and **loss**: :func:`wtlab.trace.metrics.flow_metrics` of each trace
  (``goodput_bps``: acknowledged application payload per second;
  ``goodput_packet_bps``: whole packets) over a window that starts ``warmup_s``
  after each engine's first full-size data packet (the emulator spends a few RTTs
  in the QUIC + HTTP/3 + WebTransport handshakes first, the model one RTT) and
  lasts ``duration_s - warmup_s``;
* **cwnd trajectory**: the controller's window as a step function sampled every
  millisecond from the data start, averaged in ``bin_s`` bins; compared by the
  ratio of the bins' means, the ratio of their standard deviations (the size of
  the sawtooth), the number of window reductions in the window, and the
  normalised RMS difference sqrt(mean((model - emu)^2)) / mean(emu) of the bins
  (0: identical; it also counts a shift in the sawtooth's phase, so it grows with
  the window's length even when the shapes agree).

Both engines use the same seeded link models, but they offer the links
different packet sequences (the emulator also sends handshake, control and
flow-control packets), so random losses fall on different packets: under
random loss compare averages over seeds, not single runs.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from wtlab.trace.metrics import flow_metrics

FULL_SIZE_BYTES = 1200


def emulator_available() -> bool:
    """Whether the full-stack emulator (VirtualNetwork + workloads) can be imported."""
    try:
        from wtlab.net.network import VirtualNetwork  # noqa: F401
        from wtlab.transport.workloads import Bulk  # noqa: F401
    except ImportError:
        return False
    return True


def run_emulation(path_args: dict[str, Any], cc: str, duration_s: float, seed: int
                  ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One bulk download in the emulator: (trace of the sending end, info)."""
    from wtlab.net.network import VirtualNetwork
    from wtlab.net.path import Path
    from wtlab.transport.workloads import Bulk

    path = Path.symmetric(**{**path_args, "seed": seed})
    t0 = time.perf_counter()
    with VirtualNetwork(path) as net:
        net.add_flow(cc, Bulk(duration_s=duration_s + 60.0, direction="down"))
        net.run(until=duration_s)
        df = net.recorder.to_pandas()
    wall = time.perf_counter() - t0
    stats = path.down.stats
    return df, {"wall_s": wall, "bottleneck_packets": stats.offered,
                "packets_per_wall_s": stats.offered / wall if wall > 0 else float("inf"),
                "link": stats.as_dict()}


def run_model(path_args: dict[str, Any], cc: str, duration_s: float, seed: int
              ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The same download in the fast flow model: (trace, info)."""
    import wtlab.model

    r = wtlab.model.run(path_args, cc=cc, duration_s=duration_s, seed=seed)
    m = r.engine
    return r.trace(), {"wall_s": m["wall_s"], "bottleneck_packets": m["link"]["offered"],
                       "packets_per_wall_s": m["bottleneck_packets_per_wall_s"],
                       "link": m["link"]}


def data_start_s(df: pd.DataFrame, flow: int = 0) -> float:
    """Time of the first full-size data packet of ``flow``."""
    sent = df[(df["kind"] == "packet_sent") & (df["flow"] == flow)
              & (df["bytes"] >= FULL_SIZE_BYTES)]
    if sent.empty:
        raise ValueError("the trace has no full-size data packet")
    return float(sent["time_s"].iloc[0])


def cwnd_bins(df: pd.DataFrame, t1: float, t2: float, bin_s: float, flow: int = 0,
              step_s: float = 0.001) -> np.ndarray:
    """Mean cwnd (bytes) per ``bin_s`` bin of [t1, t2), from the step function of the rows."""
    rows = df[(df["flow"] == flow) & df["cwnd"].notna()]
    t = rows["time_s"].to_numpy()
    w = rows["cwnd"].to_numpy(dtype=float)
    grid = np.arange(t1, t2, step_s)
    idx = np.searchsorted(t, grid, side="right") - 1
    values = np.where(idx >= 0, w[np.clip(idx, 0, None)], np.nan)
    per_bin = max(1, int(round(bin_s / step_s)))
    n = len(values) // per_bin
    return values[: n * per_bin].reshape(n, per_bin).mean(axis=1)


def window_reductions(df: pd.DataFrame, t1: float, t2: float, flow: int = 0) -> int:
    """How many times the window shrank in [t1, t2) (congestion events, mostly)."""
    rows = df[(df["flow"] == flow) & (df["kind"] == "cwnd_changed")]
    w = rows["cwnd"].to_numpy(dtype=float)
    t = rows["time_s"].to_numpy()
    down = np.flatnonzero(np.diff(w) < 0) + 1
    return int(((t[down] >= t1) & (t[down] < t2)).sum())


def nrmsd(model: np.ndarray, reference: np.ndarray) -> float:
    """sqrt(mean((model - reference)^2)) / mean(reference)."""
    n = min(len(model), len(reference))
    a, b = model[:n], reference[:n]
    return float(np.sqrt(np.nanmean((a - b) ** 2)) / np.nanmean(b))


def compare(path_args: dict[str, Any], cc: str = "cubic", duration_s: float = 5.0,
            seed: int = 1, *, warmup_s: float = 1.0, bin_s: float = 0.1) -> dict[str, Any]:
    """Model vs emulator on one path (see the module docstring for the measures)."""
    horizon = duration_s + 1.0  # room for the emulator's longer handshake
    emu_df, emu = run_emulation(path_args, cc, horizon, seed)
    mod_df, mod = run_model(path_args, cc, horizon, seed)
    length = duration_s - warmup_s
    out: dict[str, Any] = {"path": dict(path_args), "cc": cc, "seed": seed,
                           "window_s": length}
    for name, df, info in (("emu", emu_df, emu), ("model", mod_df, mod)):
        s = data_start_s(df)
        t1, t2 = s + warmup_s, s + warmup_s + length
        out[f"{name}_data_start_s"] = s
        m = flow_metrics(df[df["flow"] == 0], from_s=t1, to_s=t2).iloc[0]
        out[f"{name}_goodput_bps"] = float(m["goodput_bps"])
        out[f"{name}_goodput_packet_bps"] = float(m["goodput_packet_bps"])
        out[f"{name}_mean_cwnd_bytes"] = float(m["mean_cwnd_bytes"])
        out[f"{name}_lost"] = int(m["packets_lost"])
        out[f"{name}_cwnd_bins"] = cwnd_bins(df, t1, t2, bin_s)
        out[f"{name}_wall_s"] = info["wall_s"]
        out[f"{name}_packets_per_wall_s"] = info["packets_per_wall_s"]
        bins = out[f"{name}_cwnd_bins"]
        out[f"{name}_cwnd_std"] = float(np.nanstd(bins))
        out[f"{name}_reductions"] = window_reductions(df, t1, t2)
    out["goodput_ratio"] = out["model_goodput_bps"] / out["emu_goodput_bps"]
    out["cwnd_std_ratio"] = (out["model_cwnd_std"] / out["emu_cwnd_std"]
                             if out["emu_cwnd_std"] > 0 else float("nan"))
    out["cwnd_nrmsd"] = nrmsd(out["model_cwnd_bins"], out["emu_cwnd_bins"])
    out["cwnd_mean_ratio"] = float(np.nanmean(out["model_cwnd_bins"])
                                   / np.nanmean(out["emu_cwnd_bins"]))
    out["speedup"] = out["model_packets_per_wall_s"] / out["emu_packets_per_wall_s"]
    return out


def describe(c: dict[str, Any]) -> str:
    """One line for a comparison (what the tests and the benchmark print)."""
    p = c["path"]
    return (f"{c['cc']:6s} {p.get('rate_bps', 0) / 1e6:g} Mbit/s {p.get('rtt_s', 0) * 1e3:g} ms "
            f"buf {p.get('buffer_bdp')} BDP loss {p.get('loss') or 0} seed {c['seed']}: "
            f"goodput model {c['model_goodput_bps'] / 1e6:.3f} emu "
            f"{c['emu_goodput_bps'] / 1e6:.3f} Mbit/s (ratio {c['goodput_ratio']:.3f}); "
            f"cwnd mean ratio {c['cwnd_mean_ratio']:.3f}, std ratio {c['cwnd_std_ratio']:.2f}, "
            f"nRMSD {c['cwnd_nrmsd']:.3f}, reductions model {c['model_reductions']} emu "
            f"{c['emu_reductions']}; "
            f"lost model {c['model_lost']} emu {c['emu_lost']}; "
            f"pkts/wall-s model {c['model_packets_per_wall_s']:,.0f} emu "
            f"{c['emu_packets_per_wall_s']:,.0f}")
