"""The dataset shipped in datasets/: it loads, its card says how it was made, every
reader opens it with no options (parameters numeric), and its command regenerates it."""

import subprocess
import sys
from pathlib import Path

from tests.trace.helpers import check_five_readers
from wtlab import datasets

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "datasets" / "small-sweep"
GRID = ROOT / "datasets" / "grids" / "small.yaml"
NUMERIC = ["rate_mbps", "rtt_ms", "loss_pct", "buffer_bdp", "seed", "duration_s"]


def test_shipped_dataset_loads_with_card():
    card = (SHIPPED / "README.md").read_text()
    assert "wtlab sweep datasets/grids/small.yaml -o datasets/small-sweep" in card
    assert "`buffer_bdp` (float64): 0.5, 2" in card  # the values the grid gave
    df = datasets.load(SHIPPED)
    assert set(df["algo"]) == {"reno", "cubic", "bbr"}
    assert df["run_id"].nunique() == 24
    assert sorted(df["buffer_bdp"].unique()) == [0.5, 2.0]


def test_shipped_dataset_opens_in_every_reader():
    check_five_readers(SHIPPED, NUMERIC, ["algo"])


def test_the_card_command_regenerates_it(tmp_path):
    out = tmp_path / "small-sweep"
    subprocess.run([sys.executable, "-m", "wtlab", "sweep", str(GRID), "-o", str(out),
                    "--no-progress"], check=True, capture_output=True, timeout=600)
    shipped = datasets.load(SHIPPED).groupby("run_id", observed=True).size()
    fresh = datasets.load(out).groupby("run_id", observed=True).size()
    assert shipped.to_dict() == fresh.to_dict()  # same runs, same event counts (deterministic)
    check_five_readers(out, NUMERIC, ["algo"])
