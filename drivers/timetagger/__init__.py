"""Swabian Instruments Time Tagger as an ARTIQ controller (``aqctl_ionlink_timetagger``).

- :mod:`.driver`: :class:`~.driver.TimeTaggerDriver`, the controller's RPC target;
- :mod:`.swabian`: the real device through Swabian's Python API (imported only when used);
- :mod:`.simulation`: the simulated device, reading detector clicks through the
  :class:`ionlink.sim.world.World` interface, and the runner's ``controller_factory``;
- :mod:`.channels`: the tagger channel <-> detector (TTL device) map and detector ids;
- :mod:`.measurements`: count rates, coincidences, correlation, window counts on tag arrays;
- :mod:`.streaming`: rotating Photon-HDF5 files (``analysis.timetags.io``);
- :mod:`.aqctl_timetagger`: the controller command.
"""
