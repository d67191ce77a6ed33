"""Photon generation on one node: a 393 nm excitation pulse of calibrated length.

The 393 nm pulse drives the cavity-mediated Raman transition S1/2 -> D5/2 that emits one
854 nm photon (converted to 1550 nm) entangled with the ion, with probability alpha per
attempt. The photon leaves at the end of the pulse. Before each attempt the ion is reset to
S1/2 by an 854 nm quench (with 866 nm on, so that the P3/2 -> D3/2 branch is repumped).

Calibrated values (persistent datasets, written by
``repository/calibrations/photon_efficiency.py``; the defaults below only serve a first run):

- ``calib.photon_generation_time_<node>`` (s): time constant tau of the generation
  probability alpha(T) = 1 - exp(-T / tau) for a 393 pulse of length T at the amplitude
  ``calib.photon_amplitude_393_<node>`` (relative DDS amplitude, 0..1).
- ``calib.photon_detection_efficiency_<node>``: probability that an emitted photon makes a
  station click (collection, conversion, fibre, detector).
- ``calib.photon_detection_window_<node>`` (s): the station window (opening 100 ns before
  the arrival) in which that efficiency was measured; 0 = without window loss.
- ``calib.photon_wavepacket_time_<node>`` (s): decay time of the (exponential) photon
  wavepacket, from ``repository/calibrations/photon_wavepacket.py``.
- ``calib.frequency_393_<node>`` (Hz): 393 nm AOM frequency.
- ``calib.quench_time_854_<node>`` (s): 854 nm quench length (shared with
  :class:`~ionlink.blocks.cooling.StatePreparation`).
"""

import numpy as np
from artiq.experiment import HasEnvironment, MHz, TInt64, delay_mu, kernel, ns, us

from ionlink.blocks._checks import check_real
from ionlink.blocks._node import check_node

#: Fallbacks for a first run, before the photon calibrations (documented, not truth).
DEFAULT_GENERATION_TIME = 2 * us
DEFAULT_DETECTION_EFFICIENCY = 0.05
DEFAULT_WAVEPACKET_TIME = 1 * us
DEFAULT_FREQUENCY_393 = 80 * MHz
DEFAULT_AMPLITUDE_393 = 1.0
#: Same key and fallback as ionlink.blocks.cooling.StatePreparation's 854 quench.
DEFAULT_QUENCH_TIME = 10 * us
#: 866 nm stays on this long (mu) after the 854 quench (866 repumps D3/2 in ~50 ns).
REPUMP_TAIL_MU = 500
#: Shortest 393 pulse: one coarse RTIO period (two switch events in one coarse period collide).
MIN_PULSE_MU = 8


class PhotonGeneration(HasEnvironment):
    """393 nm photon-generation attempts of node ``node`` ("a" or "b").

    :param node: node letter; devices ``dds_393_<node>``, ``dds_854_<node>``,
        ``dds_866_<node>``.
    :param alpha: target excitation probability per attempt (0 < alpha < 1), kept as given
        (an experiment argument is None while ARTIQ's master examines the repository); it is
        checked and the pulse length follows from the calibrated generation time in
        :meth:`prepare` (a parent may change ``alpha`` before that, or call
        :meth:`set_alpha` afterwards).
    """

    def build(self, node="a", alpha=0.05):
        self.node = check_node(node)
        self.alpha = alpha
        self.setattr_device("core")
        self.dds = self.get_device("dds_393_" + node)
        self.dds_854 = self.get_device("dds_854_" + node)
        self.dds_866 = self.get_device("dds_866_" + node)
        self.pulse_mu = np.int64(MIN_PULSE_MU)
        self.quench_mu = np.int64(0)
        self.kernel_invariants = {"core", "dds", "dds_854", "dds_866", "frequency",
                                  "amplitude", "quench_mu"}

    def prepare(self):
        """Read the calibration and compute the pulse length for ``alpha``."""
        n = self.node
        self.generation_time = float(self.get_dataset(
            "calib.photon_generation_time_" + n, DEFAULT_GENERATION_TIME))
        self.detection_efficiency = float(self.get_dataset(
            "calib.photon_detection_efficiency_" + n, DEFAULT_DETECTION_EFFICIENCY))
        self.detection_window = float(self.get_dataset("calib.photon_detection_window_" + n,
                                                       0.0))
        self.wavepacket_time = float(self.get_dataset("calib.photon_wavepacket_time_" + n,
                                                      DEFAULT_WAVEPACKET_TIME))
        self.frequency = float(self.get_dataset("calib.frequency_393_" + n,
                                                DEFAULT_FREQUENCY_393))
        self.amplitude = float(self.get_dataset("calib.photon_amplitude_393_" + n,
                                                DEFAULT_AMPLITUDE_393))
        if not self.generation_time > 0:
            raise ValueError(f"calib.photon_generation_time_{n} must be > 0 s, got "
                             f"{self.generation_time!r}")
        if not 0.0 < self.amplitude <= 1.0:
            raise ValueError(f"calib.photon_amplitude_393_{n} must lie in (0, 1], got "
                             f"{self.amplitude!r}")
        self.quench_time = float(self.get_dataset("calib.quench_time_854_" + n,
                                                  DEFAULT_QUENCH_TIME))
        if not self.quench_time > 0:
            raise ValueError(f"calib.quench_time_854_{n} must be > 0 s, got "
                             f"{self.quench_time!r}")
        self.quench_mu = np.int64(round(self.quench_time / self.core.ref_period))
        self.set_alpha(self.alpha)

    def set_alpha(self, alpha: float) -> None:
        """Set the 393 pulse length for excitation probability ``alpha`` (host only; after
        :meth:`prepare` has read the generation time)."""
        self.alpha = check_real("alpha", alpha, minimum=0.0, maximum=1.0, min_open=True,
                                max_open=True)
        seconds = -self.generation_time * np.log1p(-self.alpha)
        self.pulse_mu = np.int64(max(MIN_PULSE_MU, round(seconds / self.core.ref_period)))

    def pulse_duration(self) -> float:
        """Length (s) of the 393 pulse."""
        return float(self.pulse_mu) * self.core.ref_period

    def alpha_set(self) -> float:
        """Excitation probability of the pulse actually played (after rounding to 1 mu)."""
        return float(-np.expm1(-self.pulse_duration() / self.generation_time))

    def window_acceptance(self, window: float, pre_window: float = 100 * ns) -> float:
        """Fraction of the exponential wavepacket inside a window of ``window`` seconds that
        opens ``pre_window`` before the arrival (1 for ``window`` 0 = no window)."""
        if window <= 0:
            return 1.0
        return float(-np.expm1(-max(window - pre_window, 0.0) / self.wavepacket_time))

    def efficiency_in_window(self, window: float, pre_window: float = 100 * ns) -> float:
        """Calibrated detection efficiency rescaled from the calibration's window to
        ``window`` (s) with the calibrated wavepacket time."""
        cal = self.window_acceptance(self.detection_window)
        return self.detection_efficiency * self.window_acceptance(window, pre_window) / cal

    @kernel
    def init(self):
        """Program the 393 nm DDS (switch off); call after the node's CPLD init."""
        self.dds.cpld.init()
        self.dds.init()
        self.dds.set(self.frequency, amplitude=self.amplitude)
        self.dds.sw.off()

    @kernel
    def reset(self):
        """854 nm quench back to S1/2 with 866 nm on (repumping the P3/2 -> D3/2 branch),
        then 866 off: photon generation needs both repumpers dark, so that the excitation
        stays coherent until the station has detected the photons. Advances the cursor by
        the quench time plus the 866 tail. Needs the 854/866 DDS programmed (by the node's
        StatePreparation.init); blocks that need 866 later switch it on themselves."""
        self.dds_866.sw.on()
        self.dds_854.sw.pulse_mu(self.quench_mu)
        delay_mu(REPUMP_TAIL_MU)
        self.dds_866.sw.off()

    @kernel
    def excite(self):
        """One 393 nm excitation pulse; the photon (if any) leaves at its end, which is the
        cursor afterwards."""
        self.dds.sw.pulse_mu(self.pulse_mu)

    @kernel
    def excite_mu(self, pulse_mu: TInt64):
        """A 393 nm pulse of ``pulse_mu`` machine units (for calibration scans)."""
        self.dds.sw.pulse_mu(pulse_mu)
