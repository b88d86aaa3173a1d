"""``python -m bench.serve api|worker ...``: the real ``jobyard`` command, run on the bench
database (whose catalog holds the bench experiments: ``bench.experiments.register``)."""

from __future__ import annotations

import sys

from jobyard import cli

if __name__ == "__main__":
    raise SystemExit(cli.main(sys.argv[1:]))
