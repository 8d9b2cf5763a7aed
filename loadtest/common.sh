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
# pinned). Sets EDGE_PID, PORT and PROBE; the edge's log is WORK/edge.log.

nexus_cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
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
        [[ ${AUTH:-hs256} == eddsa ]] && extra=(-p nexus-control-plane)
        (cd "$ROOT" && cargo build --release -p nexus-edge -p nexus-loadtest "${extra[@]}")
    fi
    BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
    for b in nexus-edge nexus-loadtest; do
        [[ -x "$BIN/$b" ]] || { echo "$BIN/$b not built (drop --no-build)" >&2; exit 1; }
    done

    SECRET="$name-$RANDOM$RANDOM$RANDOM"
    "$BIN/nexus-loadtest" gen --count "$COUNT" --out "$WORK/data" --secret "$SECRET" \
        >"$WORK/token" 2>"$WORK/gen.log"
    TOKEN="$(cat "$WORK/token")"
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
    env EDGE_HTTP_ADDR="127.0.0.1:0" EDGE_WORKERS=1 "${EDGE_AUTH_ENV[@]}" LOG_LEVEL=info \
        NO_COLOR=1 "$@" "${SERVER_CPU[@]}" "$BIN/nexus-edge" \
        --aliases-file "$WORK/data/aliases.yaml" >"$WORK/edge.log" 2>&1 &
    EDGE_PID=$!
    PIDS+=("$EDGE_PID")

    PROBE="/api/aliases/resolve/frontend/a-1"
    deadline=$((SECONDS + 120))
    PORT=""
    until [[ -n "$PORT" ]] && curl -kfsS -o /dev/null -H "Authorization: Bearer $TOKEN" \
        "$scheme://127.0.0.1:$PORT$PROBE" 2>/dev/null; do
        if ! kill -0 "$EDGE_PID" 2>/dev/null || ((SECONDS > deadline)); then
            echo "nexus-edge did not become ready (port '$PORT'); its log:" >&2
            cat "$WORK/edge.log" >&2
            exit 1
        fi
        PORT="$(sed -n 's/.*listening.*addr=127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$WORK/edge.log" | head -n1)"
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
