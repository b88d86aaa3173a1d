"""Celery workers: short, idempotent tasks (dispatch, reconcile, maintenance).

No task waits for a training job; reconcile watches jobs periodically.
"""
