"""labkit.k8s: rendering, strict schema validation and the lint rules, offline (kubectl
kustomize only); the reference manifests in environments/k8s pass them all."""

from __future__ import annotations

import copy
import shutil
import subprocess

import pytest
import yaml

from labkit import k8s, paths
from labkit.core import labels
from labkit.core.errors import RequirementNotMet

K8S = paths.ENVIRONMENTS / "k8s" / "app"
needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not on PATH")

DEPLOYMENT = yaml.safe_load("""
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 10001}
      containers:
        - name: web
          image: labkit/02-app:v1
          imagePullPolicy: IfNotPresent
          resources:
            requests: {cpu: 100m, memory: 128Mi}
            limits: {memory: 256Mi}
          livenessProbe: {httpGet: {path: /healthz, port: 8080}}
          readinessProbe: {httpGet: {path: /readyz, port: 8080}}
          securityContext: {allowPrivilegeEscalation: false}
""")
SERVICE = yaml.safe_load("""
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
""")


def container(doc):
    return doc["spec"]["template"]["spec"]["containers"][0]


def test_valid_manifests_pass():
    docs = [copy.deepcopy(DEPLOYMENT), copy.deepcopy(SERVICE)]
    assert k8s.validate(docs) == []
    assert k8s.lint(docs) == []


def test_strict_catches_an_unknown_field():
    doc = copy.deepcopy(DEPLOYMENT)
    container(doc)["livenesProbe"] = container(doc).pop("livenessProbe")  # a typo
    assert k8s.validate([doc], strict=False) == []  # not strict: the typo passes silently
    problems = k8s.validate([doc])
    assert len(problems) == 1 and "livenesProbe" in problems[0], problems
    assert "no livenessProbe" in " ".join(k8s.lint([doc]))


def test_schema_errors_name_the_object_and_path():
    doc = copy.deepcopy(DEPLOYMENT)
    doc["spec"]["replicas"] = "two"
    [problem] = k8s.validate([doc])
    assert problem.startswith("Deployment/web: spec.replicas:"), problem


def test_unknown_kind_and_non_objects():
    assert "has no Widget" in k8s.validate([{"apiVersion": "v1", "kind": "Widget", "metadata": {"name": "w"}}])[0]
    assert "not a Kubernetes object" in k8s.validate([{"name": "x"}])[0]
    with pytest.raises(RequirementNotMet, match="not a Kubernetes object"):
        k8s.documents("- a\n- b\n")
    assert k8s.documents("---\n# nothing\n---\nkind: Service\n") == [{"kind": "Service"}]


def test_selector_mismatch():
    doc = copy.deepcopy(DEPLOYMENT)
    doc["spec"]["selector"]["matchLabels"] = {"app": "api"}
    problems = k8s.selector_problems([doc, SERVICE])
    assert any("selector app=api does not match" in p for p in problems), problems
    stray = copy.deepcopy(SERVICE)
    stray["spec"]["selector"] = {"app": "webb"}
    assert k8s.selector_problems([DEPLOYMENT, stray]) == [
        "Service/web: selector {'app': 'webb'} matches no pod template here"]
    empty = copy.deepcopy(DEPLOYMENT)
    empty["spec"]["selector"] = {}
    assert "matchLabels is empty" in k8s.selector_problems([empty])[0]
    lonely = copy.deepcopy(SERVICE)
    del lonely["spec"]["selector"]
    assert "no selector" in k8s.selector_problems([lonely])[0]


def test_missing_probes_and_resources():
    doc = copy.deepcopy(DEPLOYMENT)
    del container(doc)["readinessProbe"]
    del container(doc)["resources"]["requests"]["cpu"]
    del container(doc)["resources"]["limits"]
    problems = " | ".join(k8s.container_problems(doc))
    for expected in ("no readinessProbe", "no resources.requests.cpu", "no resources.limits.memory"):
        assert expected in problems
    assert "livenessProbe" not in problems
    assert k8s.validate([doc]) == []  # the schema allows all of this: only the lint finds it


@pytest.mark.parametrize("image, bad", [
    ("labkit/02-app:v1", False), ("registry:5000/team/app:1.2", False),
    ("nginx@sha256:" + "0" * 64, False), ("labkit/02-app:latest", True), ("labkit/02-app", True),
    ("registry:5000/team/app", True),
])
def test_latest_and_untagged_images(image, bad):
    assert bool(k8s.image_problems(image)) == bad
    doc = copy.deepcopy(DEPLOYMENT)
    container(doc)["image"] = image
    assert any("image" in p for p in k8s.container_problems(doc)) == bad


def test_security_context_rules():
    doc = copy.deepcopy(DEPLOYMENT)
    doc["spec"]["template"]["spec"]["securityContext"] = {"runAsUser": 0}
    container(doc)["securityContext"] = {}
    container(doc)["imagePullPolicy"] = "Always"
    problems = " | ".join(k8s.container_problems(doc))
    for expected in ("runAsNonRoot is not true", "runAsUser is 0", "allowPrivilegeEscalation is not false",
                     "imagePullPolicy Always"):
        assert expected in problems
    assert k8s.container_problems(doc, security=False) == [p for p in k8s.container_problems(doc)
                                                           if "imagePullPolicy" in p]


def test_workload_and_yaml_lines(tmp_path):
    assert k8s.workload([DEPLOYMENT, SERVICE])["metadata"]["name"] == "web"
    with pytest.raises(RequirementNotMet, match="expected one Deployment"):
        k8s.workload([SERVICE])
    f = tmp_path / "a.yaml"
    f.write_text("# comment\n\na: 1\n---\nb:\n  - 2\n")
    assert k8s.yaml_lines([f]) == 3


@needs_kubectl
@pytest.mark.parametrize("overlay", ["base", "overlays/dev", "overlays/prod"])
def test_reference_manifests_render_validate_and_lint(overlay):
    docs = k8s.documents(k8s.render(K8S / overlay))
    assert {d["kind"] for d in docs} == {"Namespace", "Deployment", "Service"}
    assert k8s.validate(docs) == []
    assert k8s.lint(docs) == []
    assert all(d["metadata"]["labels"][labels.LAB] == "02" for d in docs)


@needs_kubectl
def test_overlays_differ_in_replicas_and_resources():
    dev, prod = (k8s.workload(k8s.documents(k8s.render(K8S / "overlays" / o))) for o in ("dev", "prod"))
    assert dev["spec"]["replicas"] == 1 and prod["spec"]["replicas"] == 3
    assert container(dev)["resources"] != container(prod)["resources"]


@needs_kubectl
def test_render_errors_are_unmet_requirements(tmp_path):
    with pytest.raises(RequirementNotMet, match="no kustomization.yaml"):
        k8s.render(tmp_path)
    (tmp_path / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    with pytest.raises(RequirementNotMet, match="kubectl kustomize"):
        k8s.render(tmp_path)


def test_kind_config_and_script():
    config = yaml.safe_load((paths.ENVIRONMENTS / "kind" / "cluster.yaml").read_text())
    assert config["name"] == k8s.CLUSTER
    assert [n["role"] for n in config["nodes"]] == ["control-plane", "worker"]
    assert config["nodes"][0]["extraPortMappings"][0]["containerPort"] == 30080
    assert all(n["image"].startswith(f"kindest/node:v{k8s.KUBERNETES_VERSION}.") for n in config["nodes"])


def test_cluster_script_says_how_to_install_kind(tmp_path):
    script = paths.ENVIRONMENTS / "kind" / "cluster.sh"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "dirname", "grep"):  # a PATH without kind
        (bin_dir / tool).symlink_to(shutil.which(tool))
    done = subprocess.run([str(bin_dir / "sh"), str(script), "up"], capture_output=True, text=True,
                          env={"PATH": str(bin_dir)}, timeout=30)
    assert done.returncode == 1
    assert "kind is not installed" in done.stderr and "https://kind.sigs.k8s.io/" in done.stderr
    usage = subprocess.run(["sh", str(script)], capture_output=True, text=True, timeout=30)
    assert usage.returncode == 2 and "usage" in usage.stderr


def test_load_image_refuses_latest():
    with pytest.raises(k8s.K8sError, match="never :latest"):
        k8s.load_image("labkit/02-app:latest")
    with pytest.raises(k8s.K8sError, match="never :latest"):
        k8s.load_image("labkit/02-app")


def _pod(name: str, ready: bool, deleting: bool = False) -> dict:
    metadata = {"name": name, **({"deletionTimestamp": "2026-01-01T00:00:00Z"} if deleting else {})}
    return {"metadata": metadata, "status": {"phase": "Running",
                                             "containerStatuses": [{"ready": ready, "restartCount": 0}]}}


def test_wait_pods_waits_for_exactly_count_ready_pods_none_being_deleted(monkeypatch):
    looks = iter([[_pod("old", True, deleting=True), _pod("new", False)], [_pod("new", True)]])
    monkeypatch.setattr(k8s, "pods", lambda selector, **kwargs: next(looks))
    assert [p["name"] for p in k8s.wait_pods("app=web", 1, timeout=10)] == ["new"]
    monkeypatch.setattr(k8s, "pods", lambda selector, **kwargs: [])
    assert k8s.wait_pods("app=web", 0, timeout=10) == []  # no pods is an answer when none are wanted
    monkeypatch.setattr(k8s, "pods", lambda selector, **kwargs: [_pod("new", False)])
    with pytest.raises(RequirementNotMet, match=r"exactly 1 ready pod\(s\) matching app=web: not within 0.2s "
                                                r"\(pods seen: \[\{'name': 'new', 'phase': 'Running', 'ready': False"):
        k8s.wait_pods("app=web", 1, timeout=0.2)
    monkeypatch.setattr(k8s, "pods", lambda selector, **kwargs: [_pod("new", True)])
    with pytest.raises(RequirementNotMet, match="not within"):  # and the caller's own condition must hold
        k8s.wait_pods("app=web", 1, timeout=0.2, condition=lambda live: live[0]["restarts"] > 0)


def test_pod_events_are_a_deployments_pods_events_oldest_first(monkeypatch):
    def event(pod, second, kind="Pod", stamp="lastTimestamp"):
        return {"involvedObject": {"kind": kind, "name": pod}, "reason": f"r{second}",
                stamp: f"2026-12-05T10:00:{second:02d}Z"}

    items = [event("too-big-7d9-x2", 9), event("wrong-tag-5c-q", 3), event("too-big-7d9-x2", 2, stamp="eventTime"),
             event("too-big-other", 1)]
    asked = []
    monkeypatch.setattr(k8s, "kubectl_json", lambda *args, **kwargs: asked.append(args) or {"items": items})
    assert [e["reason"] for e in k8s.pod_events("too-big-", namespace="labkit-02")] == ["r1", "r2", "r9"]
    assert asked[0][:2] == ("-n", "labkit-02") and "involvedObject.kind=Pod" in asked[0]
    assert [e["reason"] for e in k8s.pod_events("wrong-tag-")] == ["r3"]


def test_the_pending_demo_is_valid_and_stays_pending_for_its_two_reasons():
    too_big, wrong_tag = k8s.load(paths.ENVIRONMENTS / "k8s" / "pending" / "deployments.yaml")
    assert k8s.validate([too_big, wrong_tag]) == []
    container = too_big["spec"]["template"]["spec"]["containers"][0]
    assert k8s.quantity(container["resources"]["requests"]["cpu"]) >= 32  # more than any laptop's node
    image = wrong_tag["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.startswith("labkit/02-app:") and image != "labkit/02-app:v1"  # a tag the labs never build
