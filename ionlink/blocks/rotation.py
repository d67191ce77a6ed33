"""729 nm qubit rotations S1/2 <-> D5/2 from the calibrated transition and pi time.

Calibrated values (persistent datasets, read in ``prepare()``):

- ``calib.frequency_729_<node>`` (Hz): 729 AOM (DDS) frequency of the qubit transition;
- ``calib.pi_time_729_<node>`` (s): carrier pi time of a Doppler-cooled ion at the amplitude
  ``calib.amplitude_729_<node>`` (fraction of DDS full scale);
- ``calib.aom_passes_729_<node>``: passes through the 729 AOM (2 for the usual double pass):
  the optical phase and detuning are that many times the DDS phase and frequency offset.

Phases in this API are optical phases of the 729 light in turns (the DDS phase offset is the
optical phase divided by the number of AOM passes). The DDS runs in ARTIQ's default
continuous phase mode at a fixed frequency, so the phase offsets of successive pulses are
coherent with one another (Ramsey, echo, basis rotations).
"""

import numpy as np
from artiq.experiment import HasEnvironment, MHz, kernel, us

from ionlink.blocks._node import calib_key, check_node


class Rotation729(HasEnvironment):
    """Carrier rotations of one node's qubit on the 729 nm S1/2 - D5/2 transition.

    ``Rotation729(parent, node="a")``. Kernels: :meth:`init`, :meth:`rotate`,
    :meth:`pi_pulse`, :meth:`half_pi`, :meth:`pulse` (raw frequency/duration), and for pulse
    trains on one axis :meth:`set_axis` + :meth:`rotate_on_axis` (switch only, no DDS update).
    """

    def build(self, node="a"):
        self.node = check_node(node)
        self.core = self.get_device("core")
        self.dds_729 = self.get_device("dds_729_" + node)
        self.kernel_invariants = {"core", "dds_729", "node"}

    def prepare(self):
        node = self.node
        self.frequency = float(self.get_dataset(calib_key("frequency_729", node), 80 * MHz))
        self.pi_time = float(self.get_dataset(calib_key("pi_time_729", node), 6 * us))
        self.amplitude = float(self.get_dataset(calib_key("amplitude_729", node), 1.0))
        self.aom_passes = int(self.get_dataset(calib_key("aom_passes_729", node), 2))
        if self.aom_passes < 1:
            raise ValueError(f"calib.aom_passes_729_{node} must be >= 1, got {self.aom_passes}")
        if not self.pi_time > 0:
            raise ValueError(f"calib.pi_time_729_{node} must be > 0 s, got {self.pi_time}")
        if not 0 < self.amplitude <= 1:
            raise ValueError(f"calib.amplitude_729_{node} must be in (0, 1], "
                             f"got {self.amplitude}")
        self.time_per_radian = self.pi_time / np.pi
        self.dds_turns_per_turn = 1.0 / self.aom_passes
        self.kernel_invariants |= {"frequency", "pi_time", "amplitude", "aom_passes",
                                   "time_per_radian", "dds_turns_per_turn"}

    @kernel
    def init(self):
        """Initialise the 729 DDS channel (switch off, calibrated frequency and amplitude).
        The node's CPLD must already be initialised (DopplerCooling/StatePreparation.init)."""
        self.dds_729.init()
        self.dds_729.sw.off()
        self.dds_729.set(self.frequency, amplitude=self.amplitude)

    @kernel
    def pulse(self, frequency, duration, phase_turns):
        """Rectangular 729 pulse of ``duration`` seconds at DDS ``frequency`` (Hz) and optical
        phase ``phase_turns`` (turns) with the calibrated amplitude. Advances the timeline by
        the DDS update time plus ``duration``."""
        self.dds_729.set(frequency, phase=phase_turns * self.dds_turns_per_turn,
                         amplitude=self.amplitude)
        self.dds_729.sw.pulse(duration)

    @kernel
    def set_axis(self, phase_turns):
        """Program the DDS for resonant pulses about the axis at ``phase_turns`` (optical
        turns) without pulsing; advances the timeline by the DDS update time."""
        self.dds_729.set(self.frequency, phase=phase_turns * self.dds_turns_per_turn,
                         amplitude=self.amplitude)

    @kernel
    def rotate_on_axis(self, theta):
        """Rotation by ``theta`` >= 0 radians about the axis last programmed by
        :meth:`set_axis` (RF switch only: advances the timeline by the pulse length)."""
        self.dds_729.sw.pulse(theta * self.time_per_radian)

    @kernel
    def rotate(self, theta, phase_turns):
        """Rotation by ``theta`` radians about the equatorial axis at ``phase_turns`` (turns),
        on resonance with the calibrated transition; a negative ``theta`` rotates about the
        opposite axis."""
        if theta < 0.0:
            self.pulse(self.frequency, -theta * self.time_per_radian, phase_turns + 0.5)
        else:
            self.pulse(self.frequency, theta * self.time_per_radian, phase_turns)

    @kernel
    def pi_pulse(self):
        """Resonant pi pulse (phase 0): S1/2 <-> D5/2."""
        self.pulse(self.frequency, self.pi_time, 0.0)

    @kernel
    def half_pi(self, phase_turns):
        """Resonant pi/2 pulse about the axis at ``phase_turns`` (turns)."""
        self.pulse(self.frequency, 0.5 * self.pi_time, phase_turns)
