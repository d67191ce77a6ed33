"""Stand-in for ``artiq.applets`` (served as ``artiq.applets`` only where ARTIQ is absent):
:mod:`.simple` offers ARTIQ's ``SimpleApplet``/``TitleApplet`` API with datasets read from
results files or a results directory instead of a master (:mod:`.sources`)."""
