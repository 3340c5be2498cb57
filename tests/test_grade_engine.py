"""The two-kernel engine on small notebooks of its own (no Docker, no lab): where each cell runs,
what a check can reach of the student's kernel, and what happens to cells that hang or kill their kernel."""

from __future__ import annotations

import json

import nbformat
import papermill
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from labkit import cells, grade_engine

pytestmark = pytest.mark.notebook


def run(tmp_path, cell_specs, *, timeout=60):
    """Run cells given as (role, source) with the engine; the executed cells, in the given order."""
    nb = new_notebook(cells=[new_code_cell(source, id=f"c{i}") for i, (_, source) in enumerate(cell_specs)])
    roles = {f"c{i}": role for i, (role, _) in enumerate(cell_specs)}
    path = tmp_path / "in.ipynb"
    nbformat.write(nb, path)
    env = {**__import__("os").environ, "LABKIT_TEST": "1"}
    try:
        papermill.execute_notebook(str(path), str(tmp_path / "out.ipynb"), kernel_name="python3",
                                   engine_name=grade_engine.NAME, progress_bar=False, kernel_cwd=str(tmp_path),
                                   timeout=timeout, roles=roles, student_env=env, checker_env=env)
    except papermill.PapermillExecutionError:
        pass  # a cell failed: papermill saved the notebook (with a note of the error on top)
    executed = {c.get("id"): c for c in nbformat.read(tmp_path / "out.ipynb", as_version=4).cells}
    return [executed[f"c{i}"] for i in range(len(cell_specs))]


def text(cell) -> str:
    return "".join(o.get("text", "") + str(o.get("evalue", "")) for o in cell.outputs)


def test_each_cell_runs_where_its_role_says(tmp_path):
    nb = run(tmp_path, [
        (cells.SHARED, "import os\nNAME = 'shared'\nprint(os.getpid())"),
        (cells.STUDENT, "import os\nMINE = 'student'\nprint(os.getpid())"),
        (cells.CHECKER, "import os\nprint(os.getpid(), NAME, 'MINE' in globals())"),
    ])
    shared_pid, student_pid = text(nb[0]).strip(), text(nb[1]).strip()
    checker_pid, name, sees_student = text(nb[2]).split()
    assert shared_pid == student_pid != checker_pid  # the notebook keeps the student's output of a shared cell
    assert (name, sees_student) == ("shared", "False")


def test_student_patches_never_reach_the_checks(tmp_path):
    nb = run(tmp_path, [
        (cells.STUDENT, "import labkit\nlabkit.check = lambda *a, **k: print('[PASS] forged')"),
        (cells.CHECKER, "import labkit\nlabkit.check('01.x', 1, lambda: False, hint='h')"),
    ])
    assert "[FAIL] 01.x 0/1" in json.dumps(nb[1].outputs)


def test_a_check_calls_student_functions_and_reads_outputs_through_the_bridge(tmp_path):
    nb = run(tmp_path, [
        (cells.STUDENT, "def double(x):\n    return 2 * x\n\ndef broken(x):\n    raise ValueError('no')\n\n"
                        "def odd(x):\n    return object()\nprint('shown to the student')"),
        (cells.CHECKER, "from labkit import student\n"
                        "print(student.call('double', 21))\n"
                        "for name in ('broken', 'odd', 'missing'):\n"
                        "    try:\n        student.call(name, 1)\n    except student.StudentCodeError as exc:\n"
                        "        print('error:', exc)\n"
                        "print(any('shown to the student' in t for t in student.outputs()))"),
    ])
    lines = text(nb[1]).splitlines()
    assert lines[0] == "42"
    assert "raised ValueError: no" in lines[1] and "not plain data" in lines[2] and "not defined" in lines[3]
    assert lines[4] == "True"


def test_the_student_kernel_is_frozen_while_a_check_runs(tmp_path):
    nb = run(tmp_path, [
        (cells.STUDENT, "import threading, time, pathlib\n"
                        "def tick():\n    n = 0\n    while True:\n"
                        "        n += 1\n        pathlib.Path('ticks').write_text(str(n))\n        time.sleep(0.05)\n"
                        "threading.Thread(target=tick, daemon=True).start()\ntime.sleep(0.5)"),
        (cells.CHECKER, "import time, pathlib\nfirst = pathlib.Path('ticks').read_text()\ntime.sleep(1)\n"
                        "print(first == pathlib.Path('ticks').read_text())"),
        (cells.STUDENT, "import time, pathlib\nfirst = pathlib.Path('ticks').read_text()\ntime.sleep(0.5)\n"
                        "print(first != pathlib.Path('ticks').read_text())"),
    ])
    assert text(nb[1]).strip() == "True", "the student's thread ran during the check"
    assert text(nb[2]).strip() == "True", "the student's kernel was not thawed after the check"


def test_a_dead_kernel_stops_the_student_cells_and_not_the_checks(tmp_path):
    nb = run(tmp_path, [
        (cells.STUDENT, "import os\nos._exit(3)"),
        (cells.STUDENT, "print('after')"),
        (cells.CHECKER, "print('checked')"),
    ])
    assert "died" in text(nb[0])
    assert "not run" in text(nb[1]) and "after" not in text(nb[1])
    assert text(nb[2]).strip() == "checked"


def test_a_loop_that_ignores_interrupts_costs_the_rest_of_the_notebook_not_the_grading(tmp_path):
    nb = run(tmp_path, [
        (cells.STUDENT, "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"),
        (cells.STUDENT, "print('after')"),
        (cells.CHECKER, "print('checked')"),
    ], timeout=5)
    assert "did not stop when interrupted" in text(nb[0])
    assert "not run" in text(nb[1])
    assert text(nb[2]).strip() == "checked"


def test_a_student_function_that_never_returns_fails_the_check_not_the_grading(tmp_path):
    nb = run(tmp_path, [
        (cells.STUDENT, "import signal\ndef spin(x):\n    signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                        "    while True:\n        pass"),
        (cells.CHECKER, "from labkit import student\ntry:\n    student.call('spin', 1, timeout=3)\n"
                        "except student.StudentCodeError as exc:\n    print(exc)"),
        (cells.STUDENT, "print('after')"),
    ])
    assert "did not return within 3s" in text(nb[1])
    assert "not run" in text(nb[2])


def test_both_kernels_talk_over_ipc_and_print_no_tcp_warning(tmp_path, capfd):
    """ipykernel warns on stderr at every start over TCP ("running over TCP without encryption");
    a kernel's stderr is the grader's, so the warning would reach every graded run's log."""
    nb = run(tmp_path, [
        (cells.STUDENT, "import json, ipykernel\nprint(json.load(open(ipykernel.get_connection_file()))['transport'])"),
        (cells.CHECKER, "import json, ipykernel\nprint(json.load(open(ipykernel.get_connection_file()))['transport'])"),
    ])
    assert [text(cell).strip() for cell in nb] == ["ipc", "ipc"]
    assert "without encryption" not in capfd.readouterr().err
