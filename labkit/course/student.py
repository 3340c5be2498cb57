"""What a check may learn from the student's kernel: the functions an exercise asks for,
called with inputs the check picks, and the outputs the notebook has shown so far.

Run by hand, a check runs in the student's own kernel and these reach into it directly.
Graded, checks run in a second kernel that never executes student code (see
:mod:`labkit.grade_engine`); ``call`` and ``outputs`` then ask the grader over the socket
named by ``LABKIT_BRIDGE``, and the grader runs the function in the student's kernel. Either
way a check gets plain JSON data back and judges it, together with what the call did to
real state (an emulator's request log, a container's access log), never by trusting it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading

from ..core.errors import LabkitError
from ..tools.secretscan import forms, redact

BRIDGE_ENV = "LABKIT_BRIDGE"
CALL_TIMEOUT_S = 120


class StudentCodeError(LabkitError, AssertionError):
    """The student's function is missing, raised, or returned something that is not data (an
    AssertionError, so that a check that meets it fails with its message)."""


def graded() -> bool:
    """Whether this kernel runs checks for ``labkit grade`` (not the student's own kernel)."""
    return bool(os.environ.get(BRIDGE_ENV))


def call(name: str, *args, timeout: float = CALL_TIMEOUT_S):
    """``name(*args)`` as the student defined it, in the student's kernel; its value as JSON data.

    Raises :class:`StudentCodeError` (a failed check) when the function is not defined, raises,
    or returns something JSON cannot carry.
    """
    shown = f"{name}({', '.join(_brief(a) for a in args)})"
    if graded():
        answer = _ask({"op": "call", "name": name, "args": list(args), "timeout": timeout}, timeout + 30)
        if not answer.get("ok"):
            raise StudentCodeError(f"{shown}: {answer.get('error', 'no answer')}")
        return answer.get("value")
    function = _user_namespace().get(name)
    if not callable(function):
        raise StudentCodeError(f"{name} is not defined: run the cell that defines it")
    try:
        value = function(*args)
    except Exception as exc:  # noqa: BLE001 - the student's error is the check's message
        raise StudentCodeError(f"{shown} raised {type(exc).__name__}: {exc}") from None
    try:
        return json.loads(json.dumps(value))  # exactly what a graded run would see
    except (TypeError, ValueError) as exc:
        raise StudentCodeError(f"{shown} returned a {type(value).__name__}, not plain data: {exc}") from None


def outputs() -> list[str]:
    """The text of every output the notebook has shown so far (streams, displays, errors)."""
    if graded():
        answer = _ask({"op": "outputs"}, 60)
        if not answer.get("ok"):
            raise StudentCodeError(f"the grader could not list the outputs: {answer.get('error')}")
        return list(answer["value"])
    if _recorder is None:
        raise StudentCodeError("outputs are not recorded in this kernel: run the lab's set-up cell "
                               "(it calls labkit.student.watch_outputs())")
    return _recorder.texts()


def outputs_containing(*values: str) -> list[str]:
    """Redacted descriptions of the outputs that show any of ``values`` (or its base64)."""
    found = []
    for text in outputs():
        for form in (f for v in values if v for f in forms(v.strip())):
            if form in text:
                at = text.find(form)
                found.append("…" + redact(text[max(0, at - 30):at + len(form) + 10], *values) + "…")
    return found


# ---------------------------------------------------------------- run by hand

class OutputRecorder:
    """Everything this IPython kernel publishes to the notebook: stream text, displays,
    results and errors, i.e. what a saved notebook holds as outputs."""

    TYPES = {"stream", "display_data", "execute_result", "error", "update_display_data"}

    def __init__(self):
        self._texts: list[str] = []
        self._lock = threading.Lock()

    def record(self, msg_type: str, content: dict) -> None:
        if msg_type in self.TYPES and isinstance(content, dict):
            with self._lock:
                self._texts.append(output_text(content))

    def texts(self) -> list[str]:
        with self._lock:
            return list(self._texts)


def output_text(output: dict) -> str:
    """All the text an output (or an iopub message's content) carries, in every MIME type."""
    parts = [output.get("text", "")]
    parts += [v if isinstance(v, str) else json.dumps(v) for v in (output.get("data") or {}).values()]
    parts += output.get("traceback") or []
    parts.append(output.get("evalue", ""))
    return "\n".join(p if isinstance(p, str) else "".join(p) for p in parts if p)


_recorder: OutputRecorder | None = None


def watch_outputs() -> OutputRecorder | None:
    """Start recording what this kernel publishes (idempotent); None outside an IPython kernel."""
    global _recorder
    if _recorder is not None:
        return _recorder
    with contextlib.suppress(ImportError):
        from IPython import get_ipython
        kernel = getattr(get_ipython(), "kernel", None)
        session = getattr(kernel, "session", None)
        if session is None:
            return None
        recorder, send = OutputRecorder(), session.send

        def recording_send(stream, msg_or_type, content=None, *args, **kwargs):
            try:
                if isinstance(msg_or_type, dict):
                    recorder.record(msg_or_type.get("header", {}).get("msg_type", ""), msg_or_type.get("content", {}))
                else:
                    recorder.record(msg_or_type, content or {})
            except Exception:  # noqa: BLE001 - recording must never break the kernel
                pass
            return send(stream, msg_or_type, content, *args, **kwargs)

        session.send = recording_send
        _recorder = recorder
    return _recorder


def _user_namespace() -> dict:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - labkit ships with IPython
        return {}
    shell = get_ipython()
    return shell.user_ns if shell is not None else {}


# ---------------------------------------------------------------- graded

def _ask(request: dict, timeout: float) -> dict:
    """One request to the grader over its Unix socket; the answer as a dict."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        try:
            conn.connect(os.environ[BRIDGE_ENV])
            conn.sendall(json.dumps(request).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(1 << 16)
                if not chunk:
                    break
                data += chunk
        except OSError as exc:
            return {"ok": False, "error": f"the grader did not answer ({exc})"}
    try:
        return json.loads(data)
    except ValueError:
        return {"ok": False, "error": "the grader's answer was not readable"}


def _brief(value) -> str:
    """An argument as a failure message shows it; text is never shown (it may be a secret)."""
    if isinstance(value, str):
        return f"<text of {len(value)} characters>"
    text = json.dumps(value) if isinstance(value, (list, dict)) else repr(value)
    return text if len(text) <= 60 else text[:57] + "…"
