"""The simulated ARTIQ core device: RTIO engine, drivers, session, trace."""
