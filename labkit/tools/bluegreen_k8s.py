"""Blue-green on Kubernetes (lab 08): two Deployments, one per colour (pods labelled
``version: blue`` / ``version: green``), a live Service and a preview Service, and a switch that
changes only the ``version`` in the Services' selectors. Reference manifests:
``environments/k8s/bluegreen``; the same steps as a script: ``environments/kind/bluegreen.sh``.

Offline, on rendered documents (:func:`labkit.k8s.render`, :func:`labkit.k8s.documents`):

- :func:`switch_problems`: both colours' Deployments exist, each selects its own pods and only
  them, the live Service selects exactly one colour and the preview the other;
- :func:`drain_problems`: a removed pod keeps serving while its removal propagates (a preStop
  sleep within ``terminationGracePeriodSeconds``), and a new one gets traffic only once ready;
- :func:`service_version` (also live), :func:`selector_patch`, :func:`switch_patches`,
  :func:`apply_patch`, :func:`switched`: the switch as the data ``kubectl patch`` sends, and what
  it does to the documents.

On a cluster: :func:`switch` patches both Services and waits until the live Service's
EndpointSlices list only the new colour's pods; :func:`live_endpoint_versions`; and
:func:`load_result` reads the ``RESULT`` line of the load Job's log.
"""

from __future__ import annotations

import copy
import json
import time
from itertools import combinations

from ..core.errors import RequirementNotMet
from ..core.waiting import wait_until
from . import k8s
from .traffic import COLORS, other

NAMESPACE = "labkit-08"
APP = "model-server"
LIVE = "model-server"
PREVIEW = "model-server-preview"
VERSION_LABEL = "version"
#: How long the sample server waits for in-flight requests after SIGTERM unless SHUTDOWN_GRACE_S
#: says otherwise (environments/app/model_server/config.py).
SERVER_SHUTDOWN_GRACE_S = 10.0
#: The shortest preStop sleep taken as enough for an endpoint removal to reach every node's
#: kube-proxy (about a second on an idle kind cluster; seconds on a busy or large one).
MIN_PRESTOP_S = 5


def deployment_name(version: str) -> str:
    return f"{APP}-{version}"


# ---------------------------------------------------------------- reading documents

def _match_labels(deployment: dict) -> dict:
    return ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}


def _service(docs: list[dict], name: str) -> dict | None:
    return next((d for d in docs if d.get("kind") == "Service"
                 and (d.get("metadata") or {}).get("name") == name), None)


def service_version(docs: list[dict] | None = None, service: str = LIVE, *, namespace: str = NAMESPACE,
                    context: str = k8s.CONTEXT) -> str | None:
    """The ``version`` a Service selects: in ``docs`` (rendered manifests), or on the cluster
    when ``docs`` is None. None when its selector has no ``version``."""
    if docs is None:
        doc = k8s.kubectl_json("-n", namespace, "get", "service", service, context=context)
    else:
        doc = _service(docs, service)
        if doc is None:
            raise RequirementNotMet(f"no Service {service} in the manifests")
    return ((doc.get("spec") or {}).get("selector") or {}).get(VERSION_LABEL)


def switch_problems(docs: list[dict], *, live: str = LIVE, preview: str = PREVIEW) -> list[str]:
    """What stops a clean blue-green switch in these manifests. Empty list: none."""
    problems: list[str] = []
    deployments = [d for d in docs if d.get("kind") == "Deployment"]
    by_colour: dict[str, list[str]] = {c: [] for c in COLORS}
    for d in deployments:
        labels, match = k8s.template_labels(d), _match_labels(d)
        colour = labels.get(VERSION_LABEL)
        if colour is None:
            problems.append(f"{k8s.name_of(d)}: its pods have no {VERSION_LABEL} label: no selector can tell "
                            "them from the other colour's")
            continue
        if colour not in COLORS:
            problems.append(f"{k8s.name_of(d)}: {VERSION_LABEL}={colour}: use blue or green")
        else:
            by_colour[colour].append(k8s.name_of(d))
        if VERSION_LABEL not in match:
            problems.append(f"{k8s.name_of(d)}: its selector {match} lacks {VERSION_LABEL}={colour}: it also "
                            "matches the other colour's pods")
        for key, value in match.items():
            if labels.get(key) != value:
                problems.append(f"{k8s.name_of(d)}: selector {key}={value} does not match its pod template's "
                                f"labels {labels}")
    for colour, names in by_colour.items():
        if not names:
            problems.append(f"no Deployment runs {VERSION_LABEL}={colour} pods")
        elif len(names) > 1:
            problems.append(f"{len(names)} Deployments run {VERSION_LABEL}={colour} pods ({', '.join(names)}): "
                            "one per colour")
    for a, b in combinations(deployments, 2):
        for one, two in ((a, b), (b, a)):
            if k8s.selects(_match_labels(one), k8s.template_labels(two)):
                problems.append(f"{k8s.name_of(one)}: its selector {_match_labels(one)} also matches the pods of "
                                f"{k8s.name_of(two)}: Deployments with overlapping selectors fight over pods")
    selected = {}
    for name in (live, preview):
        svc = _service(docs, name)
        if svc is None:
            problems.append(f"no Service {name}")
            continue
        selector = (svc.get("spec") or {}).get("selector") or {}
        matched = [k8s.name_of(d) for d in deployments if k8s.selects(selector, k8s.template_labels(d))]
        where = f"{k8s.name_of(svc)}: selector {selector}"
        if not selector:
            problems.append(f"{k8s.name_of(svc)}: no selector: it sends traffic to no pod")
        elif VERSION_LABEL not in selector:
            problems.append(f"{where} has no {VERSION_LABEL}: " + (
                f"it sends traffic to both colours ({', '.join(matched)})" if len(matched) > 1
                else "there is nothing to switch"))
        elif not matched:
            problems.append(f"{where} matches no Deployment's pods")
        elif len(matched) > 1:
            problems.append(f"{where} matches the pods of {len(matched)} Deployments ({', '.join(matched)}): "
                            "it must select exactly one")
        selected[name] = selector.get(VERSION_LABEL)
    if len(selected) == 2 and selected[live] is not None and selected[live] == selected[preview]:
        problems.append(f"Services {live} and {preview} both select {VERSION_LABEL}={selected[live]}: the "
                        "preview selects the colour that is not live")
    return problems


def _prestop_seconds(container: dict) -> float | None:
    """How long a container's preStop hook sleeps (the kubelet's ``sleep`` action or an
    ``exec`` of ``sleep N``), None when it has none that sleeps."""
    pre = (container.get("lifecycle") or {}).get("preStop") or {}
    if "sleep" in pre:
        return float((pre["sleep"] or {}).get("seconds", 0))
    words = " ".join((pre.get("exec") or {}).get("command") or []).replace(";", " ").split()
    for word, following in zip(words, words[1:]):
        if word.rsplit("/", 1)[-1] == "sleep":
            try:
                return float(following)
            except ValueError:
                return None
    return None


def drain_problems(docs: list[dict]) -> list[str]:
    """Why a colour's pods could fail requests when they are removed or added. Empty list: none.

    A pod being deleted gets its preStop hook and then SIGTERM at the same time as it is taken
    out of the Service's EndpointSlices, and every node's kube-proxy learns that a little later:
    a preStop sleep keeps it serving meanwhile, and ``terminationGracePeriodSeconds`` must cover
    the sleep plus the server's own drain (SHUTDOWN_GRACE_S), or the kubelet kills it mid-request.
    A readiness probe keeps a new pod out of the endpoints until its model is loaded."""
    deployments = [d for d in docs if d.get("kind") == "Deployment"]
    if not deployments:
        return ["no Deployment in the manifests"]
    problems = []
    for d in deployments:
        spec = k8s.pod_spec(d) or {}
        grace = spec.get("terminationGracePeriodSeconds", 30)  # the API's default
        for c in spec.get("containers") or []:
            where = f"{k8s.name_of(d)} container {c.get('name', '?')}"
            env = {e.get("name"): e.get("value") for e in c.get("env") or []}
            try:
                drain = float(env.get("SHUTDOWN_GRACE_S") or SERVER_SHUTDOWN_GRACE_S)
            except ValueError:
                problems.append(f"{where}: SHUTDOWN_GRACE_S={env['SHUTDOWN_GRACE_S']!r} is not a number")
                continue
            sleep = _prestop_seconds(c)
            if sleep is None:
                problems.append(f"{where}: no preStop sleep: SIGTERM comes while nodes may still send it new "
                                "connections (lifecycle.preStop.sleep.seconds)")
            elif sleep < MIN_PRESTOP_S:
                problems.append(f"{where}: preStop sleeps {sleep:g} s: under {MIN_PRESTOP_S} s, too short for "
                                "the endpoint removal to reach every node")
            elif grace < sleep + drain:
                problems.append(f"{where}: terminationGracePeriodSeconds {grace} < preStop {sleep:g} s + "
                                f"SHUTDOWN_GRACE_S {drain:g} s: the kubelet kills it mid-request")
            if not c.get("readinessProbe"):
                problems.append(f"{where}: no readinessProbe: a new pod gets traffic before it can answer")
    return problems


# ---------------------------------------------------------------- the switch as data

def selector_patch(to: str, *, expect: str | None = None) -> list[dict]:
    """The JSON patch (``kubectl patch service NAME --type=json -p '…'``) that makes a Service
    select ``version: to``. With ``expect``, it first tests that the selector holds ``expect``:
    the API server then refuses the patch (and changes nothing) if someone switched meanwhile."""
    path = f"/spec/selector/{VERSION_LABEL}"
    test = [{"op": "test", "path": path, "value": expect}] if expect else []
    return test + [{"op": "replace", "path": path, "value": to}]


def switch_patches(to: str, *, live: str = LIVE, preview: str = PREVIEW) -> dict[str, list[dict]]:
    """Both Services' patches for a switch to ``to``: the live one to ``to`` (tested to hold the
    other colour first), the preview one to the colour that was live (warm, the rollback target;
    a plain replace, as the preview only follows)."""
    was = other(to)
    return {live: selector_patch(to, expect=was), preview: selector_patch(was)}


def patch_argv(service: str, patch: list[dict], *, namespace: str = NAMESPACE) -> list[str]:
    """The ``kubectl patch`` command line for one Service's patch."""
    return ["kubectl", "-n", namespace, "patch", "service", service, "--type=json", "-p", json.dumps(patch)]


def apply_patch(doc: dict, patch: list[dict]) -> dict:
    """``doc`` with a JSON patch (RFC 6902: test, add, replace, remove, on object members) applied,
    as a copy; a failed test or a missing path raises RequirementNotMet, as the API server refuses it."""
    doc = copy.deepcopy(doc)
    for op in patch:
        *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        target = doc
        for part in parents:
            if not isinstance(target, dict) or part not in target:
                raise RequirementNotMet(f"{op['op']} {op['path']}: no such path in {k8s.name_of(doc)}")
            target = target[part]
        if op["op"] != "add" and last not in target:
            raise RequirementNotMet(f"{op['op']} {op['path']}: no such path in {k8s.name_of(doc)}")
        if op["op"] == "test" and target[last] != op["value"]:
            raise RequirementNotMet(f"test {op['path']}: it is {target[last]!r}, not {op['value']!r}")
        if op["op"] in ("add", "replace"):
            target[last] = op["value"]
        elif op["op"] == "remove":
            del target[last]
    return doc


def switched(docs: list[dict], to: str, *, live: str = LIVE, preview: str = PREVIEW) -> list[dict]:
    """The documents as a switch to ``to`` leaves them (both Services patched)."""
    patches = switch_patches(to, live=live, preview=preview)
    return [apply_patch(d, patches[d["metadata"]["name"]])
            if d.get("kind") == "Service" and (d.get("metadata") or {}).get("name") in patches else d
            for d in docs]


# ---------------------------------------------------------------- on a cluster

def endpoint_versions(slices: list[dict], pods: list[dict]) -> dict[str, list[str]]:
    """{version: pod names} of the endpoints the EndpointSlices list (``?`` for a pod not in
    ``pods`` or without a version label)."""
    version_of = {p["metadata"]["name"]: (p["metadata"].get("labels") or {}).get(VERSION_LABEL, "?")
                  for p in pods}
    seen: dict[str, list[str]] = {}
    for s in slices:
        for e in s.get("endpoints") or []:
            name = (e.get("targetRef") or {}).get("name", "?")
            seen.setdefault(version_of.get(name, "?"), []).append(name)
    return {v: sorted(names) for v, names in sorted(seen.items())}


def live_endpoint_versions(service: str = LIVE, *, namespace: str = NAMESPACE,
                           context: str = k8s.CONTEXT) -> dict[str, list[str]]:
    slices = k8s.kubectl_json("-n", namespace, "get", "endpointslices", "-l",
                              f"kubernetes.io/service-name={service}", context=context)["items"]
    return endpoint_versions(slices, k8s.pods(f"app.kubernetes.io/name={APP}", namespace=namespace,
                                              context=context))


def wait_endpoints(version: str, service: str = LIVE, *, namespace: str = NAMESPACE,
                   context: str = k8s.CONTEXT, timeout: float = 60) -> dict[str, list[str]]:
    """Wait until the Service's EndpointSlices list pods of ``version`` and no other."""
    seen: dict[str, list[str]] = {}

    def only_new():
        nonlocal seen
        seen = live_endpoint_versions(service, namespace=namespace, context=context)
        return seen if set(seen) == {version} else None

    return wait_until(only_new, timeout=timeout, every=0.5, error=RequirementNotMet,
                      what=f"the EndpointSlices of Service {service} to list only {VERSION_LABEL}={version} pods",
                      explain=lambda: f"listed: {seen}")


def switch(to: str, *, namespace: str = NAMESPACE, context: str = k8s.CONTEXT, timeout: float = 60) -> float:
    """Switch the live Service to ``to`` (the preview to the other colour), once ``to`` has ready
    pods; returns the seconds from the patch until the EndpointSlices listed only ``to``'s pods."""
    ready = k8s.kubectl_json("-n", namespace, "get", "deployment", deployment_name(to),
                             context=context).get("status", {}).get("readyReplicas", 0)
    if not ready:
        raise RequirementNotMet(f"deployment/{deployment_name(to)} has no ready pod: switching to it would send "
                                f"traffic nowhere (kubectl -n {namespace} scale deployment/{deployment_name(to)} "
                                "--replicas=2, then rollout status)")
    started = time.monotonic()
    if service_version(namespace=namespace, context=context) != to:
        for service, patch in switch_patches(to).items():
            k8s.kubectl(*patch_argv(service, patch, namespace=namespace)[1:], context=context)
    wait_endpoints(to, namespace=namespace, context=context, timeout=timeout)
    return time.monotonic() - started


def load_result(log: str) -> dict:
    """The summary the load Job prints last (``RESULT {...}``): requests, failed, errors,
    versions, pods, first_s, last_s, duration_s."""
    lines = [line for line in log.splitlines() if line.startswith("RESULT ")]
    if not lines:
        tail = "\n".join(log.strip().splitlines()[-5:]) or "(empty)"
        raise RequirementNotMet(f"the load Job's log has no RESULT line (still running, or stopped early); "
                                f"it ends with:\n{tail}")
    return json.loads(lines[-1][len("RESULT "):])
