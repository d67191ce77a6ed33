"""Host-side managers that ``ionlink run`` uses to execute an experiment as ARTIQ's master does.

- :mod:`.pyon`: PYON (sipyco's serialisation) encode/decode.
- :mod:`.arguments`: command-line ``KEY=VALUE`` arguments and the argument managers.
- :mod:`.datasets`: the persistent dataset database and the per-run dataset manager.
- :mod:`.results`: results file paths, run ids and the HDF5 results writer (ARTIQ layout).
- :mod:`.scheduler`: the simulated ``scheduler`` device and its run queue.
- :mod:`.examine`: listing the experiments of a file or repository, as the dashboard does.
"""
