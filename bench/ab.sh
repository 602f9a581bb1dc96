#!/usr/bin/env bash
# A/B comparison of two (or more) scimitar binaries on one database: runs
# one scenario against each binary in turn, twice, restarting the server
# each time, so that both see the same data and the same machine state.
# On a shared two-core VM run-to-run noise is 10-30 %; alternating is what
# makes a difference of that size visible.
#
#   bench/ab.sh DIR SCENARIO BIN_A BIN_B [BIN...]
#
# DIR is a directory prepared by bench/run-scimitar.sh (database, token, url;
# populated by an earlier scimitar-bench run with the same POPULATE, default
# 100000, and GROUP_SIZE, default 1000). Port from DIR/url. DATABASE (as for
# run-scimitar.sh) names a PostgreSQL database instead of DIR's SQLite file.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${1:?usage: bench/ab.sh DIR SCENARIO BIN_A BIN_B [BIN...]}"
SCEN="${2:?scenario}"
shift 2
URL="$(cat "$DIR/url")"
HOSTPORT="$(echo "$URL" | sed -E 's#^https?://([^/]+)/.*#\1#')"
BENCH="${SCIMITAR_BENCH:-$(pwd)/target/release/scimitar-bench}"
DB="${DATABASE:-sqlite:$DIR/scimitar.db}"
stop() { [ -f "$DIR/pid" ] && kill "$(cat "$DIR/pid")" 2>/dev/null || true; sleep 0.5; }
for round in 1 2; do
  for BIN in "$@"; do
    stop
    SCIMITAR_RATE_LIMIT=0 SCIMITAR_SCANS_PER_TENANT=0 SCIMITAR_LOG=warn "$BIN" serve --database "$DB" \
      --listen "$HOSTPORT" >"$DIR/serve.log" 2>&1 &
    echo $! >"$DIR/pid"
    for _ in $(seq 1 100); do curl -fsS "http://$HOSTPORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
    printf 'round %s  %-40s ' "$round" "$BIN"
    "$BENCH" --url "$URL" --token "$(cat "$DIR/token")" --populate "${POPULATE:-100000}" --group-size "${GROUP_SIZE:-1000}" \
      --seconds 5 --warmup 1 --scenarios "$SCEN" --server-pid "$(cat "$DIR/pid")" 2>/dev/null \
      | grep -E "^$SCEN " | tail -1
  done
done
stop
