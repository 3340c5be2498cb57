"""Kubernetes for the labs: render, validate and lint manifests offline; drive kind and kubectl.

Offline (no cluster needed, what the checks use everywhere):

- :func:`render` runs ``kubectl kustomize DIR`` (kustomize is built into kubectl);
- :func:`validate` checks every document against the JSON schema of a pinned Kubernetes
  version with ``kubernetes-validate`` in strict mode (an unknown or misspelt field is an
  error, as the API server's strict field validation makes it);
- :func:`lint` finds what a schema cannot: selectors that do not match the pod template's
  labels, a Service that selects no pod, containers without requests, limits or probes,
  ``:latest`` or untagged images, pods that may run as root;
- :func:`gpu_limit_problems` checks how a Deployment asks for NVIDIA GPUs (whole GPUs, in limits).

On a cluster (a kind cluster on the student's machine, or instructor CI): thin wrappers
around ``kind`` and ``kubectl`` with timeouts, every call printed as the command a student
would type; :func:`unschedulable_reason` says why a pod stays Pending. The lab cluster is
``kind-labkit`` (cluster ``labkit``), its config in ``environments/kind/cluster.yaml``.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Iterable

import yaml

from ..core import paths
from ..core.errors import RequirementNotMet
from ..core.waiting import wait_until
from . import commands

#: The Kubernetes version manifests are validated against (kind's node image pins the same minor).
KUBERNETES_VERSION = "1.31"
CLUSTER = "labkit"
CONTEXT = f"kind-{CLUSTER}"
KIND_CONFIG = paths.ENVIRONMENTS / "kind" / "cluster.yaml"
#: The extended resource NVIDIA's device plugin advertises, one per GPU.
GPU = "nvidia.com/gpu"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


class K8sError(commands.CommandError):
    """A kubectl or kind command failed; the message has the command and its output."""


# ---------------------------------------------------------------- running tools

def _run(argv: list[str], *, timeout: float, show: bool, check: bool = True,
         input: str | None = None) -> subprocess.CompletedProcess:
    return commands.run(argv, timeout=timeout, show=show, check=check, input=input, error=K8sError)


def kubectl(*args: str, context: str = CONTEXT, timeout: float = 60, show: bool = True,
            check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    """``kubectl --context CONTEXT ARGS``."""
    return _run(["kubectl", "--context", context, *args], timeout=timeout, show=show, check=check, input=input)


def kubectl_json(*args: str, context: str = CONTEXT, timeout: float = 30) -> dict:
    return json.loads(kubectl(*args, "-o", "json", context=context, timeout=timeout, show=False).stdout)


def kind(*args: str, timeout: float = 300, show: bool = True, check: bool = True) -> subprocess.CompletedProcess:
    return _run(["kind", *args], timeout=timeout, show=show, check=check)


def cluster_exists(name: str = CLUSTER) -> bool:
    done = kind("get", "clusters", timeout=30, show=False, check=False)
    return done.returncode == 0 and name in done.stdout.split()


def create_cluster(name: str = CLUSTER, config: Path = KIND_CONFIG, *, timeout: float = 300) -> bool:
    """Create the kind cluster unless it exists; True when this call created it."""
    if cluster_exists(name):
        print(f"kind cluster {name} exists: reusing it")
        return False
    kind("create", "cluster", "--name", name, "--config", str(config), "--wait", "120s", timeout=timeout)
    return True


def delete_cluster(name: str = CLUSTER, *, timeout: float = 180) -> None:
    if cluster_exists(name):
        kind("delete", "cluster", "--name", name, timeout=timeout)


def load_image(image: str, name: str = CLUSTER, *, timeout: float = 300) -> None:
    """``kind load docker-image IMAGE``: copy a local image into the cluster's nodes (no registry)."""
    if image.endswith(":latest") or ":" not in image.rsplit("/", 1)[-1]:
        raise K8sError(f"{image}: load a pinned tag, never :latest (the kubelet would try to pull :latest)")
    kind("load", "docker-image", image, "--name", name, timeout=timeout)


def rollout_status(deployment: str, *, namespace: str = "default", context: str = CONTEXT,
                   timeout: float = 120) -> float:
    """``kubectl rollout status``; returns the seconds it took."""
    started = time.monotonic()
    kubectl("-n", namespace, "rollout", "status", f"deployment/{deployment}", f"--timeout={int(timeout)}s",
            context=context, timeout=timeout + 15)
    return time.monotonic() - started


def pods(selector: str, *, namespace: str = "default", context: str = CONTEXT) -> list[dict]:
    """The pods matching a label selector, as the API returns them."""
    return kubectl_json("-n", namespace, "get", "pods", "-l", selector, context=context)["items"]


def pod_summary(pod: dict) -> dict:
    """name, phase, ready, restarts (summed over containers), deleting."""
    statuses = pod.get("status", {}).get("containerStatuses") or []
    return {"name": pod["metadata"]["name"], "phase": pod.get("status", {}).get("phase"),
            "ready": bool(statuses) and all(s.get("ready") for s in statuses),
            "restarts": sum(s.get("restartCount", 0) for s in statuses),
            "deleting": "deletionTimestamp" in pod["metadata"]}


def event_time(event: dict) -> float:
    """When an Event last happened, as a Unix time (0 when it carries no time)."""
    from datetime import datetime

    stamp = (event.get("eventTime") or event.get("lastTimestamp") or event.get("firstTimestamp")
             or (event.get("metadata") or {}).get("creationTimestamp"))
    if not stamp:
        return 0.0
    return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()


def pod_events(name_prefix: str, *, namespace: str = "default", context: str = CONTEXT) -> list[dict]:
    """The events about pods whose names start with ``name_prefix`` (a Deployment's pods are
    NAME-…), oldest first: what the Events of `kubectl describe pod` list, also once the pods
    are gone (the API keeps events for an hour)."""
    items = kubectl_json("-n", namespace, "get", "events", "--field-selector", "involvedObject.kind=Pod",
                         context=context)["items"]
    return sorted((e for e in items if e["involvedObject"].get("name", "").startswith(name_prefix)), key=event_time)


def unschedulable_reason(selector: str, *, namespace: str = "default", context: str = CONTEXT) -> str | None:
    """Why the scheduler leaves a pod matching ``selector`` Pending: the message of the newest
    FailedScheduling event of such a pod ("0/1 nodes are available: 1 Insufficient nvidia.com/gpu."),
    or None when no such pod has one."""
    names = {p["metadata"]["name"] for p in pods(selector, namespace=namespace, context=context)}
    events = kubectl_json("-n", namespace, "get", "events", "--field-selector", "reason=FailedScheduling",
                          context=context)["items"]
    mine = [e for e in events if e.get("involvedObject", {}).get("kind") == "Pod"
            and e["involvedObject"].get("name") in names]
    return max(mine, key=event_time).get("message") if mine else None


def wait_pods(selector: str, count: int, *, namespace: str = "default", context: str = CONTEXT,
              timeout: float = 120, condition=None) -> list[dict]:
    """Wait until exactly ``count`` pods match, all ready, none being deleted (and ``condition``
    holds for the summaries); returns the summaries."""
    summaries: list[dict] = []

    def settled() -> list[list[dict]] | None:
        nonlocal summaries
        summaries = [pod_summary(p) for p in pods(selector, namespace=namespace, context=context)]
        live = [s for s in summaries if not s["deleting"]]
        if len(summaries) == count == len(live) and all(s["ready"] for s in live) \
                and (condition is None or condition(live)):
            return [live]  # in a list, as no pods (count 0) is an answer too
        return None

    return wait_until(settled, timeout=timeout, what=f"exactly {count} ready pod(s) matching {selector}",
                      error=RequirementNotMet, explain=lambda: f"pods seen: {summaries}")[0]


# ---------------------------------------------------------------- rendering

def render(directory: str | Path, *, timeout: float = 60) -> str:
    """``kubectl kustomize DIRECTORY``: the manifests a kustomization produces, as YAML."""
    directory = Path(directory)
    if not (directory / "kustomization.yaml").is_file():
        raise RequirementNotMet(f"{directory} has no kustomization.yaml")
    done = _run(["kubectl", "kustomize", str(directory)], timeout=timeout, show=False, check=False)
    if done.returncode != 0:
        raise RequirementNotMet(f"`kubectl kustomize {directory}` failed: {done.stderr.strip()[-600:]}")
    return done.stdout


def documents(text: str) -> list[dict]:
    """The YAML documents in ``text`` (empty ones dropped); a non-mapping document is an error."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise RequirementNotMet(f"not valid YAML: {exc}") from None
    for d in docs:
        if not isinstance(d, dict):
            raise RequirementNotMet(f"a YAML document is a {type(d).__name__}, not a Kubernetes object")
    return docs


def load(path: str | Path) -> list[dict]:
    return documents(Path(path).read_text())


def name_of(doc: dict) -> str:
    return f"{doc.get('kind', '?')}/{(doc.get('metadata') or {}).get('name', '?')}"


#: Resource quantity suffixes: binary (Ki…Ei) and decimal (m…E), and the n and u the metrics API writes.
_SUFFIXES = {"n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
             "E": 1e18, **{f"{p}i": 1024.0 ** (n + 1) for n, p in enumerate("KMGTPE")}}


def quantity(value: str | int | float) -> float:
    """A resource quantity as a plain number: ``"250m"`` → 0.25 (cores), ``"128Mi"`` → 134217728
    and ``"1G"`` → 1e9 (bytes), ``"1e3"`` → 1000.0. ValueError for anything else."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    found = re.fullmatch(r"([+-]?(?:\d+\.?\d*|\.\d+))([eE][+-]?\d+|[KMGTPE]i|[numkMGTPE]?)", str(value).strip())
    if not found:
        raise ValueError(f"{value!r} is not a Kubernetes quantity (such as 250m, 0.5, 128Mi or 1G)")
    number, suffix = found.groups()
    return float(number) * _SUFFIXES[suffix] if suffix in _SUFFIXES else float(number + suffix)


# ---------------------------------------------------------------- validating

def validate(docs: Iterable[dict], version: str = KUBERNETES_VERSION, *, strict: bool = True) -> list[str]:
    """Problems found by validating each document against Kubernetes ``version``'s schema
    (kubernetes-validate; strict: unknown fields are errors). Empty list: all valid."""
    import kubernetes_validate
    from kubernetes_validate.utils import SchemaNotFoundError

    problems = []
    for doc in docs:
        if "apiVersion" not in doc or "kind" not in doc:
            problems.append(f"{name_of(doc)}: no apiVersion/kind: not a Kubernetes object")
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=strict)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path) or "(top level)"
            problems.append(f"{name_of(doc)}: {where}: {exc.message}")
        except SchemaNotFoundError:
            problems.append(f"{name_of(doc)}: Kubernetes {version} has no {doc['kind']} in {doc['apiVersion']}")
    return problems


# ---------------------------------------------------------------- linting

def pod_spec(doc: dict) -> dict | None:
    """The pod spec of a workload (Deployment, StatefulSet, …) or a Pod, else None."""
    if doc.get("kind") == "Pod":
        return doc.get("spec") or {}
    if doc.get("kind") in WORKLOAD_KINDS:
        return ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}
    return None


def template_labels(doc: dict) -> dict:
    return (((doc.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}


def selects(selector: dict, labels: dict) -> bool:
    """Whether a (non-empty) label selector matches these labels, as a Service's selector matches pods."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def selector_problems(docs: list[dict]) -> list[str]:
    """A workload's selector must match its template's labels; a Service must select the pods
    of some workload in the same documents."""
    problems = []
    workloads = [d for d in docs if d.get("kind") in WORKLOAD_KINDS - {"Job"}]
    for d in workloads:
        selector = (d.get("spec") or {}).get("selector") or {}
        match = selector.get("matchLabels") or {}
        labels = template_labels(d)
        if not match and not selector.get("matchExpressions"):
            problems.append(f"{name_of(d)}: spec.selector.matchLabels is empty")
        for key, value in match.items():
            if labels.get(key) != value:
                problems.append(f"{name_of(d)}: selector {key}={value} does not match the pod template's "
                                f"labels {labels}")
    for svc in (d for d in docs if d.get("kind") == "Service"):
        selector = (svc.get("spec") or {}).get("selector") or {}
        if not selector:
            problems.append(f"{name_of(svc)}: no selector: it sends traffic to no pod")
        elif not any(selects(selector, template_labels(w)) for w in workloads):
            problems.append(f"{name_of(svc)}: selector {selector} matches no pod template here")
    return problems


def image_problems(image: str | None) -> list[str]:
    if not image:
        return ["no image"]
    if "@sha256:" in image:
        return []
    tag = image.rsplit("/", 1)[-1].partition(":")[2]
    if not tag:
        return [f"image {image} has no tag (that means :latest)"]
    if tag == "latest":
        return [f"image {image} uses :latest: pin a version"]
    return []


def container_problems(doc: dict, *, probes: bool = True, security: bool = True) -> list[str]:
    """Requests and limits, liveness and readiness probes, a pinned image, a non-root,
    no-privilege-escalation security context for every container of a workload."""
    spec = pod_spec(doc)
    if spec is None:
        return []
    problems = []
    containers = spec.get("containers") or []
    if not containers:
        problems.append(f"{name_of(doc)}: no containers")
    pod_security = spec.get("securityContext") or {}
    for c in containers:
        where = f"{name_of(doc)} container {c.get('name', '?')}"
        problems += [f"{where}: {p}" for p in image_problems(c.get("image"))]
        if c.get("imagePullPolicy") == "Always":
            problems.append(f"{where}: imagePullPolicy Always pulls from a registry (kind-loaded images "
                            "are not in one): use IfNotPresent")
        resources = c.get("resources") or {}
        for kind_ in ("requests", "limits"):
            for res in ("cpu", "memory") if kind_ == "requests" else ("memory",):
                if res not in (resources.get(kind_) or {}):
                    problems.append(f"{where}: no resources.{kind_}.{res}")
        if probes:
            for probe in ("livenessProbe", "readinessProbe"):
                if not c.get(probe):
                    problems.append(f"{where}: no {probe}")
        if security:
            ctx = {**pod_security, **(c.get("securityContext") or {})}
            if not ctx.get("runAsNonRoot"):
                problems.append(f"{where}: securityContext.runAsNonRoot is not true")
            if ctx.get("runAsUser") == 0:
                problems.append(f"{where}: runAsUser is 0 (root)")
            if (c.get("securityContext") or {}).get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: securityContext.allowPrivilegeEscalation is not false")
    return problems


def gpu_limit_problems(docs: list[dict]) -> list[str]:
    """How a Deployment's request for NVIDIA GPUs is wrong: a GPU is an extended resource that
    cannot be shared or overcommitted, so a container asks for a whole number of them in
    ``resources.limits`` (``nvidia.com/gpu: 1``), and a request for it, if any, equals the limit.
    Empty list: some container asks for GPUs correctly."""
    deployments = [d for d in docs if d.get("kind") == "Deployment"]
    if not deployments:
        return ["no Deployment in the manifests"]
    problems, asking = [], 0
    for d in deployments:
        for c in (pod_spec(d) or {}).get("containers") or []:
            where = f"{name_of(d)} container {c.get('name', '?')}"
            resources = c.get("resources") or {}
            limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
            for key in sorted({*limits, *requests}):
                if "gpu" in key.lower() and key != GPU:
                    problems.append(f"{where}: {key} is not NVIDIA's GPU resource: it is {GPU}")
            if GPU in requests and GPU not in limits:
                problems.append(f"{where}: {GPU} in requests only: put it in resources.limits (the request then "
                                "defaults to the limit)")
            if GPU not in limits:
                continue
            asking += 1
            limit = str(limits[GPU])
            if not limit.isdigit() or int(limit) < 1:
                problems.append(f"{where}: limits {GPU}: {limits[GPU]!r}: GPUs are not shared, ask for a whole "
                                "number, at least 1")
            elif GPU in requests and str(requests[GPU]) != limit:
                problems.append(f"{where}: requests {GPU} ({requests[GPU]}) differs from its limit ({limit}): "
                                "drop the request or make it equal")
    if not asking and not problems:
        problems.append(f"no container of {', '.join(map(name_of, deployments))} asks for a GPU: add "
                        f"resources.limits {GPU}: 1")
    return problems


def lint(docs: list[dict], *, probes: bool = True, security: bool = True) -> list[str]:
    """Everything :func:`selector_problems` and :func:`container_problems` find."""
    problems = selector_problems(docs)
    for d in docs:
        problems += container_problems(d, probes=probes, security=security)
    return problems


def workload(docs: list[dict], kind: str = "Deployment", name: str | None = None) -> dict:
    """The one workload of ``kind`` (named ``name``) in the documents."""
    found = [d for d in docs if d.get("kind") == kind
             and (name is None or (d.get("metadata") or {}).get("name") == name)]
    if len(found) != 1:
        raise RequirementNotMet(f"expected one {kind}{' ' + name if name else ''}, found {len(found)}")
    return found[0]


def yaml_lines(paths_: Iterable[str | Path]) -> int:
    """Lines of YAML that are not blank or comments, over the files."""
    total = 0
    for p in paths_:
        for line in Path(p).read_text().splitlines():
            stripped = line.strip()
            if stripped and not stripped.startswith("#") and stripped != "---":
                total += 1
    return total
