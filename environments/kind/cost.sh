#!/bin/sh
# Lab 09 on kind: what the labs' Deployment requests and uses, for an OpenCost-style split of the node.
#
#   cost.sh up     cluster (cluster.sh up), metrics-server with --kubelet-insecure-tls, lab 09's image
#                  loaded, the Deployment and Service of environments/k8s/cost (lab 02's, 2 replicas,
#                  in namespace labkit-09); waits until `kubectl top pod` has figures for them
#   cost.sh top    `kubectl top pod --containers` and each pod's requests (what labkit.usage reads)
#   cost.sh down   delete namespace labkit-09 (metrics-server stays; `cluster.sh down` removes all)
#
# Every wait is bounded. Needs kind, kubectl and docker, and network access for metrics-server's
# manifest. Where any is missing it says so and stops.
set -eu

HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/common.sh"
NS=labkit-09
IMAGE=labkit/09-app:v1

tools() {
	check_tools "cost.sh (the cluster part of lab 09)" "Lab 09 splits this machine's cost over the Compose stack's
containers without any of these (labkit.usage.compose_usage)."
}

up() {
	deploy_with_metrics "the source of kubectl top's figures" "$ROOT/environments/k8s/cost" "the Deployment and its Service"
	echo "== waiting for kubectl top's first figures (up to 180 s)"
	waited=0
	until k -n "$NS" top pod --containers --no-headers 2> /dev/null | grep -q .; do
		if [ "$waited" -ge 180 ]; then
			echo "no figures after 180 s: \`kubectl -n kube-system logs deployment/metrics-server\` says why" >&2
			exit 1
		fi
		sleep 5
		waited=$((waited + 5))
	done
	top
}

top() {
	k -n "$NS" top pod --containers
	k -n "$NS" get pods -o custom-columns='POD:.metadata.name,CPU_REQUEST:.spec.containers[*].resources.requests.cpu,MEMORY_REQUEST:.spec.containers[*].resources.requests.memory'
}

down() { k delete namespace "$NS" --ignore-not-found --timeout=120s; }

case "${1:-}" in
up | top | down)
	tools
	"$1"
	;;
*)
	echo "usage: $0 up|top|down" >&2
	exit 2
	;;
esac
