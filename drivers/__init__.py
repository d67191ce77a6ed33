"""Host-side instrument drivers, each an ARTIQ controller with a simulation mode."""
