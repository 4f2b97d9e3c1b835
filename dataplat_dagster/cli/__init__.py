"""The ``dataplat`` command line: one module per noun."""
