"""Resumable point scans shared by the calibration experiments.

:func:`run_with_pauses` is the host loop around a kernel that measures scan points (or
sweeps, or shots) from a start index until done or until the scheduler wants a pause: it
closes the core connection, yields to the scheduler and re-initialises before resuming.

:class:`ExcitationScan` is such a kernel for 729 nm excitation scans (spectroscopy, Rabi
flopping): per point, ``shots`` times state preparation, one 729 pulse of the point's
frequency (DDS Hz) and length (s), and a state readout; P(D) of each point goes to a
:class:`~ionlink.blocks.calibration.CalibrationScan`.
"""

import numpy as np
from artiq.experiment import HasEnvironment, TInt32, kernel


def run_with_pauses(experiment, step, total: int, init=None) -> None:
    """Run ``init()`` (a kernel; default ``experiment.init``), then
    ``experiment.done = step(experiment.done)`` until ``experiment.done`` reaches ``total``;
    each time ``step`` returns early (a pause is due) close the core, let
    ``experiment.scheduler`` pause, and ``init()`` again.

    ``step`` is a kernel taking the next index and returning the index to resume at
    (``total`` when finished); ``experiment.done`` is updated after every call, so
    ``analyze`` sees how far an interrupted run got."""
    init = experiment.init if init is None else init
    init()
    while experiment.done < total:
        experiment.done = step(experiment.done)
        if experiment.done < total:
            experiment.core.close()
            experiment.scheduler.pause()
            init()


class ExcitationScan(HasEnvironment):
    """P(D) after one 729 pulse per shot, scanned over points of (frequency, length).

    ``ExcitationScan(parent, prep, rotation, readout, scan)`` with the experiment's
    :class:`StatePreparation`, :class:`Rotation729`, :class:`FluorescenceReadout` and
    :class:`CalibrationScan` blocks; :meth:`configure` (host, in ``prepare``) sets the
    points, the kernel :meth:`init` resets the core and initialises those blocks, then the
    kernel :meth:`run_points` measures the points.
    """

    def build(self, prep, rotation, readout, scan):
        self.setattr_device("core")
        self.setattr_device("scheduler")
        self.prep = prep
        self.rotation = rotation
        self.readout = readout
        self.scan = scan

    def configure(self, frequencies, durations, shots: int) -> None:
        """Points: 729 DDS ``frequencies`` (Hz) and pulse ``durations`` (s), equal lengths;
        ``shots`` (>= 1) binary shots per point."""
        self.frequencies = np.asarray(frequencies, dtype=float)
        self.durations = np.asarray(durations, dtype=float)
        if self.frequencies.shape != self.durations.shape or self.frequencies.ndim != 1:
            raise ValueError(f"excitation scan needs equally many frequencies and durations, "
                             f"got shapes {self.frequencies.shape} and "
                             f"{self.durations.shape}")
        if int(shots) < 1:
            raise ValueError(f"excitation scan shots must be >= 1, got {shots}")
        self.shots = int(shots)

    @kernel
    def init(self):
        """Reset the core (and with it the RTIO timeline), then initialise the state
        preparation (first: it resets the Urukul CPLD), the 729 rotation and the readout."""
        self.core.reset()
        self.prep.init()
        self.rotation.init()
        self.readout.init()

    @kernel
    def run_points(self, start: TInt32) -> TInt32:
        """Scan points ``start``.. until done or a pause is due; returns the next index."""
        self.core.break_realtime()
        for i in range(start, len(self.frequencies)):
            if self.scheduler.check_pause():
                return i
            dark = 0
            for _ in range(self.shots):
                self.prep.prepare_state()
                self.rotation.pulse(self.frequencies[i], self.durations[i], 0.0)
                dark += self.readout.measure()
                self.core.break_realtime()
            self.scan.record(i, dark / self.shots)
        return len(self.frequencies)
