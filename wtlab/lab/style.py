"""How wtlab's figures look: one colour per algorithm, one line style per quantity.

The palette is Okabe and Ito's colour-blind-safe set, readable on a projector:

==========  ==========  =============================================
algorithm   colour      also
==========  ==========  =============================================
reno        #0072B2     blue
cubic       #D55E00     vermillion
bbr         #009E73     bluish green
bbr3        #CC79A7     reddish purple
others      by name     #E69F00, #56B4E9, #8C564B, #7F7F7F, #000000
==========  ==========  =============================================

Other names take one of the "others" colours, chosen stably by name. A label names its
algorithm if one of its words is a registered name (``"cubic"``,
``"recorded cubic"``, ``"bbr replay"``, ``"flow 1 bbr"``); a second (third...) flow of
the same algorithm in one figure gets a darker (lighter...) shade of its colour.

Line styles (the same in every figure, so a legend swatch says what a line is):
``cwnd`` solid and thick, ``in flight`` dotted, ``pacing`` dashed, ``delivery`` (rate)
dash-dotted, ``RTT`` solid and thin; the capacity line is grey long dashes, the BDP
grey dashes. Controller phases are shaded (:data:`PHASE_COLOURS`).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping

ALGORITHM_COLOURS: dict[str, str] = {"reno": "#0072B2", "cubic": "#D55E00", "bbr": "#009E73",
                                     "bbr3": "#CC79A7"}
OTHER_COLOURS: tuple[str, ...] = ("#E69F00", "#56B4E9", "#8C564B", "#7F7F7F", "#000000")

LINE_STYLES: dict[str, dict] = {
    "cwnd": {"dash": "solid", "width": 2.5},
    "in flight": {"dash": "dot", "width": 1.5},
    "pacing": {"dash": "dash", "width": 1.5},
    "delivery": {"dash": "dashdot", "width": 2.0},
    "RTT": {"dash": "solid", "width": 1.0},
}
CAPACITY_LINE = {"color": "#555555", "dash": "longdash", "width": 2.0}
BDP_LINE = {"color": "#888888", "dash": "dash", "width": 1.0}
JAIN_LINE = {"color": "#000000", "dash": "solid", "width": 2.0}
QUEUE_FILL = "rgba(120, 120, 120, 0.35)"

#: shading of controller phases (states not listed, the steady ones, are not shaded)
PHASE_COLOURS: dict[str, str] = {
    "slow_start": "rgba(255, 214, 0, 0.16)",
    "startup": "rgba(255, 214, 0, 0.16)",
    "recovery": "rgba(230, 60, 60, 0.14)",
    "drain": "rgba(60, 140, 230, 0.14)",
    "probe_rtt": "rgba(150, 80, 200, 0.14)",
}


def legend_colour(rgba: str, alpha: float = 0.55) -> str:
    """``rgba(r, g, b, a)`` with a stronger alpha: a legend swatch for a faint shading."""
    head = rgba[:rgba.rindex(",")]
    return f"{head}, {alpha})"


def algorithm_of(label: str) -> str | None:
    """The algorithm a label names (its first word that is a known algorithm), or None."""
    words = re.findall(r"[a-z0-9_]+", str(label).lower())
    for w in words:
        if w in ALGORITHM_COLOURS:
            return w
    return None


def colour_of(label: str) -> str:
    """The colour of an algorithm (or, for any other name, a stable colour of its own)."""
    algo = algorithm_of(label)
    if algo is not None:
        return ALGORITHM_COLOURS[algo]
    key = str(label).strip().lower()
    return OTHER_COLOURS[zlib.crc32(key.encode()) % len(OTHER_COLOURS)]


def shade(colour: str, k: int) -> str:
    """Shade ``k`` of a ``#rrggbb`` colour: 0 as is, then darker, lighter, darker..."""
    if k == 0:
        return colour
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    f = (0.6, 1.45, 0.4, 1.8)[(k - 1) % 4]
    if f < 1:
        r, g, b = (int(c * f) for c in (r, g, b))
    else:  # towards white
        r, g, b = (int(c + (255 - c) * (f - 1)) for c in (r, g, b))
    return f"#{min(r, 255):02X}{min(g, 255):02X}{min(b, 255):02X}"


def flow_colours(labels: Mapping[int, str]) -> dict[int, str]:
    """Flow -> colour: each flow its algorithm's colour, repeated algorithms shaded."""
    seen: dict[str, int] = {}
    out = {}
    for flow in sorted(labels):
        label = labels[flow]
        key = algorithm_of(label) or str(label)
        k = seen.get(key, 0)
        seen[key] = k + 1
        out[flow] = shade(colour_of(label), k)
    return out
