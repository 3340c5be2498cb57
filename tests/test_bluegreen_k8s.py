"""Lab 08's blue-green on Kubernetes, offline: the kustomization renders and validates strictly,
the switch and drain checks pass on it and fail on broken copies, the switch's JSON patch does
what kubectl does with it, the load Job's script counts failures and versions (run here against
a stand-in server), and bluegreen.sh says what is missing, switches, waits and gives up in time
(against a stand-in kubectl). Nothing here needs a cluster."""

from __future__ import annotations

import copy
import http.server
import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading

import pytest

from labkit import k8s, paths
from labkit.core.errors import RequirementNotMet
from labkit.tools import bluegreen_k8s as bg

BG_DIR = paths.ENVIRONMENTS / "k8s" / "bluegreen"
SCRIPT = paths.ENVIRONMENTS / "kind" / "bluegreen.sh"
needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not on PATH")


@pytest.fixture(scope="module")
def rendered() -> list[dict]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl not on PATH (kustomize is built into it)")
    return k8s.documents(k8s.render(BG_DIR))


@pytest.fixture
def docs(rendered) -> list[dict]:
    return copy.deepcopy(rendered)


def named(docs: list[dict], kind: str, name: str) -> dict:
    return k8s.workload(docs, kind, name)


def container(deployment: dict) -> dict:
    return k8s.pod_spec(deployment)["containers"][0]


# ---------------------------------------------------------------- the manifests

def test_the_kustomization_is_valid_strict_and_passes_every_check(docs):
    assert k8s.validate(docs) == []  # kubernetes-validate --strict, Kubernetes 1.31
    assert k8s.lint(docs) == [] and k8s.selector_problems(docs) == []
    assert bg.switch_problems(docs) == [] and bg.drain_problems(docs) == []


def test_two_colours_of_one_image_and_a_live_and_a_preview_service(docs):
    assert sorted(k8s.name_of(d) for d in docs) == [
        "Deployment/model-server-blue", "Deployment/model-server-green", "Namespace/labkit-08",
        "Service/model-server", "Service/model-server-preview"]
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {"labkit-08"}
    assert all(d["metadata"]["labels"]["labkit.lab"] == "08" for d in docs)
    for colour in bg.COLORS:
        deployment = named(docs, "Deployment", bg.deployment_name(colour))
        assert deployment["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "model-server",
                                                                 "version": colour}
        assert container(deployment)["image"] == "labkit/08-app:v1"
        env = {e["name"]: e["value"] for e in container(deployment)["env"]}
        assert env["APP_VERSION"] == colour  # what the server reports in X-Model-Version
        assert "labkit.lab" not in deployment["spec"]["selector"]["matchLabels"]  # selectors are immutable
    assert bg.service_version(docs) == "blue" and bg.service_version(docs, bg.PREVIEW) == "green"
    assert {named(docs, "Service", s)["spec"]["type"] for s in (bg.LIVE, bg.PREVIEW)} == {"ClusterIP"}


def test_pods_sleep_in_prestop_within_their_grace_period(docs):
    for colour in bg.COLORS:
        deployment = named(docs, "Deployment", bg.deployment_name(colour))
        assert container(deployment)["lifecycle"] == {"preStop": {"sleep": {"seconds": 10}}}
        assert k8s.pod_spec(deployment)["terminationGracePeriodSeconds"] == 30
        assert container(deployment)["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_strict_validation_catches_a_misspelt_prestop(docs):
    deployment = named(docs, "Deployment", "model-server-green")
    container(deployment)["lifecycle"]["preStop"]["sleep"] = {"second": 10}
    assert any("second" in p for p in k8s.validate([deployment]))


# ---------------------------------------------------------------- the switch check, on broken copies

def test_a_service_without_version_sends_traffic_to_both_colours(docs):
    del named(docs, "Service", bg.LIVE)["spec"]["selector"]["version"]
    assert bg.switch_problems(docs) == [
        "Service/model-server: selector {'app.kubernetes.io/name': 'model-server'} has no version: it sends "
        "traffic to both colours (Deployment/model-server-blue, Deployment/model-server-green)"]
    assert bg.service_version(docs) is None


def test_a_selector_that_matches_no_pods(docs):
    named(docs, "Service", bg.PREVIEW)["spec"]["selector"]["version"] = "purple"
    assert bg.switch_problems(docs) == ["Service/model-server-preview: selector {'app.kubernetes.io/name': "
                                        "'model-server', 'version': 'purple'} matches no Deployment's pods"]
    named(docs, "Service", bg.LIVE)["spec"]["selector"] = {}
    assert "Service/model-server: no selector: it sends traffic to no pod" in bg.switch_problems(docs)


def test_a_deployment_whose_selector_lacks_version_would_adopt_the_other_colours_pods(docs):
    del named(docs, "Deployment", "model-server-blue")["spec"]["selector"]["matchLabels"]["version"]
    problems = bg.switch_problems(docs)
    assert "Deployment/model-server-blue: its selector {'app.kubernetes.io/name': 'model-server'} lacks " \
           "version=blue: it also matches the other colour's pods" in problems
    assert any("also matches the pods of Deployment/model-server-green" in p for p in problems)
    assert len(problems) == 2


def test_both_services_on_one_colour_and_a_missing_colour(docs):
    named(docs, "Service", bg.PREVIEW)["spec"]["selector"]["version"] = "blue"
    assert bg.switch_problems(docs) == ["Services model-server and model-server-preview both select "
                                        "version=blue: the preview selects the colour that is not live"]
    without_green = [d for d in docs if d["metadata"]["name"] != "model-server-green"]
    assert "no Deployment runs version=green pods" in bg.switch_problems(without_green)
    without_preview = [d for d in docs if d["metadata"]["name"] != bg.PREVIEW]
    assert bg.switch_problems(without_preview) == ["no Service model-server-preview"]


def test_pods_without_a_version_label_and_a_selector_that_is_not_the_templates(docs):
    green = named(docs, "Deployment", "model-server-green")
    del green["spec"]["template"]["metadata"]["labels"]["version"]
    problems = bg.switch_problems(docs)
    assert any("its pods have no version label" in p for p in problems)
    assert "no Deployment runs version=green pods" in problems
    named(docs, "Deployment", "model-server-green")["spec"]["template"]["metadata"]["labels"]["version"] = "blue"
    assert any("selector version=green does not match its pod template's labels" in p
               for p in bg.switch_problems(docs))


# ---------------------------------------------------------------- the drain check

def test_drain_problems_name_what_would_fail_requests(docs):
    blue, green = (named(docs, "Deployment", bg.deployment_name(c)) for c in bg.COLORS)
    del container(blue)["lifecycle"]
    k8s.pod_spec(green)["terminationGracePeriodSeconds"] = 15
    problems = bg.drain_problems(docs)
    assert len(problems) == 2
    assert problems[0].startswith("Deployment/model-server-blue container model-server: no preStop sleep")
    assert problems[1] == ("Deployment/model-server-green container model-server: terminationGracePeriodSeconds "
                           "15 < preStop 10 s + SHUTDOWN_GRACE_S 10 s: the kubelet kills it mid-request")
    container(blue)["lifecycle"] = {"preStop": {"exec": {"command": ["sh", "-c", "sleep 2"]}}}
    del container(blue)["readinessProbe"]
    problems = bg.drain_problems([blue])
    assert any("preStop sleeps 2 s: under 5 s" in p for p in problems)
    assert any("no readinessProbe" in p for p in problems)
    container(blue)["lifecycle"] = {"preStop": {"exec": {"command": ["/bin/sleep", "12"]}}}
    k8s.pod_spec(blue)["terminationGracePeriodSeconds"] = 25
    container(blue)["readinessProbe"] = {"httpGet": {"path": "/readyz", "port": "http"}}
    assert bg.drain_problems([blue]) == []  # 25 >= 12 + 10
    container(blue)["env"] = [{"name": "SHUTDOWN_GRACE_S", "value": "20"}]
    assert "kills it mid-request" in bg.drain_problems([blue])[0]
    assert bg.drain_problems([]) == ["no Deployment in the manifests"]


# ---------------------------------------------------------------- the switch as data

def test_a_switch_and_its_rollback_as_patches(docs):
    green = bg.switched(docs, "green")
    assert bg.service_version(green) == "green" and bg.service_version(green, bg.PREVIEW) == "blue"
    assert bg.switch_problems(green) == []
    with pytest.raises(RequirementNotMet, match="it is 'green', not 'blue'"):
        bg.switched(green, "green")  # the test op: a second switch from blue finds green
    assert bg.switched(green, "blue") == docs  # the rollback restores the documents exactly
    assert bg.switch_patches("green")[bg.LIVE] == [
        {"op": "test", "path": "/spec/selector/version", "value": "blue"},
        {"op": "replace", "path": "/spec/selector/version", "value": "green"}]
    assert bg.patch_argv(bg.LIVE, bg.selector_patch("blue"))[:7] == [
        "kubectl", "-n", "labkit-08", "patch", "service", "model-server", "--type=json"]
    with pytest.raises(ValueError, match="blue or green"):
        bg.switch_patches("purple")


def test_apply_patch_refuses_a_missing_path_and_leaves_its_input_alone(docs):
    live = named(docs, "Service", bg.LIVE)
    del live["spec"]["selector"]["version"]
    before = copy.deepcopy(live)
    with pytest.raises(RequirementNotMet, match="no such path"):
        bg.apply_patch(live, bg.selector_patch("green"))  # replace needs the key; add would not
    assert bg.apply_patch(live, [{"op": "add", "path": "/spec/selector/version", "value": "green"}]
                          )["spec"]["selector"]["version"] == "green"
    assert live == before


def test_apply_patch_agrees_with_the_jsonpatch_library(docs):
    jsonpatch = pytest.importorskip("jsonpatch")
    service = named(docs, "Service", bg.LIVE)
    for patch in (bg.selector_patch("green", expect="blue"),
                  [{"op": "remove", "path": "/metadata/labels/labkit.lab"}],
                  [{"op": "add", "path": "/metadata/annotations", "value": {"a~b/c": "1"}}]):
        assert bg.apply_patch(service, patch) == jsonpatch.apply_patch(service, patch)


@needs_kubectl
def test_kubectl_applies_the_same_patch_and_refuses_a_failed_test(docs, tmp_path):
    source = tmp_path / "service.json"
    source.write_text(json.dumps(named(docs, "Service", bg.LIVE)))
    patch = bg.switch_patches("green")[bg.LIVE]
    done = subprocess.run(["kubectl", "patch", "--local", "-f", str(source), "--type=json", "-p", json.dumps(patch),
                           "-o", "json"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == bg.apply_patch(named(docs, "Service", bg.LIVE), patch)
    refused = subprocess.run(["kubectl", "patch", "--local", "-f", str(source), "--type=json", "-o", "json",
                              "-p", json.dumps(bg.switch_patches("blue")[bg.LIVE])],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "test failed" in refused.stderr


# ---------------------------------------------------------------- reading a cluster (stand-in answers)

def pod(name: str, version: str | None) -> dict:
    return {"metadata": {"name": name, "labels": {"app.kubernetes.io/name": "model-server",
                                                  **({"version": version} if version else {})}}}


def endpoint_slice(*names: str) -> dict:
    return {"endpoints": [{"targetRef": {"kind": "Pod", "name": n}, "conditions": {"ready": True}} for n in names]}


def test_endpoint_versions_group_the_listed_pods_by_colour():
    pods = [pod("b-1", "blue"), pod("b-2", "blue"), pod("g-1", "green"), pod("x", None)]
    assert bg.endpoint_versions([endpoint_slice("g-1", "b-2"), endpoint_slice("b-1")], pods) == {
        "blue": ["b-1", "b-2"], "green": ["g-1"]}
    assert bg.endpoint_versions([endpoint_slice("x", "gone")], pods) == {"?": ["gone", "x"]}
    assert bg.endpoint_versions([{"endpoints": None}], pods) == {}


class StandInCluster:
    """What switch() reads and writes, answered from memory: the slices follow a selector
    change ``lag`` reads later."""

    def __init__(self, ready=2, lag=2):
        self.selectors = {bg.LIVE: "blue", bg.PREVIEW: "green"}
        self.shown, self.lag, self.ready, self.patched = "blue", lag, ready, []

    def kubectl_json(self, *args, context=None, timeout=None):
        if args[3] == "deployment":
            return {"status": {"readyReplicas": self.ready}} if self.ready else {"status": {}}
        if args[3] == "service":
            return {"spec": {"selector": {"version": self.selectors[args[4]]}}}
        if args[3] == "endpointslices":
            self.lag -= 1
            if self.lag < 0:
                self.shown = self.selectors[bg.LIVE]
            return {"items": [endpoint_slice(f"{self.shown}-1", f"{self.shown}-2")]}
        raise AssertionError(args)

    def pods(self, selector, namespace=None, context=None):
        return [pod(f"{c}-{i}", c) for c in bg.COLORS for i in (1, 2)]

    def kubectl(self, *args, context=None, **kwargs):
        service, patch = args[4], json.loads(args[args.index("-p") + 1])
        self.selectors[service] = bg.apply_patch({"spec": {"selector": {"version": self.selectors[service]}}},
                                                 patch)["spec"]["selector"]["version"]
        self.patched.append(service)


def test_switch_patches_both_services_and_waits_for_the_slices(monkeypatch):
    cluster = StandInCluster(lag=2)
    for name in ("kubectl_json", "pods", "kubectl"):
        monkeypatch.setattr(k8s, name, getattr(cluster, name))
    assert bg.switch("green", timeout=10) >= 0.5  # two reads showed blue still
    assert cluster.patched == [bg.LIVE, bg.PREVIEW] and cluster.selectors == {bg.LIVE: "green", bg.PREVIEW: "blue"}
    assert bg.live_endpoint_versions() == {"green": ["green-1", "green-2"]}
    cluster.patched.clear()
    bg.switch("green", timeout=5)  # already live: nothing patched, the slices checked
    assert cluster.patched == []


def test_switch_refuses_a_colour_without_ready_pods_and_a_wait_gives_up(monkeypatch):
    cluster = StandInCluster(ready=0)
    for name in ("kubectl_json", "pods", "kubectl"):
        monkeypatch.setattr(k8s, name, getattr(cluster, name))
    with pytest.raises(RequirementNotMet, match="model-server-green has no ready pod"):
        bg.switch("green")
    assert cluster.patched == []
    cluster.ready, cluster.lag = 2, 10 ** 6  # the slices never follow
    with pytest.raises(RequirementNotMet, match=r"only version=green pods: not within 1s \(listed: "
                                                r"\{'blue': \['blue-1', 'blue-2'\]\}\)"):
        bg.switch("green", timeout=1)


# ---------------------------------------------------------------- the load Job

def load_job() -> dict:
    return k8s.workload(k8s.load(BG_DIR / "load-generator.yaml"), "Job")


def test_the_load_job_is_bounded_valid_and_runs_lab_08s_image():
    job = load_job()
    assert k8s.validate([job]) == [] and k8s.lint([job], probes=False) == []
    assert 0 < job["spec"]["activeDeadlineSeconds"] <= 600 and job["spec"]["backoffLimit"] == 0
    load = k8s.pod_spec(job)["containers"][0]
    env = {e["name"]: e["value"] for e in load["env"]}
    assert load["image"] == "labkit/08-app:v1" and env["URL"] == "http://model-server:8080/predict"
    assert float(env["DURATION_S"]) < job["spec"]["activeDeadlineSeconds"]


class StandInServer(http.server.ThreadingHTTPServer):
    """Answers POST /predict with the headers the model server sets; ``version`` can change
    while it runs, and ``refuse`` turns answers into 503s."""
    daemon_threads = True
    version, refuse = "blue", False

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.server.served.set()
            status = 503 if self.server.refuse else 200
            self.send_response(status)
            self.send_header("X-Model-Version", self.server.version)
            self.send_header("X-Served-By", f"model-server-{self.server.version}-1")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    def __init__(self):
        super().__init__(("127.0.0.1", 0), self.Handler)
        self.served = threading.Event()


def test_the_load_jobs_script_counts_versions_and_failures_across_a_switch(tmp_path):
    script = load_job()["spec"]["template"]["spec"]["containers"][0]["args"][0]
    server = StandInServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {**os.environ, "URL": f"http://127.0.0.1:{server.server_address[1]}/predict", "CLIENTS": "2",
           "DURATION_S": "4", "REPORT_S": "0.5"}
    run = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert server.served.wait(10), "the load script sent nothing in 10 s"
        threading.Event().wait(0.5)
        server.version = "green"
        threading.Event().wait(0.5)
        server.refuse = True
        threading.Event().wait(0.3)
        server.refuse = False
        threading.Event().wait(0.2)
        server.shutdown()
        server.server_close()  # the rest of the run: connections refused
        out, _ = run.communicate(timeout=30)
    finally:
        run.kill()
    result = bg.load_result(out)
    assert run.returncode == 0 and out.splitlines()[0].startswith("t=")
    assert result["versions"]["blue"] > 0 and result["versions"]["green"] > 0
    assert result["errors"]["HTTP 503"] > 0 and result["errors"]["ConnectionRefusedError"] > 0
    assert result["failed"] == sum(result["errors"].values())
    assert result["requests"] == result["failed"] + sum(result["versions"].values())
    assert result["pods"] == {"blue": ["model-server-blue-1"], "green": ["model-server-green-1"]}
    assert result["first_s"]["blue"] < result["first_s"]["green"] and result["last_s"]["blue"] <= result["last_s"]["green"]


def test_load_result_reads_the_last_result_line_and_says_when_there_is_none():
    log = 't=    5s 10 requests, 0 failed; last 5 s: blue 10\nRESULT {"requests": 10, "failed": 0}\n'
    assert bg.load_result(log) == {"requests": 10, "failed": 0}
    with pytest.raises(RequirementNotMet, match="(?s)no RESULT line.*last 5 s: blue 10"):
        bg.load_result(log.splitlines()[0])


# ---------------------------------------------------------------- bluegreen.sh

def tools_bin(tmp_path, *tools: str):
    """A folder for PATH with the script's own needs and, of kind/kubectl/docker, only ``tools``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "dirname", "grep", "date", "sleep", "tr", "sed", "cat", "wc"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    for tool in tools:
        (bin_dir / tool).write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / tool).chmod(0o755)
    return bin_dir


def run_script(bin_dir, *args, **env):
    return subprocess.run([str(bin_dir / "sh"), str(SCRIPT), *args], capture_output=True, text=True, timeout=60,
                          env={"PATH": str(bin_dir), **env})


def test_bluegreen_sh_says_what_is_missing_where_kind_is_not(tmp_path):
    done = run_script(tools_bin(tmp_path, "kubectl"), "run")
    assert done.returncode == 3
    assert "missing:\n- kind: https://kind.sigs.k8s.io" in done.stderr and "- docker:" in done.stderr
    assert "- kubectl" not in done.stderr and "tests/test_bluegreen_k8s.py" in done.stderr


def test_bluegreen_sh_usage(tmp_path):
    bin_dir = tools_bin(tmp_path)
    for args in ((), ("switch",), ("switch", "purple"), ("rollback",)):
        done = run_script(bin_dir, *args)
        assert done.returncode == 2, (args, done.stderr)
        assert "usage" in done.stderr or "blue or green, not 'purple'" in done.stderr


#: A stand-in kubectl for bluegreen.sh: the state in $FAKE_STATE (JSON), every call appended to
#: it; the EndpointSlices follow the live selector ``lag`` reads after it changes.
FAKE_KUBECTL = textwrap.dedent("""\
    import json, os, sys
    path = os.environ["FAKE_STATE"]
    state = json.load(open(path))
    args = sys.argv[1:]
    for flag in ("--context", "-n"):  # --context kind-labkit [-n labkit-08]
        if args[:1] == [flag]:
            args = args[2:]
    state["calls"].append(args)
    def pods(colour):
        return [f"model-server-{colour}-{i}" for i in range(state["replicas"][colour])]
    def label(selector, key):
        return dict(p.split("=") for p in selector.split(",")).get(key)
    out, code = "", 0
    if args[:2] == ["get", "service"]:
        out = state["selectors"][args[2]]
    elif args[:2] == ["get", "endpointslices"]:
        state["lag"] -= 1
        if state["lag"] < 0:
            state["shown"] = state["selectors"]["model-server"]
        out = "".join(p + "\\n" for p in pods(state["shown"]))
    elif args[:2] == ["get", "pods"]:
        names = pods(label(args[3], "version"))
        out = "".join(("pod/" if "name" in args else "") + p + "\\n" for p in names)
    elif args[:2] == ["get", "deployment"]:
        out = str(state["replicas"][args[2].rsplit("-", 1)[1]])
    elif args[0] == "patch":
        for op in json.loads(args[args.index("-p") + 1]):
            if op["op"] == "test" and state["selectors"][args[2]] != op["value"]:
                sys.exit("The request is invalid: testing value /spec/selector/version failed: test failed")
            if op["op"] == "replace":
                state["selectors"][args[2]] = op["value"]
    elif args[0] == "scale":
        state["replicas"][args[2].rsplit("-", 1)[1]] = int(args[3].split("=")[1])
    elif args[:2] == ["apply", "-k"]:  # the manifests as written: live blue, preview green, 2 pods each
        state["selectors"] = {"model-server": "blue", "model-server-preview": "green"}
        state["replicas"] = {"blue": 2, "green": 2}
    elif args[0] == "logs":
        out = state["log"]
    elif args[:2] == ["get", "job"]:
        out = "1"  # .status.active: still running
    json.dump(state, open(path, "w"))
    print(out, end="")
    """)


@pytest.fixture
def stand_in(tmp_path):
    bin_dir = tools_bin(tmp_path, "kind", "docker")
    (bin_dir / "kubectl").write_text(f"#!{sys.executable}\n{FAKE_KUBECTL}")
    (bin_dir / "kubectl").chmod(0o755)
    state = tmp_path / "state.json"

    def run(*args, lag=0, replicas=None, log="", **env):
        state.write_text(json.dumps({"selectors": {"model-server": "blue", "model-server-preview": "green"},
                                     "shown": "blue", "lag": lag, "replicas": replicas or {"blue": 2, "green": 2},
                                     "log": log, "calls": []}))
        done = run_script(bin_dir, *args, FAKE_STATE=str(state), **env)
        return done, json.loads(state.read_text())
    return run


def test_bluegreen_sh_switch_patches_then_waits_for_the_slices(stand_in):
    done, state = stand_in("switch", "green", lag=3)
    assert done.returncode == 0, done.stderr
    assert state["selectors"] == {"model-server": "green", "model-server-preview": "blue"}
    patches = [c for c in state["calls"] if c[0] == "patch"]
    assert [p[2] for p in patches] == ["model-server", "model-server-preview"]
    assert json.loads(patches[0][patches[0].index("-p") + 1]) == bg.switch_patches("green")[bg.LIVE]
    assert json.loads(patches[1][patches[1].index("-p") + 1]) == bg.switch_patches("green")[bg.PREVIEW]
    assert sum(c[:2] == ["get", "endpointslices"] for c in state["calls"]) == 4  # 3 still blue, then green
    assert "list only version=green pods (model-server-green-0 model-server-green-1), " in done.stdout
    assert ["rollout", "status", "deployment/model-server-green", "--timeout=180s"] in state["calls"]


def test_bluegreen_sh_gives_up_when_the_slices_never_follow(stand_in):
    done, state = stand_in("switch", "green", lag=10 ** 6, BG_SWITCH_S="2")
    assert done.returncode == 1
    assert "after 2 s its EndpointSlices still list: model-server-blue-0 model-server-blue-1" in done.stderr


def test_bluegreen_sh_scales_a_drained_colour_up_before_switching_to_it(stand_in):
    done, state = stand_in("switch", "green", replicas={"blue": 3, "green": 0})
    assert done.returncode == 0, done.stderr
    assert ["scale", "deployment", "model-server-green", "--replicas=3"] in state["calls"]
    assert state["selectors"]["model-server"] == "green"


def test_bluegreen_sh_drains_the_idle_colour_only(stand_in):
    done, state = stand_in("drain", BG_DRAIN_S="0")
    assert done.returncode == 0, done.stderr
    assert [c for c in state["calls"] if c[0] == "scale"] == [["scale", "deployment", "model-server-green",
                                                               "--replicas=0"]]
    assert state["replicas"] == {"blue": 2, "green": 0} and "0 version=green pod(s) left" in done.stdout
    done, state = stand_in("delete-old", BG_DRAIN_S="0")
    assert done.returncode == 0 and ["delete", "deployment", "model-server-green", "--ignore-not-found"] \
        in state["calls"]


def job_log(failed: int, versions: dict) -> str:
    result = {"requests": 100 + failed, "failed": failed, "errors": {"ConnectionRefusedError": failed} if failed
              else {}, "versions": versions, "pods": {}, "first_s": {}, "last_s": {}, "duration_s": 180}
    return f"t=    5s 10 requests, 0 failed; last 5 s: blue 10\nRESULT {json.dumps(result)}\n"


def test_bluegreen_sh_test_switches_rolls_back_drains_and_reads_the_jobs_log(stand_in):
    done, state = stand_in("test", log=job_log(0, {"blue": 60, "green": 40}), BG_STEP_S="0", BG_DRAIN_S="0")
    assert done.returncode == 0, done.stderr
    steps = [c[:3] for c in state["calls"] if c[0] in ("apply", "patch", "scale", "logs")]
    assert steps[:2] == [["apply", "-k", str(BG_DIR)], ["apply", "-f", str(BG_DIR / "load-generator.yaml")]]
    assert [c[2] for c in state["calls"] if c[0] == "patch" and c[1] == "service" and c[2] == bg.LIVE] == [bg.LIVE] * 3
    assert [c for c in state["calls"] if c[0] == "scale"] == [
        ["scale", "deployment", "model-server-blue", "--replicas=0"],   # the drain of the old colour
        ["scale", "deployment", "model-server-green", "--replicas=1"]]  # a live pod removed under load
    assert state["selectors"]["model-server"] == "green"
    assert "no failed request across switch, rollback, switch, drain and scale-down" in done.stdout


@pytest.mark.parametrize("log, why", [
    (job_log(3, {"blue": 60, "green": 40}), "3 request(s) failed across the switches"),
    (job_log(0, {"blue": 100}), "version=green never answered"),
    ("t=    5s 10 requests, 0 failed; last 5 s: blue 10\n", "has no RESULT line")])
def test_bluegreen_sh_test_fails_on_a_failed_request_or_a_colour_that_never_answered(stand_in, log, why):
    done, _ = stand_in("test", log=log, BG_STEP_S="0", BG_DRAIN_S="0")
    assert done.returncode == 1 and why in done.stderr, done.stderr
