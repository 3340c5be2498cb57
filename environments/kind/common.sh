# Sourced by the lab scripts that need a cluster (hpa.sh, bluegreen.sh, cost.sh), after they set HERE
# (their own folder): the repository's root, the cluster's name and kubectl context (cluster.sh's),
# `k` (kubectl on that context), `deploy_with_metrics WHY DIR WHAT` (the cluster, metrics-server
# (the source of `kubectl top` and of the HPA's figures), the script's $IMAGE loaded, the
# kustomization DIR applied and its Deployment model-server in $NS rolled out), and
# `check_tools WHAT HINT [TOOL WHERE]...`, which looks
# for kind, kubectl, docker and the script's own TOOLs and, when any is missing, says which and
# where to get it, then HINT, and stops with exit code 3 (the tests hold it).
ROOT="$(cd "$HERE/../.." && pwd)"
NAME="${LABKIT_CLUSTER:-labkit}"
CONTEXT="kind-$NAME"
missing=""
need() {
	command -v "$1" > /dev/null 2>&1 || missing="$missing
- $1: $2"
}
check_tools() {
	what="$1"
	hint="$2"
	shift 2
	need kind "https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
	need kubectl "https://kubernetes.io/docs/tasks/tools/"
	need docker "https://docs.docker.com/engine/install/"
	while [ "$#" -ge 2 ]; do
		need "$1" "$2"
		shift 2
	done
	if [ -n "$missing" ]; then
		echo "$what cannot run here; missing:$missing" >&2
		printf '%s\n' "$hint" >&2
		exit 3
	fi
}

k() { kubectl --context "$CONTEXT" "$@"; }

METRICS_SERVER_VERSION=v0.7.2
METRICS_SERVER="https://github.com/kubernetes-sigs/metrics-server/releases/download/$METRICS_SERVER_VERSION/components.yaml"
deploy_with_metrics() {
	"$HERE/cluster.sh" up
	echo "== metrics-server $METRICS_SERVER_VERSION ($1)"
	k apply -f "$METRICS_SERVER"
	# kind's kubelets serve self-signed certificates: metrics-server must not verify them
	if ! k -n kube-system get deployment metrics-server -o jsonpath='{.spec.template.spec.containers[0].args}' |
		grep -q -- --kubelet-insecure-tls; then
		k -n kube-system patch deployment metrics-server --type=json \
			-p '[{"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": "--kubelet-insecure-tls"}]'
	fi
	k -n kube-system rollout status deployment/metrics-server --timeout=180s
	echo "== $IMAGE"
	docker image inspect "$IMAGE" > /dev/null 2>&1 || docker build -t "$IMAGE" "$ROOT/environments/app"
	kind load docker-image "$IMAGE" --name "$NAME"
	echo "== $3 ($2)"
	k apply -k "$2"
	k -n "$NS" rollout status deployment/model-server --timeout=180s
}
