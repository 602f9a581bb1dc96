#!/usr/bin/env bash
# Instructions per request of one scimitar-bench scenario, all server
# threads, counted with callgrind (docs/benchmarks.md, "What limits each
# miss" and "Write cost with events on"). Counts do not depend on the
# machine's load, so builds can be compared on a shared machine.
#
#   bench/callgrind.sh BIN_DIR [SCENARIO] [SECONDS] [OUT_DIR]
#
# BIN_DIR holds release `scimitar` and `scimitar-bench`; SCENARIO is patch
# (default) or create; SECONDS 40; OUT_DIR target/callgrind-SCENARIO. The
# database (10,000 users) is populated by the plain server first; then the
# server runs under callgrind, the counters are zeroed once the scenario's
# first request shows in /metrics and dumped when the bench ends, and the
# instructions are divided by the requests /metrics counted in between.
set -euo pipefail
BIN=$1; SCEN=${2:-patch}; SECS=${3:-40}
OUT=${4:-target/callgrind-$SCEN}
METHOD=$([ "$SCEN" = create ] && echo POST || echo PATCH)
rm -rf "$OUT"; mkdir -p "$OUT"
DB="sqlite:$OUT/scimitar.db"
export SCIMITAR_RATE_LIMIT=0 SCIMITAR_SCANS_PER_TENANT=0 SCIMITAR_REQUEST_LOG=off
PORT=${PORT:-38191}
URL="http://127.0.0.1:$PORT"
wait_up() { for _ in $(seq 1 600); do curl -fsS "$URL/healthz" >/dev/null 2>&1 && return 0; sleep 0.5; done; return 1; }
count() { curl -fsS "$URL/metrics" | awk -v m="method=\"$METHOD\"" 'index($0,"scimitar_requests_total{")==1 && index($0,m) {s+=$NF} END {printf "%d\n", s}'; }
"$BIN/scimitar" serve --database "$DB" --listen "127.0.0.1:$PORT" >"$OUT/serve0.log" 2>&1 &
S=$!
wait_up
TOKEN=$("$BIN/scimitar" token create --tenant default --label cg --database "$DB" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
"$BIN/scimitar-bench" --url "$URL/scim/default/v2" --token "$TOKEN" --scenarios lookup -c 4 --populate 10000 --seconds 1 --warmup 0 >"$OUT/populate.log" 2>&1
kill $S; wait $S || true
valgrind --tool=callgrind --dump-instr=no --callgrind-out-file="$OUT/cg.out" \
  "$BIN/scimitar" serve --database "$DB" --listen "127.0.0.1:$PORT" >"$OUT/serve.log" 2>&1 &
V=$!
wait_up
"$BIN/scimitar-bench" --url "$URL/scim/default/v2" --token "$TOKEN" --scenarios "$SCEN" -c 4 --populate 10000 --seconds "$SECS" --warmup 0 >"$OUT/bench.log" 2>&1 &
B=$!
until [ "$(count)" -gt 0 ]; do sleep 0.2; done
callgrind_control -z $V >/dev/null
C0=$(count)
wait $B
C1=$(count)
callgrind_control -d $V >/dev/null
sleep 2
kill $V; wait $V || true
F=$(ls "$OUT"/cg.out.* | head -1)
IR=$(awk '/^(summary|totals):/ {print $2; exit}' "$F")
N=$((C1 - C0))
echo "$SCEN: $IR instructions / $N $METHOD = $((IR / N)) per request (callgrind_annotate --inclusive=yes $F)"
