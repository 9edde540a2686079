#!/usr/bin/env bash
# `make run`: build, then run on loopback
#   1. kestrel-devcloud (a local Kestrel Cloud),
#   2. a local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager;
#      `kubeenv up --detach` in .run/kubeenv) with the demo objects of config/demo applied
#      (config/demo/live once the collector streams),
#   3. otelcol-kestrel with config/local.yaml + config/local-kube.yaml, so the k8s_inventory
#      receiver streams that cluster's inventory to the devcloud.
# State (certs, records, logs, token, the cluster) lives in .run/.
#
# Environment:
#   KESTREL_NO_KUBE=1    no cluster: devcloud and the collector with config/local.yaml only
#   KESTREL_KEEP_KUBE=1  leave the cluster running on exit (a later make run reuses it)
#   STARTUP_TIMEOUT, STOP_TIMEOUT, COMMIT_TIMEOUT  seconds (30, 20, 60)
#
# Ctrl-C or SIGTERM stops the collector first, so it can drain to the cloud, then the
# cloud, then the cluster.
set -euo pipefail

cd "$(dirname "$0")/.."
RUN_DIR=$PWD/.run
CERTS_DIR=$RUN_DIR/certs
RECORD_DIR=$RUN_DIR/records
KUBE_DIR=$RUN_DIR/kubeenv
KUBECONFIG_FILE=$KUBE_DIR/kubeconfig
KUBE_BUILD_LOG=$RUN_DIR/kubeenv-build.log
GRPC_ADDR=127.0.0.1:50051
ADMIN_ADDR=127.0.0.1:50052
HEALTH_PORT=13133
# Every port config/local.yaml and the devcloud bind: OTLP gRPC/HTTP, envoy_access_log,
# health_check, zpages, self-metrics, devcloud gRPC and admin. The cluster picks free ports.
PORTS=(4317 4318 8080 "$HEALTH_PORT" 55679 8888 50051 50052)
STARTUP_TIMEOUT=${STARTUP_TIMEOUT:-30}
STOP_TIMEOUT=${STOP_TIMEOUT:-20}
COMMIT_TIMEOUT=${COMMIT_TIMEOUT:-60}
WITH_KUBE=1
if [[ ${KESTREL_NO_KUBE:-} == 1 ]]; then WITH_KUBE=0; fi

# Background jobs get their own process groups, so a Ctrl-C reaches only this script and
# the shutdown order below is ours, not the terminal's.
set -m

build_pid=""
devcloud_pid=""
collector_pid=""
kube_started=0

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

stop() { # stop PID NAME: SIGTERM to its process group, then SIGKILL after STOP_TIMEOUT
	alive "$1" || return 0
	log "stopping $2 (pid $1)"
	kill -TERM -- "-$1" 2>/dev/null || true
	local deadline=$((SECONDS + STOP_TIMEOUT))
	while alive "$1" && ((SECONDS < deadline)); do sleep 0.2; done
	if alive "$1"; then
		log "$2 did not stop within ${STOP_TIMEOUT}s; killing it"
		kill -KILL -- "-$1" 2>/dev/null || true
	fi
	wait "$1" 2>/dev/null || true
}

stop_kube() {
	((kube_started)) || return 0
	if [[ ${KESTREL_KEEP_KUBE:-} == 1 ]]; then
		log "leaving the cluster running (KESTREL_KEEP_KUBE=1): export KUBECONFIG=$KUBECONFIG_FILE"
		log "the next make run reuses it; make kubeenv-down stops it"
		return 0
	fi
	log "stopping kube-controller-manager, kube-apiserver and etcd (.run/kubeenv)"
	bin/kubeenv down --dir "$KUBE_DIR" || log "could not stop all of them; see .run/kubeenv/*.log and run make kubeenv-down"
}

# The order is the point: the collector drains to the cloud while the cloud still runs,
# and the cluster goes last so the collector never logs a lost apiserver on the way out.
cleanup() {
	# A second Ctrl-C (or timeout(1) signalling its whole group) must not cut the ordered
	# shutdown short; each step is bounded by STOP_TIMEOUT anyway.
	trap '' INT TERM
	trap - EXIT
	stop "$build_pid" "the build of the Kubernetes binaries"
	stop "$collector_pid" otelcol-kestrel
	stop "$devcloud_pid" kestrel-devcloud
	stop_kube
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

# cloud_ready: the inventory snapshot is committed and the events stream is open.
cloud_ready() {
	local st
	st=$(bin/kestrel-devcloud ctl --admin "$ADMIN_ADDR" status --json 2>/dev/null | tr -d ' \t\n') || return 1
	[[ $st == *'"committed":true'* && $st == *'"events":{"open":true'* ]]
}

# build_kube_binaries: etcd, kube-apiserver and kube-controller-manager are built from
# source once per machine. That takes minutes, so say so, and show signs of life.
build_kube_binaries() {
	if [[ -n ${KUBEENV_ASSETS:-} ]] || bin/kubeenv build --check >/dev/null 2>&1; then
		return 0
	fi
	log "building etcd, kube-apiserver and kube-controller-manager from source (once per machine;"
	log "about 6-8 minutes on 2 cores). Progress: tail -f .run/kubeenv-build.log"
	log "(to skip the cluster: KESTREL_NO_KUBE=1 make run)"
	bin/kubeenv build >"$KUBE_BUILD_LOG" 2>&1 &
	build_pid=$!
	local started=$SECONDS next=$((SECONDS + 30))
	while alive "$build_pid"; do
		if ((SECONDS >= next)); then
			log "still building ($((SECONDS - started))s): $(tail -n 1 "$KUBE_BUILD_LOG" | cut -c1-100)"
			next=$((SECONDS + 30))
		fi
		sleep 1
	done
	local rc=0
	wait "$build_pid" || rc=$?
	build_pid=""
	if ((rc != 0)); then
		log "the build failed ($rc); last lines of .run/kubeenv-build.log:"
		tail -n 30 "$KUBE_BUILD_LOG" >&2
		exit 1
	fi
	log "built in $((SECONDS - started))s: $(tail -n 1 "$KUBE_BUILD_LOG")"
}

# start_kube reuses a healthy cluster in .run/kubeenv (KESTREL_KEEP_KUBE=1 left it) and
# otherwise clears what is left of one and starts a new one.
start_kube() {
	local state
	if state=$(bin/kubeenv status --dir "$KUBE_DIR" 2>&1); then
		kube_started=1
		log "reusing the healthy cluster already running in .run/kubeenv"
		return 0
	fi
	if [[ $state != *"no environment runs"* ]]; then
		log "the cluster in .run/kubeenv is not healthy; restarting it:"
		printf '%s\n' "$state" | sed 's/^/      /' >&2
	fi
	bin/kubeenv down --dir "$KUBE_DIR"
	log "starting etcd, kube-apiserver and kube-controller-manager in .run/kubeenv (logs there)"
	kube_started=1
	# stdout is an "export KUBECONFIG=" line for shells; the banner below says it instead.
	bin/kubeenv up --dir "$KUBE_DIR" --detach >/dev/null
}

for p in "${PORTS[@]}"; do
	if port_open "$p"; then
		log "port 127.0.0.1:$p is already in use (another make run?); stop that process first"
		exit 1
	fi
done

make --no-print-directory build
mkdir -p "$RUN_DIR" "$RECORD_DIR"

# The health endpoint reports component status (config/local.yaml, health_check).
config_args=(--config config/local.yaml --feature-gates=+extension.healthcheck.useComponentStatus)
collector_env=(KESTREL_CERTS_DIR="$CERTS_DIR" KESTREL_ENDPOINT="$GRPC_ADDR" KESTREL_STATE_DIR="$RUN_DIR")
# The cloud binds its ports before the cluster starts: 50051 and 50052 lie in Linux's
# ephemeral port range, from which the cluster's free ports and outgoing connections come.
if [[ ! -f $CERTS_DIR/ca.crt ]]; then
	log "generating dev CA, server/client certificates and token in .run/certs"
	bin/kestrel-devcloud certs --out "$CERTS_DIR"
fi

log "starting kestrel-devcloud on $GRPC_ADDR (admin $ADMIN_ADDR), log .run/devcloud.log"
bin/kestrel-devcloud serve --listen "$GRPC_ADDR" --certs "$CERTS_DIR" --record "$RECORD_DIR" \
	--admin "$ADMIN_ADDR" >"$RUN_DIR/devcloud.log" 2>&1 &
devcloud_pid=$!
wait_until kestrel-devcloud "$devcloud_pid" .run/devcloud.log both_devcloud_ports

if ((WITH_KUBE)); then
	make --no-print-directory kubeenv-cli
	build_kube_binaries
	start_kube
	log "applying config/demo/*.yaml (the live/ directory follows once the collector streams)"
	bin/kubeenv apply --kubeconfig "$KUBECONFIG_FILE" -f config/demo | sed 's/^/      /'
	kube_host=$(bin/kubeenv status --dir "$KUBE_DIR" | awk '$1 == "apiserver" {print $2}')
	config_args+=(--config config/local-kube.yaml)
	collector_env+=(KUBECONFIG="$KUBECONFIG_FILE")
fi

log "starting otelcol-kestrel with ${config_args[*]}, log .run/otelcol.log"
env "${collector_env[@]}" bin/otelcol-kestrel "${config_args[@]}" >"$RUN_DIR/otelcol.log" 2>&1 &
collector_pid=$!
wait_until otelcol-kestrel "$collector_pid" .run/otelcol.log http_ok "$HEALTH_PORT"

if ((WITH_KUBE)); then
	# The inventory snapshot ends with an InventoryCommit; until it arrives the cloud has
	# only part of the cluster. Not fatal: the banner shows where to look.
	deadline=$((SECONDS + COMMIT_TIMEOUT))
	until cloud_ready || ! alive "$collector_pid" || ((SECONDS >= deadline)); do sleep 0.5; done
	if cloud_ready; then
		log "inventory snapshot committed to kestrel-devcloud"
	else
		log "no InventoryCommit (or no events stream) after ${COMMIT_TIMEOUT}s; see .run/otelcol.log"
	fi
	# Now that the collector streams, a Warning event shows the live path (events.jsonl).
	log "applying config/demo/live/*.yaml"
	bin/kubeenv apply --kubeconfig "$KUBECONFIG_FILE" -f config/demo/live | sed 's/^/      /'
fi

cat <<EOF

  kestrel-devcloud  gRPC $GRPC_ADDR  admin $ADMIN_ADDR          (pid $devcloud_pid)
  otelcol-kestrel   OTLP gRPC 127.0.0.1:4317  OTLP/HTTP 127.0.0.1:4318  (pid $collector_pid)
                    health http://127.0.0.1:$HEALTH_PORT/  zpages http://127.0.0.1:55679/debug/tracez
                    self-metrics http://127.0.0.1:8888/metrics
EOF
keep_hint=""
if ((WITH_KUBE)); then
	keep_hint=" (KESTREL_KEEP_KUBE=1 keeps the cluster)"
	cat <<EOF
  kube-apiserver    $kube_host  kubeconfig .run/kubeenv/kubeconfig
                    logs .run/kubeenv/*.log   (no scheduler or kubelet: pods stay Pending)

  Watch the inventory arrive (Workload, Pod, Namespace, Service, NetworkPolicy, InventoryCommit):
    tail -f .run/records/data.jsonl
    tail -f .run/records/events.jsonl          # the demo Warning event, and new ones
    bin/kestrel-devcloud ctl --admin $ADMIN_ADDR status

  Change the cluster and see the diff arrive:
EOF
	if command -v kubectl >/dev/null; then
		cat <<EOF
    export KUBECONFIG=$KUBECONFIG_FILE
    kubectl -n shop scale deployment checkout --replicas=3
    kubectl -n shop label service checkout tier=web
EOF
	fi
	cat <<EOF
    edit config/demo/*.yaml (or write your own), then
    bin/kubeenv apply --kubeconfig .run/kubeenv/kubeconfig -f config/demo

  Ask what the cloud's agents ask (as kestrel/kestrel-ai-reader, bound to the view ClusterRole):
    bin/kestrel-devcloud ctl --admin $ADMIN_ADDR k8s-api api/v1/namespaces/shop/pods
    bin/kestrel-devcloud ctl --admin $ADMIN_ADDR shell 'kubectl describe deploy checkout -n shop'
EOF
else
	cat <<EOF

  No cluster (KESTREL_NO_KUBE=1). Send a log record (a Kubernetes Warning event):
    curl -X POST http://127.0.0.1:4318/v1/logs -H 'Content-Type: application/json' \\
      -d @examples/otlp/k8s-event.json
EOF
fi
cat <<EOF

  See what Kestrel Cloud received:
    tail -f .run/records/*.jsonl
    bin/kestrel-devcloud ctl --admin $ADMIN_ADDR status

  Logs: .run/devcloud.log .run/otelcol.log     Ctrl-C stops everything$keep_hint.

EOF

# Return when either process exits (or a signal arrives; the traps then stop the rest).
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
