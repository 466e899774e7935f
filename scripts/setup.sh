#!/usr/bin/env bash
# Everything the tests need on a fresh Debian machine: the real components they start
# (Prometheus and promtool) and the package with its dev extras (uvicorn, rotel's collector, mcp).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  else
    echo "setup: promtool/prometheus missing; install Debian's 'prometheus' package (needs root)" >&2
  fi
fi
python -m pip install -q -e '.[dev]'
