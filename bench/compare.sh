#!/usr/bin/env bash
# Side by side, in one run on one machine: Scimitar on SQLite, on PostgreSQL
# (one node, and three nodes sharing the database), python scim2-server, and
# the ceilings — Scimitar's own `/healthz` and `pgbench -S`. The same load
# tool, connections, data size and seconds for every system.
#
#   bench/compare.sh [OUT_DIR]          # default target/bench-compare
#
# Environment: USERS (10000), CONNECTIONS (16), SECONDS_PER (10), SCENARIOS
# (lookup,patch,create), PG (postgres://postgres@127.0.0.1:5432; databases
# scimitar_compare and scimitar_pgbench are dropped and created), PEER=0 to
# leave the peer out, NODES3=0 to leave the three-node run out.
# Writes OUT_DIR/*.json (one per system) and OUT_DIR/table.md, and prints
# the table.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT="${1:-$ROOT/target/bench-compare}"
USERS="${USERS:-10000}"
CONNS="${CONNECTIONS:-16}"
SECS="${SECONDS_PER:-10}"
SCEN="${SCENARIOS:-lookup,patch,create}"
PG="${PG:-postgres://postgres@127.0.0.1:5432}"
PGHOST=$(echo "$PG" | sed -E 's#^postgres(ql)?://([^@/]*@)?([^:/]+).*#\3#')
PGPORT=$(echo "$PG" | sed -nE 's#^postgres(ql)?://([^@/]*@)?[^:/]+:([0-9]+).*#\3#p')
PGPORT="${PGPORT:-5432}"
PGUSER=$(echo "$PG" | sed -nE 's#^postgres(ql)?://([^@:/]+)@.*#\2#p')
PGUSER="${PGUSER:-postgres}"
BIN="$ROOT/target/release/scimitar"
BENCH="$ROOT/target/release/scimitar-bench"
mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/table.md

if [ ! -x "$BIN" ] || [ ! -x "$BENCH" ]; then
  cargo build --release --locked -p scimitar -p scimitar-bench
fi
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

serve() { # PORT DATABASE LOG: a server with the per-tenant limits off
  SCIMITAR_RATE_LIMIT=0 SCIMITAR_SCANS_PER_TENANT=0 SCIMITAR_LOG=warn \
    SCIMITAR_REQUEST_LOG=off "$BIN" serve --database "$2" --listen "127.0.0.1:$1" >"$3" 2>&1 &
  PIDS+=($!)
  LAST_PID=$!
  for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return 0; sleep 0.1; done
  cat "$3"; exit 1
}
token() { # DATABASE
  "$BIN" token create --tenant default --label compare --database "$1" --json \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}
bench() { # LABEL URL TOKEN PID SCENARIOS [more args]
  local label=$1 url=$2 tok=$3 pid=$4 scen=$5
  shift 5
  echo "== $label" >&2
  "$BENCH" --url "$url" --token "$tok" --populate "$USERS" --group-size 100 --bulk-size 500 \
    --connections "$CONNS" --seconds "$SECS" --warmup 1 --scenarios "$scen" \
    --server-pid "$pid" --label "$label" --json "$OUT/$label.json" "$@" | grep -vE '^(server pid|$)' >&2
}
for port in 38601 38602 38603 38604 8091; do
  if ss -ltn "sport = :$port" | grep -q LISTEN; then echo "port $port is in use" >&2; exit 1; fi
done

# 1. SQLite (and Scimitar's /healthz, the framework's ceiling).
SQL_DIR="$OUT/sqlite"
rm -rf "$SQL_DIR" && mkdir -p "$SQL_DIR"
DB="sqlite:$SQL_DIR/scimitar.db"
serve 38601 "$DB" "$SQL_DIR/serve.log"
bench sqlite "http://127.0.0.1:38601/scim/default/v2" "$(token "$DB")" "$LAST_PID" "healthz,$SCEN"
kill "$LAST_PID"; sleep 0.5

# 2. pgbench -S, the database's ceiling for one indexed read per transaction.
export PGHOST PGPORT PGUSER
dropdb --if-exists scimitar_pgbench && createdb scimitar_pgbench
pgbench -i -s 10 -q scimitar_pgbench >/dev/null 2>&1
echo "== pgbench -S" >&2
pgbench -S -M prepared -n -c "$CONNS" -j 2 -T "$SECS" scimitar_pgbench 2>/dev/null \
  | sed -nE 's/^tps = ([0-9.]+).*/\1/p' | tee "$OUT/pgbench-S.txt" >&2
dropdb scimitar_pgbench

# 3. PostgreSQL, one node, then three nodes on the same database.
dropdb --if-exists scimitar_compare && createdb scimitar_compare
DB="$PG/scimitar_compare"
serve 38602 "$DB" "$OUT/pg1.log"
P1=$LAST_PID
TOK=$(token "$DB")
bench postgres-1-node "http://127.0.0.1:38602/scim/default/v2" "$TOK" "$P1" "$SCEN"
cleanup; PIDS=()
sleep 0.5
# Three nodes start from a fresh database too: the one-node run's creates
# and PATCHes (dead rows, with autovacuum off) would weigh on them.
if [ "${NODES3:-1}" != 0 ]; then
  dropdb scimitar_compare && createdb scimitar_compare
  serve 38602 "$DB" "$OUT/pg1.log"
  P1=$LAST_PID
  TOK=$(token "$DB")
  serve 38603 "$DB" "$OUT/pg2.log"
  serve 38604 "$DB" "$OUT/pg3.log"
  bench postgres-3-nodes "http://127.0.0.1:38602/scim/default/v2" "$TOK" "$P1" "$SCEN" \
    --also-url "http://127.0.0.1:38603/scim/default/v2" --also-url "http://127.0.0.1:38604/scim/default/v2"
  cleanup; PIDS=()
  sleep 0.5
fi
dropdb scimitar_compare

# 4. The peer: python scim2-server (in memory, gunicorn, 16 threads).
if [ "${PEER:-1}" != 0 ]; then
  rm -f target/scim2-server.pid
  bench/run-peer.sh 8091 >"$OUT/peer.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 600); do [ -s target/scim2-server.pid ] && curl -fsS -o /dev/null "http://127.0.0.1:8091/bench/v2/ServiceProviderConfig" -H "Authorization: Bearer peer-bench-token" 2>/dev/null && break; sleep 0.5; done
  bench scim2-server "http://127.0.0.1:8091/bench/v2" peer-bench-token "$(cat target/scim2-server.pid)" "$SCEN"
  pkill -f "gunicorn.*8091" 2>/dev/null || true
fi

python3 - "$OUT" "$SCEN" <<'EOF' | tee "$OUT/table.md"
import json, os, sys
out, scen = sys.argv[1], sys.argv[2].split(",")
def load(name):
    p = os.path.join(out, name + ".json")
    if not os.path.exists(p):
        return None
    with open(p) as f:
        d = json.load(f)
    return {r["scenario"]: r for r in d["results"]}
systems = [("Scimitar, SQLite", "sqlite"), ("Scimitar, PostgreSQL", "postgres-1-node"),
           ("Scimitar, PostgreSQL, 3 nodes", "postgres-3-nodes"), ("python scim2-server", "scim2-server")]
rows = {label: load(name) for label, name in systems}
sq = rows["Scimitar, SQLite"] or {}
healthz = sq.get("healthz", {}).get("throughput_per_s")
pgb = open(os.path.join(out, "pgbench-S.txt")).read().strip() if os.path.exists(os.path.join(out, "pgbench-S.txt")) else ""
head = "| per second | " + " | ".join(l for l, _ in systems if rows[l]) + " |"
print(head)
print("|" + "---|" * (head.count("|") - 1))
for s in scen:
    cells = []
    for label, _ in systems:
        r = rows[label]
        if r is None:
            continue
        v = r.get(s)
        cells.append("—" if v is None else f"{v['throughput_per_s']:,.0f}" + (f" ({v['errors']} errors)" if v.get("errors") else ""))
    print(f"| {s} | " + " | ".join(cells) + " |")
print()
if healthz:
    print(f"Ceilings in the same run: Scimitar `/healthz` {healthz:,.0f}/s; `pgbench -S` {float(pgb):,.0f} tps." if pgb else f"Ceiling: `/healthz` {healthz:,.0f}/s.")
EOF
