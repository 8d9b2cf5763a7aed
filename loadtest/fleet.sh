#!/usr/bin/env bash
# A hundred edges on one machine: what a fleet costs the control plane and
# Redis, and what a stampede (every edge needing a snapshot at once) looks
# like.
#
#   loadtest/fleet.sh [--edges 100] [--aliases 100] [--writes 100]
#                     [--write-rate 10] [--poll-interval 2ms] [--report FILE]
#                     [--no-build] [--keep]
#
# Starts a private PostgreSQL and redis-server on free ports, the control
# plane (`serve`, with its publisher), and --edges `nexus-edge` processes
# (one worker each, QUIC off), all syncing from the one Redis. Then:
#
#   0. --writes aliases at --write-rate/s with nothing polling the edges:
#      commit→applied as each edge measures it, from the fleet view (the
#      worst edge's p99 bounds the p99 over all of them);
#   1. commit→visible on every edge: `nexus-loadtest propagation` writes
#      --writes aliases at --write-rate/s and watches all the edges; the
#      control plane's and Redis's CPU time and Redis's bytes sent are read
#      before and after (/proc and INFO);
#   2. the stampede: FLUSHALL wipes Redis and a write follows at once; the
#      publisher refills Redis with a snapshot holding it (and an empty
#      delta ring), so every edge must take the snapshot. Every 50 ms each edge's status and a
#      resolve are sampled (an edge is ready while it answers the resolve),
#      and the control plane's `GET /api/admin/aliases?limit=1` is timed.
#      Reported: the time until every edge serves the head again, Redis's
#      bytes sent meanwhile, failed resolves, and the API's slowest answer.
#
# Writes a JSON report (--report, default fleet-report.json). Exits 0 when
# the targets are met (commit→applied p99 < 50 ms unwatched and
# commit→visible p99 < 50 ms watched, over all edges; no edge unready
# during the stampede), 2 when not, 1 when it could not run.
#
# Needs PostgreSQL's server binaries, redis-server, curl, jq, python3 with
# `cryptography`; cargo unless --no-build. Runs as root (PostgreSQL then
# runs as `postgres`) or as a user who can run initdb. The aliases are
# `nexus-loadtest gen`'s (a-1.. over frontend, backend, system).
set -euo pipefail

EDGES=100
ALIASES=100
WRITES=100
WRITE_RATE=10
POLL=2ms
REPORT=fleet-report.json
BUILD=1
KEEP=0

usage() { sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --edges) EDGES="$2"; shift 2 ;;
        --aliases) ALIASES="$2"; shift 2 ;;
        --writes) WRITES="$2"; shift 2 ;;
        --write-rate) WRITE_RATE="$2"; shift 2 ;;
        --poll-interval) POLL="$2"; shift 2 ;;
        --report) REPORT="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --keep) KEEP=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 1 ;;
    esac
done

die() { echo "fleet.sh: $*" >&2; exit 1; }
for tool in redis-server redis-cli curl jq python3; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
REPORT="$(realpath -m "$REPORT")"
# Each edge holds a few descriptors; the probe one connection per edge.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# Temp dir, cleanup, binaries (with the control plane), --aliases aliases,
# then PostgreSQL, Redis and the control plane with them imported.
# shellcheck source=loadtest/common.sh
source "$ROOT/loadtest/common.sh"
COUNT=$ALIASES PLANE=1
nexus_prepare fleet
nexus_start_plane
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
redis_out() { redis-cli -p "$REDIS_PORT" info stats | tr -d '\r' | sed -n 's/^total_net_output_bytes://p'; }
RESOLVER="$TOKEN"

echo "starting $EDGES edges" >&2
# Not pinned: a hundred edges share both cores, as they would share a host.
SERVER_CPU=()
EDGE_URLS=()
EDGE_PIDS=()
for i in $(seq 0 $((EDGES - 1))); do
    EDGE_LOG="edge-$i.log" nexus_start_edge http EDGE_ID="fleet-$i" EDGE_REGION="r$((i % 4))" \
        EDGE_QUIC=off
    EDGE_URLS+=("http://127.0.0.1:$PORT")
    EDGE_PIDS+=("$EDGE_PID")
done
printf '%s\n' "${EDGE_URLS[@]}" >"$WORK/edges.txt"
nexus_wait_for 30 "every edge in the fleet view" sh -c "curl -fsS -H 'Authorization: Bearer $ADMIN' \
    '$CP/api/admin/edges' | jq -e '(.edges // .items // []) | length >= $EDGES'"
RSS_KB=$(for p in "${EDGE_PIDS[@]}"; do awk '/VmRSS/ {print $2}' "/proc/$p/status"; done |
    sort -n | awk '{a[NR]=$1} END {print a[1], a[int(NR/2)+1], a[NR]}')
last="a-1"

# ---------------------------------------------------------------- phase 0
# The same writes with nothing polling the edges: commit→applied as each
# edge measures it (its report's lag window; a change is served from the
# moment it is applied) without the probe's 100 threads on the same cores.
echo "phase 0: $WRITES writes at $WRITE_RATE/s, lag as the edges measure it" >&2
python3 - "$CP" "$ADMIN" "$WRITES" "$WRITE_RATE" "$EDGES" <<'EOF' >"$WORK/unwatched.json"
import json, sys, time, http.client
cp, admin, writes, rate, edges = sys.argv[1:]
writes, rate, edges = int(writes), float(rate), int(edges)
host = cp.split("//")[1]
def call(method, path, body=None):
    c = http.client.HTTPConnection(host, timeout=10)
    c.request(method, path, body=json.dumps(body) if body else None,
              headers={"Authorization": f"Bearer {admin}", "content-type": "application/json"})
    r = c.getresponse()
    out = (r.status, json.loads(r.read() or b"{}"))
    c.close()
    return out
start, head = time.monotonic(), 0
for i in range(writes):
    time.sleep(max(0.0, start + i / rate - time.monotonic()))
    s, a = call("POST", "/api/admin/aliases", {"context": "frontend", "alias": f"quiet-{i}",
                "canonical": f"https://api.nexus.com/v1/quiet/{i}"})
    assert s == 201, (s, a)
    head = max(head, a["version"])
# Edges report as they apply: wait until every report names the last write.
deadline, view = time.monotonic() + 15, []
while time.monotonic() < deadline:
    s, f = call("GET", "/api/admin/edges")
    view = f.get("items") or f.get("edges") or []
    if len(view) >= edges and all((e.get("report", e).get("version") or 0) >= head for e in view):
        break
    time.sleep(0.2)
rep = [e.get("report", e) for e in view]
p99 = sorted(r.get("lag_ms_p99") or 0 for r in rep)
p50 = sorted(r.get("lag_ms_p50") or 0 for r in rep)
json.dump({
    "writes": writes, "edges_reporting": len(rep),
    "edges_at_last_write": sum(1 for r in rep if (r.get("version") or 0) >= head),
    "samples_min": min((r.get("lag_samples") or 0) for r in rep) if rep else 0,
    # max over edges of each edge's p99 bounds the p99 over all their samples
    "worst_edge_p99_ms": p99[-1] if p99 else None,
    "median_edge_p99_ms": p99[len(p99) // 2] if p99 else None,
    "median_edge_p50_ms": p50[len(p50) // 2] if p50 else None,
    "worst_edge_max_ms": max((r.get("lag_ms_max") or 0) for r in rep) if rep else None,
}, sys.stdout)
EOF
jq -c . "$WORK/unwatched.json" >&2

# ---------------------------------------------------------------- phase 1
echo "phase 1: $WRITES writes at $WRITE_RATE/s watched on $EDGES edges" >&2
EDGE_ARGS=()
for e in "${EDGE_URLS[@]}"; do EDGE_ARGS+=(--edge "$e"); done
HZ=$(getconf CLK_TCK)
cp0=$(cpu_ticks "$CP_PID") r0=$(cpu_ticks "$REDIS_PID") out0=$(redis_out) t0=$(date +%s%3N)
set +e
"$BIN/nexus-loadtest" propagation --control-plane "$CP" --token "$ADMIN" "${EDGE_ARGS[@]}" \
    --edge-token "$RESOLVER" --writes "$WRITES" --rate "$WRITE_RATE" --context frontend \
    --poll-interval "$POLL" --report "$WORK/propagation.json" >"$WORK/propagation.out" 2>&1
PROP_STATUS=$?
set -e
cp1=$(cpu_ticks "$CP_PID") r1=$(cpu_ticks "$REDIS_PID") out1=$(redis_out) t1=$(date +%s%3N)
tail -n 5 "$WORK/propagation.out" >&2
[[ -s "$WORK/propagation.json" ]] || die "the propagation probe wrote no report"

# ---------------------------------------------------------------- phase 2
echo "phase 2: FLUSHALL, every edge takes a snapshot" >&2
HEAD=$(curl -fsS "$CP/api/aliases/status" | jq -r '.status.registry_version')
out2=$(redis_out)
python3 - "$WORK" "$CP" "$ADMIN" "$RESOLVER" "$HEAD" "$REDIS_PORT" "$last" <<'EOF' >"$WORK/stampede.json"
import json, subprocess, sys, time, http.client
from concurrent.futures import ThreadPoolExecutor
work, cp, admin, resolver, head, redis_port, probe = sys.argv[1:]
head = int(head)
edges = open(f"{work}/edges.txt").read().split()

def get(url, token, timeout=2.0):
    host = url.split("//")[1].split("/")[0]
    path = "/" + url.split("//")[1].split("/", 1)[1]
    c = http.client.HTTPConnection(host, timeout=timeout)
    try:
        c.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        r = c.getresponse()
        return r.status, r.read()
    except OSError:
        return None, b""
    finally:
        c.close()

def sample(e):
    s, body = get(f"{e}/api/aliases/status", resolver)
    version = json.loads(body)["status"]["registry_version"] if s == 200 else None
    rs, _ = get(f"{e}/api/aliases/resolve/frontend/{probe}", resolver)
    return version, rs

def post(url, token, body):
    host = url.split("//")[1].split("/")[0]
    path = "/" + url.split("//")[1].split("/", 1)[1]
    c = http.client.HTTPConnection(host, timeout=5)
    c.request("POST", path, body=json.dumps(body),
              headers={"Authorization": f"Bearer {token}", "content-type": "application/json"})
    r = c.getresponse()
    return r.status, json.loads(r.read() or b"{}")

pool = ThreadPoolExecutor(32)
t0 = time.monotonic()
subprocess.run(["redis-cli", "-p", redis_port, "flushall"], check=True, capture_output=True)
# A write while Redis is empty: the publisher refills it with a snapshot
# that holds the write and an empty delta ring, so no edge can catch up
# with a delta: every one of them needs the snapshot, at once.
status, created = post(f"{cp}/api/admin/aliases", admin, {"context": "frontend",
    "alias": f"stampede-{int(time.time())}", "canonical": "https://api.nexus.com/v1/stampede"})
assert status == 201, (status, created)
head = created["version"]
current_at, failed, samples, api = {}, 0, 0, []
while len(current_at) < len(edges) and time.monotonic() - t0 < 60:
    a0 = time.monotonic()
    s, _ = get(f"{cp}/api/admin/aliases?limit=1", admin)
    api.append(((time.monotonic() - a0) * 1000, s))
    for e, (version, rs) in zip(edges, pool.map(sample, edges)):
        samples += 1
        if rs != 200:
            failed += 1
        if e not in current_at and version is not None and version >= head:
            current_at[e] = (time.monotonic() - t0) * 1000
    time.sleep(0.05)
times = sorted(current_at.values())
json.dump({
    "edges": len(edges), "current": len(current_at),
    "all_current_after_ms": times[-1] if len(times) == len(edges) else None,
    "median_current_after_ms": times[len(times) // 2] if times else None,
    "resolve_samples": samples, "failed_resolves": failed,
    "api_ms_max": max(a for a, _ in api), "api_ms_median": sorted(a for a, _ in api)[len(api) // 2],
    "api_failures": sum(1 for _, s in api if s != 200),
}, sys.stdout)
EOF
out3=$(redis_out)

python3 - "$WORK" "$REPORT" "$EDGES" "$WRITES" "$PROP_STATUS" "$HZ" "$cp0" "$cp1" "$r0" "$r1" \
    "$out0" "$out1" "$out2" "$out3" "$t0" "$t1" "$RSS_KB" <<'EOF'
import json, sys
(work, report, edges, writes, prop_status, hz, cp0, cp1, r0, r1, out0, out1, out2, out3, t0, t1,
 rss) = sys.argv[1:]
hz, secs = int(hz), (int(t1) - int(t0)) / 1000
prop = json.load(open(f"{work}/propagation.json"))
unwatched = json.load(open(f"{work}/unwatched.json"))
stampede = json.load(open(f"{work}/stampede.json"))
lat = prop.get("latency_ms", {})
all_edges = prop.get("all_edges_latency_ms", {})
per_edge_p99 = sorted((v.get("latency_ms", {}).get("p99") or 0) for v in prop.get("per_edge", {}).values())
rss_min, rss_median, rss_max = (int(x) for x in rss.split())
result = {
    "edges": int(edges),
    "edge_rss_kib": {"min": rss_min, "median": rss_median, "max": rss_max},
    "commit_to_visible": {
        "writes": int(writes), "visible": prop.get("visible"), "timeouts": prop.get("timeouts"),
        "every_edge_ms": {k: lat.get(k) for k in ("p50", "p99", "max")},
        "slowest_edge_per_write_ms": {k: all_edges.get(k) for k in ("p50", "p99", "max")},
        "worst_edge_p99_ms": per_edge_p99[-1] if per_edge_p99 else None,
        "probe_exit_status": int(prop_status),
    },
    "commit_to_applied_unwatched": unwatched,
    "cost_during_writes": {
        "seconds": secs,
        "control_plane_cpu_percent": 100 * (int(cp1) - int(cp0)) / hz / secs,
        "redis_cpu_percent": 100 * (int(r1) - int(r0)) / hz / secs,
        "redis_bytes_sent": int(out1) - int(out0),
        "redis_bytes_sent_per_write": (int(out1) - int(out0)) / max(1, int(writes)),
    },
    "stampede": stampede | {"redis_bytes_sent": int(out3) - int(out2)},
}
targets = {
    "commit_to_visible_p99_under_50ms": (lat.get("p99") or 1e9) < 50,
    "commit_to_applied_p99_under_50ms_unwatched": (unwatched.get("worst_edge_p99_ms") or 1e9) < 50,
    "no_edge_unready_in_stampede": stampede["failed_resolves"] == 0,
    "every_edge_current_after_stampede": stampede["current"] == stampede["edges"],
}
result["targets"] = targets
json.dump(result, open(report, "w"), indent=2)
print(json.dumps(result, indent=2))
sys.exit(0 if all(targets.values()) else 2)
EOF
