"""Grading honesty, end to end. Every lab is graded for real four ways, each run shared by the
assertions about it:

- **solution**: the solution with its check cells deleted (and one pasted elsewhere) scores
  full marks, with no error;
- **unsolved**: the lab as shipped fails every check, and grading leaves it untouched;
- **tampered**: the lab as shipped with one exercise solved for real and every edit a student
  could try against the grader (check cells rewritten, forged, deleted, duplicated and
  reordered; ``labkit.check`` and the probes patched; forged records displayed) earns exactly
  what that exercise earns. Labs 02 and 03 are graded there with kubectl off PATH and a kind
  on it, so their cluster and manifest checks must be *skipped* with kubectl's reason;
- **cheating**: the solution with the cheats that earned points before the checks moved out of
  the student's kernel (edited parameters, baselines, variables a check read, functions that
  return the reference, a cleanup patched away) and the mistakes a weak check missed (a health
  check that checks nothing): exactly the checks they aim at fail.

Every solution also runs as it ships under nbval (``LABKIT_STRICT=1``: a failed check raises),
in a pytest of its own, so that it takes its turn beside the graded runs instead of after them.

Lab 00's four runs are instead one class graded by ``labkit grade-all``, with the bad submissions a
class brings (unreadable, empty, another lab's, a duplicate, one that never ends): the same
assertions hold for its reports, and the class gets the right row for each.

The runs go three at a time (LABKIT_TEST_GRADERS), never two of one lab nor lab 03 (a swarm) beside
lab 02 (Compose): which also shows that other labs graded at once leave each other alone. The last
test checks that nothing is left behind.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree as ET

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_output

from labkit import batch, build, capabilities, cells, dockerlab, grade, gradebook, paths, probes
from labkit.checks import MIME_TYPE

pytestmark = [pytest.mark.docker, pytest.mark.notebook,
              pytest.mark.skipif(bool(probes.docker_reason()), reason=str(probes.docker_reason()))]

LABS = [p.name[:2] for p in paths.lab_notebooks(paths.SOLUTIONS)]
WORKERS = int(os.environ.get("LABKIT_TEST_GRADERS", "3"))  # measured: 3 beats 2 on 2 cores (the runs wait a lot)
# A check may be skipped only with a reason a probe gives on this machine right now.
ABSENT = set(capabilities.absent().values())


@dataclass
class Cheat:
    """Edits of the solution: cell id → new source, and (after cell id, source) cells to add."""
    sources: dict[str, str] = field(default_factory=dict)
    added: list[tuple[str, str]] = field(default_factory=list)
    fails: set[str] = field(default_factory=set)  # the checks the edits must fail, and no other


def _edited(lab: str, cell_id: str, old: str, new: str) -> str:
    """The source of a cell of the lab's solution with ``old`` replaced (which must be there)."""
    source = next(c.source for c in nbformat.read(paths.solution_for(lab), as_version=4).cells if c.id == cell_id)
    assert old in source, f"{lab}/{cell_id} has no {old!r} to replace"
    return source.replace(old, new)


CHEATS = {
    "00": Cheat(
        sources={"parameters": 'TARGET = "local"\nMESSAGE = "hi"',
                 "hello-dockerfile": "%%writefile work/00/hello/Dockerfile\nFROM python:3.11-slim\n"
                                     "CMD [\"python\", \"-c\", \"print('hi')\"]"},
        added=[("names", 'MESSAGE = "hi"  # the parameter, redefined')],
        fails={"00.hello-run"}),
    "01": Cheat(
        sources={
            # edited in place (the lab's own cell runs instead) and bloated by a cell of the student's
            "naive-dockerfile": "%%writefile work/01/app/Dockerfile.naive\nFROM python:3.11\n"
                                "RUN head -c 900000000 /dev/zero > /padding\n",
            # the demo's own two-RUN pattern: the lists stay in the install layer
            "layers-file": "%%writefile work/01/app/Dockerfile.cleanup\nFROM python:3.11-slim\n"
                           "RUN apt-get update && apt-get install -y --no-install-recommends curl\n"
                           "RUN rm -rf /var/lib/apt/lists/*",
            # the slim Dockerfile's steps on the full base, compilers included
            "slim-dockerfile": "%%writefile work/01/app/Dockerfile.slim\n"
                               + build.written_file(paths.solution_for("01"), "slim-dockerfile").replace(
                                   "FROM python:3.11-slim", "FROM python:3.11"),
            # lab 01's slim single-stage image (30 % of the naive one: its layers are in the build
            # cache already), non-root, with a health check that checks nothing
            "final-dockerfile": "%%writefile work/01/app/Dockerfile\n"
                                + build.written_file(paths.solution_for("01"), "slim-dockerfile")
                                + "RUN useradd --create-home --uid 10001 app\nUSER app\nEXPOSE 8080\n"
                                  'HEALTHCHECK --interval=5s CMD ["true"]\n'},
        added=[("naive-dockerfile", "!head -c 500M /dev/zero > {APP}/padding.bin  # a bigger naive image"),
               ("naive-build", "(APP / 'padding.bin').unlink()"),
               ("layers-demo", "(APP / 'Dockerfile.cleanup-demo').write_text(\n"
                               "    'FROM python:3.11-slim\\nRUN apt-get update && apt-get install -y "
                               "--no-install-recommends curl && head -c 60000000 /dev/zero > /padding\\n'\n"
                               "    'RUN rm -rf /var/lib/apt/lists/*\\n')  # a bigger demo layer")],
        fails={"01.slim-base", "01.same-layer", "01.final-size", "01.healthy"}),
    "02": Cheat(
        sources={"restart-kill": "pass  # no crash at all",
                 "compose-file": "%%writefile work/02/compose/compose.yaml\n"
                                 + build.written_file(paths.solution_for("02"), "compose-file").replace(
                                     'test: ["CMD", "python", "-m", "model_server", "healthcheck", "--ready"]',
                                     'test: ["CMD", "true"]')},
        added=[("parameters", "REPLICAS = 1  # the parameter, redefined"),
               ("restart-before", "RESTARTS_BEFORE = -1  # a baseline a check used to read")],
        fails={"02.scaled", "02.restart-policy", "02.compose-healthy", "02.unhealthy-not-restarted"}),
    "03": Cheat(
        sources={"k8s-describe": "def describe_secret(value: str) -> str:\n"
                                 "    return f\"hf_… ({secretscan.fingerprint(TOKEN)})\"  # right for this run's token only"},
        added=[("buildkit-dockerfile",
                "(APP / 'Dockerfile').write_text(  # a model card that names the token without reading the mount\n"
                "    'FROM python:3.11-slim\\nRUN mkdir -p /opt/ml/model && echo \\'{\"token_fingerprint\": \"'\n"
                "    + secretscan.fingerprint(TOKEN) + '\"}\\' > /opt/ml/model/model_card.json\\n')")],
        fails={"03.buildkit-no-leak", "03.outputs-clean"}),
    "04": Cheat(
        sources={
            # the three set-ups it was shown, and a guess for everything else
            "diagnose": "def diagnose(report):\n"
                        "    seen = {'Failed to initialize NVML': 'devices-lost', 'unsatisfied condition': 'driver-too-old',\n"
                        "            'could not select device driver': 'toolkit-missing'}\n"
                        "    return next((cause for text, cause in seen.items() if text in report['output']), 'ok')",
            # the visible cases' answers, looked up
            "sizing": build.written_file(paths.solution_for("04"), "sizing").split("def tokens_per_s")[0]
                      + "def tokens_per_s(params, dtype, bandwidth_gbs):\n"
                        "    return {(8e9, 'fp16', 4800): 300.0}.get((params, dtype, bandwidth_gbs), 3350 / 70)\n\n\n"
                        "def training_days(params, tokens, tflops):\n    return 6 * 1e9 * 20e9 / 400e12 / 86400\n",
            # a devel image in production
            "dockerfile": "%%writefile work/04/app/Dockerfile\n" + build.written_file(
                paths.solution_for("04"), "dockerfile").replace("FROM cpu AS gpu", "FROM nvidia/cuda:12.9.1-devel-ubuntu24.04 AS gpu"),
            # the runtime key instead of a device reservation
            "compose-file": "%%writefile work/04/app/compose.yaml\n" + build.written_file(
                paths.solution_for("04"), "compose-file").replace("deploy:", "runtime: nvidia\n    x-deploy:", 1)},
        added=[("names", "KV_CACHE_SHARE = 0.0  # the lab's allowance, redefined")],
        fails={"04.diagnose", "04.runtime-not-devel", "04.sizing-memory", "04.sizing-speed", "04.compose-gpu"}),
    "05": Cheat(
        sources={"predict": "def predict(rows):  # straight to the container, not through the endpoint\n"
                            "    return contract.post_json(INSTANCE_PORT, '/invocations', {'instances': rows})"
                            ".json()['predictions']"},
        added=[("parameters", "SLOW_LOAD_S = 1  # the parameter, redefined"),
               ("cleanup-made", "AWS.delete_all = lambda: []  # nothing is deleted\nMADE, NOT_DELETED = ['x'], []")],
        fails={"05.invoke", "05.slow-start", "05.cleanup"}),
    "06": Cheat(
        sources={
            "local": "def predict_locally(rows):  # a container of its own, not the SDK's local endpoint\n"
                     "    with dockerlab.running(IMAGE, lab='06', name='labkit-06-mine', ports={7080: None},\n"
                     "                           environment={'AIP_HTTP_PORT': '7080', 'AIP_STORAGE_URI': '/m'},\n"
                     "                           volumes={str(MODEL_DIR): {'bind': '/m', 'mode': 'ro'}}) as c:\n"
                     "        port = serving.wait_ready(c, 7080)\n"
                     "        return contract.post_json(port, '/predict', {'instances': rows}).json()['predictions']",
            "predict": "def predict(rows):  # the same, instead of the endpoint\n    return predict_locally(rows)"},
        added=[("cleanup-made", "VX.delete_all = lambda: []  # nothing is deleted\nREMOVED = []")],
        fails={"06.local-endpoint", "06.predict", "06.cleanup"}),
    "07": Cheat(
        sources={
            # right on the cases shown: "under" taken as "at most", steps with no answers counted
            "max-rps": "def max_rps(steps, p99_objective_ms):\n"
                       "    met = [s for s in steps if s['errors'] == 0 and s['p99_ms'] <= p99_objective_ms\n"
                       "           and s['rps'] >= 0.9 * s['offered_rps']]\n"
                       "    return max(met, key=lambda s: s['offered_rps'])['rps'] if met else 0.0\n\n\n"
                       "MAX_RPS = max_rps([dataclasses.asdict(s) for s in STEPS], P99_OBJECTIVE_MS)",
            # the FAQ's TargetValue, whatever the measurement said
            "scaling": _edited("07", "scaling", "autoscaling.target_value(MAX_RPS, safety_factor=0.5)", "1000.0"),
            # the textbook formula only: no missing or not-ready pods, no stabilization or policies
            "hpa-rule": "def desired(current, metrics, target):\n"
                        "    seen = [m['cpu_percent'] for m in metrics if m['cpu_percent'] is not None]\n"
                        "    ratio = sum(seen) / len(seen) / target if seen else 1.0\n"
                        "    return current if abs(1 - ratio) <= 0.1 else math.ceil(current * ratio)\n\n\n"
                        "def normalize(current, recommendation, earlier, behavior, min_replicas, max_replicas):\n"
                        "    return max(min_replicas, min(max_replicas, recommendation))",
            # autoscaling/v1: no behavior, a CPU percentage only
            "hpa-manifest": "%%writefile work/07/k8s/hpa/hpa.yaml\napiVersion: autoscaling/v1\n"
                            "kind: HorizontalPodAutoscaler\nmetadata:\n  name: model-server\nspec:\n"
                            "  scaleTargetRef:\n    apiVersion: apps/v1\n    kind: Deployment\n    name: model-server\n"
                            "  minReplicas: 1\n  maxReplicas: 4\n  targetCPUUtilizationPercentage: 70\n"},
        added=[("measure", "STEPS = [dataclasses.replace(s, rps=s.rps / 25) for s in STEPS]  # a slower replica, forged"),
               ("names", "CPU_TARGET, MIN_REPLICAS, MAX_REPLICAS = 50, 2, 8  # the lab's figures, redefined"),
               ("cleanup-made", "AWS.delete_all = lambda: []  # nothing is deleted\nMADE = []")],
        fails={"07.max-rps", "07.target-tracking", "07.hpa-rule", "07.hpa-behavior", "07.hpa-manifest", "07.cleanup"}),
    "08": Cheat(
        sources={
            # health only: a release that answers wrongly passes, so release() switches users to it
            "smoke-test": "import urllib.request\n\n\ndef smoke_test(port):\n"
                          "    try:\n"
                          "        with urllib.request.urlopen(f'http://127.0.0.1:{port}/readyz', timeout=5) as r:\n"
                          "            return [] if r.status == 200 else ['not ready']\n"
                          "    except OSError as exc:\n"
                          "        return [str(exc)]",
            # confidence felt, not counted
            "confident": "def confident(counts):\n    return True\n\n\n"
                         "if traffic.routed_live(STACK_DIR) != 'green':\n    release()\n"
                         "traffic.remove_release(STACK_DIR, PROJECT, 'blue')",
            # Services that select by name only: users get both releases at once
            "k8s-services": "%%writefile work/08/k8s/bluegreen/services.yaml\n" + "---\n".join(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name + "\nspec:\n  type: ClusterIP\n"
                "  selector:\n    app.kubernetes.io/name: model-server\n  ports:\n    - name: http\n"
                "      port: 8080\n      targetPort: http\n" for name in ("model-server", "model-server-preview")),
            # a canary of 60 %: over SageMaker's limit of 50
            "request": _edited("08", "request", '"Value": 10}', '"Value": 60}')},
        added=[("names", "SWITCH_REQUESTS, CONFIDENCE_REQUESTS = 10, 1  # the lab's figures, redefined"),
               ("cleanup-made", "AWS.delete_all = lambda: []  # nothing is deleted\n"
                                "alarms.delete_alarm = lambda cloudwatch, name: None\nMADE, ALARMS_MADE = [], []")],
        fails={"08.smoke-test", "08.refused", "08.blue-retired", "08.k8s-services", "08.sagemaker-request",
               "08.cleanup"}),
    "09": Cheat(
        sources={
            # the smallest size that meets the objective, whatever a million predictions cost on it
            "right-size": "def cost_per_million(rps, usd_per_hour):\n"
                          "    return math.inf if rps <= 0 else usd_per_hour / (rps * 3600) * 1e6\n\n\n"
                          "def cheapest(rows, p99_objective_ms):\n"
                          "    met = [r for r in rows if r['errors'] == 0 and r['rps'] > 0 and r['p99_ms'] < p99_objective_ms]\n"
                          "    return min(met, key=lambda r: r['cpus'])['cpus'] if met else None",
            # the daytime floor until 20:59, an hour too long
            "month": _edited("09", "month", "if hour in DAY_HOURS", "if 7 <= hour <= 20"),
            # billed by the second, as if serverless rounded up
            "spot-serverless": _edited("09", "spot-serverless", "requests * ms_per_request / 1000 * memory_gb",
                                       "requests * math.ceil(ms_per_request / 1000) * memory_gb"),
            # an alert after the money is spent, none before
            "budget": _edited("09", "budget", '[alert("ACTUAL", 80.0), alert("FORECASTED", 100.0)]',
                              '[alert("ACTUAL", 120.0)]'),
            # the lab's own period, whatever the caller asks for
            "cost-by-lab": _edited("09", "cost-by-lab", 'TimePeriod={"Start": start, "End": end}',
                                   'TimePeriod={"Start": "2026-09-01", "End": "2026-12-01"}'),
            # percentages where the API takes fractions
            "gcp-budget": _edited("09", "gcp-budget", "threshold_percent=0.9", "threshold_percent=90"),
            # what each container used, never what it reserved
            "allocate": _edited("09", "allocate", 'max(c["cpu_request"] or 0.0, c["cpu_used"])', 'c["cpu_used"]'),
            # GKE's fee, as if no credit covered it
            "platform": _edited("09", "platform", 'max(0, HOURS_PER_MONTH - spec["fee"].free)', "HOURS_PER_MONTH")},
        added=[("measure", "ROWS = [dict(r, p99_ms=1.0, errors=0) for r in ROWS]  # every size meets the objective, forged"),
               ("cleanup-made", "budgets.delete_budgets = lambda *args: []  # nothing is deleted\nMADE = [BUDGET]")],
        fails={"09.right-size", "09.month", "09.spot-serverless", "09.budget", "09.cost-explorer", "09.gcp-budget",
               "09.allocation", "09.platform", "09.cleanup"}),
}

# For the tampered run: the exercise cells the student really solves (None: as the solution does),
# and the checks that earns.
FINAL_WITHOUT_HEALTHCHECK = "%%writefile work/01/app/Dockerfile\n" + "".join(
    line + "\n" for line in build.written_file(paths.solution_for("01"), "final-dockerfile").splitlines()
    if not line.startswith(("HEALTHCHECK", "    CMD")))
SOLVED_FOR_REAL = {
    "00": ({}, []),
    "01": ({"ignore-file": None,
            "layers-file": "%%writefile work/01/app/Dockerfile.cleanup\nFROM python:3.11-slim\n"  # the folder itself
                           "RUN apt-get update && apt-get install -y --no-install-recommends curl "
                           "&& rm -rf /var/lib/apt/lists",
            # one mistake (no HEALTHCHECK) costs the check that names it, not 01.predicts
            "final-dockerfile": FINAL_WITHOUT_HEALTHCHECK},
           ["01.dockerignore", "01.same-layer", "01.final-size", "01.predicts", "01.no-build-tools", "01.non-root",
            "01.hadolint"]),
    "02": (dict.fromkeys(["compose-file", "restart-kill", "unhealthy-stop", "scale-up"]),
           ["02.compose-file", "02.compose-healthy", "02.restart-policy", "02.unhealthy-not-restarted", "02.scaled"]),
    "03": ({"compose-file": None}, ["03.compose-run-secrets"]),
    "04": ({"diagnose": None, "compose-file": None}, ["04.diagnose", "04.compose-gpu"]),
    "05": ({"package": None}, ["05.model-archive"]),
    "06": ({"dockerfile": None}, ["06.contract"]),
    "07": ({"max-rps": None, "hpa-manifest": None}, ["07.max-rps", "07.hpa-manifest"]),
    "08": ({"smoke-test": None, "k8s-services": None}, ["08.smoke-test", "08.k8s-services"]),
    "09": ({"right-size": None, "allocate": None}, ["09.right-size", "09.allocation"]),
}
WITHOUT_KUBECTL = {"02", "03"}  # tampered with kubectl off PATH and a kind on it
# The unsolved lab's image checks must say that the Dockerfile does not build (not "stale").
FAILED_BUILDS = {"00": ["00.hello-image", "00.hello-run"], "01": ["01.final-size", "01.predicts", "01.healthy"],
                 "04": ["04.cpu-serves", "04.slim"], "05": ["05.contract"], "06": ["06.contract"]}

PATCH_CHECKS = """
import labkit, labkit.checks, labkit.capabilities
def _pass(id, points, test, hint, **kwargs):  # every check passes...
    labkit.checks._show(labkit.checks.CheckResult(id, points, points, True, False, ""), hint)
labkit.check = labkit.checks.check = _pass
labkit.capabilities.missing = lambda *names: "absent (patched)"  # ...or is skipped, and leaves the maximum
"""


def _solution(lab):
    return nbformat.read(paths.solution_for(lab), as_version=4)


def _lab(lab):
    return nbformat.read(paths.LABS / paths.solution_for(lab).name, as_version=4)


def _solution_without_check_cells(lab):
    """The solution with every check cell deleted and one pasted again elsewhere (where it runs,
    as the student's own cell, and counts for nothing)."""
    nb = _solution(lab)
    checks = [c for c in nb.cells if cells.check_of(c)]
    nb.cells = [c for c in nb.cells if not cells.check_of(c)]
    pasted = copy.deepcopy(checks[0])
    pasted.id = "pasted-copy"
    nb.cells.insert(next(i for i, c in enumerate(nb.cells) if c.id == "names") + 1, pasted)
    return nb


def _tampered_lab(lab):
    """The lab as shipped, with SOLVED_FOR_REAL solved and every edit against the grader."""
    solution, nb = _solution(lab), _lab(lab)
    by_id = {c.id: c for c in solution.cells}
    solved, _ = SOLVED_FOR_REAL[lab]
    check_cells = [c for c in nb.cells if cells.check_of(c)]
    unsolved_answers = [c.id for c in nb.cells if cells.is_answer(by_id[c.id]) and c.id not in solved]
    out = []
    for index, cell in enumerate(nb.cells):
        if cell.id in solved:
            cell = copy.deepcopy(by_id[cell.id])  # the student's own answer
            cell.source = solved[cell.id] or cell.source
        elif cell.id == "parameters":  # edited: had it run, the names cells would fail and earn nothing
            cell = copy.deepcopy(cell)
            cell.source = 'TARGET = "nowhere"'
        elif unsolved_answers and cell.id == unsolved_answers[-1]:
            continue  # an answer cell deleted
        elif cell is check_cells[-1]:
            continue  # a check deleted
        elif cells.check_of(cell):  # rewritten to claim a pass: in place with a forged saved output, or as a new cell
            check_id, points = cells.check_of(cell)
            record = {"id": check_id, "points": points, "earned": points, "passed": True, "skipped": False,
                      "message": ""}
            cell = copy.deepcopy(cell)
            cell.source = (f"print('[PASS] {check_id} {points}/{points}')\n"
                           f"display({{{MIME_TYPE!r}: {record!r}}}, raw=True)")
            if index % 2:
                cell.id = f"pasted-{check_id.replace('.', '-')}"
            else:
                cell.outputs = [new_output("display_data", data={MIME_TYPE: record})]
        out.append(cell)
        if cell.id == "names":
            out.append(new_code_cell(PATCH_CHECKS, id="patch-checks"))
    duplicate = copy.deepcopy(check_cells[0])
    duplicate.id = "dup"
    out.insert(2, duplicate)
    out.insert(0, copy.deepcopy(check_cells[1]))  # a check moved to the top
    forged = [{"id": i, "points": 99, "earned": 99, "passed": True, "skipped": False, "message": ""}
              for _, i, _ in cells.checks(solution)]
    out.append(new_code_cell("from IPython.display import display\n" + "".join(
        f"display({{{MIME_TYPE!r}: {r!r}, 'text/plain': 'PASS'}}, raw=True)\n" for r in forged), id="forger"))
    nb.cells = out
    return nb


def _cheating_solution(lab):
    cheat, nb = CHEATS[lab], _solution(lab)
    for cell in nb.cells:
        if cell.id in cheat.sources:
            cell.source = cheat.sources[cell.id]
    for after, source in cheat.added:
        at = next(i for i, c in enumerate(nb.cells) if c.id == after) + 1
        nb.cells.insert(at, new_code_cell(source, id=f"cheat-{after}"))
    return nb


def _path_without_kubectl(folder: Path) -> str:
    """This PATH with kubectl taken out (each folder that has it replaced by a copy of links to
    everything else in it) and, in front, a `kind` that only tells its version."""
    entries = [str(folder / "kind-only")]
    (folder / "kind-only").mkdir(parents=True, exist_ok=True)
    kind = folder / "kind-only" / "kind"
    kind.write_text('#!/bin/sh\nif [ "$1" = version ]; then echo "kind v0.24.0 go1.22.6 linux/amd64"; exit 0; fi\n'
                    'echo "a stand-in kind for the tests: $*" >&2; exit 1\n')
    kind.chmod(0o755)
    for number, entry in enumerate(os.environ["PATH"].split(os.pathsep)):
        if not (Path(entry) / "kubectl").exists():
            entries.append(entry)
            continue
        copy_of = folder / f"path-{number}"
        copy_of.mkdir(exist_ok=True)
        for name in os.listdir(entry):
            if name != "kubectl" and not (copy_of / name).is_symlink():
                (copy_of / name).symlink_to(Path(entry) / name)
        entries.append(str(copy_of))
    return os.pathsep.join(entries)


#: Lab 00's four runs are one class, graded by `labkit grade-all` (a process per submission) with
#: the submissions a class also brings: unreadable, empty, another lab's, a duplicate, and one
#: that never ends (CLASS_LIMIT_S, against about 10 s for each of the others).
CLASS = {"alice": "solution", "mallory": "cheating", "carol": "tampered", "bob": "unsolved"}
CLASS_LIMIT_S = 30


class Runs:
    """Every graded run of the session, started together on first use and graded WORKERS at a
    time by batch.LabPool: never two of one lab at once (their names and labels are the lab's),
    nor two labs that syllabus.can_run_together says must not share the engine."""

    ORDER = ("07", "08", "05", "09", "02", "01", "04", "03", "06", "00")  # the longest labs first

    def __init__(self, folder: Path):
        self.folder = folder
        jobs = [(lab, variant) for variant in ("solution", "nbval", "cheating", "tampered", "unsolved")
                for lab in self.ORDER if lab in LABS and lab != "00"]
        jobs += [("00", "class"), ("00", "nbval"), ("00", "bad-input")]
        self.pool = batch.LabPool(jobs, lambda job: self._grade(*job), lab_of=lambda job: job[0], workers=WORKERS)

    def _write(self, nb, variant: str, lab: str) -> Path:
        path = self.folder / variant / lab / paths.solution_for(lab).name
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
        return path

    def _grade(self, lab: str, variant: str):
        name = paths.solution_for(lab).name
        environment = None
        if variant == "class":
            return self._grade_class()
        if variant == "nbval":
            return _nbval(lab)
        if variant == "unsolved":
            return grade.grade(paths.LABS / name, timeout=900)
        if variant == "solution":
            nb = _solution_without_check_cells(lab)
        elif variant == "cheating":
            nb = _cheating_solution(lab)
        elif variant == "bad-input":
            nb = _bad_input()
        else:
            nb = _tampered_lab(lab)
            if lab in WITHOUT_KUBECTL:
                environment = {"PATH": _path_without_kubectl(self.folder / f"bin-{lab}")}
        return grade.grade(self._write(nb, variant, lab), timeout=20 if variant == "bad-input" else 900,
                           environment=environment)

    def _grade_class(self) -> dict:
        """Lab 00's class: {student: row}, and the folder it was graded into."""
        folder, out = self.folder / "class", self.folder / "grades"
        for student, variant in CLASS.items():
            nb = {"solution": _solution_without_check_cells, "cheating": _cheating_solution,
                  "tampered": _tampered_lab, "unsolved": _lab}[variant]("00")
            (folder / student / "labs").mkdir(parents=True)
            nbformat.write(nb, folder / student / "labs" / "00_setup.ipynb")
        shutil.copy(folder / "alice" / "labs" / "00_setup.ipynb", folder / "alice_00_setup.ipynb")  # a duplicate
        (folder / "dave_00_setup.ipynb").write_text('{"cells": [')                              # cut short
        (folder / "hank_00_setup.ipynb").write_text("")                                         # empty
        shutil.copy(paths.LABS / paths.solution_for("01").name, folder / "erin_01_image_slimming.ipynb")
        spinning = _solution("00")
        next(c for c in spinning.cells if cells.is_answer(c)).source = "while True:\n    pass\n"
        nbformat.write(spinning, folder / "frank_00_setup.ipynb")
        rows = batch.grade_all(folder, out, lab="00", limit=CLASS_LIMIT_S, show=lambda line: None)
        gradebook.write_all(rows, out)
        return {"rows": rows, "out": out, "folder": folder}

    def get(self, lab: str, variant: str):
        if lab != "00" or variant not in CLASS.values():
            return self.pool.get((lab, variant))
        student = next(s for s, v in CLASS.items() if v == variant)
        graded = json.loads((self.pool.get(("00", "class"))["out"] / "reports" / student / "00.json").read_text())
        return grade.Report(graded["lab"], graded["notebook"], graded["checks"], graded["errors"], graded["notes"],
                            graded["seconds"])

    def wait_all(self) -> dict:
        return self.pool.wait()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return Runs(tmp_path_factory.mktemp("graded"))


@dataclass
class NbvalRun:
    returncode: int
    output: str
    seconds: float


def _nbval(lab: str) -> NbvalRun:
    """The solution as it ships, cell by cell under nbval, as `pytest --nbval-lax solutions/NN.ipynb`."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                           "--nbval-cell-timeout=900", str(paths.solution_for(lab).relative_to(paths.REPO))],
                          cwd=paths.REPO, env={**os.environ, "LABKIT_STRICT": "1"}, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=3600)
    return NbvalRun(done.returncode, done.stdout + done.stderr, time.monotonic() - started)


def _failed(report):
    return [c for c in report.checks if not c["passed"] and not c["skipped"]]


def _skipped_by_a_probe(check, absent=ABSENT):
    return check["skipped"] and check["message"] in absent


@pytest.mark.parametrize("lab", LABS)
def test_solution_scores_full_marks_even_with_its_check_cells_deleted(runs, lab):
    report = runs.get(lab, "solution")
    assert not _failed(report), json.dumps(_failed(report), indent=1)
    assert report.score == report.max_score > 0
    wrongly_skipped = [c for c in report.checks if c["skipped"] and not _skipped_by_a_probe(c)]
    assert not wrongly_skipped, json.dumps(wrongly_skipped, indent=1)
    assert not report.errors and not report.notes, json.dumps([report.errors, report.notes], indent=1)


@pytest.mark.parametrize("lab", LABS)
def test_solution_passes_nbval_as_it_ships(runs, lab):
    run = runs.get(lab, "nbval")
    assert run.returncode == 0, run.output[-8000:]


@pytest.mark.parametrize("lab", LABS)
def test_unsolved_lab_fails_every_check(runs, lab):
    report = runs.get(lab, "unsolved")
    graded = [c for c in report.checks if not _skipped_by_a_probe(c)]
    assert graded and all(not c["passed"] and not c["skipped"] for c in graded), \
        json.dumps(report.checks, indent=1)
    assert report.score == 0
    assert report.errors, "the unsolved lab's stubs should raise"
    lab_file = paths.LABS / paths.solution_for(lab).name
    assert lab_file.read_text() == build.render(paths.solution_for(lab)), "grading modified the notebook"
    messages = {c["id"]: c["message"] for c in report.checks}
    stale = [i for i in FAILED_BUILDS.get(lab, []) if "does not build" not in messages[i]]
    assert not stale, f"these checks do not say that the Dockerfile fails to build: {stale}"


@pytest.mark.parametrize("lab", LABS)
def test_tampered_lab_earns_only_what_it_solved(runs, lab):
    report = runs.get(lab, "tampered")
    _, earned = SOLVED_FOR_REAL[lab]
    passed = [c["id"] for c in report.checks if c["passed"]]
    assert passed == earned, json.dumps(report.checks, indent=1)
    assert report.score == sum(c["points"] for c in report.checks if c["id"] in earned)
    solution = _solution(lab)
    if [c for c in solution.cells if cells.is_answer(c) and c.id not in SOLVED_FOR_REAL[lab][0]]:
        assert any("is not in the notebook" in note for note in report.notes), report.notes  # one was deleted
    if lab in WITHOUT_KUBECTL:  # every check that needs kubectl is skipped with kubectl's reason, none fails
        needs_kubectl = [c for c in report.checks if c["skipped"]]
        assert needs_kubectl and all("kubectl not found on PATH" in c["message"] for c in needs_kubectl), \
            json.dumps(needs_kubectl, indent=1)
        assert not [c for c in _failed(report) if "kubectl" in c["message"]], json.dumps(report.checks, indent=1)


@pytest.mark.parametrize("lab", LABS)
def test_cheats_earn_nothing(runs, lab):
    report = runs.get(lab, "cheating")
    failed = {c["id"] for c in _failed(report)}
    assert failed == CHEATS[lab].fails, json.dumps(report.checks, indent=1)
    assert not [c for c in report.checks if c["skipped"] and not _skipped_by_a_probe(c)]


def _bad_input():
    """Lab 00's solution with a cell that never ends, one with a syntax error, and one that kills
    its kernel at the end: each costs only itself, and the grader still reports."""
    nb = _solution("00")
    at = next(i for i, c in enumerate(nb.cells) if c.id == "start") + 1
    nb.cells[at:at] = [new_code_cell("while True:\n    pass", id="spin"),
                       new_code_cell("def broken(:\n    pass", id="typo")]
    at = next(i for i, c in enumerate(nb.cells) if c.id == "cleanup")
    nb.cells.insert(at, new_code_cell("import os\nos._exit(1)", id="die"))
    return nb


def test_hangs_syntax_errors_and_a_dead_kernel_cost_only_their_own_cells(runs):
    report = runs.get("00", "bad-input")
    assert report.score == report.max_score > 0, json.dumps(report.checks, indent=1)
    names = {e["ename"] for e in report.errors}
    assert "SyntaxError" in names and names & {"KeyboardInterrupt", "CellTimeoutError", "TimeoutError"}, names
    assert "DeadKernelError" in names, names


def test_a_class_graded_by_grade_all_gets_a_row_each_with_the_reason(runs):
    """Lab 00's class (CLASS, and the bad submissions a class brings): the right row for each,
    one process per notebook, and every file the instructor reads."""
    graded = runs.get("00", "class")
    rows = {(r.student, Path(r.notebook).name): r for r in graded["rows"]}
    assert len(rows) == len(graded["rows"]) == 9, sorted(rows)
    by_student = {student: row for (student, name), row in rows.items() if name == "00_setup.ipynb"}
    assert by_student["alice"].status == batch.GRADED and by_student["alice"].score == by_student["alice"].max_score
    assert by_student["bob"].status == batch.GRADED and by_student["bob"].score == 0
    duplicate = rows["alice", "alice_00_setup.ipynb"]
    assert duplicate.status == batch.DUPLICATE and "alice/labs/00_setup.ipynb" in duplicate.reason
    for name, status, said in (("dave_00_setup.ipynb", batch.NOT_GRADED, "could not be read"),
                               ("hank_00_setup.ipynb", batch.NOT_GRADED, "could not be read"),
                               ("erin_01_image_slimming.ipynb", batch.NOT_GRADED, "lab 01's notebook, not lab 00's"),
                               ("frank_00_setup.ipynb", batch.TIMED_OUT, f"after {CLASS_LIMIT_S} s")):
        row = rows[name.split("_")[0], name]
        assert (row.status, row.score) == (status, 0) and said in row.reason, row
    out = graded["out"]
    with open(out / "gradebook.csv") as handle:
        table = list(csv.DictReader(handle))
    assert [(r["student"], r["status"], r["score"]) for r in table] == \
        [(r.student, r.status, str(r.score)) for r in graded["rows"]]
    alice = next(r for r in table if r["student"] == "alice" and r["status"] == batch.GRADED)
    assert {k: alice[k] for k in ("00.hello-image", "00.hello-run")} == {"00.hello-image": "2", "00.hello-run": "3"}
    suites = ET.parse(out / "junit.xml").getroot()
    assert suites.get("errors") == "5" and int(suites.get("failures")) >= 4, ET.tostring(suites)[:500]
    assert "data:image/png;base64," in (out / "summary.html").read_text()
    assert "| 00.hello-run | 3 |" in (out / "summary.md").read_text()
    assert (out / "reports" / "alice" / "00.md").read_text().startswith("# Lab 00: 5/5")
    assert "still running after" in (out / "reports" / "frank" / "00.md").read_text()
    again = batch.grade_all(graded["folder"], out, lab="00", limit=CLASS_LIMIT_S, show=lambda line: None)
    assert [r.reused for r in again] == [r.status != batch.DUPLICATE for r in graded["rows"]], \
        "a second run grades nothing again"
    assert [(r.status, r.score) for r in again] == [(r.status, r.score) for r in graded["rows"]]


def test_nothing_is_left_behind(runs, capsys):
    """After every run above (and two labs graded at once), nothing of any lab is left."""
    results = runs.wait_all()
    with capsys.disabled():  # how long each graded run took, for whoever watches the suite's time
        print("\ngraded runs (seconds): " + ", ".join(
            f"{lab} {variant} {result.seconds:.0f}" for (lab, variant), result in sorted(results.items())
            if isinstance(result, (grade.Report, NbvalRun))) + ", 00 class: " + ", ".join(
            f"{row.student} {row.seconds:.0f}" for row in runs.get("00", "class")["rows"]))
    assert set(results) >= {(lab, v) for lab in LABS for v in ("solution", "unsolved", "tampered", "cheating")
                            if lab != "00"} | {(lab, "nbval") for lab in LABS} | {("00", "class"), ("00", "bad-input")}
    client = dockerlab.client()
    label = {"label": dockerlab.LABEL}
    left = (client.containers.list(all=True, filters=label) + client.networks.list(filters=label)
            + client.volumes.list(filters=label))
    left += [c for c in client.containers.list(all=True) if c.name.startswith("labkit-")]
    assert not left, f"left behind: {left}"
    servers = [cmd for cmd in _command_lines() if "moto.server" in cmd or "vertex/standin.py" in cmd]
    assert not servers, f"emulators still running: {servers}"


def _command_lines() -> list[str]:
    """Every process's command line (Linux /proc; elsewhere nothing)."""
    lines = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            lines.append(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:  # the process ended while we looked
            pass
    return lines


def test_the_tamper_edits_are_real():
    """The tampered and cheating notebooks do what they claim, so that the runs above test something."""
    for lab in LABS:
        tampered = _tampered_lab(lab)
        ids = [c.id for c in tampered.cells]
        assert "patch-checks" in ids and "forger" in ids and "dup" in ids, lab
        cheating = _cheating_solution(lab)
        changed = {c.id for c in cheating.cells} - {c.id for c in _solution(lab).cells}
        assert changed or CHEATS[lab].sources, lab
        for cell_id, source in CHEATS[lab].sources.items():
            assert next(c for c in cheating.cells if c.id == cell_id).source == source
    assert "AS builder" not in CHEATS["01"].sources["final-dockerfile"]
    assert "AS builder" in FINAL_WITHOUT_HEALTHCHECK and "USER app" in FINAL_WITHOUT_HEALTHCHECK
    assert "HEALTHCHECK" not in FINAL_WITHOUT_HEALTHCHECK and "healthcheck" not in FINAL_WITHOUT_HEALTHCHECK
    assert 'CMD ["true"]' in CHEATS["01"].sources["final-dockerfile"]
    assert 'test: ["CMD", "true"]' in CHEATS["02"].sources["compose-file"]
    path = _path_without_kubectl(Path(tempfile.mkdtemp(prefix="labkit-nokube-")))
    assert shutil.which("kubectl", path=path) is None and shutil.which("kind", path=path)
    assert shutil.which("docker", path=path) and shutil.which("git", path=path)
