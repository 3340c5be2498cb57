"""labkit.student run by hand: a check calls the student's functions and reads the notebook's
outputs in the student's own kernel. (Graded, the same calls go through the grader: see
test_grade_engine.)"""

import secrets

import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from labkit import student


def test_the_recorder_keeps_every_output_kind_and_the_search_redacts(monkeypatch):
    recorder = student.OutputRecorder()
    token = "hf_" + secrets.token_hex(17)
    recorder.record("stream", {"name": "stdout", "text": f"debug: {token}\n"})
    recorder.record("display_data", {"data": {"text/plain": "fine"}})
    recorder.record("error", {"ename": "E", "evalue": "x", "traceback": [f"line {token[:10]}"]})
    recorder.record("status", {"execution_state": token})  # not an output
    assert len(recorder.texts()) == 3
    monkeypatch.setattr(student, "_recorder", recorder)
    found = student.outputs_containing(token)
    assert len(found) == 1 and token not in found[0] and "redacted" in found[0]
    assert student.watch_outputs() is recorder


def test_outside_a_kernel_there_is_nothing_to_call_or_read(monkeypatch):
    monkeypatch.delenv(student.BRIDGE_ENV, raising=False)
    monkeypatch.setattr(student, "_recorder", None)
    with pytest.raises(student.StudentCodeError, match="predict is not defined"):
        student.call("predict", [[1, 2, 3, 4]])
    with pytest.raises(student.StudentCodeError, match="not recorded"):
        student.outputs()


def test_in_a_real_kernel_calls_return_data_and_outputs_are_recorded(tmp_path):
    value = "x-" + secrets.token_hex(8)
    nb = new_notebook(cells=[
        new_code_cell("from labkit import student\nassert student.watch_outputs() is not None"),
        new_code_cell(f"print('debug', {value!r})"),
        new_code_cell(f"{value!r}"),
        new_code_cell(f"display({{'text/plain': 'shown ' + {value!r}}}, raw=True)"),
        new_code_cell("def pair(a):\n    return (a, a)\n\ndef bad(a):\n    raise KeyError('nope')"),
        new_code_cell("assert student.call('pair', 2) == [2, 2]  # JSON data: a tuple comes back a list\n"
                      "try:\n    student.call('bad', 'secret text')\nexcept student.StudentCodeError as exc:\n"
                      "    assert 'raised KeyError' in str(exc) and 'secret text' not in str(exc), exc\n"
                      f"shown = student.outputs_containing({value!r})\n"
                      f"assert len(shown) == 3 and all({value!r} not in s for s in shown), shown"),
    ])
    NotebookClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert not [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
