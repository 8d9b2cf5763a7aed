#!/usr/bin/env bash
# Offline checks of deploy/: what can be verified without a Docker engine or
# a cluster. Run from anywhere: deploy/validate.sh (deploy/check.sh installs
# the tools first, then runs this).
# Required: python3 with PyYAML, promtool (Debian: prometheus), amtool
# (Debian: prometheus-alertmanager).
# Optional, used when on PATH (the step says so when skipped): kubectl or
# kustomize (rendering the overlays), hadolint, kubernetes-validate (pip).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
failed=0
step() { printf '\n== %s\n' "$*"; }
fail() { echo "FAILED: $*"; failed=1; }

missing=()
python3 -c 'import yaml' 2>/dev/null || missing+=("python3 with PyYAML (apt-get install python3-yaml)")
command -v promtool >/dev/null || missing+=("promtool (apt-get install prometheus)")
command -v amtool >/dev/null || missing+=("amtool (apt-get install prometheus-alertmanager)")
if [ "${#missing[@]}" -ne 0 ]; then
  printf 'missing: %s\n' "${missing[@]}"
  echo "install them (or run deploy/check.sh as root, which does) and run again"
  exit 2
fi

step "YAML syntax"
python3 - <<'PY' || fail "YAML"
import glob, sys, yaml
files = sorted(f for f in glob.glob("**/*.y*ml", recursive=True) if not f.startswith("examples/"))
for f in files:
    with open(f) as fh:
        list(yaml.safe_load_all(fh))
print(f"{len(files)} YAML files parse")
PY

step "Dashboard JSON"
for f in grafana/dashboards/*.json; do
  if python3 -m json.tool "$f" >/dev/null; then echo "$f ok"; else fail "$f"; fi
done

step "Prometheus config and rules"
promtool check config prometheus/prometheus.yml || fail "prometheus.yml"
promtool check rules prometheus/rules/nexus.rules.yml || fail "rules"
promtool test rules prometheus/rules/nexus.rules.test.yml || fail "rule tests"

step "Dashboard PromQL parses"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 - "$tmp/dash.rules.yml" <<'PY' || fail "dashboard queries extraction"
import json, sys, yaml
d = json.load(open("grafana/dashboards/nexus-ssot.json"))
rules = []
for p in d["panels"]:
    for i, t in enumerate(p.get("targets", [])):
        e = (t["expr"].replace("$__rate_interval", "1m")
             .replace("$region", ".*").replace("$instance", ".*"))
        rules.append({"record": f"dashboard:panel{p['id']}_{i}", "expr": e})
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(sys.argv[1], "w"))
PY
promtool check rules "$tmp/dash.rules.yml" || fail "dashboard PromQL"

step "Alertmanager config and routes"
amtool check-config alertmanager/alertmanager.yml || fail "alertmanager.yml"
# Which receiver each severity reaches: the routing the README promises.
route() {
  local want="$1"; shift
  if amtool config routes test --config.file=alertmanager/alertmanager.yml \
      --verify.receivers="$want" "$@" >/dev/null 2>&1; then
    echo "$* -> $want"
  else
    fail "route $* should reach $want"
  fi
}
route page severity=critical region=eu-west
route email severity=warning region=us-east
route email alertname=Unlabelled

step "Every file in config/ is read by a binary"
# deploy/config/ holds only what a binary reads (today the governance rules,
# built into the control plane with include_str! and read again from
# NEXUS_GOVERNANCE_FILE when set), and the ConfigMap lists exactly those.
if [ -d ../control-plane/src ]; then
python3 - <<'PY' || fail "config/"
import glob, os, sys, yaml
src = "".join(open(f).read() for f in glob.glob("../control-plane/src/**/*.rs", recursive=True)
              + glob.glob("../edge/src/**/*.rs", recursive=True))
files = sorted(os.path.basename(f) for f in glob.glob("config/*") if not f.endswith("kustomization.yaml"))
bad = [f"config/{f} is read by neither binary" for f in files if f not in src]
listed = sorted(f for g in yaml.safe_load(open("config/kustomization.yaml"))["configMapGenerator"]
                for f in g.get("files", []))
if listed != files:
    bad.append(f"config/kustomization.yaml lists {listed}, config/ holds {files}")
print("\n".join(bad) if bad else f"{', '.join(files)}: read by the crates and in the ConfigMap")
sys.exit(1 if bad else 0)
PY
else
  echo "crates not found beside deploy/: skipped"
fi

step "Env and metric names match the crates"
# Every service env name set in deploy/ must be read somewhere in
# edge/src or control-plane/src, and every nexus_* metric referenced by the
# rules, their tests, the dashboard and the README must be one the crates
# register (plus the suffixes prometheus-client adds). Skipped when the
# crates are not beside deploy/.
if [ -f ../edge/src/metrics.rs ] && [ -f ../control-plane/src/metrics.rs ]; then
python3 - <<'PY' || fail "names"
import glob, re, sys
src = ""
for f in glob.glob("../edge/src/**/*.rs", recursive=True) + glob.glob("../control-plane/src/**/*.rs", recursive=True):
    src += open(f).read()
read_env = set(re.findall(r'"([A-Z][A-Z0-9_]+)"', src))
# Names read by the images' other programs or by compose itself, not by NEXUS.
foreign = re.compile(r"^(POSTGRES_|GF_|GRAFANA_)|^(NEXUS_ALIASES_DIR|NEXUS_ALIASES_NAME|RUST_VERSION|HOSTNAME)$")
ours = re.compile(r"^(EDGE_|NEXUS_|API_|AUDIT_)|^(DATABASE_URL|REDIS_URL|SECRET_KEY|TOKEN_EXPIRATION|LOG_LEVEL|LOG_FORMAT|PROMETHEUS_ENABLED)$")
bad = []
files = ["compose.yaml", "compose.file-mode.yaml", "env.example", "Dockerfile.edge",
         "Dockerfile.control-plane"] + glob.glob("k8s/**/*.yaml", recursive=True)
for f in files:
    text = open(f).read()
    names = set(re.findall(r"^\s*#?\s*-?\s*(?:name:\s*)?([A-Z][A-Z0-9_]{2,})\s*[:=]", text, re.M))
    names |= set(re.findall(r"-\s+name:\s+([A-Z][A-Z0-9_]{2,})\b", text))
    names |= set(re.findall(r"\bkey:\s+([A-Z][A-Z0-9_]{2,})\b", text))
    for n in sorted(names):
        if foreign.search(n) or not ours.search(n):
            continue
        if n not in read_env:
            bad.append(f"{f}: env {n} is not read by the crates")
registered = set(re.findall(r'register\(\s*"(nexus_[a-z0-9_]+)"', src))
exposed = {n + s for n in registered for s in ("", "_total", "_bucket", "_sum", "_count")}
for f in ["prometheus/rules/nexus.rules.yml", "prometheus/rules/nexus.rules.test.yml",
          "grafana/dashboards/nexus-ssot.json", "README.md"]:
    for m in sorted(set(re.findall(r"\b(nexus_(?:edge|cp)_[a-z0-9_]+)", open(f).read()))):
        if m not in exposed:
            bad.append(f"{f}: metric {m} is not registered by the crates")
print("\n".join(bad) if bad else f"{len(registered)} registered metrics; env and metric names all match")
sys.exit(1 if bad else 0)
PY
else
  echo "crates not found beside deploy/: skipped"
fi

step "Kustomize overlays build"
# kubectl's built-in kustomize, else a standalone kustomize; neither is in
# Debian's archive, so without them this step is skipped, saying so.
render=""
if command -v kubectl >/dev/null; then
  render="kubectl kustomize"
elif command -v kustomize >/dev/null; then
  render="kustomize build"
fi
rendered=0
if [ -z "$render" ]; then
  echo "SKIPPED: neither kubectl nor kustomize is installed (not in the Debian archive; see https://kubectl.docs.kubernetes.io/installation/kustomize/)"
else
  cp -r "$here" "$tmp/deploy"
  for overlay in eu-west us-east; do
    if $render "$tmp/deploy/k8s/overlays/$overlay" > "$tmp/$overlay.yaml"; then
      echo "$overlay ($render): $(grep -c '^kind:' "$tmp/$overlay.yaml") resources"
    else
      fail "kustomize $overlay"
    fi
  done
  rendered=1
fi

if [ "$rendered" -eq 1 ] && command -v kubernetes-validate >/dev/null; then
  step "Kubernetes schemas (strict, 1.30)"
  if kubernetes-validate --strict --quiet -k 1.30.0 "$tmp/eu-west.yaml" "$tmp/us-east.yaml" k8s/secret.example.yaml; then
    echo "schemas ok"
  else
    fail "kubernetes-validate"
  fi
fi

if command -v hadolint >/dev/null; then
  step "Dockerfiles (hadolint)"
  if hadolint Dockerfile.edge Dockerfile.control-plane; then echo "hadolint ok"; else fail "hadolint"; fi
fi

echo
if [ "$failed" -ne 0 ]; then echo "SOME CHECKS FAILED"; exit 1; fi
echo "all offline checks passed (images and compose need a Docker engine: not checked here)"
