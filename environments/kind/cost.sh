#!/bin/sh
# Lab 09 on kind: what the labs' Deployment requests and uses, for an OpenCost-style split of the node.
#
#   cost.sh up     cluster (cluster.sh up), metrics-server with --kubelet-insecure-tls, lab 09's image
#                  loaded, the Deployment and Service of environments/k8s/cost (lab 02's, 2 replicas,
#                  in namespace labkit-09); waits until `kubectl top pod` has figures for them
#   cost.sh top    `kubectl top pod --containers` and each pod's requests (what labkit.usage reads)
#   cost.sh opencost  OpenCost itself, with the Prometheus it needs (Helm, as OpenCost's install guide
#                  does it; the charts are the projects' current ones, not pinned), then the
#                  port-forward that shows its UI on :9090 and its API on :9003
#   cost.sh down   delete namespace labkit-09 and, if installed, OpenCost and its Prometheus
#                  (metrics-server stays; `cluster.sh down` removes all)
#
# Every wait is bounded. Needs kind, kubectl and docker (and helm for `opencost`), and network
# access for metrics-server's manifest and the charts. Where any is missing it says so and stops.
set -eu

HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/common.sh"
NS=labkit-09
IMAGE=labkit/09-app:v1

tools() {
	check_tools "cost.sh (the cluster part of lab 09)" "Lab 09 splits this machine's cost over the Compose stack's
containers without any of these (labkit.usage.compose_usage)." "$@"
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

opencost() {
	echo "== Prometheus (OpenCost reads its usage figures from there)"
	helm --kube-context "$CONTEXT" upgrade --install prometheus prometheus --repo https://prometheus-community.github.io/helm-charts \
		--namespace prometheus-system --create-namespace --wait --timeout 5m \
		--set prometheus-pushgateway.enabled=false --set alertmanager.enabled=false \
		-f https://raw.githubusercontent.com/opencost/opencost/develop/kubernetes/prometheus/extraScrapeConfigs.yaml
	echo "== OpenCost (its default prices are the ones lab 09 uses)"
	helm --kube-context "$CONTEXT" upgrade --install opencost opencost --repo https://opencost.github.io/opencost-helm-chart \
		--namespace opencost --create-namespace --wait --timeout 5m
	echo "OpenCost runs. Its UI and API, until Ctrl-C:"
	echo "  kubectl --context $CONTEXT -n opencost port-forward service/opencost 9003 9090"
	echo "  then http://localhost:9090, or: curl 'http://localhost:9003/allocation/compute?window=60m&aggregate=namespace'"
}

down() {
	k delete namespace "$NS" --ignore-not-found --timeout=120s
	if command -v helm > /dev/null 2>&1; then
		helm --kube-context "$CONTEXT" uninstall opencost --namespace opencost 2> /dev/null || true
		helm --kube-context "$CONTEXT" uninstall prometheus --namespace prometheus-system 2> /dev/null || true
	fi
}

case "${1:-}" in
up | top | down)
	tools
	"$1"
	;;
opencost)
	tools helm "https://helm.sh/docs/intro/install/"
	opencost
	;;
*)
	echo "usage: $0 up|top|opencost|down" >&2
	exit 2
	;;
esac
