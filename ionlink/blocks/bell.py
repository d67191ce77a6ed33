"""Measurement of both nodes' qubits in chosen bases: 729 nm basis rotation, then readout.

Qubit convention (that of ``analysis.tomography``): |0> = S1/2 (bright), |1> = D5/2 (dark);
outcome 0 is the +1 eigenstate of the measured Pauli operator. A basis is either Z (no
rotation) or an equatorial axis at azimuth theta (X: theta = 0, Y: theta = pi/2), measured by
a resonant pi/2 pulse of optical phase pi/2 - theta, which turns that axis into Z. (The 729
coupling is (Omega/2)(exp(-i phi)|D><S| + h.c.) = (Omega/2)(cos phi X - sin phi Y), so the
pulse rotates about (cos phi, -sin phi, 0), taking the axis at theta = pi/2 - phi to +Z.)

Phases are optical phases of the 729 nm light (turns), as
:class:`~ionlink.blocks.rotation.Rotation729` takes them (it divides by the calibrated number
of AOM passes for the DDS).

Link frame (persistent dataset ``calib.link_phase``, turns, written by
``repository/calibrations/link_phase.py``; 0 before the first calibration). Each node measures
in the frame of its own 729 laser. A herald at station detector 0 leaves the ions in
(|10> + e^{i 2 pi phi} |01>)/sqrt2 (first qubit A; |1> = D5/2 = the node that emitted),
phi = ``calib.link_phase``: the fibre / interferometer phase plus the phases of the lasers
that drove the photon generation relative to the 729 frames. Then the correlator of A's axis
at azimuth theta_a and B's at theta_b is E = P(a = b) - P(a != b) = V cos(2 pi (theta_a -
theta_b + phi)), so B's axis theta_b + phi is maximally correlated (a = b) with A's axis
theta_b. :meth:`BellBasisMeasurement.measure_axes` and :meth:`~BellBasisMeasurement.
measure_pauli` add phi to node B's equatorial axes: in that frame the detector-0 state is
psi+ = (|01> + |10>)/sqrt2 (E = V cos(2 pi (theta_a - theta_b)), <XX> = <YY> = +V).
A herald at detector 1 prepares the detector-0 state up to Z on node B (phase + 1/2 turn):
experiments flip B's outcome of equatorial measurements after detector-1 heralds (outcome
``b = b_raw XOR 1``), Z outcomes are unchanged.
"""

import logging
import math

from artiq.experiment import (
    HasEnvironment,
    TBool,
    TFloat,
    TInt32,
    at_mu,
    delay_mu,
    kernel,
    now_mu,
    parallel,
    portable,
)

from ionlink.blocks.readout import FluorescenceReadout
from ionlink.blocks.rotation import Rotation729

logger = logging.getLogger(__name__)

#: Time (mu) between two reads of both PMT inputs during a parallel readout. A bright ion
#: gives ~1e5 counts/s, ~5 photons per chunk, far below an input FIFO's 64 events; the CPU
#: (two reads of ~3 us plus ~3 us per photon) keeps up with two bright ions.
READ_CHUNK_MU = 50000

#: Lead time (mu) from the cursor to the start of both detection gates in
#: :meth:`BellBasisMeasurement.read`: both nodes' gate events are submitted for one start
#: time, so the CPU submits node A's (~13 events, ~3 us) before node B's first one is due;
#: right after a herald the slack is only a few us. The rotated qubits wait in Z meanwhile
#: (populations only, which do not dephase).
READ_LEAD_MU = 10000

#: Slack (mu) that :meth:`BellBasisMeasurement.read` leaves after the RTIO counter: after
#: the later gate's end the CPU still reads the photons of the last chunk (~3 us each),
#: so the cursor continues from the counter plus this when that is later than the gate.
READ_SLACK_MU = 5000

#: Basis indices of analysis.tomography (X, Y, Z).
BASIS_X = 0
BASIS_Y = 1
BASIS_Z = 2


@portable
def basis_phase_turns(theta_turns: TFloat) -> TFloat:
    """Optical phase (turns) of the pi/2 pulse measuring the equatorial axis at azimuth
    ``theta_turns`` (turns): 1/4 - theta."""
    return 0.25 - theta_turns


class BellBasisMeasurement(HasEnvironment):
    """Basis rotation and readout of both nodes (A and B).

    Children: ``rotation_a``/``rotation_b`` (:class:`Rotation729`), ``readout_a``/
    ``readout_b`` (:class:`FluorescenceReadout`). Both nodes are read at the same time
    (each has its own PMT and 397/866 beams): one detection time per measurement.
    """

    def build(self):
        self.setattr_device("core")
        self.rotation_a = Rotation729(self, "a")
        self.rotation_b = Rotation729(self, "b")
        self.readout_a = FluorescenceReadout(self, "a")
        self.readout_b = FluorescenceReadout(self, "b")
        self.link_phase = 0.0
        self.kernel_invariants = {"core", "rotation_a", "rotation_b", "readout_a",
                                  "readout_b"}

    def prepare(self):
        self.call_child_method("prepare")
        #: Link phase (turns) added to node B's equatorial axes, see the module docstring.
        stored = self.get_dataset("calib.link_phase", None)
        #: False before the first link-phase calibration (equatorial correlations then have
        #: an unknown sign and size).
        self.link_phase_calibrated = stored is not None
        self.link_phase = float(stored) if self.link_phase_calibrated else 0.0
        if not self.link_phase_calibrated:
            logger.warning("calib.link_phase does not exist: node B's equatorial axes are "
                           "not corrected for the link phase; run "
                           "repository/calibrations/link_phase.py first")
        if not math.isfinite(self.link_phase):
            raise ValueError(f"calib.link_phase must be a finite phase in turns, got "
                             f"{self.link_phase!r}")
        self.kernel_invariants = self.kernel_invariants | {"link_phase"}

    @kernel
    def init(self):
        """Initialise the 729 channels and PMT inputs of both nodes (after the nodes'
        StatePreparation.init, which resets their CPLDs)."""
        self.rotation_a.init()
        self.rotation_b.init()
        self.readout_a.init()
        self.readout_b.init()

    @kernel
    def rotate(self, rotate_a: TBool, phase_a: TFloat, rotate_b: TBool, phase_b: TFloat):
        """Simultaneous pi/2 pulses of optical phase ``phase_a``/``phase_b`` (turns) on the
        nodes whose ``rotate_*`` is True; a node without rotation is measured in Z."""
        with parallel:
            if rotate_a:
                self.rotation_a.half_pi(phase_a)
            if rotate_b:
                self.rotation_b.half_pi(phase_b)

    @kernel
    def read(self) -> TInt32:
        """Read out both nodes at once: their detection gates in parallel, starting
        :data:`READ_LEAD_MU` after the cursor, and both PMT inputs drained together in
        chunks of :data:`READ_CHUNK_MU` as the photons arrive (reading one to its end first
        would let the other's 64-event input FIFO overflow during a bright readout).
        Returns 2 a + b (a, b: 0 = bright/S, 1 = dark/D). The cursor ends at the later
        gate's end, or :data:`READ_SLACK_MU` after the RTIO counter if the CPU was still
        reading photons then (as after a single node's ``measure``, add slack after it)."""
        delay_mu(READ_LEAD_MU)
        t = now_mu() + READ_CHUNK_MU
        with parallel:
            end_a = self.readout_a.gate()
            end_b = self.readout_b.gate()
        counts_a = 0
        counts_b = 0
        while t < end_a or t < end_b:
            counts_a += self.readout_a.count(min(t, end_a))
            counts_b += self.readout_b.count(min(t, end_b))
            t += READ_CHUNK_MU
        counts_a += self.readout_a.count(end_a)
        counts_b += self.readout_b.count(end_b)
        t_min = self.core.get_rtio_counter_mu() + READ_SLACK_MU
        if now_mu() < t_min:
            at_mu(t_min)
        return 2 * self.readout_a.classify(counts_a) + self.readout_b.classify(counts_b)

    @kernel
    def measure(self, rotate_a: TBool, phase_a: TFloat, rotate_b: TBool,
                phase_b: TFloat) -> TInt32:
        """:meth:`rotate` then :meth:`read`; returns 2 a + b."""
        self.rotate(rotate_a, phase_a, rotate_b, phase_b)
        return self.read()

    @kernel
    def measure_axes(self, theta_a: TFloat, theta_b: TFloat) -> TInt32:
        """Measure A along the equatorial axis at azimuth ``theta_a`` and B along
        ``theta_b`` (turns) in the link frame (B's axis shifted by ``calib.link_phase``);
        returns 2 a + b."""
        return self.measure(True, basis_phase_turns(theta_a), True,
                            basis_phase_turns(theta_b + self.link_phase))

    @kernel
    def measure_pauli(self, basis_a: TInt32, basis_b: TInt32) -> TInt32:
        """Measure node A in Pauli basis ``basis_a`` and B in ``basis_b`` (0 = X, 1 = Y,
        2 = Z) in the link frame (B's X and Y shifted by ``calib.link_phase``); returns
        2 a + b with outcome 0 the +1 eigenstate."""
        return self.measure(basis_a != BASIS_Z, basis_phase_turns(0.25 * float(basis_a)),
                            basis_b != BASIS_Z,
                            basis_phase_turns(0.25 * float(basis_b) + self.link_phase))
