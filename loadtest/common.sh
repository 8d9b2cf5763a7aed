# Shared by compare-nginx.sh, compare-quic.sh and agree.sh; sourced, not run.
#
# nexus_prepare NAME: makes a temp dir WORK (removed on exit unless KEEP=1)
# and stops every process in PIDS on exit; builds the release binaries
# unless BUILD=0 and sets BIN; generates COUNT aliases with their nginx map
# and wrk script into WORK/data and a resolver token for a fresh SECRET
# into TOKEN (HS256; with AUTH=eddsa, signed by a fresh Ed25519 key whose
# public half is all the edge gets, EDGE_AUTH_ENV). Expects ROOT, KEEP,
# BUILD and COUNT to be set.
#
# wrk_ms FILE PERCENT: the PERCENT% latency of `wrk --latency` output in
# FILE (written like 812.00us, 1.23ms or 2.01s), in milliseconds.
#
# nexus_start_edge SCHEME [VAR=value ...]: starts nexus-edge on a port the
# kernel picks (EDGE_WORKERS=1, serving the generated aliases with SECRET,
# plus the given variables) and waits until it resolves PROBE over SCHEME
# (http or https) with TOKEN. It runs under the SERVER_CPU command prefix:
# `taskset -c 0` unless the caller set SERVER_CPU (an empty array: not
# pinned). Sets EDGE_PID, PORT and PROBE; the edge's log is WORK/edge.log
# (WORK/$EDGE_LOG when set).
# After nexus_start_plane it syncs from that plane's Redis instead.
#
# nexus_start_plane: a private PostgreSQL and redis-server on free loopback
# ports and the control plane (`serve`, publishing there, rate limit off)
# with the generated aliases imported through its API. Sets CP (its URL),
# CP_PID, REDIS_PID, REDIS_PORT, ADMIN (an HS256 admin token for SECRET)
# and makes nexus_start_edge sync from that Redis. Needs
# nexus-control-plane in BIN, PostgreSQL's server binaries and python3;
# PostgreSQL is stopped on exit like everything else.

nexus_cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ -n ${PG_DATA:-} && -f $PG_DATA/postmaster.pid ]]; then
        nexus_as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate stop >/dev/null 2>&1 || true
    fi
    if [[ $KEEP == 1 ]]; then
        echo "files kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}

nexus_prepare() {
    local name="$1" b
    WORK="$(mktemp -d -t "nexus-$name.XXXXXX")"
    PIDS=()
    trap nexus_cleanup EXIT
    trap 'exit 130' INT TERM

    if [[ $BUILD == 1 ]]; then
        echo "building release binaries..." >&2
        local extra=()
        [[ ${AUTH:-hs256} != hs256 || ${PLANE:-0} == 1 ]] && extra=(-p nexus-control-plane)
        (cd "$ROOT" && cargo build --release -p nexus-edge -p nexus-loadtest "${extra[@]}")
    fi
    BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
    for b in nexus-edge nexus-loadtest; do
        [[ -x "$BIN/$b" ]] || { echo "$BIN/$b not built (drop --no-build)" >&2; exit 1; }
    done

    # 32 random bytes in hex: both planes refuse a SECRET_KEY under 32 bytes.
    SECRET="$name-$(od -An -tx1 -N32 /dev/urandom | tr -d " \n")"
    "$BIN/nexus-loadtest" gen --count "$COUNT" --out "$WORK/data" --secret "$SECRET" \
        >"$WORK/token" 2>"$WORK/gen.log"
    TOKEN="$(cat "$WORK/token")"
    EDGE_SOURCE=(--aliases-file "$WORK/data/aliases.yaml")
    EDGE_AUTH_ENV=(SECRET_KEY="$SECRET")
    if [[ ${AUTH:-hs256} == eddsa ]]; then
        # As production runs it: the control plane's Ed25519 key signs, the
        # edge holds only the public key.
        [[ -x "$BIN/nexus-control-plane" ]] || {
            echo "$BIN/nexus-control-plane not built (needed for --auth eddsa)" >&2
            exit 1
        }
        openssl genpkey -algorithm ed25519 -out "$WORK/token-key.pem" 2>/dev/null
        openssl pkey -in "$WORK/token-key.pem" -pubout -out "$WORK/token-pub.pem" 2>/dev/null
        TOKEN="$(env -u SECRET_KEY NEXUS_TOKEN_SIGNING_KEY_FILE="$WORK/token-key.pem" \
            "$BIN/nexus-control-plane" token --sub loadtest --role resolver --ttl 3600)"
        EDGE_AUTH_ENV=(NEXUS_TOKEN_VERIFY_KEYS_FILE="$WORK/token-pub.pem")
    fi
}

nexus_start_edge() {
    local scheme="$1" deadline
    shift
    # The bound address is read from the "listening" log line (LOG_LEVEL=info
    # logs no per-request lines). `env` execs, so $! is the edge itself.
    declare -p SERVER_CPU &>/dev/null || SERVER_CPU=(taskset -c 0)
    # Made here, not by the background job's redirect: the loop below may
    # read it before that job has run (and sed on a missing file fails the
    # script under `set -e`).
    : >"$WORK/${EDGE_LOG:-edge.log}"
    env EDGE_HTTP_ADDR="127.0.0.1:0" EDGE_WORKERS=1 "${EDGE_AUTH_ENV[@]}" LOG_LEVEL=info \
        NO_COLOR=1 "$@" "${SERVER_CPU[@]}" "$BIN/nexus-edge" \
        "${EDGE_SOURCE[@]}" >"$WORK/${EDGE_LOG:-edge.log}" 2>&1 &
    EDGE_PID=$!
    PIDS+=("$EDGE_PID")

    PROBE="/api/aliases/resolve/frontend/a-1"
    deadline=$((SECONDS + 120))
    PORT=""
    until [[ -n "$PORT" ]] && curl -kfsS -o /dev/null -H "Authorization: Bearer $TOKEN" \
        "$scheme://127.0.0.1:$PORT$PROBE" 2>/dev/null; do
        if ! kill -0 "$EDGE_PID" 2>/dev/null || ((SECONDS > deadline)); then
            echo "nexus-edge did not become ready (port '$PORT'); its log:" >&2
            cat "$WORK/${EDGE_LOG:-edge.log}" >&2
            exit 1
        fi
        PORT="$(sed -n 's/.*listening.*addr=127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' \
            "$WORK/${EDGE_LOG:-edge.log}" | head -n1)"
        sleep 0.2
    done
}

wrk_ms() {
    awk -v p="$2%" '$1 == p {
        v = $2; n = v + 0
        if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000
        printf "%.3f", n
    }' "$1"
}

nexus_as_pg() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# N distinct free loopback ports, one per line.
nexus_free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print("\n".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# SECONDS WHAT COMMAND...: runs COMMAND until it succeeds, or exits 1.
nexus_wait_for() {
    local limit=$(($(date +%s) + $1)) what="$2"
    shift 2
    until "$@" >/dev/null 2>&1; do
        if (($(date +%s) >= limit)); then
            echo "$what did not happen in time (logs in $WORK)" >&2
            exit 1
        fi
        sleep 0.1
    done
}

nexus_start_plane() {
    local ports seed verify
    PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
    [[ -x "$PG_BIN/initdb" ]] || PG_BIN="$(pg_config --bindir 2>/dev/null || true)"
    [[ -x "$PG_BIN/initdb" ]] || { echo "PostgreSQL server binaries not found" >&2; exit 1; }
    [[ -x "$BIN/nexus-control-plane" ]] || { echo "$BIN/nexus-control-plane not built" >&2; exit 1; }
    mapfile -t ports < <(nexus_free_ports 3)
    REDIS_PORT=${ports[1]}
    PG_DATA="$WORK/pg"
    chmod 755 "$WORK"
    mkdir -p "$PG_DATA" "$WORK/pgrun"
    [[ $(id -u) == 0 ]] && chown postgres "$PG_DATA" "$WORK/pgrun"
    nexus_as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust >"$WORK/initdb.log" 2>&1
    nexus_as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$WORK/pgrun/pg.log" -w \
        -o "-c listen_addresses=127.0.0.1 -p ${ports[0]} -k $WORK/pgrun -c fsync=off" start >/dev/null
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
        >"$WORK/redis.log" 2>&1 &
    REDIS_PID=$!
    PIDS+=("$REDIS_PID")
    nexus_wait_for 20 "Redis" redis-cli -p "$REDIS_PORT" ping
    # The snapshots' signing seed, and its public key for the edges.
    seed="$(python3 -c 'import os; print(os.urandom(32).hex())')"
    verify="$(python3 - "$seed" <<'EOF'
import sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
k = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(sys.argv[1]))
print(k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex())
EOF
)" || { echo "python3's cryptography module is needed" >&2; exit 1; }
    CP="http://127.0.0.1:${ports[2]}"
    local env=(DATABASE_URL="postgres://postgres@127.0.0.1:${ports[0]}/postgres?sslmode=disable"
        REDIS_URL="redis://127.0.0.1:$REDIS_PORT" SECRET_KEY="$SECRET" NEXUS_SIGNING_KEY="$seed"
        API_HOST=127.0.0.1 API_PORT="${ports[2]}" API_RATE_LIMIT=off LOG_LEVEL=info NO_COLOR=1)
    env "${env[@]}" "$BIN/nexus-control-plane" migrate >"$WORK/migrate.log" 2>&1 ||
        { echo "migrate failed:" >&2; cat "$WORK/migrate.log" >&2; exit 1; }
    env "${env[@]}" "$BIN/nexus-control-plane" serve >"$WORK/cp.log" 2>&1 &
    CP_PID=$!
    PIDS+=("$CP_PID")
    nexus_wait_for 30 "the control plane" curl -fsS "$CP/api/aliases/health"
    ADMIN="$(env SECRET_KEY="$SECRET" "$BIN/nexus-control-plane" token --sub loadtest-admin \
        --role admin --ttl 7200)"
    curl -fsS -X POST -H "Authorization: Bearer $ADMIN" -H 'content-type: application/yaml' \
        --data-binary @"$WORK/data/aliases.yaml" "$CP/api/admin/aliases/import" \
        >"$WORK/import.json" || { echo "import failed: $(cat "$WORK/import.json")" >&2; exit 1; }
    EDGE_SOURCE=()
    EDGE_AUTH_ENV+=(REDIS_URL="redis://127.0.0.1:$REDIS_PORT" NEXUS_VERIFY_KEY="$verify")
}
