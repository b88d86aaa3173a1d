"""The Lepton backend: runs each job run as a DGX Cloud Lepton batch job over its REST API.

``client`` speaks HTTP, ``render`` builds the job body, ``state`` maps Lepton states onto
``RunState``, ``stream`` splits the replica log into status events and plain log,
``shapes`` reads node groups' resource shapes as accelerators, and ``entrypoint`` is the
wrapper that runs inside the container.
"""
