#!/usr/bin/env bash
# Installs python scim2-server (PyPI) in a venv under target/ and serves it
# for side-by-side runs of scimitar-bench.
#
#   bench/run-peer.sh [PORT]       # default 8090; runs in the foreground
#
# Serves the tenant "bench" at http://127.0.0.1:PORT/bench/v2 with the bearer
# token in $SCIM2_BENCH_TOKEN (default "peer-bench-token"), in memory, with
# gunicorn's threaded worker (HTTP/1.1 keep-alive; one process, since the
# storage is in memory, 16 threads). Prints the worker's pid (for
# scimitar-bench --server-pid) to target/scim2-server.pid.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PORT="${1:-8090}"
SCIM2_SERVER_VERSION=0.8.3
GUNICORN_VERSION=23.0.0
VENV="$ROOT/target/scim2-server-venv"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check \
  "scim2-server[cursor]==$SCIM2_SERVER_VERSION" "gunicorn==$GUNICORN_VERSION"
export SCIM2_BENCH_TOKEN="${SCIM2_BENCH_TOKEN:-peer-bench-token}"
export SCIM2_BENCH_TENANT=bench
echo "scim2-server $SCIM2_SERVER_VERSION (gunicorn $GUNICORN_VERSION, $("$VENV/bin/python" --version)) on http://127.0.0.1:$PORT/bench/v2" >&2
(
  # Write the worker's pid once gunicorn has forked it.
  for _ in $(seq 1 100); do
    sleep 0.5
    master=$(cat "$ROOT/target/scim2-server-master.pid" 2>/dev/null || true)
    [ -n "$master" ] || continue
    worker=$(pgrep -P "$master" -f gunicorn | head -n1 || true)
    if [ -n "$worker" ]; then echo "$worker" >"$ROOT/target/scim2-server.pid"; break; fi
  done
) &
exec "$VENV/bin/gunicorn" --chdir "$ROOT/bench" --workers 1 --worker-class gthread --threads 16 \
  --keep-alive 75 --backlog 2048 --bind "127.0.0.1:$PORT" --pid "$ROOT/target/scim2-server-master.pid" \
  --log-level warning scim2_server_app:app
