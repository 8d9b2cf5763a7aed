#!/usr/bin/env bash
# Two regions on a simulated WAN, in network namespaces this script makes:
#
#   region A (ns nexus-ra-PID): PostgreSQL, the control plane and its
#       publisher, the Redis primary, edges a1 and a2;
#   region B (ns nexus-rb-PID): a Redis replica of A's primary, edges b1
#       and b2, each reading the replica;
#   an observer (ns nexus-ob-PID) joined to each region by a link without
#       delay, from where the probe writes and the load runs, so what it
#       measures is the WAN between the regions, not its own distance.
#
# The regions are joined by one veth pair that delays traffic by --delay-ms
# one way (default 40): `tc netem delay` on both ends where the kernel has
# netem, else (--wan relay, or auto on a kernel without CONFIG_NET_SCH_NETEM,
# like this project's VMs) loadtest/wan_relay.py, a TCP relay in B that
# holds every byte for the delay each way, on the one connection that
# crosses regions: the replica's to its primary. A partition is nftables
# dropping every packet on the WAN veth in both regions. Three phases:
#
#   1. commit→visible: `nexus-loadtest propagation` writes through the
#      control plane and watches all four edges (per-region p50/p99);
#   2. partition: while resolves run against b1 and b2 (--rate each), the
#      WAN drops every packet for --partition seconds and a write is made in
#      A every second; every second each B edge's /api/aliases/status is
#      sampled (health, version, state age);
#   3. heal: the WAN carries traffic again; the time until every edge in B
#      serves the control plane's head version.
#
#   loadtest/regions.sh [--delay-ms 40] [--wan auto|netem|relay]
#                       [--writes 200] [--write-rate 20] [--partition 30]
#                       [--rate 500] [--report FILE] [--no-build] [--keep]
#
# Writes a JSON report (--report, default regions-report.json) and an SVG
# plot next to it (versions behind in B over time). Stops by itself and
# removes every namespace and process it made, also on Ctrl-C. Exit 0 when
# the run met its targets (region B commit→visible p99 <= delay + 20 ms, no
# failed resolve in B during the partition, every B edge current within 2 s
# of the heal), 2 when it ran but missed one, 1 when it could not run.
#
# Needs root (namespaces), ip and tc (iproute2), nft (nftables), PostgreSQL's
# server binaries, redis-server, curl, jq, python3 with `cryptography`;
# cargo unless --no-build.
set -euo pipefail

DELAY_MS=40
WAN=auto
WRITES=200
WRITE_RATE=20
PARTITION=30
RATE=500
REPORT=regions-report.json
BUILD=1
KEEP=0

usage() { sed -n '2,42p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --delay-ms) DELAY_MS="$2"; shift 2 ;;
        --wan) WAN="$2"; shift 2 ;;
        --writes) WRITES="$2"; shift 2 ;;
        --write-rate) WRITE_RATE="$2"; shift 2 ;;
        --partition) PARTITION="$2"; shift 2 ;;
        --rate) RATE="$2"; shift 2 ;;
        --report) REPORT="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --keep) KEEP=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 1 ;;
    esac
done

die() { echo "regions.sh: $*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || die "needs root to make network namespaces"
for tool in ip tc nft redis-server redis-cli curl jq python3; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done
PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
[[ -x "$PG_BIN/initdb" ]] || PG_BIN="$(pg_config --bindir 2>/dev/null || true)"
[[ -x "$PG_BIN/initdb" ]] || die "PostgreSQL server binaries not found (apt-get install postgresql)"

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
REPORT="$(realpath -m "$REPORT")"
PLOT="${REPORT%.json}.svg"
if [[ $BUILD == 1 ]]; then
    echo "building release binaries..." >&2
    (cd "$ROOT" && cargo build --release -p nexus-edge -p nexus-loadtest -p nexus-control-plane)
fi
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
for b in nexus-edge nexus-loadtest nexus-control-plane; do
    [[ -x "$BIN/$b" ]] || die "$BIN/$b not built (drop --no-build)"
done

WORK="$(mktemp -d -t nexus-regions.XXXXXX)"
chmod 755 "$WORK"
NS_A="nexus-ra-$$"
NS_B="nexus-rb-$$"
NS_O="nexus-ob-$$"
PIDS=()

cleanup() {
    local pid ns
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ -f "$WORK/pg/postmaster.pid" ]]; then
        ip netns exec "$NS_A" runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$WORK/pg" -m immediate \
            stop >/dev/null 2>&1 || true
    fi
    # Whatever is still inside a namespace (nothing, normally) goes with it.
    for ns in "$NS_A" "$NS_B" "$NS_O"; do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
        ip netns del "$ns" 2>/dev/null || true
    done
    if [[ $KEEP == 1 ]]; then echo "files kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_a() { ip netns exec "$NS_A" "$@"; }
in_b() { ip netns exec "$NS_B" "$@"; }
in_o() { ip netns exec "$NS_O" "$@"; }
now_ms() { date +%s%3N; }

# wait_for SECONDS WHAT COMMAND...: runs COMMAND until it succeeds, or dies.
wait_for() {
    local limit=$(($(date +%s) + $1)) what="$2"
    shift 2
    until "$@" >/dev/null 2>&1; do
        (($(date +%s) < limit)) || die "$what did not happen in time (logs in $WORK)"
        sleep 0.1
    done
}

# ---------------------------------------------------------------- network
echo "making namespaces $NS_A, $NS_B, $NS_O" >&2
for ns in "$NS_A" "$NS_B" "$NS_O"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
done
# The WAN: A 10.77.0.1 <-> B 10.77.0.2.
ip link add wan netns "$NS_A" type veth peer name wan netns "$NS_B"
ip -n "$NS_A" addr add 10.77.0.1/30 dev wan
ip -n "$NS_B" addr add 10.77.0.2/30 dev wan
# The observer: A 10.77.1.1 <-> O 10.77.1.2, B 10.77.2.1 <-> O 10.77.2.2.
ip link add obs netns "$NS_A" type veth peer name to-a netns "$NS_O"
ip link add obs netns "$NS_B" type veth peer name to-b netns "$NS_O"
ip -n "$NS_A" addr add 10.77.1.1/30 dev obs
ip -n "$NS_O" addr add 10.77.1.2/30 dev to-a
ip -n "$NS_B" addr add 10.77.2.1/30 dev obs
ip -n "$NS_O" addr add 10.77.2.2/30 dev to-b
for pair in "$NS_A wan" "$NS_B wan" "$NS_A obs" "$NS_B obs" "$NS_O to-a" "$NS_O to-b"; do
    read -r ns dev <<<"$pair"
    ip -n "$ns" link set "$dev" up
done
if [[ $WAN == auto ]]; then
    if ip netns exec "$NS_O" tc qdisc add dev lo root netem delay 1ms 2>/dev/null; then
        ip netns exec "$NS_O" tc qdisc del dev lo root
        WAN=netem
    else
        WAN=relay
    fi
fi
case "$WAN" in
    netem)
        for ns in "$NS_A" "$NS_B"; do
            ip netns exec "$ns" tc qdisc add dev wan root netem delay "${DELAY_MS}ms"
        done
        PRIMARY=(10.77.0.1 6379)
        ;;
    relay)
        ip netns exec "$NS_B" python3 "$ROOT/loadtest/wan_relay.py" 127.0.0.1:7379 10.77.0.1:6379 \
            "$DELAY_MS" >"$WORK/relay.log" 2>&1 &
        PIDS+=($!)
        PRIMARY=(127.0.0.1 7379)
        ;;
    *) die "--wan is auto, netem or relay, not $WAN" ;;
esac
echo "WAN: $WAN, ${DELAY_MS} ms one way" >&2
# partition on|off: nftables drops every packet on the WAN veth, both ends.
partition() {
    local ns
    for ns in "$NS_A" "$NS_B"; do
        if [[ $1 == on ]]; then
            ip netns exec "$ns" nft -f - <<EOF
table inet nexus_wan {
    chain in { type filter hook input priority 0; iifname "wan" drop; }
    chain out { type filter hook output priority 0; oifname "wan" drop; }
}
EOF
        else
            ip netns exec "$ns" nft delete table inet nexus_wan
        fi
    done
}

# ---------------------------------------------------------------- region A
echo "starting region A: PostgreSQL, Redis primary, control plane, edges a1 a2" >&2
mkdir -p "$WORK/pg" "$WORK/pgsock"
chown postgres "$WORK/pg" "$WORK/pgsock"
runuser -u postgres -- "$PG_BIN/initdb" -D "$WORK/pg" -U postgres --auth=trust >"$WORK/initdb.log" 2>&1
in_a runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pgsock/pg.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p 5432 -k $WORK/pgsock -c fsync=off" start >/dev/null

in_a redis-server --bind 0.0.0.0 --port 6379 --save "" --appendonly no --protected-mode no \
    >"$WORK/redis-a.log" 2>&1 &
PIDS+=($!)
# repl-timeout 5: the replica notices a dead WAN link in 5 s and keeps
# trying to reconnect, so the heal is not held up by TCP's backoff.
in_b redis-server --bind 0.0.0.0 --port 6379 --save "" --appendonly no --protected-mode no \
    --replicaof "${PRIMARY[@]}" --repl-timeout 5 >"$WORK/redis-b.log" 2>&1 &
PIDS+=($!)
wait_for 20 "Redis in A" in_a redis-cli ping
wait_for 30 "the replica in B to sync" \
    sh -c "ip netns exec $NS_B redis-cli info replication | grep -q master_link_status:up"
# The WAN's round trip as the replica sees it: a PING to the primary.
t0=$(now_ms)
in_b redis-cli -h "${PRIMARY[0]}" -p "${PRIMARY[1]}" ping >/dev/null
rtt=$(($(now_ms) - t0))
echo "WAN round trip (Redis PING from B, incl. redis-cli start): ${rtt} ms" >&2

SECRET="regions-$(od -An -tx1 -N32 /dev/urandom | tr -d " \n")"
SEED="$(python3 -c 'import os; print(os.urandom(32).hex())')"
VERIFY="$(python3 - "$SEED" <<'EOF'
import sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
k = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(sys.argv[1]))
print(k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex())
EOF
)" || die "python3's cryptography module is needed to derive the verify key"

CP_ENV=(DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
    REDIS_URL="redis://127.0.0.1:6379" SECRET_KEY="$SECRET" NEXUS_SIGNING_KEY="$SEED"
    API_HOST=0.0.0.0 API_PORT=8000 LOG_LEVEL=info NO_COLOR=1)
in_a env "${CP_ENV[@]}" "$BIN/nexus-control-plane" migrate >"$WORK/migrate.log" 2>&1
in_a env "${CP_ENV[@]}" "$BIN/nexus-control-plane" serve >"$WORK/cp.log" 2>&1 &
PIDS+=($!)
wait_for 30 "the control plane" in_o curl -fsS http://10.77.1.1:8000/api/aliases/health

ADMIN="$(env SECRET_KEY="$SECRET" "$BIN/nexus-control-plane" token --sub regions --role admin --ttl 3600)"
RESOLVER="$(env SECRET_KEY="$SECRET" "$BIN/nexus-control-plane" token --sub load --role resolver --ttl 3600)"

# start_edge NS NAME REGION PORT [VAR=value...]
start_edge() {
    local ns="$1" name="$2" region="$3" port="$4"
    shift 4
    ip netns exec "$ns" env REDIS_URL="redis://127.0.0.1:6379" NEXUS_VERIFY_KEY="$VERIFY" "$@" \
        SECRET_KEY="$SECRET" EDGE_ID="$name" EDGE_REGION="$region" EDGE_HTTP_ADDR="0.0.0.0:$port" \
        EDGE_WORKERS=1 EDGE_CHECK_INTERVAL_MS=500 LOG_LEVEL=info NO_COLOR=1 \
        "$BIN/nexus-edge" >"$WORK/edge-$name.log" 2>&1 &
    PIDS+=($!)
}
start_edge "$NS_A" a1 region-a 8081
start_edge "$NS_A" a2 region-a 8082
# B's replica is read-only: B's edges report to A's primary, across the WAN.
REPORT_URL="redis://${PRIMARY[0]}:${PRIMARY[1]}"
start_edge "$NS_B" b1 region-b 8081 EDGE_REPORT_REDIS_URL="$REPORT_URL"
start_edge "$NS_B" b2 region-b 8082 EDGE_REPORT_REDIS_URL="$REPORT_URL"
EDGES_A=(http://10.77.1.1:8081 http://10.77.1.1:8082)
EDGES_B=(http://10.77.2.1:8081 http://10.77.2.1:8082)

# 100 aliases for the load in B, through the admin API like any write.
python3 - >"$WORK/load.yaml" <<'EOF'
print("aliases:")
for i in range(100):
    print(f"  - context: frontend\n    alias: regions-load-{i}\n"
          f"    canonical: https://api.nexus.com/v1/regions/load/{i}")
EOF
in_o curl -fsS -X POST -H "Authorization: Bearer $ADMIN" -H 'content-type: application/yaml' \
    --data-binary @"$WORK/load.yaml" http://10.77.1.1:8000/api/admin/aliases/import \
    >"$WORK/import.json" || die "import failed: $(cat "$WORK/import.json")"
for e in "${EDGES_A[@]}" "${EDGES_B[@]}"; do
    wait_for 60 "edge $e to serve the load aliases" in_o curl -fsS \
        -H "Authorization: Bearer $RESOLVER" "$e/api/aliases/resolve/frontend/regions-load-99"
done

# ---------------------------------------------------------------- phase 1
echo "phase 1: $WRITES writes at $WRITE_RATE/s, watched on all four edges" >&2
EDGE_ARGS=()
for e in "${EDGES_A[@]}" "${EDGES_B[@]}"; do EDGE_ARGS+=(--edge "$e"); done
set +e
in_o "$BIN/nexus-loadtest" propagation --control-plane http://10.77.1.1:8000 --token "$ADMIN" \
    "${EDGE_ARGS[@]}" --edge-token "$RESOLVER" --writes "$WRITES" --rate "$WRITE_RATE" \
    --context frontend --report "$WORK/propagation.json" >"$WORK/propagation.out" 2>&1
PROP_STATUS=$?
set -e
cat "$WORK/propagation.out" >&2
[[ -s "$WORK/propagation.json" ]] || die "the propagation probe wrote no report"

# The fleet view, as the control plane in A sees it (B's edges included).
in_o curl -fsS -H "Authorization: Bearer $ADMIN" http://10.77.1.1:8000/api/admin/edges \
    >"$WORK/fleet.json" || echo '{}' >"$WORK/fleet.json"

# ---------------------------------------------------------------- phase 2
head_version() {
    in_o curl -fsS -H "Authorization: Bearer $ADMIN" http://10.77.1.1:8000/api/aliases/status |
        jq -r '.status.registry_version // empty'
}
edge_status() { in_o curl -fsS -m 1 "$1/api/aliases/status" 2>/dev/null || echo '{}'; }

LOAD_SECS=$((PARTITION + 15))
echo "phase 2: ${LOAD_SECS} s of load on region B at $RATE/s per edge; WAN cut for ${PARTITION} s" >&2
LOAD_PIDS=()
i=0
for e in "${EDGES_B[@]}"; do
    i=$((i + 1))
    in_o "$BIN/nexus-loadtest" http --target "$e" --aliases-file "$WORK/load.yaml" \
        --token "$RESOLVER" --rate "$RATE" --connections 4 --threads 1 --duration "${LOAD_SECS}s" \
        --report "$WORK/load-b$i.json" >"$WORK/load-b$i.out" 2>&1 &
    LOAD_PIDS+=($!)
    PIDS+=($!)
done

SAMPLES="$WORK/samples.jsonl"
: >"$SAMPLES"
# sample PHASE: one line per B edge with its status and the control plane's head.
sample() {
    local t head e s
    t=$(now_ms)
    head="$(head_version 2>/dev/null || true)"
    for e in "${EDGES_B[@]}"; do
        s="$(edge_status "$e")"
        jq -c --arg phase "$1" --arg edge "$e" --argjson t "$t" --arg head "${head:-}" \
            '{t: $t, phase: $phase, edge: $edge, head: ($head | tonumber? // null),
              health: .status.health, version: .status.registry_version,
              age_s: .status.state_age_seconds}' <<<"$s" >>"$SAMPLES"
    done
}

write_n=0
write_one() {
    write_n=$((write_n + 1))
    in_o curl -fsS -m 2 -X PUT -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' \
        -d "{\"canonical\": \"https://api.nexus.com/v1/regions/partition/$write_n\"}" \
        http://10.77.1.1:8000/api/admin/aliases/frontend/regions-load-0 >/dev/null 2>&1 || true
}

for _ in 1 2 3 4 5; do sample before; sleep 1; done
CUT_AT=$(now_ms)
partition on
end=$(($(date +%s) + PARTITION))
while (($(date +%s) < end)); do
    write_one
    sample partition
    sleep 1
done
partition off
HEAL_AT=$(now_ms)
HEAD_AFTER="$(head_version)"
# Every B edge serving the head: poll fast, with a deadline.
declare -A CURRENT_AT=()
limit=$(($(date +%s) + 30))
while ((${#CURRENT_AT[@]} < ${#EDGES_B[@]})) && (($(date +%s) < limit)); do
    for e in "${EDGES_B[@]}"; do
        [[ -n "${CURRENT_AT[$e]:-}" ]] && continue
        v="$(edge_status "$e" | jq -r '.status.registry_version // 0')"
        ((v >= HEAD_AFTER)) && CURRENT_AT[$e]=$(now_ms)
    done
    sleep 0.05
done
for _ in 1 2 3; do sample after; sleep 1; done
for pid in "${LOAD_PIDS[@]}"; do wait "$pid" || true; done

# ---------------------------------------------------------------- report
HEAL_JSON="$(for e in "${EDGES_B[@]}"; do
    at="${CURRENT_AT[$e]:-}"
    jq -n --arg edge "$e" --arg at "$at" --argjson heal "$HEAL_AT" \
        '{edge: $edge, current_after_ms: (if $at == "" then null else (($at | tonumber) - $heal) end)}'
done | jq -s .)"
python3 - "$WORK" "$REPORT" "$PLOT" "$DELAY_MS" "$WAN" "$rtt" "$PARTITION" "$CUT_AT" "$HEAL_AT" \
    "$HEAD_AFTER" "$HEAL_JSON" "$PROP_STATUS" "${EDGES_A[*]}" "${EDGES_B[*]}" <<'EOF'
import json, sys
(work, report, plot, delay, wan, rtt, partition, cut, heal, head, heal_json, prop_status,
 edges_a, edges_b) = sys.argv[1:]
delay, partition, cut, heal = int(delay), int(partition), int(cut), int(heal)
edges_a, edges_b = edges_a.split(), edges_b.split()
prop = json.load(open(f"{work}/propagation.json"))
per_edge = prop.get("per_edge", {})

def region(edges):
    out = {}
    for e in edges:
        lat = per_edge.get(e, {}).get("latency_ms", {})
        out[e] = {k: lat.get(k) for k in ("p50", "p99", "max")}
        out[e]["visible"] = per_edge.get(e, {}).get("visible")
    p99 = [v["p99"] for v in out.values() if v["p99"] is not None]
    p50 = [v["p50"] for v in out.values() if v["p50"] is not None]
    return {"edges": out, "p50_ms_worst_edge": max(p50, default=None),
            "p99_ms_worst_edge": max(p99, default=None)}

def fleet_view():
    try:
        f = json.load(open(f"{work}/fleet.json"))
    except (OSError, ValueError):
        return None
    items = f.get("items", [])
    return {"edges": sorted(f"{e.get('region')}/{e.get('id')}" for e in items),
            "lag_ms_p99": {e.get("id"): e.get("lag_ms_p99") for e in items},
            "regions": f.get("regions")}

loads = []
for i in (1, 2):
    try:
        loads.append(json.load(open(f"{work}/load-b{i}.json")))
    except FileNotFoundError:
        loads.append({})
samples = [json.loads(l) for l in open(f"{work}/samples.jsonl") if l.strip()]
during = [s for s in samples if s["phase"] == "partition"]
heal_list = json.loads(heal_json)
region_b = region(edges_b)
failed = sum(int(l.get("errors", 0) or 0) for l in loads)
requests = sum(int(l.get("requests", 0) or 0) for l in loads)
heal_ms = [h["current_after_ms"] for h in heal_list]
result = {
    "delay_ms_one_way": delay,
    "wan": wan,
    "wan_ping_ms": float(rtt) if rtt else None,
    "commit_to_visible": {"region_a": region(edges_a), "region_b": region_b,
                          "probe_exit_status": int(prop_status)},
    "partition": {
        "seconds": partition,
        "resolves_in_b": requests,
        "failed_resolves_in_b": failed,
        "errors_by_kind": [l.get("errors_by_kind") for l in loads],
        "health_seen_in_b": sorted({s["health"] for s in during if s.get("health")}),
        "max_state_age_s_in_b": max((s["age_s"] or 0 for s in during), default=None),
        "max_versions_behind_in_b": max(((s["head"] or 0) - (s["version"] or 0) for s in during),
                                        default=None),
    },
    "heal": {"head_version": int(head), "edges": heal_list},
    "fleet_view": fleet_view(),
    "samples": samples,
}
targets = {
    "region_b_p99_within_delay_plus_20ms": region_b["p99_ms_worst_edge"] is not None
        and region_b["p99_ms_worst_edge"] <= delay + 20,
    "no_failed_resolve_in_b_during_partition": failed == 0 and requests > 0,
    "degraded_shown_during_partition": "degraded" in result["partition"]["health_seen_in_b"],
    "every_b_edge_current_within_2s_of_heal": all(h is not None and h <= 2000 for h in heal_ms),
    "both_regions_in_the_fleet_view": (result["fleet_view"] or {}).get("edges", []) == [
        "region-a/a1", "region-a/a2", "region-b/b1", "region-b/b2"],
}
result["targets"] = targets
json.dump(result, open(report, "w"), indent=2)

# The plot: versions behind the control plane's head, per B edge, over time.
W, H, L, B = 720, 300, 50, 30
t0 = samples[0]["t"] if samples else 0
t1 = max((s["t"] for s in samples), default=t0 + 1)
behind = [(s["t"], s["edge"], max(0, (s["head"] or 0) - (s["version"] or 0))) for s in samples]
ymax = max([b for _, _, b in behind] + [1])
x = lambda t: L + (W - L - 10) * (t - t0) / max(1, t1 - t0)
y = lambda v: H - B - (H - B - 10) * v / ymax
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
       f'<rect x="{x(cut):.1f}" y="10" width="{x(heal) - x(cut):.1f}" height="{H - B - 10}" fill="#fde2e2"/>',
       f'<text x="{x(cut) + 4:.1f}" y="22">WAN cut ({partition} s)</text>',
       f'<line x1="{L}" y1="{H - B}" x2="{W - 10}" y2="{H - B}" stroke="#333"/>',
       f'<line x1="{L}" y1="10" x2="{L}" y2="{H - B}" stroke="#333"/>',
       f'<text x="{L - 6}" y="{y(ymax) + 4:.1f}" text-anchor="end">{ymax}</text>',
       f'<text x="{L - 6}" y="{H - B + 4}" text-anchor="end">0</text>',
       f'<text x="{W / 2}" y="{H - 6}" text-anchor="middle">seconds ({(t1 - t0) / 1000:.0f} s shown); y: versions behind head in region B</text>']
for colour, e in zip(("#1f77b4", "#ff7f0e"), edges_b):
    pts = " ".join(f"{x(t):.1f},{y(b):.1f}" for t, edge, b in behind if edge == e)
    svg.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{pts}"/>')
svg.append("</svg>")
open(plot, "w").write("\n".join(svg))

print(json.dumps({k: result[k] for k in ("commit_to_visible", "partition", "heal", "fleet_view")} | {"targets": targets},
                 indent=2))
sys.exit(0 if all(targets.values()) else 2)
EOF
