"""MongoDB layer: one repository module per collection, org-scoped queries,
compare-and-set state changes. Never imports Flask or Celery."""

from jobyard.store.client import Store, connect

__all__ = ["Store", "connect"]
