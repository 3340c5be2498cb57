#!/bin/sh
# Lab 08 on kind: blue-green with two Deployments and a Service whose selector is switched.
#
#   bluegreen.sh up              cluster (cluster.sh up), lab 08's image loaded, the manifests of
#                                environments/k8s/bluegreen applied (live = blue, preview = green),
#                                both Deployments' rollouts awaited
#   bluegreen.sh switch green    patch the live Service's selector to version=green and the preview's
#   bluegreen.sh switch blue     to the other colour, then wait until the live Service's
#                                EndpointSlices list only the new colour's pods (a rollback is the
#                                switch back; a colour scaled to 0 is scaled up first)
#   bluegreen.sh status          which colour is live, the EndpointSlices, the Deployments
#   bluegreen.sh drain           wait until no slice lists the idle colour, wait DRAIN_S more, then
#                                scale the idle colour to 0 (its pods sleep in preStop, then drain)
#   bluegreen.sh delete-old      drain, then delete the idle colour's Deployment
#   bluegreen.sh test            from a fresh apply, the load Job (load-generator.yaml) across a switch
#                                to green, a rollback to blue, a switch to green, a drain of blue and
#                                green scaled from 2 pods to 1; then its log: requests, failures,
#                                versions seen. Exit 1 on a failed request.
#   bluegreen.sh down            delete namespace labkit-08 (`cluster.sh down` removes the cluster)
#   bluegreen.sh run             up, test, down
#
# Every wait is bounded (a deadline of its own, or kubectl's --timeout), and the load Job ends by
# itself (activeDeadlineSeconds). Needs kind, kubectl and docker; where any is missing it says so
# and stops (exit 3).
set -eu

HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/common.sh"
NS=labkit-08
IMAGE=labkit/08-app:v1
BG_DIR="${BG_DIR:-$ROOT/environments/k8s/bluegreen}"   # lab 08 passes the student's copy
LIVE=model-server
PREVIEW=model-server-preview
APP_LABEL=app.kubernetes.io/name=model-server
SWITCH_S="${BG_SWITCH_S:-60}"   # the longest wait for the slices to list only the new colour
DRAIN_S="${BG_DRAIN_S:-15}"     # after that, before the idle colour is scaled down
STEP_S="${BG_STEP_S:-10}"       # load on each state during `test`
ROLLOUT_S=180

tools() {
	check_tools "bluegreen.sh (the blue-green steps)" "The manifests are still validated offline (tests/test_bluegreen_k8s.py), and the switch
checked on them (labkit.tools.bluegreen_k8s.switch_problems)."
}

k() { kubectl --context "$CONTEXT" -n "$NS" "$@"; }

other() {
	case "$1" in
	blue) echo green ;;
	green) echo blue ;;
	*)
		echo "a colour is blue or green, not '$1'" >&2
		exit 2
		;;
	esac
}

live_version() { k get service "$LIVE" -o jsonpath='{.spec.selector.version}'; }

# The pods a Service's EndpointSlices list, one name a line.
endpoint_pods() {
	k get endpointslices -l "kubernetes.io/service-name=$1" \
		-o jsonpath='{range .items[*].endpoints[*]}{.targetRef.name}{"\n"}{end}'
}

# Wait until the EndpointSlices of Service $1 list pods of version $2 and no other pod.
wait_endpoints() {
	started=$(date +%s)
	while :; do
		want=$(k get pods -l "$APP_LABEL,version=$2" -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}')
		have=$(endpoint_pods "$1")
		stray=""
		for pod in $have; do
			printf '%s\n' "$want" | grep -qx "$pod" || stray="$stray $pod"
		done
		if [ -n "$have" ] && [ -z "$stray" ]; then
			echo "Service $1: its EndpointSlices list only version=$2 pods ($(printf '%s' "$have" | tr '\n' ' ')), $(($(date +%s) - started)) s after asking"
			return 0
		fi
		if [ $(($(date +%s) - started)) -ge "$SWITCH_S" ]; then
			echo "Service $1: after $SWITCH_S s its EndpointSlices still list:${stray:- nothing}" >&2
			echo "(\`kubectl -n $NS get endpointslices -l kubernetes.io/service-name=$1 -o wide\`)" >&2
			exit 1
		fi
		sleep 1
	done
}

# Make sure colour $1 has ready pods: scale it up if it was drained to 0, then its rollout.
ensure_ready() {
	replicas=$(k get deployment "model-server-$1" -o jsonpath='{.spec.replicas}')
	if [ "$replicas" = "0" ]; then
		as_many=$(k get deployment "model-server-$(other "$1")" -o jsonpath='{.spec.replicas}')
		[ -n "$as_many" ] && [ "$as_many" != "0" ] || as_many=2
		echo "== model-server-$1 is scaled to 0: scaling it to $as_many first (as many as the other colour)"
		k scale deployment "model-server-$1" --replicas="$as_many"
	fi
	k rollout status "deployment/model-server-$1" --timeout="${ROLLOUT_S}s"
}

switch() {
	to="$1"
	was=$(other "$to")
	ensure_ready "$to"
	if [ "$(live_version)" = "$to" ]; then
		echo "== $LIVE already selects version=$to"
	else
		echo "== switch: $LIVE -> version=$to, $PREVIEW -> version=$was"
		# The `test` op makes the API server refuse the patch if the selector is no longer $was
		# (someone switched meanwhile). The preview only follows: a plain replace.
		k patch service "$LIVE" --type=json -p "[{\"op\": \"test\", \"path\": \"/spec/selector/version\", \"value\": \"$was\"}, {\"op\": \"replace\", \"path\": \"/spec/selector/version\", \"value\": \"$to\"}]"
		k patch service "$PREVIEW" --type=json -p "[{\"op\": \"replace\", \"path\": \"/spec/selector/version\", \"value\": \"$was\"}]"
	fi
	wait_endpoints "$LIVE" "$to"
}

# Wait until $2 pods of colour $1 are left (a deleted pod sleeps in preStop, then drains: up to
# its grace period, 30 s).
wait_pods() {
	started=$(date +%s)
	while [ $(($(k get pods -l "$APP_LABEL,version=$1" -o name | wc -l))) -ne "$2" ]; do
		if [ $(($(date +%s) - started)) -ge 90 ]; then
			echo "not $2 pod(s) of version=$1 after 90 s: \`kubectl -n $NS get pods -l version=$1\`" >&2
			exit 1
		fi
		sleep 1
	done
	echo "$2 version=$1 pod(s) left, $(($(date +%s) - started)) s after the scale-down"
}

drain() {
	live=$(live_version)
	old=$(other "$live")
	wait_endpoints "$LIVE" "$live"
	echo "== drain: ${DRAIN_S} s more for every node's kube-proxy and open connections, then version=$old to 0"
	sleep "$DRAIN_S"
	k scale deployment "model-server-$old" --replicas=0
	wait_pods "$old" 0
}

delete_old() {
	drain
	k delete deployment "model-server-$old" --ignore-not-found
	echo "(to roll back now: \`kubectl apply -k $BG_DIR\`, which also sets the live Service to blue)"
}

status() {
	echo "live: $LIVE selects version=$(live_version); preview: $PREVIEW selects" \
		"version=$(k get service "$PREVIEW" -o jsonpath='{.spec.selector.version}')"
	k get endpointslices -o wide
	k get deployments -o wide
}

up() {
	"$HERE/cluster.sh" up
	echo "== $IMAGE (blue and green run this one image, APP_VERSION telling them apart)"
	docker image inspect "$IMAGE" > /dev/null 2>&1 || docker build -t "$IMAGE" "$ROOT/environments/app"
	kind load docker-image "$IMAGE" --name "$NAME"
	echo "== blue, green and the two Services ($BG_DIR)"
	kubectl --context "$CONTEXT" apply -k "$BG_DIR"
	k rollout status deployment/model-server-blue --timeout="${ROLLOUT_S}s"
	k rollout status deployment/model-server-green --timeout="${ROLLOUT_S}s"
	wait_endpoints "$LIVE" "$(live_version)"
	status
}

run_test() {
	echo "== a fresh apply: live = blue, both colours at their replicas"
	kubectl --context "$CONTEXT" apply -k "$BG_DIR"
	k rollout status deployment/model-server-blue --timeout="${ROLLOUT_S}s"
	k rollout status deployment/model-server-green --timeout="${ROLLOUT_S}s"
	wait_endpoints "$LIVE" blue
	echo "== load on (the Job load-generator)"
	k delete job load-generator --ignore-not-found --cascade=foreground --timeout=60s
	k apply -f "$BG_DIR/load-generator.yaml"
	started=$(date +%s)
	until k logs job/load-generator 2> /dev/null | grep -q '^t='; do # its first report: load flows
		if [ $(($(date +%s) - started)) -ge 120 ]; then
			echo "the load Job reported nothing in 120 s: \`kubectl -n $NS describe job load-generator\`" >&2
			exit 1
		fi
		sleep 2
	done
	k logs job/load-generator
	sleep "$STEP_S"
	switch green
	sleep "$STEP_S"
	switch blue
	sleep "$STEP_S"
	switch green
	drain
	sleep "$STEP_S"
	echo "== the live colour loses a pod under load: removed while the slices list it (the preStop sleep's case)"
	k scale deployment model-server-green --replicas=1
	wait_pods green 1
	sleep "$STEP_S"
	if [ "$(k get job load-generator -o jsonpath='{.status.active}')" != "1" ]; then
		echo "the load ended before the last step: raise DURATION_S in load-generator.yaml" >&2
		exit 1
	fi
	echo "== the steps are done; the load runs to its end (DURATION_S)"
	k wait --for=condition=complete job/load-generator --timeout=300s
	log=$(k logs job/load-generator)
	printf '%s\n' "$log"
	result=$(printf '%s\n' "$log" | grep '^RESULT ' || true)
	failed=$(printf '%s\n' "$result" | sed -n 's/.*"failed": \([0-9]*\).*/\1/p')
	if [ -z "$failed" ]; then
		echo "the load Job's log has no RESULT line" >&2
		exit 1
	fi
	for colour in blue green; do
		printf '%s\n' "$result" | grep -q "\"versions\": {[^}]*\"$colour\"" || {
			echo "version=$colour never answered: the switch did not reach the load" >&2
			exit 1
		}
	done
	if [ "$failed" -ne 0 ]; then
		echo "$failed request(s) failed across the switches, the drain and the scale-down (see \"errors\" above)" >&2
		exit 1
	fi
	echo "== no failed request across switch, rollback, switch, drain and scale-down; both versions answered"
}

down() { kubectl --context "$CONTEXT" delete namespace "$NS" --ignore-not-found --timeout=120s; }

case "${1:-}" in
up | status | drain | down)
	tools
	"$1"
	;;
delete-old)
	tools
	delete_old
	;;
switch)
	[ -n "${2:-}" ] || {
		echo "usage: $0 switch green|blue" >&2
		exit 2
	}
	other "$2" > /dev/null
	tools
	switch "$2"
	;;
test)
	tools
	run_test
	;;
run)
	tools
	trap down EXIT
	up
	run_test
	;;
*)
	echo "usage: $0 up|switch green|switch blue|status|drain|delete-old|test|down|run" >&2
	exit 2
	;;
esac
