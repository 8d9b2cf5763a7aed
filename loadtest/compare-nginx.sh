#!/usr/bin/env bash
# Throughput and p99 of nexus-edge against nginx serving the same aliases
# from a static `map` (and, with --with-hyper, against bare hyper), measured
# with wrk under identical conditions.
#
#   loadtest/compare-nginx.sh [--rounds N] [--duration 10s] [--connections 64] [--warmup 3s]
#                             [--count 99999] [--with-hyper] [--with-loadtest] [--pin]
#                             [--auth hs256|eddsa|api-key] [--rate-limit RATE]
#                             [--no-build] [--keep]
#
# What it does:
#   1. builds release nexus-edge and nexus-loadtest (skip with --no-build);
#   2. `nexus-loadtest gen`: N aliases over frontend/backend/system, the
#      matching nginx map and a wrk script whose init() prebuilds one request
#      per alias (shuffled) and whose request() only returns the next one, so
#      wrk costs little per request and the comparison measures the servers,
#      not wrk's Lua (see loadtest/agree.sh); mints a resolver JWT;
#   3. starts nexus-edge (EDGE_WORKERS=1, token checked on every request)
#      and nginx (one worker, `return 200 $nexus_body`, no auth, access_log
#      off) on free loopback ports; with --with-hyper also
#      `nexus-loadtest hyper-peer` (hyper's HTTP/1.1 server on one thread,
#      the same bodies from a HashMap, no auth): the floor under the edge;
#   4. runs wrk -t1 -cC -dD --latency, interleaved edge, nginx[, hyper],
#      edge, ... (R rounds each) so drift on a shared machine hits all alike;
#   5. prints every run, the means, and the ratios edge/nginx (and
#      edge/hyper).
# With --with-loadtest, nexus-loadtest (1 thread, same connections) also
# measures both, to compare its req/s with wrk's. With --pin, servers run on
# CPU 0 and the load generators on CPU 1 (taskset), so they do not trade
# cores mid-run. --auth eddsa: the edge verifies EdDSA tokens with only a
# public key (NEXUS_TOKEN_VERIFY_KEYS_FILE), the token minted by
# `nexus-control-plane token` (also built); --auth api-key: a resolver API
# key, which edges learn only through the signed stream, so the edge syncs
# from a control plane (private PostgreSQL and Redis, started here, the
# same aliases imported) instead of serving the file; default hs256
# (SECRET_KEY). --rate-limit RATE (e.g. 10000000/s): the edge runs with
# EDGE_RATE_LIMIT=RATE, each credential's bucket checked on every request;
# set it above what the run reaches to measure what the check costs (the
# non-2xx column shows any 429).
#
# Needs: cargo, wrk, nginx (/usr/sbin/nginx or on PATH), curl, ss; jq for
# --with-loadtest. Everything it starts is stopped on exit, and its files
# live in a temp dir removed on exit (kept with --keep).
set -euo pipefail

ROUNDS=3
DURATION=10s
WARMUP=3s
CONNECTIONS=64
COUNT=99999
WITH_LOADTEST=0
WITH_HYPER=0
BUILD=1
KEEP=0
PIN=0
AUTH=hs256
RATE_LIMIT=""

usage() { sed -n '2,43p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --rounds) ROUNDS="$2"; shift 2 ;;
        --warmup) WARMUP="$2"; shift 2 ;;
        --duration) DURATION="$2"; shift 2 ;;
        --connections) CONNECTIONS="$2"; shift 2 ;;
        --count) COUNT="$2"; shift 2 ;;
        --with-loadtest) WITH_LOADTEST=1; shift ;;
        --with-hyper) WITH_HYPER=1; shift ;;
        --no-build) BUILD=0; shift ;;
        --keep) KEEP=1; shift ;;
        --pin) PIN=1; shift ;;
        --auth) AUTH="$2"; shift 2 ;;
        --rate-limit) RATE_LIMIT="$2"; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "--rounds must be a positive integer" >&2; exit 2; }
[[ "$CONNECTIONS" =~ ^[1-9][0-9]*$ ]] || { echo "--connections must be a positive integer" >&2; exit 2; }
[[ $AUTH =~ ^(hs256|eddsa|api-key)$ ]] || { echo "--auth is hs256, eddsa or api-key" >&2; exit 2; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
need=(wrk curl ss "$NGINX")
[[ $BUILD == 1 ]] && need+=(cargo)
[[ $WITH_LOADTEST == 1 || $AUTH == api-key ]] && need+=(jq)
[[ $PIN == 1 ]] && need+=(taskset)
for tool in "${need[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || [[ -x "$tool" ]] || {
        echo "missing tool: $tool" >&2
        exit 1
    }
done

SERVER_CPU=()
CLIENT_CPU=()
if [[ $PIN == 1 ]]; then
    SERVER_CPU=(taskset -c 0)
    CLIENT_CPU=(taskset -c 1)
fi

# Temp dir, cleanup, binaries, aliases (+ nginx map, wrk script), token.
# shellcheck source=loadtest/common.sh
source "$ROOT/loadtest/common.sh"
nexus_prepare compare
if [[ $AUTH == api-key ]]; then
    nexus_start_plane
    TOKEN="$(curl -fsS -X POST -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' \
        -d '{"name": "compare-nginx", "role": "resolver", "contexts": ["*"]}' \
        "$CP/api/admin/api-keys" | jq -r .key)"
fi

# 3. Servers. The edge picks its own port; nginx cannot say which it got,
# so it gets a free one: random candidates, checked against every
# listening socket.
[[ -n $RATE_LIMIT ]] && EDGE_AUTH_ENV+=(EDGE_RATE_LIMIT="$RATE_LIMIT")
nexus_start_edge http
EDGE_PORT="$PORT"
free_port() {
    local port
    for _ in $(seq 1 200); do
        port=$((20000 + RANDOM % 40000))
        if [[ -z "$(ss -Htln "sport = :$port")" ]]; then
            echo "$port"
            return 0
        fi
    done
    echo "no free port found" >&2
    return 1
}
NGINX_PORT="$(free_port)"

mkdir -p "$WORK/nginx/tmp"
cat >"$WORK/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 1;
error_log $WORK/nginx/error.log warn;
pid $WORK/nginx/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    default_type application/json;
    # Room for ~100k map keys.
    map_hash_max_size 262144;
    map_hash_bucket_size 128;
    client_body_temp_path $WORK/nginx/tmp/body;
    proxy_temp_path $WORK/nginx/tmp/proxy;
    fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
    uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
    scgi_temp_path $WORK/nginx/tmp/scgi;
    # The default (1000) would close wrk's connections every 1000 requests.
    keepalive_requests 100000000;
    include $WORK/data/nginx-map.conf;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location /api/aliases/resolve/ {
            if (\$nexus_body = "") {
                return 404 '{"error":"not_found","message":"no such alias"}';
            }
            return 200 \$nexus_body;
        }
    }
}
EOF
"$NGINX" -t -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" >"$WORK/nginx/test.log" 2>&1 || {
    cat "$WORK/nginx/test.log" >&2
    exit 1
}
"${SERVER_CPU[@]}" "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" >"$WORK/nginx/stdout.log" 2>&1 &
PIDS+=($!)

SERVERS=("edge:$EDGE_PORT" "nginx:$NGINX_PORT")
if [[ $WITH_HYPER == 1 ]]; then
    "${SERVER_CPU[@]}" "$BIN/nexus-loadtest" hyper-peer --aliases-file "$WORK/data/aliases.yaml" \
        >"$WORK/hyper.log" 2>&1 &
    PIDS+=($!)
    HYPER_PORT=""
    for _ in $(seq 1 600); do
        HYPER_PORT="$(sed -n 's/^hyper-peer listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$WORK/hyper.log")"
        [[ -n "$HYPER_PORT" ]] && break
        sleep 0.2
    done
    [[ -n "$HYPER_PORT" ]] || { echo "hyper-peer did not start; its log:" >&2; cat "$WORK/hyper.log" >&2; exit 1; }
    SERVERS+=("hyper:$HYPER_PORT")
fi

# Ready when a known alias answers 200; all must give the same body.
wait_ready() {
    local name="$1" port="$2" log="$3" deadline=$((SECONDS + 120))
    until curl -fsS -o /dev/null -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$port$PROBE" 2>/dev/null; do
        if ((SECONDS > deadline)); then
            echo "$name did not become ready on port $port; its log:" >&2
            cat "$log" >&2
            exit 1
        fi
        sleep 0.2
    done
}
wait_ready nginx "$NGINX_PORT" "$WORK/nginx/error.log"
EDGE_BODY="$(curl -fsS -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$EDGE_PORT$PROBE")"
for pair in "${SERVERS[@]:1}"; do
    body="$(curl -fsS "http://127.0.0.1:${pair##*:}$PROBE")"
    if [[ "$EDGE_BODY" != "$body" ]]; then
        echo "bodies differ: edge $EDGE_BODY ${pair%%:*} $body" >&2
        exit 1
    fi
done

# 4. wrk, interleaved.
RESULTS="$WORK/results.tsv"
: >"$RESULTS"
run_wrk() {
    local name="$1" port="$2" round="$3" out rps p99 non2xx
    out="$WORK/wrk-$name-$round.txt"
    "${CLIENT_CPU[@]}" wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$WORK/data/paths.lua" \
        -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$port" >"$out" 2>&1
    rps="$(awk '/^Requests\/sec:/ { print $2 }' "$out")"
    p99="$(wrk_ms "$out" 99)"
    non2xx="$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")"
    [[ -n "$rps" ]] || { echo "wrk output not understood:" >&2; cat "$out" >&2; exit 1; }
    printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$name" "$rps" "$p99" "${non2xx:-0}" >>"$RESULTS"
    printf '  round %s %-6s %12s req/s  p99 %8s ms  non-2xx %s\n' \
        "$round" "$name" "$rps" "$p99" "${non2xx:-0}" >&2
}
# An unscored warm-up of each server first: the first seconds of a fresh
# process (page faults, cold caches, the edge's token cache) belong to
# neither server's steady state.
if [[ "$WARMUP" != "0" && "$WARMUP" != "0s" ]]; then
    for pair in "${SERVERS[@]}"; do
        "${CLIENT_CPU[@]}" wrk -t1 -c"$CONNECTIONS" -d"$WARMUP" -s "$WORK/data/paths.lua" \
            -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:${pair##*:}" >/dev/null 2>&1
    done
fi
echo "wrk -t1 -c$CONNECTIONS -d$DURATION, $COUNT aliases, $ROUNDS rounds each (${SERVERS[*]})" >&2
for round in $(seq 1 "$ROUNDS"); do
    for pair in "${SERVERS[@]}"; do
        run_wrk "${pair%%:*}" "${pair##*:}" "$round"
    done
done

# 5. Table and ratios.
echo
echo "| round | server | req/s | p99 ms | non-2xx |"
echo "| --- | --- | ---: | ---: | ---: |"
awk -F'\t' '{ printf "| %s | %s | %.0f | %.3f | %s |\n", $1, $2, $3, $4, $5 }' "$RESULTS"
awk -F'\t' '
    !($2 in n) { order[++servers] = $2 }
    { rps[$2] += $3; p99[$2] += $4; n[$2]++ }
    END {
        for (i = 1; i <= servers; i++) {
            s = order[i]
            printf "| mean | %s | %.0f | %.3f | |\n", s, rps[s] / n[s], p99[s] / n[s]
        }
        er = rps["edge"] / n["edge"]; ep = p99["edge"] / n["edge"]
        printf "\n"
        for (i = 2; i <= servers; i++) {
            s = order[i]
            printf "edge/%s throughput: %.2fx   edge/%s p99: %.2fx (lower is better)\n",
                s, er / (rps[s] / n[s]), s, ep / (p99[s] / n[s])
        }
    }' "$RESULTS"

if [[ $WITH_LOADTEST == 1 ]]; then
    echo
    echo "nexus-loadtest (1 thread, $CONNECTIONS connections, $DURATION) on the same targets:"
    for pair in "${SERVERS[@]}"; do
        name="${pair%%:*}"
        port="${pair##*:}"
        "${CLIENT_CPU[@]}" "$BIN/nexus-loadtest" http --target "http://127.0.0.1:$port" \
            --aliases-file "$WORK/data/aliases.yaml" --connections "$CONNECTIONS" \
            --duration "$DURATION" --threads 1 --token "$TOKEN" \
            --report "$WORK/loadtest-$name.json" >"$WORK/loadtest-$name.txt" 2>&1
        wrk_mean="$(awk -F'\t' -v s="$name" '$2 == s { r += $3; n++ } END { printf "%.0f", r / n }' "$RESULTS")"
        jq -r --arg name "$name" --argjson wrk "$wrk_mean" \
            '"  \($name): \(.rps | floor) req/s, p99 \(.latency_ms.p99) ms, errors \(.errors); wrk mean \($wrk) req/s (loadtest/wrk \((.rps / $wrk * 100 | floor) / 100)x)"' \
            "$WORK/loadtest-$name.json"
    done
fi
