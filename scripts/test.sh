#!/usr/bin/env bash
# The test command: system deps, .venv, the local stack, then pytest (extra args go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-system-deps.sh
bash scripts/bootstrap.sh

# `kpi-monitor dev ...` when the CLI has it, else the module entry point.
if .venv/bin/kpi-monitor dev status >/dev/null 2>&1; then
  dev=(.venv/bin/kpi-monitor dev)
else
  dev=(.venv/bin/python -m kpi_monitor.devstack)
fi

# Stop the stack afterwards only if nothing of it was running before this script.
started_here=0
if ! "${dev[@]}" status | grep -q 'running\|starting'; then
  started_here=1
fi
stop_stack() {
  if [ "$started_here" -eq 1 ]; then
    "${dev[@]}" down || echo "[test] warning: dev down failed" >&2
  fi
}
trap stop_stack EXIT

"${dev[@]}" up

status=0
.venv/bin/python -m pytest -q tests "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "[test] pytest collected no tests: failing" >&2
  status=1
fi
exit "$status"
