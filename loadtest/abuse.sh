#!/usr/bin/env bash
# The edge under protocol abuse: for each scenario, a fresh nexus-edge and
# `nexus-loadtest abuse` (legitimate resolves alone, then under the attack).
#
#   loadtest/abuse.sh [--duration 8s] [--scenarios all|rapid-reset,slowloris,...]
#                     [--connections 16] [--rate R] [--count 99999] [--report FILE]
#                     [--auth hs256|eddsa] [--auth-failures RATE] [--no-build] [--keep]
#
# Every scenario gets its own edge (so each RSS peak is that attack's):
# EDGE_WORKERS=1, EDGE_AUTH required (a token on every resolve), QUIC on a
# self-signed certificate, EDGE_MAX_CONNECTIONS=12000 (10,000 idle
# connections fit under it) except conn-flood, which runs with a cap of
# 1000 and holds 1200 connections to go past it; pinned to CPU 0 with
# taskset, the generator (legitimate load and attack) on CPU 1. idle and
# slowloris warm up 4 s, so the attack outlasts the edge's 10 s
# slow-client deadline while the legitimate load runs. junk-tokens sends
# the legitimate token with a fresh junk signature per request over 16
# connections from 127.0.0.2 (another host to the edge); with --auth eddsa
# the edge holds only an Ed25519 public key, so each junk signature it
# checked would cost a full Ed25519 verification (needs nexus-control-plane
# built, for the token). --auth-failures RATE sets EDGE_AUTH_FAILURES (the
# edge's per-host budget of refused credentials; `off` to see the flood
# without it).
# Prints each scenario's table and a summary; writes every scenario's JSON
# into one list (--report, default abuse-report.json in the current dir).
# Exits 0 when the edge answered every health check in every scenario, 2
# when not, 1 when it could not run.
#
# Needs: cargo (unless --no-build), curl, jq, taskset, 2+ CPUs, and an open
# file limit (hard) of at least ~10,100 for the idle scenario.
set -euo pipefail

DURATION=8s
SCENARIOS=all
CONNECTIONS=16
# --rate R: the legitimate load is offered at R req/s (open model) instead
# of as fast as its connections go.
RATE=()
COUNT=99999
REPORT=abuse-report.json
BUILD=1
KEEP=0
AUTH=hs256
FAILURES=()
ALL=(rapid-reset continuation settings-flood ping-flood idle slowloris conn-flood
     quic-initial-flood quic-abandoned-streams junk-tokens)

usage() { sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --duration) DURATION="$2"; shift 2 ;;
        --scenarios) SCENARIOS="$2"; shift 2 ;;
        --connections) CONNECTIONS="$2"; shift 2 ;;
        --rate) RATE=(--rate "$2"); shift 2 ;;
        --count) COUNT="$2"; shift 2 ;;
        --report) REPORT="$2"; shift 2 ;;
        --auth) AUTH="$2"; shift 2 ;;
        --auth-failures) FAILURES=(EDGE_AUTH_FAILURES="$2"); shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --keep) KEEP=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
if [[ $SCENARIOS == all ]]; then
    LIST=("${ALL[@]}")
else
    IFS=, read -r -a LIST <<<"$SCENARIOS"
fi

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
REPORT="$(realpath -m "$REPORT")"
# shellcheck source=loadtest/common.sh
source "$ROOT/loadtest/common.sh"

# 10,000 idle connections are 10,000 descriptors on each side.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (($(ulimit -n) < 10200)); then
    echo "warning: open file limit $(ulimit -n) is below what the idle scenario needs" >&2
fi

nexus_prepare abuse
SERVER_CPU=(taskset -c 0)
CLIENT_CPU=(taskset -c 1)
STATUS=0
for s in "${LIST[@]}"; do
    cap=12000
    warmup=1s
    extra=()
    case "$s" in
        conn-flood) cap=1000; extra=(--flood-hold 1200) ;;
        idle | slowloris) warmup=4s ;;
        quic-abandoned-streams) extra=(--attack-connections 100) ;;
        junk-tokens) extra=(--attack-connections 16) ;;
    esac
    nexus_start_edge http EDGE_AUTH=required EDGE_MAX_CONNECTIONS="$cap" "${FAILURES[@]}" \
        EDGE_QUIC_SELF_SIGNED=true EDGE_QUIC_ADDR=127.0.0.1:0
    qport="$(sed -n 's/.*QUIC ready.*udp=127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$WORK/edge.log" | head -n1)"
    [[ -n "$qport" ]] || { echo "the edge logged no QUIC port" >&2; exit 1; }
    rc=0
    "${CLIENT_CPU[@]}" "$BIN/nexus-loadtest" abuse --scenario "$s" \
        --target "http://127.0.0.1:$PORT" --quic-target "127.0.0.1:$qport" \
        --token "$TOKEN" --aliases-file "$WORK/data/aliases.yaml" --pid "$EDGE_PID" \
        --duration "$DURATION" --warmup "$warmup" --connections "$CONNECTIONS" \
        "${RATE[@]}" "${extra[@]}" --report "$WORK/$s.json" || rc=$?
    kill "$EDGE_PID" 2>/dev/null || true
    wait "$EDGE_PID" 2>/dev/null || true
    case $rc in
        0) ;;
        2) STATUS=2 ;;
        *) echo "scenario $s could not run (exit $rc)" >&2; exit 1 ;;
    esac
done

files=()
for s in "${LIST[@]}"; do files+=("$WORK/$s.json"); done
jq -s 'add' "${files[@]}" >"$REPORT"
echo "summary (EDGE_MAX_CONNECTIONS=12000 but conn-flood 1000; $CONNECTIONS legit connections, $DURATION per phase):"
jq -r '
  ["scenario", "ratio", "req/s alone", "req/s attack", "p99 alone", "p99 attack",
   "RSS MiB before", "RSS MiB peak", "health", "counters moved"],
  (.[] | [.scenario, (.throughput_ratio * 100 | round / 100),
          (.without_attack.rps | round), (.during_attack.rps | round),
          .without_attack.latency_ms.p99, .during_attack.latency_ms.p99,
          ((.before.rss_peak_kib // 0) / 1024 * 10 | round / 10),
          ((.during.rss_peak_kib // 0) / 1024 * 10 | round / 10),
          (if .healthy_throughout then "ok" else "MISSED" end),
          (.counters_moved | to_entries | map("\(.key | sub("nexus_edge_"; ""))+\(.value)") | join(" "))])
  | @tsv' "$REPORT" | column -t -s $'\t'
echo "report $REPORT"
exit $STATUS
