"""`make demo` leaves a report and a dataset; the tables it prints hold real numbers."""

import subprocess
import sys

import pandas as pd

from wtlab import datasets


def test_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "wtlab", "demo", "--out", str(out), "--bulk-mb", "2",
         "--duration", "4"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "bulk echo 2 MB" in proc.stdout
    for cc in ("reno", "cubic", "bbr"):
        assert cc in proc.stdout
    html = (out / "report.html").read_text()
    assert "plotly" in html and "Emulated path" in html
    assert (out / "dataset" / "README.md").exists()
    df = datasets.load(out / "dataset")
    assert set(df["cc"]) == {"reno", "cubic", "bbr"}
    assert len(df) > 1000 and isinstance(df, pd.DataFrame)
