#!/usr/bin/env bash
# The provisioning engine's benchmark (issue 13): a throwaway OpenLDAP with
# USERS users (default 10,000), GROUP_COUNT groups (200) and MEMBERS memberships
# (20,000), provisioned by `scimitar sync run --once` into a local Scimitar
# on SQLite (release builds), then:
#   1. the initial cycle (everything: match + create, groups, members);
#   2. an incremental cycle after CHANGES (100) title changes;
#   3. an incremental cycle with no change.
# Each line prints the cycle's JSON summary (objects, requests, duration)
# and the engine's wall time and peak RSS (/usr/bin/time). With
# TARGET=scim2 the same job runs into python scim2-server instead (SCIM2,
# default target/scim2-server-venv/bin/scim2-server; .ci/run installs it).
# PROFILE=1 records the initial cycle with `perf record --call-graph dwarf`
# and prints where the engine's CPU goes (by library, by function).
#
#   bench/engine.sh            # into Scimitar
#   TARGET=scim2 bench/engine.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
USERS="${USERS:-10000}"
GROUPS_N="${GROUP_COUNT:-200}"
MEMBERS="${MEMBERS:-20000}"
CHANGES="${CHANGES:-100}"
TARGET="${TARGET:-scimitar}"
WORK=$(mktemp -d /tmp/scimitar-engine-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cargo build --release --locked --bin scimitar >/dev/null 2>&1
BIN="$ROOT/target/release/scimitar"
export SCIMITAR_KEY_FILE="$WORK/scimitar.key"

# --- the directory ---------------------------------------------------------
SCHEMA=/etc/ldap/schema
MODULES=/usr/lib/ldap
mkdir -p "$WORK/ldap"
cat >"$WORK/slapd.conf" <<EOF
include $SCHEMA/core.schema
include $SCHEMA/cosine.schema
include $SCHEMA/nis.schema
include $SCHEMA/inetorgperson.schema
modulepath $MODULES
moduleload back_mdb
moduleload syncprov
pidfile $WORK/slapd.pid
database mdb
maxsize 4294967296
suffix "dc=example,dc=org"
rootdn "cn=admin,dc=example,dc=org"
rootpw secret
directory $WORK/ldap
index objectClass,entryCSN,entryUUID eq
limits dn.exact="cn=admin,dc=example,dc=org" size=unlimited time=unlimited
overlay syncprov
syncprov-checkpoint 100 10
syncprov-sessionlog 10000
EOF
python3 - "$USERS" "$GROUPS_N" "$MEMBERS" >"$WORK/data.ldif" <<'PY'
import sys
users, groups, members = map(int, sys.argv[1:4])
print("dn: dc=example,dc=org\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n")
print("dn: ou=people,dc=example,dc=org\nobjectClass: organizationalUnit\nou: people\n")
print("dn: ou=groups,dc=example,dc=org\nobjectClass: organizationalUnit\nou: groups\n")
for i in range(users):
    mgr = "" if i % 50 == 0 else f"manager: uid=u{i - i % 50:05d},ou=people,dc=example,dc=org\n"
    print(f"dn: uid=u{i:05d},ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: u{i:05d}\n"
          f"cn: User {i}\ngivenName: User\nsn: N{i}\nmail: u{i:05d}@example.org\ntitle: Engineer\n"
          f"departmentNumber: {i % 20}\ntelephoneNumber: +1 555 {i:05d}\nemployeeNumber: {i}\n{mgr}")
per = members // groups
for g in range(groups):
    lines = [f"dn: cn=g{g:03d},ou=groups,dc=example,dc=org", "objectClass: groupOfNames", f"cn: g{g:03d}"]
    for k in range(per):
        lines.append(f"member: uid=u{(g * per + k) % users:05d},ou=people,dc=example,dc=org")
    print("\n".join(lines) + "\n")
PY
slapadd -q -f "$WORK/slapd.conf" -l "$WORK/data.ldif"
LPORT=$(port)
slapd -d 0 -f "$WORK/slapd.conf" -h "ldap://127.0.0.1:$LPORT/" >"$WORK/slapd.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/$LPORT) 2>/dev/null && break; sleep 0.1; done

# --- the application -------------------------------------------------------
APORT=$(port)
if [ "$TARGET" = scim2 ]; then
  SCIM2="${SCIM2:-$ROOT/target/scim2-server-venv/bin/scim2-server}"
  "$SCIM2" --port "$APORT" --bearer-token bench >"$WORK/app.log" 2>&1 &
  APP=$!
  PIDS+=($APP)
  URL="http://127.0.0.1:$APORT"
  TOKEN=bench
  DIALECT=rfc
  for _ in $(seq 1 100); do curl -fsS "$URL/ServiceProviderConfig" >/dev/null 2>&1 && break; sleep 0.1; done
else
  DB="sqlite:$WORK/app.db"
  SCIMITAR_RATE_LIMIT=0 SCIMITAR_SCANS_PER_TENANT=0 SCIMITAR_LOG=warn "$BIN" serve --database "$DB" \
    --listen "127.0.0.1:$APORT" >"$WORK/app.log" 2>&1 &
  APP=$!
  PIDS+=($APP)
  for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$APORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  TOKEN=$("$BIN" token create --tenant default --database "$DB" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  URL="http://127.0.0.1:$APORT/scim/default/v2"
  DIALECT=entra-compliant
fi

cat >"$WORK/job.toml" <<EOF
name = "bench"
[source]
kind = "ldap"
url = "ldap://127.0.0.1:$LPORT"
bind_dn = "cn=admin,dc=example,dc=org"
bind_password = "secret"
base_dn = "dc=example,dc=org"
[target]
url = "$URL"
token = "$TOKEN"
dialect = "$DIALECT"
[scope]
mode = "all"
EOF

# CPU seconds (user + system) a process has used.
cpu() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$1/stat"; }

cycle() {
  local label=$1
  shift
  local app_before app_after
  app_before=$(cpu "$APP")
  /usr/bin/time -f '%e %M %U %S' -o "$WORK/time" "$@" "$BIN" sync run --job "$WORK/job.toml" --once --json \
    --database "sqlite:$WORK/engine.db" >"$WORK/summary" 2>"$WORK/err" || { cat "$WORK/err"; exit 1; }
  app_after=$(cpu "$APP")
  read -r wall rss user sys <"$WORK/time"
  printf '%-28s wall %6.2f s  peak RSS %4d MB  engine CPU %5.2f s  application CPU %5.2f s\n    %s\n' \
    "$label" "$wall" $((rss / 1024)) "$(echo "$user + $sys" | bc)" "$(echo "$app_after - $app_before" | bc)" "$(cat "$WORK/summary")"
}

echo "engine benchmark: $USERS users, $GROUPS_N groups, $MEMBERS memberships, ldap -> $TARGET ($DIALECT)"
if [ "${PROFILE:-0}" = 1 ]; then
  cycle "initial (perf record)" perf record -F 499 --call-graph dwarf,16384 -o "$WORK/perf.data" --
  echo "  where the engine's CPU goes, by library:"
  perf report -i "$WORK/perf.data" --no-children --sort dso --percent-limit 1 --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -12
  echo "  and by function, including callees:"
  perf report -i "$WORK/perf.data" --children --sort sym --percent-limit 3 --stdio -g none 2>/dev/null \
    | grep -E '^ +[0-9]' | grep -E "scimitar_|ldap3|serde_json|reqwest|hyper|rusqlite|sqlite3|rustls|mimalloc|_mi_" | head -30
else
  cycle "initial"
fi
python3 - "$CHANGES" >"$WORK/changes.ldif" <<'PY'
import sys
for i in range(int(sys.argv[1])):
    print(f"dn: uid=u{i * 37 % 10000:05d},ou=people,dc=example,dc=org\nchangetype: modify\nreplace: title\ntitle: Principal {i}\n")
PY
ldapmodify -x -H "ldap://127.0.0.1:$LPORT" -D "cn=admin,dc=example,dc=org" -w secret -f "$WORK/changes.ldif" >/dev/null
cycle "incremental ($CHANGES changes)"
cycle "incremental (no change)"
