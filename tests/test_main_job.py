"""The README's main job: the readout calibration on the simulated node."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from ionlink.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_readout_histogram_on_virtual_node(tmp_path, capsys):
    code = main(["run", str(ROOT / "repository/calibrations/readout_histogram.py"),
                 "--device-db", str(ROOT / "device_db.py"), "-o", str(tmp_path),
                 "shots=150"])
    out = capsys.readouterr().out
    assert code == 0, out
    path = Path(out.split("results: ")[1].split()[0])
    with h5py.File(path) as f:
        bright = f["datasets"]["readout.bright_counts"][()]
        dark = f["datasets"]["readout.dark_counts"][()]
        threshold = f["datasets"]["readout.threshold"][()]
    assert len(bright) == len(dark) == 150
    # Bright ~1e5 counts/s over 1 ms vs background only: well separated Poisson means.
    assert np.median(bright) > 10 * max(np.median(dark), 1)
    assert np.median(dark) < threshold < np.median(bright)
    assert "calib.readout_threshold_a" in out
