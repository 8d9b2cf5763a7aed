#!/usr/bin/env bash
# CI entry point for deploy/: makes sure the checking tools are there, then
# runs every offline check (deploy/validate.sh: YAML, dashboard, promtool
# config + rules + rule unit tests, amtool check-config + routing, config/
# files read by the binaries, env and metric names, kustomize rendering when
# kubectl or kustomize exists). Exits non-zero on any failure.
#
#     deploy/check.sh
#
# Missing tools are installed from the OS packages when run as root with
# apt (promtool: prometheus, amtool: prometheus-alertmanager, PyYAML:
# python3-yaml); otherwise the missing ones are named with their install
# line and the script fails. kubectl/kustomize are not in Debian's archive:
# validate.sh skips rendering without them and says so.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

need=()
command -v promtool >/dev/null || need+=(prometheus)
command -v amtool >/dev/null || need+=(prometheus-alertmanager)
python3 -c 'import yaml' 2>/dev/null || need+=(python3-yaml)

if [ "${#need[@]}" -ne 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${need[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    # The index may be absent in a fresh container: update only when the
    # packages cannot be found, so a warm machine stays offline-fast.
    if ! apt-get install -y --no-install-recommends "${need[@]}" >/dev/null; then
      apt-get update -qq
      apt-get install -y --no-install-recommends "${need[@]}" >/dev/null
    fi
    # The Debian packages start their daemons where an init system runs;
    # a check needs only the command-line tools.
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
      systemctl disable --now prometheus prometheus-alertmanager >/dev/null 2>&1 || true
    fi
  else
    echo "missing packages: ${need[*]}"
    echo "install them (Debian/Ubuntu: sudo apt-get install -y ${need[*]}) or run this as root"
    exit 2
  fi
fi

exec "$here/validate.sh"
