"""Simulated core-device drivers: ARTIQ's classes, names and signatures, run on the host.

Served as ``artiq.coredevice`` where ARTIQ is not installed; where it is, the runner maps
the device database's ``artiq.coredevice.*`` classes to these twins. Each driver turns
its calls into RTIO events on the session's engine (:mod:`ionlink.sim.session`) exactly
where ARTIQ's driver would put them on the timeline.
"""

from artiq.coredevice.exceptions import RTIOOverflow, RTIOUnderflow

__all__ = ["RTIOUnderflow", "RTIOOverflow"]
