#!/usr/bin/env bash
# Write throughput with and without change events (issue 18): PATCH and
# create, SQLite (or PostgreSQL, below), 16 connections, 15 s after 2 s of warm-up, alternating a
# build from before the events outbox (06ae26e) and this tree, three
# rounds, each run on a fresh database that scimitar-bench first fills with
# 10,000 users (not timed). The same scimitar-bench (NEW's) drives both.
#
#   OLD=/path/to/06ae26e/target/release [NEW=target/release] bench/ab-events.sh
#
# BACKEND=postgres runs both on PostgreSQL (PG_URL, default
# postgres://postgres@127.0.0.1:5432), each run in a database made for it
# and dropped after; ROUNDS (3) and SCENS ("patch create") narrow a run.
set -euo pipefail
BACKEND=${BACKEND:-sqlite}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
OLD=${OLD:?directory of a release build of the commit without events, e.g. 06ae26e}
NEW=${NEW:-target/release}
export SCIMITAR_RATE_LIMIT=0 SCIMITAR_SCANS_PER_TENANT=0 SCIMITAR_REQUEST_LOG=off SCIMITAR_LOG=warn
PORT=${PORT:-38391}
URL="http://127.0.0.1:$PORT"
for round in $(seq 1 "${ROUNDS:-3}"); do
  for scen in ${SCENS:-patch create}; do
    for name in old new; do
      BIN=$([ "$name" = old ] && echo "$OLD" || echo "$NEW")
      D=$(mktemp -d)
      DB="sqlite:$D/s.db"
      if [ "$BACKEND" = postgres ]; then
        NAME="scimitar_ab_$$_${round}_${scen}_$name"
        psql -q "$PG_URL/postgres" -c "CREATE DATABASE $NAME" >/dev/null
        DB="$PG_URL/$NAME"
      fi
      "$BIN/scimitar" serve --database "$DB" --listen "127.0.0.1:$PORT" >"$D/serve.log" 2>&1 &
      S=$!
      for _ in $(seq 1 100); do curl -fsS "$URL/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
      TOKEN=$("$BIN/scimitar" token create --tenant default --label ab --database "$DB" --json \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
      "$NEW/scimitar-bench" --url "$URL/scim/default/v2" --token "$TOKEN" --scenarios "$scen" -c 16 \
        --populate 10000 --seconds 15 --warmup 2 >"$D/bench.log" 2>&1 || true
      # The scenario's row of the table: name, requests, errors, seconds, requests/s, …
      echo "round $round $scen $name: $(grep -E "^$scen " "$D/bench.log" | tail -n 1 | awk '{print $5}') requests/s"
      kill "$S"
      wait "$S" 2>/dev/null || true
      rm -rf "$D"
      if [ "$BACKEND" = postgres ]; then psql -q "$PG_URL/postgres" -c "DROP DATABASE $NAME" >/dev/null; fi
    done
  done
done
