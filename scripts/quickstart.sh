#!/usr/bin/env bash
# The quick start: local stack + a worker + simulated CRM traffic with a declining team + a local
# alert receiver, then where to look; waits for the first alert to reach the receiver.
#   bash scripts/quickstart.sh          start everything (re-run safe)
#   bash scripts/quickstart.sh down     stop the simulator, worker and receiver (by PID), then the stack
# The stack runs the rules of kpi_rules/quickstart.yaml: the packaged rules with short `for:`
# durations (see that file), so the decline is seen within minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

dev_dir="${KPI_DEV_DIR:-$(pwd)/.kpi-dev}"
run_dir="$dev_dir/run"
logs_dir="$dev_dir/logs"
web_port="${KPI_WEB_PORT:-6066}"
prom_port="${KPI_PROMETHEUS_PORT:-9090}"
am_port="${KPI_ALERTMANAGER_PORT:-9093}"
alerts_port="${KPI_ALERTS_PORT:-5001}"
rules="${KPI_QUICKSTART_RULES:-kpi_rules/quickstart.yaml}"
export KPI_DEV_DIR="$dev_dir" KPI_ALERTS_PORT="$alerts_port"
# The worker and simulator reach the stack's Kafka and Redis, on whatever ports it was given.
export KPI_KAFKA_BOOTSTRAP="${KPI_KAFKA_BOOTSTRAP:-127.0.0.1:${KPI_KAFKA_PORT:-9092}}"
export KPI_REDIS_URL="${KPI_REDIS_URL:-redis://127.0.0.1:${KPI_REDIS_PORT:-6379}/0}"

stop_pid() {  # stop_pid NAME: SIGTERM the process group recorded in run/NAME.pid, then SIGKILL
  local file="$run_dir/$1.pid"
  [ -f "$file" ] || return 0
  local pid
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    echo "[quickstart] stopping $1 (pid $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

if [ "${1:-up}" = "down" ]; then
  stop_pid simulator
  stop_pid worker
  stop_pid alerts
  if [ -x .venv/bin/kpi-monitor ]; then .venv/bin/kpi-monitor dev down; fi
  exit 0
fi

bash scripts/install-system-deps.sh
bash scripts/bootstrap.sh
.venv/bin/kpi-monitor dev up --rules "$rules"
mkdir -p "$run_dir" "$logs_dir"

start_bg() {  # start_bg NAME CMD...: run in its own session, log and PID under .kpi-dev
  local name=$1; shift
  if [ -f "$run_dir/$name.pid" ] && kill -0 "$(cat "$run_dir/$name.pid")" 2>/dev/null; then
    echo "[quickstart] $name already running (pid $(cat "$run_dir/$name.pid"))"
    return 0
  fi
  setsid "$@" >>"$logs_dir/$name.log" 2>&1 < /dev/null &
  echo $! > "$run_dir/$name.pid"
  echo "[quickstart] started $name (pid $!, log $logs_dir/$name.log)"
}

# The receiver Alertmanager posts to (alerts.notify.webhook_url; KPI_ALERTS_PORT moves it).
start_bg alerts .venv/bin/kpi-monitor alerts listen --rules "$rules" --port "$alerts_port"
sleep 1
if ! kill -0 "$(cat "$run_dir/alerts.pid")" 2>/dev/null; then
  echo "[quickstart] the alert receiver exited (is port $alerts_port taken? set KPI_ALERTS_PORT):" >&2
  tail -n 5 "$logs_dir/alerts.log" >&2; exit 1
fi
start_bg worker env KPI_WEB_PORT="$web_port" .venv/bin/kpi-monitor worker --rules "$rules"
echo -n "[quickstart] waiting for the worker to be ready "
for _ in $(seq 1 120); do
  if curl -fsS "http://127.0.0.1:$web_port/readyz" >/dev/null 2>&1; then echo " ready"; break; fi
  if ! kill -0 "$(cat "$run_dir/worker.pid")" 2>/dev/null; then
    echo; echo "[quickstart] the worker exited; last log lines:" >&2
    tail -n 30 "$logs_dir/worker.log" >&2; exit 1
  fi
  echo -n "."; sleep 1
done
# 40 reps in 4 teams at a real sales floor's pace (24 activity events per business hour, with
# their leads, surveys and spend; a target plan in proportion); 160 days of history, so this month
# and week can be compared with the same point of the previous ones and customers have had time
# to churn (90 days without a purchase); team north's sales decline from the start of this week
# and month (the `decline` scenario) and team east's customers have been leaving for four months
# (`churn:east`); then live traffic at 0.2 events/s (30 times the history's pace, to see it move).
start_bg simulator .venv/bin/kpi-monitor simulate --rules "$rules" --scenario "${KPI_SCENARIO:-decline+churn:east}" --reps 40 --days 160 --history-per-hour 24 --rate 0.2

echo -n "[quickstart] waiting for the first KPIs "
for _ in $(seq 1 60); do
  # (grep without -q reads everything: an early exit would fail curl, and the pipeline, with SIGPIPE)
  if curl -fsS "http://127.0.0.1:$web_port/metrics" 2>/dev/null | grep '^sales_visits{' >/dev/null; then echo " flowing"; break; fi
  echo -n "."; sleep 1
done
applied=$(curl -fsS "http://127.0.0.1:$web_port/metrics" | awk '/^kpi_events_applied_total/ {printf "%d", $2}')
# Debian's Prometheus ships only the classic web UI, under /classic/.
ui=""
if ! curl -fsS -o /dev/null "http://127.0.0.1:$prom_port/alerts" 2>/dev/null; then ui="/classic"; fi
cat <<MSG

The service is running on simulated CRM traffic (events applied so far: ${applied:-0}).
  Metrics (Prometheus format)   http://127.0.0.1:$web_port/metrics
  KPI API, one rep this month   http://127.0.0.1:$web_port/kpis/reps/rep-001?period=month
  Health / readiness            http://127.0.0.1:$web_port/healthz   http://127.0.0.1:$web_port/readyz
  Prometheus alerts             http://127.0.0.1:$prom_port$ui/alerts
  Prometheus queries            http://127.0.0.1:$prom_port$ui/graph?g0.expr=team%3Asales_revenue%3Asum%7Bperiod%3D%22month%22%7D&g0.tab=1
  Alertmanager                  http://127.0.0.1:$am_port/
  Alert receiver (its log)      tail -f $logs_dir/alerts.log
Logs: $logs_dir/   Stop everything: bash scripts/quickstart.sh down

Team north's sales decline in the simulated traffic: SalesRevenueDecline (this month against the
same point of last month) or SalesVisitsDrop (this week) fires in Prometheus after 1 minute
(kpi_rules/quickstart.yaml), goes through Alertmanager, and the receiver prints it. Team east
loses its customers (its churn runs at about three times the other teams'), and team south's
own target is 8% above the sum of its reps' (the simulated plan's one allocation gap).
MSG
echo -n "[quickstart] waiting for the first alert (Ctrl-C stops waiting; everything keeps running) "
for _ in $(seq 1 300); do
  if grep -q "FIRING\|触发" "$logs_dir/alerts.log" 2>/dev/null; then
    echo " received:"
    grep "FIRING\|触发" "$logs_dir/alerts.log" | head -n 5 | sed 's/^/  /'
    exit 0
  fi
  echo -n "."; sleep 1
done
echo; echo "[quickstart] no alert yet after 5 minutes; see $logs_dir/ and http://127.0.0.1:$prom_port$ui/alerts" >&2
