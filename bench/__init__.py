"""jobyard's benchmark suite: every figure is a ratio to a baseline measured
in the same run on the same servers (raw pymongo, raw Celery).

Run it with ``.venv/bin/python -m bench`` (see ``bench/README.md``).
"""
