"""The Kubernetes backend: one batch/v1 Job per run, driven through the official client.

``config`` turns settings into a ``KubeConfig``; ``manifest`` renders a Job, ``parse``
reads Job and Pod objects and ``nodes`` Node objects, all as pure functions over plain dicts
(the API's JSON); ``client`` is the only module that talks to the API server; ``backend``
ties them together.
"""
