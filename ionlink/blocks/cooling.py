"""Doppler cooling and state preparation of one node's ion.

Calibrated values (persistent datasets, read in ``prepare()``; the second argument of each
``get_dataset`` is only the first-run fallback):

- ``calib.frequency_397_cooling_<node>`` (Hz): 397 nm AOM frequency for Doppler cooling, set by
  the 397 nm line scan half a (power-broadened) line width below resonance;
- ``calib.amplitude_397_cooling_<node>``: 397 DDS amplitude (fraction of full scale);
- ``calib.frequency_866_<node>`` (Hz), ``calib.amplitude_866_<node>``: 866 nm repumper;
- ``calib.frequency_854_<node>`` (Hz), ``calib.amplitude_854_<node>``: 854 nm quench laser;
- ``calib.quench_time_854_<node>`` (s): 854 quench pulse length (D5/2 -> P3/2 -> S1/2);
- ``calib.cooling_time_<node>`` (s): Doppler cooling time used by :class:`StatePreparation`.
"""

from artiq.experiment import HasEnvironment, MHz, kernel, ms, us

from ionlink.blocks._node import calib_key, check_node


class DopplerCooling(HasEnvironment):
    """Doppler cooling with 397 nm (red of resonance) and the 866 nm repumper.

    ``DopplerCooling(parent, node="a")``. Kernels: :meth:`init` (resets the node's Urukul
    CPLD, so call it before any other block's ``init``) and :meth:`cool`.
    """

    def build(self, node="a"):
        self.node = check_node(node)
        self.core = self.get_device("core")
        self.dds_397 = self.get_device("dds_397_" + node)
        self.dds_866 = self.get_device("dds_866_" + node)
        self.kernel_invariants = {"core", "dds_397", "dds_866", "node"}

    def prepare(self):
        node = self.node
        self.frequency_397 = float(self.get_dataset(calib_key("frequency_397_cooling", node),
                                                    100 * MHz))
        self.amplitude_397 = float(self.get_dataset(calib_key("amplitude_397_cooling", node),
                                                    1.0))
        self.frequency_866 = float(self.get_dataset(calib_key("frequency_866", node),
                                                    80 * MHz))
        self.amplitude_866 = float(self.get_dataset(calib_key("amplitude_866", node), 1.0))
        self.kernel_invariants |= {"frequency_397", "amplitude_397", "frequency_866",
                                   "amplitude_866"}

    @kernel
    def init(self):
        """Initialise the node's Urukul CPLD and the 397/866 channels; 866 is left on,
        397 off. Advances the timeline by the CPLD/DDS initialisation time (about 1 ms)."""
        self.dds_397.cpld.init()
        self.dds_397.init()
        self.dds_397.sw.off()
        self.dds_866.init()
        self.dds_866.set(self.frequency_866, amplitude=self.amplitude_866)
        self.dds_866.sw.on()
        self.dds_397.set(self.frequency_397, amplitude=self.amplitude_397)

    @kernel
    def cool(self, duration):
        """Doppler-cool for ``duration`` seconds: 866 on, 397 at the cooling frequency on for
        ``duration``, then 397 off (866 stays on). Advances the timeline by the DDS update
        time plus ``duration``."""
        self.dds_397.set(self.frequency_397, amplitude=self.amplitude_397)
        self.dds_866.sw.on()
        self.dds_397.sw.pulse(duration)


class StatePreparation(HasEnvironment):
    """Prepare the ion in S1/2 and Doppler-cool it: 854 nm quench (with 866 on) of any D5/2
    population, then :meth:`DopplerCooling.cool` for the calibrated cooling time.

    ``StatePreparation(parent, node="a")``; its :class:`DopplerCooling` child is ``cooling``.
    Kernels: :meth:`init`, :meth:`prepare_state`. (The kernel is not called ``prepare``:
    ``prepare()`` is ARTIQ's host-side stage that every ``HasEnvironment`` child runs before
    the experiment, here reading the calibrated values.)
    """

    def build(self, node="a"):
        self.node = check_node(node)
        self.core = self.get_device("core")
        self.dds_854 = self.get_device("dds_854_" + node)
        self.cooling = DopplerCooling(self, node)
        self.kernel_invariants = {"core", "dds_854", "cooling", "node"}

    def prepare(self):
        node = self.node
        self.call_child_method("prepare")
        self.frequency_854 = float(self.get_dataset(calib_key("frequency_854", node),
                                                    80 * MHz))
        self.amplitude_854 = float(self.get_dataset(calib_key("amplitude_854", node), 1.0))
        self.quench_time = float(self.get_dataset(calib_key("quench_time_854", node),
                                                  10 * us))
        self.cooling_time = float(self.get_dataset(calib_key("cooling_time", node),
                                                   1 * ms))
        if self.quench_time < 0 or self.cooling_time < 0:
            raise ValueError(f"node {node}: quench time ({self.quench_time} s) and cooling "
                             f"time ({self.cooling_time} s) must be >= 0")
        self.kernel_invariants |= {"frequency_854", "amplitude_854", "quench_time",
                                   "cooling_time"}

    @kernel
    def init(self):
        """Initialise the node's CPLD, 397, 866 (via :meth:`DopplerCooling.init`) and 854."""
        self.cooling.init()
        self.dds_854.init()
        self.dds_854.sw.off()
        self.dds_854.set(self.frequency_854, amplitude=self.amplitude_854)

    @kernel
    def prepare_state(self):
        """854 quench (866 on) for the calibrated quench time, then Doppler cooling for the
        calibrated cooling time. Advances the timeline by their sum plus DDS update time."""
        self.cooling.dds_866.sw.on()
        self.dds_854.sw.pulse(self.quench_time)
        self.cooling.cool(self.cooling_time)
