#!/usr/bin/env bash
# Starts `scimitar serve` (release build) on an embedded SQLite database for
# scimitar-bench, with the per-tenant rate limit off, and writes what the
# bench needs into DIR: token, pid, url.
#
#   bench/run-scimitar.sh DIR [PORT]      # default port 38080; DIR keeps the database
#   DATABASE=postgres://postgres@127.0.0.1:5432/bench bench/run-scimitar.sh DIR [PORT]
#                                         # the same on PostgreSQL (the database must exist)
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${1:?usage: bench/run-scimitar.sh DIR [PORT]}"
PORT="${2:-38080}"
BIN="${SCIMITAR_BIN:-$(pwd)/target/release/scimitar}"
mkdir -p "$DIR"
DB="${DATABASE:-sqlite:$DIR/scimitar.db}"
SCIMITAR_RATE_LIMIT=0 SCIMITAR_SCANS_PER_TENANT=0 SCIMITAR_LOG=warn nohup "$BIN" serve --database "$DB" --listen "127.0.0.1:$PORT" >"$DIR/serve.log" 2>&1 &
echo $! >"$DIR/pid"
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null || { cat "$DIR/serve.log"; exit 1; }
"$BIN" token create --tenant default --label bench --database "$DB" --json \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])' >"$DIR/token"
echo "http://127.0.0.1:$PORT/scim/default/v2" >"$DIR/url"
echo "scimitar pid $(cat "$DIR/pid") at $(cat "$DIR/url"); token in $DIR/token" >&2
