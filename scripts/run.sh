#!/usr/bin/env bash
# `make run`: build, then run kestrel-devcloud (a local Kestrel Cloud) and otelcol-kestrel
# against it, both on loopback. State (certs, records, logs, token) lives in .run/.
# Ctrl-C or SIGTERM stops the collector first, so it can drain to the cloud, then the cloud.
set -euo pipefail

cd "$(dirname "$0")/.."
RUN_DIR=$PWD/.run
CERTS_DIR=$RUN_DIR/certs
RECORD_DIR=$RUN_DIR/records
GRPC_ADDR=127.0.0.1:50051
ADMIN_ADDR=127.0.0.1:50052
HEALTH_PORT=13133
# Every port config/local.yaml and the devcloud bind: OTLP gRPC/HTTP, health_check,
# zpages, self-metrics, devcloud gRPC and admin.
PORTS=(4317 4318 "$HEALTH_PORT" 55679 8888 50051 50052)
STARTUP_TIMEOUT=${STARTUP_TIMEOUT:-30}

# Background jobs get their own process groups, so a Ctrl-C reaches only this script and
# the shutdown order below is ours, not the terminal's.
set -m

devcloud_pid=""
collector_pid=""

log() { printf '\033[1m[run]\033[0m %s\n' "$*"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# http_ok PORT: true if GET / answers 200 (health_check), without needing curl.
http_ok() {
	local status
	status=$( (exec 3<>"/dev/tcp/127.0.0.1/$1" &&
		printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 &&
		head -n1 <&3) 2>/dev/null) || return 1
	[[ $status == *" 200"* ]]
}

alive() { [[ -n $1 ]] && kill -0 "$1" 2>/dev/null; }

STOP_TIMEOUT=${STOP_TIMEOUT:-20}

stop() { # stop PID NAME: SIGTERM, then SIGKILL if it has not exited after STOP_TIMEOUT
	alive "$1" || return 0
	log "stopping $2 (pid $1)"
	kill -TERM "$1" 2>/dev/null || true
	local deadline=$((SECONDS + STOP_TIMEOUT))
	while alive "$1" && ((SECONDS < deadline)); do sleep 0.2; done
	if alive "$1"; then
		log "$2 did not stop within ${STOP_TIMEOUT}s; killing it"
		kill -KILL "$1" 2>/dev/null || true
	fi
	wait "$1" 2>/dev/null || true
}

cleanup() {
	trap - INT TERM EXIT
	stop "$collector_pid" otelcol-kestrel
	stop "$devcloud_pid" kestrel-devcloud
	log "stopped; logs and records are in .run/"
}
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap cleanup EXIT

# wait_until NAME PID LOG CHECK...: poll CHECK until it succeeds, the process dies or time runs out.
wait_until() {
	local name=$1 pid=$2 logfile=$3
	shift 3
	local deadline=$((SECONDS + STARTUP_TIMEOUT))
	until "$@"; do
		if ! alive "$pid"; then
			log "$name exited during startup; last lines of $logfile:"
			tail -n 30 "$logfile" >&2
			exit 1
		fi
		if ((SECONDS >= deadline)); then
			log "$name not ready after ${STARTUP_TIMEOUT}s; see $logfile"
			exit 1
		fi
		sleep 0.2
	done
}

both_devcloud_ports() { port_open 50051 && port_open 50052; }

for p in "${PORTS[@]}"; do
	if port_open "$p"; then
		log "port 127.0.0.1:$p is already in use (another make run?); stop that process first"
		exit 1
	fi
done

make --no-print-directory build

mkdir -p "$RUN_DIR" "$RECORD_DIR"
if [[ ! -f $CERTS_DIR/ca.crt ]]; then
	log "generating dev CA, server/client certificates and token in .run/certs"
	bin/kestrel-devcloud certs --out "$CERTS_DIR"
fi

log "starting kestrel-devcloud on $GRPC_ADDR (admin $ADMIN_ADDR), log .run/devcloud.log"
bin/kestrel-devcloud serve --listen "$GRPC_ADDR" --certs "$CERTS_DIR" --record "$RECORD_DIR" \
	--admin "$ADMIN_ADDR" >"$RUN_DIR/devcloud.log" 2>&1 &
devcloud_pid=$!
wait_until kestrel-devcloud "$devcloud_pid" .run/devcloud.log both_devcloud_ports

log "starting otelcol-kestrel with config/local.yaml, log .run/otelcol.log"
KESTREL_CERTS_DIR=$CERTS_DIR KESTREL_ENDPOINT=$GRPC_ADDR KESTREL_STATE_DIR=$RUN_DIR \
	bin/otelcol-kestrel --config config/local.yaml >"$RUN_DIR/otelcol.log" 2>&1 &
collector_pid=$!
wait_until otelcol-kestrel "$collector_pid" .run/otelcol.log http_ok "$HEALTH_PORT"

cat <<EOF

  kestrel-devcloud  gRPC $GRPC_ADDR  admin $ADMIN_ADDR          (pid $devcloud_pid)
  otelcol-kestrel   OTLP gRPC 127.0.0.1:4317  OTLP/HTTP 127.0.0.1:4318  (pid $collector_pid)
                    health http://127.0.0.1:$HEALTH_PORT/  zpages http://127.0.0.1:55679/debug/tracez
                    self-metrics http://127.0.0.1:8888/metrics

  Send a log record (a Kubernetes Warning event):
    curl -X POST http://127.0.0.1:4318/v1/logs -H 'Content-Type: application/json' \\
      -d @examples/otlp/k8s-event.json

  See what Kestrel Cloud received:
    tail -f .run/records/*.jsonl
    bin/kestrel-devcloud ctl --admin $ADMIN_ADDR status

  Logs: .run/devcloud.log .run/otelcol.log     Ctrl-C stops both.

EOF

# Return when either process exits (or a signal arrives; the traps then stop the other).
set +e
wait -n "$collector_pid" "$devcloud_pid"
rc=$?
set -e
if ! alive "$collector_pid"; then
	log "otelcol-kestrel exited ($rc); last lines of .run/otelcol.log:"
	tail -n 20 "$RUN_DIR/otelcol.log" >&2
else
	log "kestrel-devcloud exited ($rc); last lines of .run/devcloud.log:"
	tail -n 20 "$RUN_DIR/devcloud.log" >&2
fi
exit 1
