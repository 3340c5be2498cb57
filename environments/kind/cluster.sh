#!/bin/sh
# Create or delete the labs' kind cluster: `cluster.sh up` / `cluster.sh down`
# (`make cluster` / `make cluster-down`). The cluster is named "labkit"; kubectl's
# context for it is "kind-labkit". Config: cluster.yaml next to this script.
set -eu

NAME="${LABKIT_CLUSTER:-labkit}"
HERE="$(cd "$(dirname "$0")" && pwd)"
KIND_INSTALL="https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
KUBECTL_INSTALL="https://kubernetes.io/docs/tasks/tools/"

need() {
	if ! command -v "$1" > /dev/null 2>&1; then
		echo "$1 is not installed. Install it: $2" >&2
		echo "(then run this again; \`make doctor\` checks the whole set-up)" >&2
		exit 1
	fi
}

exists() { kind get clusters 2> /dev/null | grep -qx "$NAME"; }

case "${1:-}" in
up)
	need kind "$KIND_INSTALL"
	need kubectl "$KUBECTL_INSTALL"
	if exists; then
		echo "kind cluster $NAME already exists (kubectl context kind-$NAME)"
	else
		kind create cluster --name "$NAME" --config "$HERE/cluster.yaml" --wait 120s
	fi
	kubectl --context "kind-$NAME" get nodes
	;;
down)
	need kind "$KIND_INSTALL"
	if exists; then
		kind delete cluster --name "$NAME"
	else
		echo "no kind cluster $NAME: nothing to delete"
	fi
	;;
*)
	echo "usage: $0 up|down" >&2
	exit 2
	;;
esac
