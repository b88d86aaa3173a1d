#!/bin/bash
# Stop everything start.sh started under BASE, by pid file (never by name), and wait for each
# process to be gone. Usage: stop.sh [BASE] (same default as start.sh). Exit 1 if one survived.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BASE=${1:-${JY_SLURM_BASE:-$HERE}}
rc=0
alive() {  # a zombie counts as gone: it waits only for init to reap it, which may take seconds
  kill -0 "$1" 2>/dev/null || return 1
  [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" != Z ]
}
stop_pidfile() {
  local f=$1 pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
    for _ in $(seq 100); do alive "$pid" || break; sleep 0.05; done
    if alive "$pid"; then
      echo "SIGKILL $(basename "$f" .pid) ($pid)"; kill -9 "$pid" 2>/dev/null
      for _ in $(seq 40); do alive "$pid" || break; sleep 0.05; done
      alive "$pid" && { echo "still alive: $pid" >&2; rc=1; }
    fi
    echo "stopped $(basename "$f" .pid) ($pid)"
  fi
  rm -f "$f"
}
# Jobs first: slurmstepd and the job's processes outlive slurmd, so cancel them while the
# controller still answers, and wait (a few seconds at most) for the queue to drain.
if [ -f "$BASE/run/slurmctld.pid" ] && [ -f "$BASE/slurm.conf" ]; then
  export SLURM_CONF="$BASE/slurm.conf"
  ids=$(squeue -h -o %i 2>/dev/null || true)
  # shellcheck disable=SC2086  # one id per word
  [ -n "$ids" ] && { scancel $ids 2>/dev/null || true; }
  for _ in $(seq 100); do
    [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.1
  done
fi
stop_pidfile "$BASE/run/sshd.pid"
stop_pidfile "$BASE/run/slurmd-localhost.pid"
stop_pidfile "$BASE/run/slurmctld.pid"
stop_pidfile "$BASE/run/munged.pid"
exit $rc
