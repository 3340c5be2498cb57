# Sourced by the lab scripts that need a cluster (hpa.sh, bluegreen.sh), after they set HERE (their
# own folder): the repository's root, the cluster's name and kubectl context (cluster.sh's), and
# `check_tools WHAT HINT [TOOL WHERE]...`, which looks for kind, kubectl, docker and the script's own
# TOOLs and, when any is missing, says which and where to get it, then HINT, and stops with exit
# code 3 (the tests hold it).
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
