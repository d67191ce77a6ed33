"""HighFinesse-style wavemeter with a fibre switch, and software laser locks, as an ARTIQ
controller (``aqctl_ionlink_wavemeter``).

- :mod:`.driver`: :class:`~.driver.WavemeterDriver`, the controller's RPC target;
- :mod:`.lock`: the PI lock (state, error history, capture-range alarm);
- :mod:`.highfinesse`: the real instrument through HighFinesse's wlmData library (ctypes,
  loaded only when used);
- :mod:`.simulation`: the simulated instrument reading the virtual node's laser
  frequencies through the world, actuators that write DAC/DDS events into the world, and
  the runner's ``controller_factory``;
- :mod:`.config`: the switch-channel -> laser and actuator maps of the device_db entry;
- :mod:`.aqctl_wavemeter`: the controller command.
"""
