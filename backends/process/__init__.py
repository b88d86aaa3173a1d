"""The embedded default backend: each run is a local process group under a run directory.

Importing this package imports nothing heavy on purpose: ``launcher`` runs as its own
interpreter for every run and must start fast.
"""
