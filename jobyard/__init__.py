"""Composition root: the ``jobyard`` command, embedded services, runtime wiring."""
