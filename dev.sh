#!/usr/bin/env bash
# jobyard on a fresh machine (up and test are README's two commands):
#   ./dev.sh up     set up .venv and run jobyard here (embedded MongoDB-wire + Redis)
#   ./dev.sh test   set up .venv and run lint, type checks and the whole test suite
#   ./dev.sh bench  set up .venv and run the benchmark suite (bench/README.md)
# Extra arguments go to `jobyard up`, to pytest or to the benchmarks.
set -euo pipefail
cd "$(dirname "$0")"

python_bin() {
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      echo "$candidate"; return
    fi
  done
  echo "jobyard needs Python 3.11 or newer" >&2; exit 1
}

system_packages() {
  # curl and jq run the README walkthrough in the end-to-end tests; the SLURM tests start a
  # real single-node cluster (munged, slurmctld, slurmd) behind a real sshd.
  local missing=()
  for tool in curl jq; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
  command -v bc >/dev/null 2>&1 || missing+=(bc)
  # the SLURM test cluster's nodes run the reference workload with Debian's python3 + numpy
  # (its model server also reads PNGs: python3-pil), and the TAO stand-in
  # (tests/tao/standin.py) with python3 + PyYAML
  /usr/bin/python3 -c 'import numpy' >/dev/null 2>&1 || missing+=(python3-numpy)
  /usr/bin/python3 -c 'import PIL' >/dev/null 2>&1 || missing+=(python3-pil)
  /usr/bin/python3 -c 'import yaml' >/dev/null 2>&1 || missing+=(python3-yaml)
  command -v slurmctld >/dev/null 2>&1 || missing+=(slurm-wlm slurm-client)
  command -v munged >/dev/null 2>&1 || missing+=(munge)
  [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
  command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
  # the dashboard's browser test drives Debian's Chromium through its ChromeDriver
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
      echo "please install: ${missing[*]}" >&2; exit 1
    fi
  fi
}

dashboard() {
  # The web dashboard (ui/) is built by npm into api/ui, which the package ships; rebuilt
  # when a source is newer than the build.
  local built=api/ui/index.html
  if [ -f "$built" ] && [ -z "$(find ui/src ui/index.html ui/package.json ui/package-lock.json \
      ui/vite.config.js -newer "$built" 2>/dev/null | head -1)" ]; then
    return
  fi
  if command -v npm >/dev/null 2>&1; then
    (cd ui && npm ci --no-audit --no-fund --loglevel=error >/dev/null && npm run --silent build >/dev/null)
  else
    echo "warning: npm not found: the dashboard (/ui/) is not built" >&2
  fi
}

setup() {
  dashboard
  if [ ! -x .venv/bin/python ]; then
    "$(python_bin)" -m venv .venv
  fi
  # reinstall only when the dependency list changed
  if [ ! -f .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[dev]"
    touch .venv/.installed
  fi
}

lepton_sdk() {
  # The leptonai SDK pins httpx and pulls in Ray, so it never enters .venv: it gets a venv of
  # its own, used only by the test checking that tests/lepton's double answers as Lepton does.
  if ! .venv-lepton/bin/python -c 'import leptonai' >/dev/null 2>&1; then
    "$(python_bin)" -m venv .venv-lepton &&
      .venv-lepton/bin/python -m pip install -q 'leptonai==0.47.1' ||
      echo "warning: could not install leptonai; its conformance test is skipped" >&2
  fi
  if .venv-lepton/bin/python -c 'import leptonai' >/dev/null 2>&1; then
    export JY_LEPTONAI_PYTHON="$PWD/.venv-lepton/bin/python"
  fi
}

secantus_server() {
  # SecantusDB answers as MongoDB does where nx-27017 is lax; the store's tests and one
  # engine test run on both (tests/secantus.py). It is GPL-2.0, so it never enters .venv: it
  # gets a venv of its own and runs only as a separate process, in the tests. No fallback:
  # a test run without it would quietly stop checking the store against MongoDB behaviour.
  local version=0.7.0b3
  local check="import importlib.metadata as m, sys; sys.exit(m.version('secantusdb') != '$version')"
  if ! .venv-secantus/bin/python -c "$check" >/dev/null 2>&1; then
    "$(python_bin)" -m venv .venv-secantus &&
      .venv-secantus/bin/python -m pip install -q "secantusdb==$version" || {
      echo "error: could not install secantusdb==$version into .venv-secantus" >&2
      exit 1
    }
  fi
  export JY_SECANTUS_BIN="$PWD/.venv-secantus/bin/secantusd-py"
}

case "${1:-}" in
  up)
    setup
    shift
    exec .venv/bin/jobyard up "$@"
    ;;
  test)
    setup
    system_packages
    lepton_sdk
    secantus_server
    shift
    .venv/bin/ruff check .
    .venv/bin/ruff format --check .
    .venv/bin/mypy
    exec .venv/bin/pytest "$@"
    ;;
  bench)
    setup
    shift
    exec .venv/bin/python -m bench "$@"
    ;;
  *)
    sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
