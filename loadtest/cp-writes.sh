#!/usr/bin/env bash
# Control-plane write benchmark (not a test). On a fresh database:
#   1. 16 clients creating unique aliases for ~10 s through the admin API
#      (control-plane/examples/write_load.rs against `nexus-control-plane serve`);
#   2. pgbench -i -s 1 and pgbench -c 16 -j 2 -T 10 (TPC-B-like) on the same
#      database, as the peer: what this PostgreSQL does with a similar
#      single-hot-row write transaction;
#   3. the ratio of the two (target >= 0.6), over ROUNDS (3) interleaved
#      rounds, medians compared;
#   4. the time to import 100,000 aliases with `nexus-control-plane import`
#      (target < 10 s).
# Needs PostgreSQL (NEXUS_BENCH_DATABASE_URL, default
# postgres://postgres@127.0.0.1:5432), psql and pgbench. Release build.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BASE=${NEXUS_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432}
CLIENTS=${CLIENTS:-16}
SECONDS_RUN=${SECONDS_RUN:-10}
IMPORT_N=${IMPORT_N:-100000}
ROUNDS=${ROUNDS:-3}
DB="nexus_cpbench_$(date +%s)_$$"
WORK=$(mktemp -d)
SERVER_PID=""

cleanup() {
  if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  psql -q "$BASE/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

if ! pg_isready -d "$BASE/postgres" >/dev/null 2>&1; then
  echo "PostgreSQL is not reachable at $BASE; start it (service postgresql start) or set NEXUS_BENCH_DATABASE_URL" >&2
  exit 1
fi

cd "$ROOT"
echo "building (release)..." >&2
cargo build --release -q -p nexus-control-plane --bin nexus-control-plane --example write_load
BIN="$ROOT/target/release/nexus-control-plane"
LOAD="$ROOT/target/release/examples/write_load"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export DATABASE_URL="$BASE/$DB" API_HOST=127.0.0.1 API_PORT=$PORT LOG_LEVEL=warn
export SECRET_KEY="bench-secret-bench-secret-bench-secret-00"
export NEXUS_GOVERNANCE_FILE="$ROOT/deploy/config/alias_governance.yaml"
# 16 writers on one token measure the write path, not the per-credential
# limit (100/s by default).
export API_RATE_LIMIT=off

psql -q "$BASE/postgres" -c "CREATE DATABASE $DB" >/dev/null
"$BIN" migrate >/dev/null
"$BIN" serve >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$PORT/api/aliases/health" >/dev/null 2>&1 && break
  sleep 0.1
done
TOKEN=$("$BIN" token --sub bench --role admin)

# The machine is shared: interleave rounds of both and compare medians, so a
# burst of someone else's work does not land on one side only.
pgbench -q -i -s 1 "$DB" -h 127.0.0.1 -U postgres >/dev/null 2>&1
CPS=() PGS=()
for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round: control plane, $CLIENTS clients creating aliases for ${SECONDS_RUN}s" >&2
  CP_LINE=$("$LOAD" --url "http://127.0.0.1:$PORT" --token "$TOKEN" --clients "$CLIENTS" --seconds "$SECONDS_RUN")
  echo "round $round control-plane: $CP_LINE"
  CPS+=("$(sed -n 's/.*writes_per_sec=\([0-9.]*\).*/\1/p' <<<"$CP_LINE")")
  echo "== round $round: pgbench -c $CLIENTS -j 2 -T $SECONDS_RUN (TPC-B-like, scale 1)" >&2
  PG_OUT=$(pgbench -c "$CLIENTS" -j 2 -T "$SECONDS_RUN" -h 127.0.0.1 -U postgres "$DB" 2>/dev/null)
  PG=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$PG_OUT" | head -1)
  echo "round $round pgbench: tps=$PG"
  PGS+=("$PG")
done
python3 - "${CPS[*]}" "${PGS[*]}" <<'PY'
import statistics, sys
cp = [float(x) for x in sys.argv[1].split()]
pg = [float(x) for x in sys.argv[2].split()]
mc, mp = statistics.median(cp), statistics.median(pg)
print(f"median control-plane writes/s={mc:.1f}  median pgbench tps={mp:.1f}  "
      f"ratio={mc/mp:.2f} (target >= 0.6)")
PY

echo "== import of $IMPORT_N aliases" >&2
python3 - "$IMPORT_N" >"$WORK/aliases.json" <<'PY'
import json, sys
n = int(sys.argv[1])
print(json.dumps({"aliases": [
    {"context": ["frontend", "backend", "system"][i % 3], "alias": f"imp-{i}",
     "canonical": f"https://api.nexus.com/v1/import/{i}", "description": f"alias {i}"}
    for i in range(n)]}))
PY
START=$(date +%s.%N)
"$BIN" import "$WORK/aliases.json" >"$WORK/import.json"
END=$(date +%s.%N)
python3 -c "print(f'import_{$IMPORT_N}_seconds={$END-$START:.2f} (target < 10)')"
grep -E '"created"' "$WORK/import.json"
echo "machine: $(nproc) cores, $(uname -r), $(psql -At "$BASE/postgres" -c 'show server_version')"
