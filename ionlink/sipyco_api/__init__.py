"""sipyco's public API subset that ionlink's controllers use, written for ionlink.

Served as ``sipyco`` by :mod:`ionlink._artiq_fallback` only where the real sipyco is not
installed. Names, signatures and the wire protocol follow sipyco:

- :mod:`.pc_rpc`: ``Client``, ``Server``, ``simple_server_loop``, ``AutoTarget``,
  ``IncompatibleServer`` (line-based PYON v1 over TCP; interoperates with real sipyco
  servers and clients, which fall back to PYON v1 when ``pyon_v2`` is not offered);
- :mod:`.common_args`: ``simple_network_args``, ``verbosity_args``,
  ``bind_address_from_args``, ``init_logger_from_args``;
- :mod:`.pyon`: ``encode``/``decode`` (ionlink's PYON implementation);
- :mod:`.packed_exceptions`: how server-side exceptions travel to the client;
- :mod:`.sipyco_rpctool`: ``list_methods``/``main`` as ``sipyco_rpctool`` prints them.
"""

__ionlink_stand_in__ = True
