"""jobyard's Python SDK (``pip install jobyard[client]``): ``Client`` and its errors."""

from jobyard.client.api import Client, Job
from jobyard.client.errors import JobyardError

__all__ = ["Client", "Job", "JobyardError"]
