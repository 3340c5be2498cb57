"""The package's layout: each layer imports only the layers below it, modules stay one idea in
size, and every short name a notebook types is the module it stands for."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import labkit

PACKAGE = Path(labkit.__file__).parent
ORDER = list(labkit.LAYERS)
#: Modules longer than MAX_LINES, each one idea (said here), else it must be split.
MAX_LINES = 400
ONE_IDEA = {
    "machine/probes.py": "one probe per capability, each a few lines",
}


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _layer(path: Path) -> str | None:
    """The layer a module of the package belongs to (None for the top: labkit/__init__, cli)."""
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else None


def _imported_layers(path: Path) -> set[str]:
    """The layers of labkit a module imports, whether it names them relatively or absolutely."""
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    if path.name == "__init__.py":
        package = path.relative_to(PACKAGE.parent).parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = list(package[:len(package) - node.level + 1]) if node.level else []
            target = base + (node.module.split(".") if node.module else [])
            names = [target + [a.name] for a in node.names] if len(target) == 1 else [target]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".") for a in node.names]
        else:
            continue
        for dotted in names:
            if dotted[:1] == ["labkit"] and len(dotted) > 1:
                layer = labkit.SHORT_NAMES.get(dotted[1], dotted[1]).split(".")[0]
                if layer in ORDER:
                    found.add(layer)
    return found


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_layer_imports_only_the_layers_below_it(path):
    layer = _layer(path)
    if layer is None:
        return  # the top (labkit/__init__.py, cli.py) may use every layer
    allowed = set(ORDER[:ORDER.index(layer) + 1])
    assert _imported_layers(path) <= allowed, f"{path.name} ({layer}) imports {_imported_layers(path) - allowed}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_module_is_one_idea(path):
    name = str(path.relative_to(PACKAGE))
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES or name in ONE_IDEA, f"{name} has {lines} lines: split it by job"


def test_the_layer_test_sees_imports():
    """The import reader above finds what it must (so the layer test can fail)."""
    assert _imported_layers(PACKAGE / "course" / "grade.py") >= {"cloud", "core", "machine", "tools", "course"}
    assert _imported_layers(PACKAGE / "cli.py") >= {"course", "machine"}


@pytest.mark.parametrize("short", sorted(labkit.SHORT_NAMES))
def test_short_names_are_the_modules_themselves(short):
    module = importlib.import_module(f"labkit.{short}")
    assert module is importlib.import_module(f"labkit.{labkit.SHORT_NAMES[short]}")
    assert getattr(labkit, short) is module and module.__spec__.name == module.__name__
