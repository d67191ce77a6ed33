"""The heralding station's two detectors, gated at the fibre-delayed photon arrival time.

A photon that leaves node ``<node>`` at time t (the end of its 393 nm pulse) reaches the
station at t + ``calib.fibre_delay_<node>`` (s, persistent dataset written by
``repository/calibrations/fibre_delay.py``; before that calibration the delay of
``fallback_length`` kilometres of fibre is used). :class:`StationGate` opens both detector
inputs (``det_station_0``, ``det_station_1``) around that time and, in the kernel, turns
their clicks into a herald decision. :class:`ArrivalShots` times single photons of one node
(click times after the emission, fitted by :func:`fit_arrivals`) for the fibre-delay and
wavepacket calibrations.
"""

import numpy as np
from artiq.experiment import HasEnvironment, TInt32, TInt64, at_mu, kernel, now_mu, ns, parallel, us

from ionlink.blocks._checks import check_real
from ionlink.blocks._node import check_node
from ionlink.blocks.scan import run_with_pauses

#: Group index of standard single-mode fibre at 1550 nm (Corning SMF-28: 1.4682).
FIBRE_GROUP_INDEX = 1.4682
SPEED_OF_LIGHT = 299792458.0

#: Return values of :meth:`StationGate.herald` besides the detector index 0 or 1.
NO_CLICK = -1
BOTH_CLICKED = 2


def fibre_delay_seconds(length_km: float) -> float:
    """Light's travel time (s) through ``length_km`` kilometres of fibre (~4.9 us/km)."""
    length_km = check_real("fibre length", length_km, minimum=0.0, unit="km")
    return length_km * 1e3 * FIBRE_GROUP_INDEX / SPEED_OF_LIGHT


class StationGate(HasEnvironment):
    """Gate both station detectors for photons from node ``node`` and decide heralds.

    :param node: node letter whose fibre delay places the window ("a" or "b").
    :param window: gate length (s), long enough for the photon's wavepacket.
    :param pre_window: how long (s) the gate opens before the expected arrival.
    :param fallback_length: node-to-station fibre length (km) whose delay is used while
        ``calib.fibre_delay_<node>`` does not exist.

    ``window``, ``pre_window`` and ``fallback_length`` are kept as given (experiment
    arguments are None while ARTIQ's master examines the repository); a parent may change
    these attributes before :meth:`prepare`, which checks them and converts them to
    machine units.
    """

    def build(self, node="a", window=3 * us, pre_window=100 * ns, fallback_length=5.0):
        self.node = check_node(node)
        self.window = window
        self.pre_window = pre_window
        self.fallback_length = fallback_length
        self.setattr_device("core")
        self.det0 = self.get_device("det_station_0")
        self.det1 = self.get_device("det_station_1")
        self.delay_mu = np.int64(0)
        self.window_mu = np.int64(0)
        self.pre_mu = np.int64(0)
        #: Timestamp (mu) of the herald click, or of detector 0's first click otherwise.
        self.click_mu = np.int64(-1)
        #: First click (mu) of each detector in the last window, -1 without a click.
        self.first_click_0_mu = np.int64(-1)
        self.first_click_1_mu = np.int64(-1)
        self.kernel_invariants = {"core", "det0", "det1"}

    def prepare(self):
        """Check the settings, read ``calib.fibre_delay_<node>`` and convert the window
        to machine units."""
        self.window = check_real("station window", self.window, minimum=0.0,
                                 min_open=True, unit="s")
        self.pre_window = check_real("pre_window", self.pre_window, minimum=0.0,
                                     maximum=self.window, max_open=True, unit="s")
        self.fallback_length = check_real("fibre length", self.fallback_length,
                                          minimum=0.0, unit="km")
        self.delay = float(self.get_dataset("calib.fibre_delay_" + self.node,
                                            fibre_delay_seconds(self.fallback_length)))
        if not self.delay >= 0:
            raise ValueError(f"calib.fibre_delay_{self.node} must be >= 0 s, got "
                             f"{self.delay!r}")
        period = self.core.ref_period
        self.delay_mu = np.int64(round(self.delay / period))
        self.window_mu = np.int64(round(self.window / period))
        self.pre_mu = np.int64(round(self.pre_window / period))

    def arrival_offset_mu(self) -> int:
        """Machine units from the photon's emission to the window's start."""
        return int(self.delay_mu - self.pre_mu)

    @kernel
    def gate(self, t_emit_mu: TInt64) -> TInt64:
        """Open both detectors for a photon emitted at ``t_emit_mu``; the window starts
        ``pre_window`` before the expected arrival. The cursor ends at (and the method
        returns) the window's end."""
        at_mu(t_emit_mu + self.delay_mu - self.pre_mu)
        with parallel:
            self.det0.gate_rising_mu(self.window_mu)
            self.det1.gate_rising_mu(self.window_mu)
        return now_mu()

    @kernel
    def gate_at(self, t_open_mu: TInt64, duration_mu: TInt64) -> TInt64:
        """Open both detectors at ``t_open_mu`` for ``duration_mu``; returns the end."""
        at_mu(t_open_mu)
        with parallel:
            self.det0.gate_rising_mu(duration_mu)
            self.det1.gate_rising_mu(duration_mu)
        return now_mu()

    @kernel
    def herald(self, t_end_mu: TInt64) -> TInt32:
        """Read both detectors up to ``t_end_mu`` (blocks until then) and decide.

        Returns 0 or 1 when exactly that detector clicked (a herald; its click time in
        ``click_mu``), ``NO_CLICK`` (-1) when neither did and ``BOTH_CLICKED`` (2) when
        both did. Drains both inputs; first clicks in ``first_click_0_mu``/``_1_mu``."""
        t0 = self.det0.timestamp_mu(t_end_mu)
        if t0 >= 0:
            self.det0.count(t_end_mu)
        t1 = self.det1.timestamp_mu(t_end_mu)
        if t1 >= 0:
            self.det1.count(t_end_mu)
        self.first_click_0_mu = t0
        self.first_click_1_mu = t1
        if t0 >= 0:
            self.click_mu = t0
            if t1 >= 0:
                return BOTH_CLICKED
            return 0
        if t1 >= 0:
            self.click_mu = t1
            return 1
        return NO_CLICK

    @kernel
    def count_window(self, t_end_mu: TInt64) -> TInt32:
        """Total clicks of both detectors up to ``t_end_mu`` (drains both inputs)."""
        return self.det0.count(t_end_mu) + self.det1.count(t_end_mu)


def fit_arrivals(offsets_s, lo_s: float, hi_s: float, bin_s: float, passes: int = 3,
                 min_counts: float = 2.0):
    """Fit the arrival-time histogram of photons (times after emission, s) in [lo, hi)
    with ``analysis.fit_models`` "exponential_onset" (onset t0 = fibre delay, tau =
    wavepacket decay time, flat background).

    Poisson errors with Pearson weights: the standard errors are the square root of the
    fitted model, iterated ``passes`` times from sqrt(max(counts, 1)). Where the background
    is below ``min_counts`` per bin, the range is then narrowed to 10 bins before the onset
    up to where the wavepacket falls below ``min_counts`` per bin, and fitted again: bins
    expecting almost nothing say nothing about the shape and make the reduced chi2
    meaningless. Returns (bin centres, counts, sigma, FitResult) of the final range."""
    from analysis.fits import fit

    if not hi_s > lo_s or not bin_s > 0:
        raise ValueError(f"need lo < hi and bin > 0, got {lo_s}, {hi_s}, {bin_s}")
    offsets = np.asarray(offsets_s, dtype=float)

    def deviance(result, x, counts):
        """Poisson deviance of a fit (inf for non-finite parameters)."""
        if not np.all(np.isfinite(list(result.values.values()))):
            return np.inf
        mu = np.maximum(result.predict(x), 1e-12)
        log_term = np.where(counts > 0, counts * np.log(np.maximum(counts, 1) / mu), 0.0)
        return float(2.0 * np.sum(mu - counts + log_term))

    def pearson_fit(lo, hi):
        edges = np.arange(lo, hi + 0.5 * bin_s, bin_s)
        counts, _ = np.histogram(offsets, edges)
        x = 0.5 * (edges[:-1] + edges[1:])
        sigma = np.sqrt(np.maximum(counts, 1.0))
        result = fit("exponential_onset", x, counts, sigma=sigma)
        # Pearson passes can run away where the model is ~0 (a lone dark count then weighs
        # as much as the whole wavepacket): keep the pass the Poisson deviance likes best.
        best = (deviance(result, x, counts), sigma, result)
        for _ in range(passes):
            if not np.isfinite(best[0]):
                break
            sigma = np.sqrt(np.maximum(result.predict(x), 1e-3))
            result = fit("exponential_onset", x, counts, sigma=sigma)
            d = deviance(result, x, counts)
            if d < best[0]:
                best = (d, sigma, result)
            elif not np.isfinite(d):
                break
        _, sigma, result = best
        return x, counts, sigma, result

    x, counts, sigma, result = pearson_fit(lo_s, hi_s)
    values = result.values
    if np.all(np.isfinite(list(values.values()))) and values["offset"] < min_counts:
        peak = values["amplitude"] * bin_s / values["tau"]
        span = values["tau"] * np.log(max(peak / min_counts, 1.0))
        lo = max(lo_s, lo_s + bin_s * np.floor((values["t0"] - 10 * bin_s - lo_s) / bin_s))
        hi = min(hi_s, values["t0"] + max(span, 5 * bin_s))
        if hi - lo > 6 * bin_s and (lo > lo_s or hi < hi_s):
            x, counts, sigma, result = pearson_fit(lo, hi)
    return x, counts, sigma, result


class ArrivalShots(HasEnvironment):
    """Photon-arrival timing shots of one node, shared by the fibre-delay and wavepacket
    calibrations: ``ArrivalShots(parent, prep, photons, gate)`` with the parent's
    ``StatePreparation``, ``PhotonGeneration`` and :class:`StationGate` of that node.

    Each shot resets the ion (854 quench), fires the 393 nm pulse and opens both station
    detectors ``open_mu`` after the emission (the end of the pulse) for ``duration_mu``;
    every click's time after the emission is recorded (up to ``4 shots + 64`` clicks).
    The ion is Doppler-cooled (and the scheduler asked whether to pause) every
    ``cooling_interval`` shots. Call :meth:`setup` from the parent's ``prepare`` after
    the children's, then :meth:`run`, then :meth:`analyze` in ``analyze``.
    """

    def build(self, prep, photons, gate):
        self.setattr_device("core")
        self.setattr_device("scheduler")
        self.prep = prep
        self.photons = photons
        self.gate = gate
        self.shots = 0
        self.cooling_interval = 1
        self.open_mu = np.int64(0)
        self.duration_mu = np.int64(0)
        self.n_clicks = np.int32(0)
        self.offsets_mu = np.zeros(1, dtype=np.int64)
        self.done = 0

    def setup(self, shots: int, cooling_interval: int, open_mu: int,
              duration_mu: int) -> None:
        """Shot count, cooling interval (shots) and the detectors' window after the
        emission (start ``open_mu`` and length ``duration_mu``, machine units); clears
        the click record."""
        self.shots = shots
        self.cooling_interval = cooling_interval
        self.open_mu = np.int64(open_mu)
        self.duration_mu = np.int64(duration_mu)
        self.offsets_mu = np.zeros(4 * shots + 64, dtype=np.int64)
        self.n_clicks = np.int32(0)
        self.done = 0

    @kernel
    def init(self):
        self.core.reset()
        self.prep.init()
        self.photons.init()
        self.core.break_realtime()

    @kernel
    def record_clicks(self, det, t_emit: TInt64, t_end: TInt64):
        t = det.timestamp_mu(t_end)
        while t >= 0:
            if self.n_clicks < len(self.offsets_mu):
                self.offsets_mu[self.n_clicks] = t - t_emit
                self.n_clicks += 1
            t = det.timestamp_mu(t_end)

    @kernel
    def run_shots(self, start: TInt32) -> TInt32:
        """Shots ``start``.. until done or a pause is due; returns the next shot."""
        self.core.break_realtime()
        for i in range(start, self.shots):
            if i % self.cooling_interval == 0:
                if self.scheduler.check_pause():
                    return i
                self.core.break_realtime()
                self.prep.prepare_state()
            self.photons.reset()
            self.photons.excite()
            t_emit = now_mu()
            t_end = self.gate.gate_at(t_emit + self.open_mu, self.duration_mu)
            self.record_clicks(self.gate.det0, t_emit, t_end)
            self.record_clicks(self.gate.det1, t_emit, t_end)
            self.core.break_realtime()
        return self.shots

    def run(self) -> None:
        """All shots, yielding to the scheduler between cooling intervals when asked."""
        run_with_pauses(self, self.run_shots, self.shots)

    def analyze(self, prefix: str, scan, lo_s: float, hi_s: float, bin_s: float):
        """Store the click offsets (``<prefix>.offsets_s``, s) and shot count
        (``<prefix>.shots``), fit their histogram in [lo_s, hi_s) with bins of ``bin_s``
        (:func:`fit_arrivals`), publish it through the ``CalibrationScan`` ``scan`` and
        store the fit (``<prefix>.fit``). Returns (offsets in s, FitResult), or None after
        rejecting the calibration (too few clicks or a bad fit)."""
        offsets = self.offsets_mu[: int(self.n_clicks)] * self.core.ref_period
        self.set_dataset(prefix + ".offsets_s", offsets)
        self.set_dataset(prefix + ".shots", int(self.done))
        if offsets.size < 20:
            scan.reject(f"only {offsets.size} clicks in {self.done} shots")
            return None
        x, counts, sigma, result = fit_arrivals(offsets, lo_s, hi_s, bin_s)
        scan.start(x, "exponential_onset", unit="us")
        for i, c in enumerate(counts):
            scan.record(i, float(c))
        scan.set_sigma(sigma)
        self.set_dataset(prefix + ".fit", str(result.to_dict()))
        if not result.good:
            scan.reject(f"exponential_onset fit not good: {result.reason}")
            return None
        return offsets, result
