#!/usr/bin/env bash
# `make demo`: both simulators in the background, the product end to end against them
# (manage.py demo_run), then the admin on runserver with the task workers (manage.py qcluster,
# django-q2 on the ORM broker) beside it: Approve and Collect now queue their run for them,
# and the periodic jobs (manage.py schedules) run, the scheduled collection run among them.
# The simulators and the workers stop when runserver does.
#
# Environment: PYTHON (the venv's python), DEMO_EXACT_PORT (8101), DEMO_GOCARDLESS_PORT
# (8102), DEMO_ADDR (127.0.0.1:8000: where the admin is served). Simulators already answering
# on those ports (for instance `make simulate` in another terminal) are used as they are and
# left running.
#
# PUBLIC_BASE_URL follows DEMO_ADDR (webhook and OAuth callback URLs, the printed admin
# address). The demo's environment is written to .env (demo/environment.py) so that README's
# operator commands work afterwards; a .env the user wrote is left alone.
set -euo pipefail

PY=${PYTHON:-.venv/bin/python}
EXACT_PORT=${DEMO_EXACT_PORT:-8101}
GOCARDLESS_PORT=${DEMO_GOCARDLESS_PORT:-8102}
ADDR=${DEMO_ADDR:-127.0.0.1:8000}
PUBLIC_BASE_URL=$("$PY" -m demo.environment base-url "$ADDR")
ALLOWED_HOSTS=$("$PY" -m demo.environment allowed-hosts "$ADDR")
# Derived from PUBLIC_BASE_URL here, whatever an earlier environment or .env said.
EXACT_REDIRECT_URI="${PUBLIC_BASE_URL}/connect/exact/callback/"
GOCARDLESS_REDIRECT_URI="${PUBLIC_BASE_URL}/connect/gocardless/callback/"
export PUBLIC_BASE_URL ALLOWED_HOSTS EXACT_REDIRECT_URI GOCARDLESS_REDIRECT_URI
EXACT_URL="http://127.0.0.1:${EXACT_PORT}"
GOCARDLESS_URL="http://127.0.0.1:${GOCARDLESS_PORT}"
SIM_LOG=$(mktemp "${TMPDIR:-/tmp}/ml-connector-simulators.XXXXXX")
SIM_PID=""
QCLUSTER_LOG=$(mktemp "${TMPDIR:-/tmp}/ml-connector-qcluster.XXXXXX")
QCLUSTER_PID=""

# Does the simulator at $1 answer its control API? (no curl needed on a fresh machine)
answers() {
    "$PY" - "$1" <<'PY' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=1).read()
PY
}

stop_simulators() {
    if [ -n "$SIM_PID" ] && kill -0 "$SIM_PID" 2>/dev/null; then
        kill "$SIM_PID" 2>/dev/null || true
        wait "$SIM_PID" 2>/dev/null || true
        echo "Simulators stopped."
    fi
    SIM_PID=""
    rm -f "$SIM_LOG"
}
stop_qcluster() {
    if [ -n "$QCLUSTER_PID" ] && kill -0 "$QCLUSTER_PID" 2>/dev/null; then
        kill "$QCLUSTER_PID" 2>/dev/null || true  # qcluster stops its workers on TERM
        for _ in $(seq 1 50); do
            kill -0 "$QCLUSTER_PID" 2>/dev/null || break
            sleep 0.2
        done
        kill -9 "$QCLUSTER_PID" 2>/dev/null || true  # still there after 10 s: stop it anyway
        wait "$QCLUSTER_PID" 2>/dev/null || true
        echo "Task workers stopped."
    fi
    QCLUSTER_PID=""
    rm -f "$QCLUSTER_LOG"
}

stop_all() {
    stop_qcluster
    stop_simulators
}
trap stop_all EXIT
trap 'exit 130' INT TERM

if answers "${EXACT_URL}/_control/now" && answers "${GOCARDLESS_URL}/_control/clock"; then
    echo "Using the simulators already running on ${EXACT_URL} and ${GOCARDLESS_URL}."
else
    "$PY" manage.py simulate --auto-consent \
        --exact-port "$EXACT_PORT" --gocardless-port "$GOCARDLESS_PORT" >"$SIM_LOG" 2>&1 &
    SIM_PID=$!
    for _ in $(seq 1 100); do
        if answers "${EXACT_URL}/_control/now" && answers "${GOCARDLESS_URL}/_control/clock"; then
            break
        fi
        if ! kill -0 "$SIM_PID" 2>/dev/null; then
            echo "The simulators did not start (is port ${EXACT_PORT} or ${GOCARDLESS_PORT} taken?):" >&2
            cat "$SIM_LOG" >&2
            exit 1
        fi
        sleep 0.2
    done
    answers "${GOCARDLESS_URL}/_control/clock" || { echo "Simulators not answering" >&2; exit 1; }
    echo "Simulators: Exact Online on ${EXACT_URL}, GoCardless on ${GOCARDLESS_URL} (log: ${SIM_LOG})"
fi

"$PY" manage.py migrate --noinput
"$PY" manage.py demo_setup
"$PY" manage.py demo_run --exact-url "$EXACT_URL" --gocardless-url "$GOCARDLESS_URL"
"$PY" -m demo.environment write-env .env
# Every periodic job (the collection sweep that starts the scheduled runs on the days the
# dashboard's *Next collection run* shows, polling, bookings, ...): the task workers run them.
"$PY" manage.py schedules >/dev/null

# The task workers: Approve and Collect now in the admin queue their run for them.
"$PY" manage.py qcluster >"$QCLUSTER_LOG" 2>&1 &
QCLUSTER_PID=$!
for _ in $(seq 1 50); do
    grep -q "running" "$QCLUSTER_LOG" 2>/dev/null && break  # "Q Cluster … running."
    if ! kill -0 "$QCLUSTER_PID" 2>/dev/null; then
        # It may have said so just before ending (the check above ran first).
        grep -q "running" "$QCLUSTER_LOG" 2>/dev/null && break
        echo "The task workers did not start:" >&2
        cat "$QCLUSTER_LOG" >&2
        exit 1
    fi
    sleep 0.2
done
echo "Task workers: manage.py qcluster (log: ${QCLUSTER_LOG})"

echo ""
echo "  ml-connector admin: ${PUBLIC_BASE_URL}/admin/  (Ctrl-C stops the admin, the task workers and the simulators)"
echo ""
"$PY" manage.py runserver "$ADDR"
