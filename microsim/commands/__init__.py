"""One module per CLI command; see :mod:`microsim.cli`."""
