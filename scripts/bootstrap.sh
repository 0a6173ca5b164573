#!/usr/bin/env bash
# Create .venv with Python 3.11+ and install the project with its test extras (re-run safe).
set -euo pipefail
cd "$(dirname "$0")/.."

pick_python() {
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1 \
       && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  echo "[bootstrap] Python 3.11 or newer not found (apt-get install -y python3 python3-venv)" >&2
  return 1
}

if [ ! -x .venv/bin/python ]; then
  python=$(pick_python)
  echo "[bootstrap] creating .venv with $($python --version)"
  "$python" -m venv .venv
fi

# Reinstall only when the dependency list (or this script) changed since the last successful install.
stamp=.venv/.kpi-monitor-installed
want=$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -d" " -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x .venv/bin/kpi-monitor ]; then
  echo "[bootstrap] .venv up to date"
else
  echo "[bootstrap] installing kpi-monitor[test,bench] into .venv (bench: the suite's peer, tested too)"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test,bench]'
  echo "$want" > "$stamp"
fi

# The compiled KPI core (mypyc, from these sources, into .venv/kpi-core-compiled; about 20-30 s,
# nothing to do when current). Workers and `report` use it unless KPI_CORE=python.
.venv/bin/python -m kpi_monitor.compiled_core build
