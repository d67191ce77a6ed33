"""The README's main job (heralded entanglement over 10 km) and the readout calibration on
the simulated node."""

from __future__ import annotations

import re
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


def main_job_command() -> list[str]:
    """The ``ionlink run ...`` of the README's install-and-run command."""
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"pip install -e \. && (ionlink run [^\n`]+)", readme)
    assert match, "README has no main-job command"
    return match.group(1).split()[1:]


def test_readme_main_job_is_the_heralded_entanglement_run(tmp_path, capsys):
    command = main_job_command()
    assert command[:2] == ["run", "repository/heralding/heralded_entanglement.py"]
    # the README's command with fewer attempts (and a larger alpha, for enough heralds)
    code = main([command[0], str(ROOT / command[1]), *command[2:],
                 "--device-db", str(ROOT / "device_db.py"), "-o", str(tmp_path),
                 "attempts=3000", "alpha=0.25"])
    out = capsys.readouterr().out
    assert code == 0, out
    heralds = int(re.search(r"heralds (\d+) in 3000 attempts", out).group(1))
    assert heralds > 50
    rate = float(re.search(r"rate ([0-9.e+-]+) /s", out).group(1))
    ratio = float(re.search(r"generation/decoherence ratio ([0-9.e+-]+)", out).group(1))
    fidelity = float(re.search(r"fidelity estimate ([0-9.]+) \+- ([0-9.]+)", out).group(1))
    assert 0.25 <= fidelity <= 1.0
    assert "RTIO errors" not in out
    path = Path(out.split("results: ")[1].split()[0])
    with h5py.File(path) as f:
        d = f["datasets"]
        assert d["heralding.heralds"][()] == heralds
        duration = d["heralding.duration_s"][()]
        assert abs(rate - heralds / duration) < 1e-3 * rate
        assert abs(ratio - rate * d["heralding.memory_t2_s"][()]) < 1e-3 * ratio
        assert d["tomography.counts"][()].sum() == heralds
