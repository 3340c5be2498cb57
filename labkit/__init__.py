"""labkit: the package behind the lab notebooks.

Its layers, each importing only the ones listed before it (tests/test_layout.py holds it so):

- ``labkit.core``: shared vocabulary (paths), and bounded background tasks (background).
- ``labkit.machine``: what this machine has (probes, capabilities, doctor, gpu, throughput,
  accelerators, base images).
- ``labkit.tools``: the tools a lab drives (dockerlab, dockerfile, compose, k8s, bluegreen_k8s, commands,
  lint, secretscan, masked, plots, autoscale, traffic, usage).
- ``labkit.serving``: the sample model server and its HTTP contracts (app, contract, load,
  capacity).
- ``labkit.cloud``: the platforms on emulators and real accounts (prices, spend, emulators,
  aws, sagemaker, autoscaling, alarms, bluegreen, vertex, budgets).
- ``labkit.course``: notebooks, checks and grading (cells, checks, build, lab, syllabus,
  grade, grade_engine, student, locks), a class's batch (batch, gradebook) and the class release
  (references, release, classroom).
- ``labkit.cli``: the ``labkit`` command.

Notebooks use the short names they always have (``from labkit import dockerlab, compose, k8s,
serving, plots``, ``from labkit.doctor import run_doctor``): :data:`SHORT_NAMES` maps each to
the module where it lives, and ``import labkit.<name>`` gives that very module (not a copy), so
what a notebook or a test changes on it is what the package sees.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

#: The layers, lowest first, and the modules each holds that notebooks know by a short name.
#: A layer imports only from the layers before it (``serving``: also its own ``app``).
LAYERS = {
    "core": ("paths",),
    "machine": ("probes", "capabilities", "doctor", "images"),
    "tools": ("commands", "dockerlab", "compose", "k8s", "bluegreen_k8s", "lint", "secretscan", "masked", "plots",
              "autoscale", "traffic", "usage"),
    "serving": ("contract", "load", "capacity"),
    "cloud": ("prices", "spend", "emulators", "aws", "sagemaker", "autoscaling", "alarms", "bluegreen", "vertex",
              "budgets"),
    "course": ("cells", "checks", "build", "grade", "grade_engine", "student", "lab", "syllabus", "locks", "batch",
               "gradebook", "references", "release", "classroom"),
}
#: The module each short name (``labkit.dockerlab``) stands for.
SHORT_NAMES = {name: f"{layer}.{name}" for layer, names in LAYERS.items() for name in names}


class _ShortNames(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``labkit.<short name>`` as the module it stands for."""

    def find_spec(self, fullname, path=None, target=None):
        package, _, name = fullname.rpartition(".")
        if package == __name__ and name in SHORT_NAMES:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        module = importlib.import_module(f"{__name__}.{SHORT_NAMES[spec.name.rpartition('.')[2]]}")
        spec.loader_state = module.__spec__  # the import system is about to replace it with this one
        return module

    def exec_module(self, module):
        module.__spec__ = module.__spec__.loader_state  # it already ran, under its own name


if not any(isinstance(finder, _ShortNames) for finder in sys.meta_path):
    sys.meta_path.insert(0, _ShortNames())  # before any finder that could find a stale file of that name

#: What ``labkit.<name>`` gives without an import of its own: the course's entry points. They are
#: imported on first use, so that the lower layers (``labkit.machine.gpu`` on a GPU machine with
#: no Docker SDK, say) import without the course's dependencies.
_ENTRY_POINTS = {"check": "course.checks", "score_table": "course.checks", "skip": "course.checks",
                 "Lab": "course.lab", "LabSetupError": "course.lab", "start": "course.lab"}


def __getattr__(name: str):
    if name in _ENTRY_POINTS:
        return getattr(importlib.import_module(f"{__name__}.{_ENTRY_POINTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["LAYERS", "Lab", "LabSetupError", "SHORT_NAMES", "check", "score_table", "skip", "start"]
