#!/bin/sh
# Lab 07 on kind: the real HorizontalPodAutoscaler, next to the lab's Compose control loop.
#
#   hpa.sh up        cluster (cluster.sh up), metrics-server with --kubelet-insecure-tls, lab 07's
#                    image loaded, the Deployment, Service and HPA of environments/k8s/hpa; waits
#                    until the HPA reads a CPU figure (TARGETS no longer <unknown>)
#   hpa.sh load      the load generator Job (environments/k8s/hpa/load-generator.yaml), then
#                    `kubectl get hpa -w` while replicas grow, then the load stopped and the shrink
#                    watched (after the 30 s scale-down window the HPA sets; the default is 300 s)
#   hpa.sh describe  `kubectl describe hpa`: its conditions and the events of each rescale
#   hpa.sh down      delete namespace labkit-07 (metrics-server stays; `cluster.sh down` removes all)
#   hpa.sh run       up, load, describe, down
#
# Every watch is bounded (timeout), and the load Job ends by itself (activeDeadlineSeconds).
# Needs kind, kubectl and docker, and network access for metrics-server's manifest (from its
# GitHub release; no copy of it ships here). Where any is missing it says so and stops.
set -eu

HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/common.sh"
NS=labkit-07
IMAGE=labkit/07-app:v1
HPA_DIR="${HPA_DIR:-$ROOT/environments/k8s/hpa}"   # lab 07 passes the student's copy (work/07/k8s/hpa)
GROW_S="${HPA_GROW_S:-180}"       # how long to watch replicas grow under load
SHRINK_S="${HPA_SHRINK_S:-150}"   # how long to watch them shrink once the load stops

tools() {
	check_tools "hpa.sh (the HPA steps)" "The HPA manifest is still validated offline (tests/test_autoscale.py); the lab's Compose
control loop (labkit.autoscale) runs without any of these." timeout "coreutils (it bounds every watch)"
}

up() {
	deploy_with_metrics "the HPA's source of CPU figures" "$HPA_DIR" "the Deployment, its Service and the HPA"
	echo "== waiting for the HPA's first CPU figure (up to 180 s; <unknown> until metrics-server has one)"
	waited=0
	until [ -n "$(k -n "$NS" get hpa model-server \
		-o jsonpath='{.status.currentMetrics[0].resource.current.averageUtilization}' 2> /dev/null)" ]; do
		if [ "$waited" -ge 180 ]; then
			echo "the HPA has no CPU figure after 180 s: \`kubectl -n $NS describe hpa model-server\` says why" >&2
			echo "(no CPU request in the pod template, or metrics-server not ready: \`kubectl top pods -n $NS\`)" >&2
			exit 1
		fi
		sleep 5
		waited=$((waited + 5))
	done
	k -n "$NS" get hpa model-server
}

load() {
	echo "== load on: replicas grow (watching ${GROW_S} s)"
	k -n "$NS" delete job load-generator --ignore-not-found
	k -n "$NS" apply -f "$HPA_DIR/load-generator.yaml"
	timeout "$GROW_S" kubectl --context "$CONTEXT" -n "$NS" get hpa model-server -w || true
	echo "== load off: replicas shrink after the scale-down window (watching ${SHRINK_S} s)"
	k -n "$NS" delete job load-generator --ignore-not-found
	timeout "$SHRINK_S" kubectl --context "$CONTEXT" -n "$NS" get hpa model-server -w || true
}

describe() { k -n "$NS" describe hpa model-server; }

down() { k delete namespace "$NS" --ignore-not-found --timeout=120s; }

case "${1:-}" in
up | load | describe | down)
	tools
	"$1"
	;;
run)
	tools
	trap down EXIT
	up
	load
	describe
	;;
*)
	echo "usage: $0 up|load|describe|down|run" >&2
	exit 2
	;;
esac
