#!/usr/bin/env bash
# Install the Debian packages the local stack needs (idempotent; apt is skipped when all present).
set -euo pipefail

declare -A PACKAGE_OF=(
  [redis-server]=redis-server
  [prometheus]=prometheus
  [promtool]=prometheus
  [prometheus-alertmanager]=prometheus-alertmanager
  [java]=default-jre-headless
  [mvn]=maven
  [chromium]=chromium          # the report tests open the HTML report in headless Chromium
  [pdftoppm]=poppler-utils     # ... and rasterise the PDF report's pages
  [gcc]=gcc                    # the compiled KPI core (mypyc, built by bootstrap.sh)
)
# Libraries and fonts (no binary to look for): `report --format pdf` lays out HTML with Pango
# (WeasyPrint), and zh-CN reports draw Chinese with Noto Sans CJK SC (charts and PDF).
LIBRARIES=(libpango-1.0-0 libpangoft2-1.0-0 fonts-noto-cjk)

missing=()
for binary in redis-server prometheus promtool prometheus-alertmanager java mvn chromium pdftoppm gcc; do
  command -v "$binary" >/dev/null 2>&1 || missing+=("${PACKAGE_OF[$binary]}")
done
if command -v dpkg-query >/dev/null 2>&1; then  # elsewhere: install Pango and a CJK font yourself
  for package in "${LIBRARIES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$package")
  done
fi
# `python3 -m venv` needs ensurepip, a separate package (python3-venv) on Debian.
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python=$(command -v python3.11 || command -v python3 || true)
  if [ -z "$python" ]; then
    missing+=(python3 python3-venv)
  elif ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    missing+=(python3-venv)
  fi
fi
# The compiled KPI core needs the Python headers (Debian's python3-dev for its own python3).
python=$(command -v python3.11 || command -v python3 || true)
if [ -n "$python" ] && ! "$python" -c 'import os, sysconfig; assert os.path.exists(sysconfig.get_paths()["include"] + "/Python.h")' >/dev/null 2>&1; then
  missing+=(python3-dev)
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "[deps] system packages present: redis-server prometheus prometheus-alertmanager java mvn" \
    "chromium poppler-utils gcc ${LIBRARIES[*]}"
  exit 0
fi
mapfile -t packages < <(printf '%s\n' "${missing[@]}" | sort -u)

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "[deps] need root or sudo to install: ${packages[*]}" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "[deps] no apt-get here; install these yourself: ${packages[*]}" >&2
  exit 1
fi

# Keep the packages' own services (system redis, prometheus, ...) from starting and taking
# the ports the dev stack uses, unless the machine already has a policy of its own.
policy=/usr/sbin/policy-rc.d
added_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
  "${SUDO[@]}" chmod +x "$policy"
  added_policy=1
fi
cleanup() { if [ "$added_policy" -eq 1 ]; then "${SUDO[@]}" rm -f "$policy"; fi; }
trap cleanup EXIT

echo "[deps] installing: ${packages[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${packages[@]}"
