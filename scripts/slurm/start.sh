#!/bin/bash
# Start a throw-away single-node SLURM 22.05 cluster (munged + slurmctld + slurmd) and a
# key-only sshd on 127.0.0.1, everything kept under one base directory.
#
# Usage: start.sh [BASE]      BASE defaults to $JY_SLURM_BASE, then to this script's directory.
# Env:   SSHPORT CTLDPORT SLURMDPORT   free loopback ports (required: the caller picks them)
#        TUSER                         the (created if missing) login user, default jyslurm
# Needs root (slurmd runs jobs as TUSER, sshd) and the Debian packages slurm-wlm slurm-client
# munge openssh-server openssh-client bc. BASE and its parents must be traversable by TUSER.
# Writes BASE/cluster.env (KEY=VALUE lines) describing the cluster. stop.sh BASE undoes it all.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BASE=${1:-${JY_SLURM_BASE:-$HERE}}
BASE=$(cd "$BASE" && pwd)
: "${SSHPORT:?set SSHPORT}" "${CTLDPORT:?set CTLDPORT}" "${SLURMDPORT:?set SLURMDPORT}"
TUSER=${TUSER:-jyslurm}
T0=$(date +%s.%N)
el() { printf '%.2fs' "$(echo "$(date +%s.%N) - $T0" | bc)"; }
wait_port() {  # wait until something listens on 127.0.0.1:$1
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
  return 1
}

mkdir -p "$BASE"/{run,state,spool,log,ssh,munge}
chmod 755 "$BASE" "$BASE/run" "$BASE/ssh"
chmod 700 "$BASE/munge"
fill() {  # fill TEMPLATE OUTPUT: substitute the @NAME@ placeholders
  sed -e "s|@BASE@|$BASE|g" -e "s|@CPUS@|$(nproc)|g" -e "s|@CTLDPORT@|$CTLDPORT|g" \
      -e "s|@SLURMDPORT@|$SLURMDPORT|g" -e "s|@SSHPORT@|$SSHPORT|g" -e "s|@USER@|$TUSER|g" \
      "$HERE/$1" > "$2"
}
fill slurm.conf.in "$BASE/slurm.conf"
export SLURM_CONF="$BASE/slurm.conf"

# --- munge: its own key and socket, so concurrent clusters never share credentials ---
[ -f "$BASE/munge/munge.key" ] || mungekey --create --keyfile="$BASE/munge/munge.key" --bits=1024
chmod 600 "$BASE/munge/munge.key"
munged --socket="$BASE/run/munge.socket" --key-file="$BASE/munge/munge.key" \
       --pid-file="$BASE/run/munged.pid" --log-file="$BASE/log/munged.log" \
       --seed-file="$BASE/munge/munged.seed" --force
munge -S "$BASE/run/munge.socket" -n | unmunge -S "$BASE/run/munge.socket" >/dev/null
echo "munged up $(el)"

# --- slurm: fresh controller state every time (-c -i), node named localhost ---
slurmctld -c -i -f "$SLURM_CONF"
slurmd -N localhost -f "$SLURM_CONF"
state=""
for _ in $(seq 200); do
  state=$(sinfo -h -n localhost -o %T 2>/dev/null || true)
  [ "$state" = idle ] && break; sleep 0.05
done
[ "$state" = idle ] || { echo "node not idle: '$state'" >&2; tail -20 "$BASE/log/slurmctld.log" >&2; exit 1; }
echo "slurm up (node idle) $(el)"

# --- login user: '*' = no password but not locked (UsePAM no refuses a '!' password) ---
id "$TUSER" >/dev/null 2>&1 || useradd -m -s /bin/bash -p '*' "$TUSER" || id "$TUSER" >/dev/null
install -d -m 755 -o "$TUSER" -g "$TUSER" "$BASE/work"   # where jobs may write

# --- keys: the authorized key lives under BASE (not in the shared home) so sessions never clash ---
[ -f "$BASE/ssh/client_key" ] || ssh-keygen -q -t ed25519 -N '' -C "$TUSER@jobyard-test" -f "$BASE/ssh/client_key"
[ -f "$BASE/ssh/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$BASE/ssh/ssh_host_ed25519_key"
install -m 644 "$BASE/ssh/client_key.pub" "$BASE/ssh/authorized_keys"
echo "[127.0.0.1]:$SSHPORT $(cut -d' ' -f1,2 "$BASE/ssh/ssh_host_ed25519_key.pub")" > "$BASE/ssh/known_hosts"

# --- sshd: loopback, key only, one user; -D would block, so it daemonizes and writes a pid file ---
fill sshd_config.in "$BASE/ssh/sshd_config"
mkdir -p /run/sshd   # privilege-separation dir is compiled in; sshd refuses to start without it
/usr/sbin/sshd -t -f "$BASE/ssh/sshd_config"
/usr/sbin/sshd -f "$BASE/ssh/sshd_config" -E "$BASE/log/sshd.log"
wait_port "$SSHPORT" || { echo "sshd not listening on $SSHPORT" >&2; tail -20 "$BASE/log/sshd.log" >&2; exit 1; }
echo "sshd up on 127.0.0.1:$SSHPORT $(el)"

cat > "$BASE/cluster.env" <<ENV
HOST=127.0.0.1
PORT=$SSHPORT
USER=$TUSER
KEY=$BASE/ssh/client_key
KNOWN_HOSTS=$BASE/ssh/known_hosts
SLURM_CONF=$SLURM_CONF
WORK=$BASE/work
PARTITION=debug
ENV
echo "cluster ready $(el): $BASE/cluster.env"
