#!/usr/bin/env bash
# QUIC (nexus-resolve/1) against the same edge's HTTP/1.1 over TLS.
#
#   loadtest/compare-quic.sh [--rounds 3] [--duration 10s] [--rate 1000]
#                            [--rate-connections 8] [--connections 32]
#                            [--count 99999] [--no-build] [--keep]
#
# One nexus-edge (EDGE_WORKERS=1, a token checked on every request, a
# self-signed certificate for both TLS and QUIC) pinned to CPU 0;
# nexus-loadtest (--threads 1) pinned to CPU 1. Every round runs, in order:
#   - quic and https at a fixed --rate each (open model: latency counts
#     from when each request was due) over --rate-connections connections,
#     both at the same time: the p50 at low load. Run one after the other,
#     the two would see a shared VM at different speeds (its p50s drift by
#     2x from one run to the next); side by side they see the same machine,
#     and the edge serves each protocol on its own thread. The edge CPU
#     shown is that thread's;
#   - quic and https closed-model, one after the other, over --connections
#     connections: req/s, and req/s per CPU-second the edge spent (its
#     utime + stime over the middle of the run), since the edge's core is
#     the limit.
# Prints every run, the medians over rounds and the QUIC/HTTPS ratios.
# Exits 0 when every request succeeded, 1 otherwise, 2 on bad arguments.
#
# Needs: cargo (unless --no-build), openssl, curl, jq, taskset, 2+ CPUs.
# Everything it starts is stopped on exit; its files live in a temp dir
# removed on exit (kept with --keep).
set -euo pipefail

ROUNDS=3
DURATION=10s
RATE=1000
RATE_CONNECTIONS=8
CONNECTIONS=32
COUNT=99999
BUILD=1
KEEP=0

usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --rounds) ROUNDS="$2"; shift 2 ;;
        --duration) DURATION="$2"; shift 2 ;;
        --rate) RATE="$2"; shift 2 ;;
        --rate-connections) RATE_CONNECTIONS="$2"; shift 2 ;;
        --connections) CONNECTIONS="$2"; shift 2 ;;
        --count) COUNT="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --keep) KEEP=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
for v in ROUNDS RATE RATE_CONNECTIONS CONNECTIONS COUNT; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "--${v,,} must be a positive integer" >&2; exit 2; }
done
[[ "$DURATION" =~ ^([1-9][0-9]*)s?$ ]] || { echo "--duration must be whole seconds (e.g. 10s)" >&2; exit 2; }
SECS="${BASH_REMATCH[1]}"
((SECS >= 4)) || { echo "--duration must be at least 4s" >&2; exit 2; }
for tool in openssl curl jq taskset; do
    command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 2; }
done

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=loadtest/common.sh
source "$ROOT/loadtest/common.sh"
nexus_prepare quic

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null

nexus_start_edge https EDGE_QUIC_ADDR="127.0.0.1:0" \
    EDGE_TLS_CERT="$WORK/cert.pem" EDGE_TLS_KEY="$WORK/key.pem"
UDP="$(sed -n 's/.*QUIC ready.*udp=127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p; s/.*udp=127\.0\.0\.1:\([0-9][0-9]*\).*QUIC ready.*/\1/p' "$WORK/edge.log" | head -n1)"
[[ -n "$UDP" ]] || { echo "the edge did not say where QUIC listens; its log:" >&2; cat "$WORK/edge.log" >&2; exit 1; }

TICK="$(getconf CLK_TCK)"
# cpu_ticks PID [THREAD]: utime + stime of the process, or of its threads
# whose name starts with THREAD (edge-quic: QUIC; edge-worker: HTTP).
cpu_ticks() {
    if [[ -z "${2:-}" ]]; then
        awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
        return
    fi
    local t sum=0
    for t in /proc/"$1"/task/*; do
        [[ "$(cat "$t/comm" 2>/dev/null)" == "$2"* ]] || continue
        sum=$((sum + $(awk '{ print $14 + $15 }' "$t/stat" 2>/dev/null || echo 0)))
    done
    echo "$sum"
}
thread_of() { case "$1" in quic) echo edge-quic ;; https) echo edge-worker ;; esac; }

RESULTS="$WORK/results.tsv"
: >"$RESULTS"
# start PROTO MODEL ROUND: one nexus-loadtest run on CPU 1, in the
# background (its pid in STARTED).
start() {
    local proto="$1" model="$2" round="$3"
    local -a cmd=("$BIN/nexus-loadtest")
    case "$proto" in
        quic) cmd+=(quic --target "127.0.0.1:$UDP") ;;
        https) cmd+=(http --target "https://127.0.0.1:$PORT") ;;
    esac
    cmd+=(--insecure --aliases-file "$WORK/data/aliases.yaml" --duration "$DURATION"
        --threads 1 --token "$TOKEN" --report "$WORK/$proto-$model-$round.json")
    case "$model" in
        rate) cmd+=(--rate "$RATE" --connections "$RATE_CONNECTIONS") ;;
        closed) cmd+=(--connections "$CONNECTIONS") ;;
    esac
    taskset -c 1 "${cmd[@]}" >"$WORK/$proto-$model-$round.txt" 2>&1 &
    STARTED=$!
    PIDS+=("$STARTED")
}
# finish PID PROTO MODEL ROUND CPU: waits for the run and appends proto,
# model, round, req/s, p50 ms, p99 ms, errors, edge CPU-seconds/s.
finish() {
    local pid="$1" proto="$2" model="$3" round="$4" cpu="$5"
    if ! wait "$pid"; then
        echo "nexus-loadtest $proto $model failed:" >&2
        cat "$WORK/$proto-$model-$round.txt" >&2
        exit 1
    fi
    jq -r --arg p "$proto" --arg m "$model" --arg r "$round" --arg cpu "$cpu" \
        '[$p, $m, $r, (.rps | floor), .latency_ms.p50, .latency_ms.p99, .errors, $cpu] | @tsv' \
        "$WORK/$proto-$model-$round.json" >>"$RESULTS"
    tail -n1 "$RESULTS" | awk -F'\t' '{ printf "%-5s %-6s round %s: %9d req/s  p50 %.3f ms  p99 %.3f ms  errors %d  edge CPU %.2f\n", $1, $2, $3, $4, $5, $6, $7, $8 }'
}
# per_second A B: CPU-seconds per second between two tick readings taken
# over the middle SECS - 3 seconds of a run.
per_second() {
    awk -v a="$1" -v b="$2" -v t="$TICK" -v s="$((SECS - 3))" 'BEGIN { printf "%.3f", (b - a) / t / s }'
}

# closed PROTO ROUND: one closed-model run, alone on the edge.
closed() {
    local e0 e1 pid
    start "$1" closed "$2"
    pid=$STARTED
    sleep 2
    e0="$(cpu_ticks "$EDGE_PID")"
    sleep $((SECS - 3))
    e1="$(cpu_ticks "$EDGE_PID")"
    finish "$pid" "$1" closed "$2" "$(per_second "$e0" "$e1")"
}

# rate ROUND: quic and https at --rate each, side by side.
rate() {
    local q h q0 q1 h0 h1
    start quic rate "$1"
    q=$STARTED
    start https rate "$1"
    h=$STARTED
    sleep 2
    q0="$(cpu_ticks "$EDGE_PID" "$(thread_of quic)")" h0="$(cpu_ticks "$EDGE_PID" "$(thread_of https)")"
    sleep $((SECS - 3))
    q1="$(cpu_ticks "$EDGE_PID" "$(thread_of quic)")" h1="$(cpu_ticks "$EDGE_PID" "$(thread_of https)")"
    finish "$q" quic rate "$1" "$(per_second "$q0" "$q1")"
    finish "$h" https rate "$1" "$(per_second "$h0" "$h1")"
}

echo "edge: https://127.0.0.1:$PORT, quic 127.0.0.1:$UDP; warm-up..."
closed quic 0 >/dev/null
closed https 0 >/dev/null
: >"$RESULTS"
for ((r = 1; r <= ROUNDS; r++)); do
    rate "$r"
    closed quic "$r"
    closed https "$r"
done

# median PROTO MODEL COLUMN: the median over rounds (robust to the odd
# round a shared machine spoils; every round is printed above).
median() {
    awk -F'\t' -v p="$1" -v m="$2" -v c="$3" '$1 == p && $2 == m { print $c }' "$RESULTS" |
        sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
# per_core PROTO: median of req/s per edge CPU-second.
per_core() {
    awk -F'\t' -v p="$1" '$1 == p && $2 == "closed" && $8 > 0 { print $4 / $8 }' "$RESULTS" |
        sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
# lower: rounds where QUIC's p50 was at or below HTTPS's (same round, same time).
lower="$(awk -F'\t' '$2 == "rate" { p[$1, $3] = $5 } END { for (k in p) { split(k, a, SUBSEP); if (a[1] == "quic" && p["quic", a[2]] <= p["https", a[2]]) n++ } print n + 0 }' "$RESULTS")"
qp50="$(median quic rate 5)" hp50="$(median https rate 5)"
qp99="$(median quic rate 6)" hp99="$(median https rate 6)"
qrps="$(median quic closed 4)" hrps="$(median https closed 4)"
qcore="$(per_core quic)" hcore="$(per_core https)"
awk -v r="$ROUNDS" -v rate="$RATE" -v lower="$lower" -v qp50="$qp50" -v hp50="$hp50" -v qp99="$qp99" -v hp99="$hp99" \
    -v qrps="$qrps" -v hrps="$hrps" -v qcore="$qcore" -v hcore="$hcore" 'BEGIN {
    printf "\nmedians over %d rounds:\n", r
    printf "  at %d req/s each, side by side: quic p50 %.3f ms p99 %.3f ms | https p50 %.3f ms p99 %.3f ms | quic/https p50 %.2fx (quic at or below https in %d of %d rounds)\n",
        rate, qp50, qp99, hp50, hp99, qp50 / hp50, lower, r
    printf "  closed: quic %d req/s (%d per edge CPU-second) | https %d req/s (%d per CPU-second) | quic/https %.2fx raw, %.2fx per core\n",
        qrps, qcore, hrps, hcore, qrps / hrps, qcore / hcore
}'
errors="$(awk -F'\t' '{ e += $7 } END { print e + 0 }' "$RESULTS")"
((errors == 0)) || { echo "$errors requests failed" >&2; exit 1; }
