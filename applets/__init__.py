"""Live applets for the ARTIQ dashboard (pyqtgraph), one module per applet.

Each module follows ARTIQ's applet conventions (``artiq.applets.simple``): a main widget
built as ``Widget(args, req)`` whose ``data_changed(value, metadata, persist, mods)`` is
called with the subscribed datasets. In the dashboard: ``${python} -m applets.<name>``.
Without a master (or without ARTIQ), ``python -m applets.<name> RESULTS.h5`` opens the
applet over a results file, ``--follow RESULTS_DIR`` follows a running (simulated) run.
"""
