"""Data shipped inside the package and read through :mod:`importlib.resources`.

* ``reference/`` — the published DNS profiles (:mod:`surrogate.references`, sources in ``SOURCES.md``).
"""
