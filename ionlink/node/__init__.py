"""The virtual node: two 40Ca+ ions, their lasers, photons, fibre and the heralding station.

``VirtualNetwork(device_db, config=None, seed=0, lab_time_origin_s=0.0)`` is the
:class:`ionlink.sim.world.World` behind the simulated core; ``load_node_config(path=None)``
loads ``default_node.toml`` (overridden by ``path``). ``network.truth(lab_time_s)`` returns the
true (drifting) parameters so calibrations can be checked: the 397/729 resonances there are
what the ion sees, laser frequency actuators (``attach_laser_actuator``, e.g. a wavemeter
lock) included; ``free_resonance_397_dds_hz`` / ``free_transition_729_dds_hz`` give the
drift alone.

How experiments drive a node X (``a`` or ``b``; roles are device_db aliases). A laser reaches the
ion only while its RF switch (``sw_device`` TTL of the DDS) is on *and* the DDS amplitude is
non-zero; attenuation (``att_db``, initially 0 dB in the model) scales the optical field by
10^(-att/20). Default truth (node file values, before drift):

- ``dds_397_X`` (single pass): resonance at DDS 110 MHz; Doppler cooling at ~100 MHz
  (-10 MHz ~ -Gamma/2) with 397 and 866 on; saturation s = 1 at amplitude 1.0, 0 dB.
  Readout: 397 (e.g. 105-110 MHz, amplitude 1.0) + 866 on, gate ``pmt_X``; a bright ion gives
  ~ 50-100 kcounts/s depending on detuning (``network.bright_rate_hz``), a dark ion
  (D5/2) only stray light + dark counts (~330 counts/s).
- ``dds_866_X``: any frequency, amplitude > 0 repumps D3/2 (needed during readout/cooling).
- ``dds_854_X``: on quenches D5/2 -> S (rate 2e7/s at full amplitude): ~1-5 us resets the ion
  to S (do it after readout and before each attempt).
- ``dds_729_X`` (double pass): qubit S1/2(-1/2)-D5/2 at DDS 80.000 MHz (node A) and
  80.013 MHz (node B); carrier pi time 6 us at amplitude 1.0, 0 dB (Rabi frequency
  proportional to amplitude*10^(-att/20)), lengthened ~ exp(eta^2 (n+1/2)) by the thermal
  motion (Doppler limit n ~ 17). Phase: DDS phase (turns) x 2 (double pass); use tracking or
  absolute phase mode for Ramsey/Bell phases (coupling exp(-i phi)|D><S|).
- ``dds_393_X``: a switch pulse of duration T at amplitude A emits, with probability
  alpha = 1 - exp(-A^2 10^(-att/10) T / 2 us), an 854->1550 nm photon and moves S -> D5/2
  (cavity-mediated Raman, ion-photon number entanglement). ~100 ns at full amplitude ->
  alpha ~ 0.05. Photons reach the station after ~24.5 us (5 km each side).
- Single-photon (Cabrillo) heralding (``[protocol] scheme = "single_photon"``, default):
  prepare both ions in S (854 + 866 quench), fire both 393 pulses at the same time, gate
  ``det_station_0`` / ``det_station_1`` over the arrival window (emission + fibre delay,
  wavepacket ~1 us): exactly one click heralds (|SD> +- e^{i phi}|DS>)/sqrt2 (sign from the
  detector); success ~ 2 alpha eta.
- Two-photon heralding (``scheme = "two_photon"``): the 393 pulse drives a bichromatic
  Raman transition, S -> D (H photon) or S -> E (V photon, E = a second D5/2 sublevel whose
  729 line is ``laser_729.transition_e_offset_dds_hz`` away, ``network.transition_e_dds_hz``);
  V leaves one time bin later (``protocol.time_bin_separation_s``, default 5 us). Fire both
  nodes together; one click in the early and one in the late arrival window heralds
  (|DE> +- e^{i theta}|ED>)/sqrt2 (+ same detector, - different detectors), success
  alpha_A alpha_B eta_A eta_B / 2, independent of the fibre phase; fidelity (1 + M)/2 for a
  mode overlap M (``station.mode_overlap``, also the single-photon scheme's interference
  visibility). A 729 pi pulse on the S-E line of each ion maps it to an S-D Bell state.
- Photons of both nodes interfere if emitted with no non-unitary operation on either ion in
  between (their emissions are resolved together before the next readout/pumping).
- Detector inputs (``pmt_X``, ``det_station_N``) are continuous click records (see
  ``ionlink/node/detectors.py``): reading is non-consuming and idempotent, so TTL gates and
  a time tagger reading all clicks see the same edges; records older than
  ``record_retention_s`` (constructor argument, default 5 s of node time) are dropped.
"""

from ionlink.node.config import NodeConfig, NodeConfigError, load_node_config
from ionlink.node.network import VirtualNetwork
from ionlink.node.wiring import WiringError, build_wiring

__all__ = ["NodeConfig", "NodeConfigError", "VirtualNetwork", "WiringError", "build_wiring",
           "load_node_config"]
