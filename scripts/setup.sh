#!/usr/bin/env bash
# Everything the tests need on a fresh Debian machine: the real components they start
# (Prometheus and promtool, Alertmanager and amtool) and the package with its dev extras (uvicorn, rotel's collector, mcp).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: prometheus (prometheus + promtool), prometheus-alertmanager (+ amtool) and
# chromium (the live page's browser tests).
missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v amtool >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing Debian packages: ${missing[*]} (install them as root)" >&2
  fi
fi
python -m pip install -q -e '.[dev]'
