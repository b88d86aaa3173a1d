"""``python -m bench.serve api|worker ...``: the real ``jobyard`` command with
the bench experiments registered first (gunicorn and Celery fork from this
process, so every worker process inherits them)."""

from __future__ import annotations

import sys

from bench import experiments
from jobyard import cli

if __name__ == "__main__":
    experiments.register()
    raise SystemExit(cli.main(sys.argv[1:]))
