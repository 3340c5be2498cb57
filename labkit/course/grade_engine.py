"""The papermill engine ``labkit grade`` runs a prepared notebook with: two kernels.

The **student kernel** runs the notebook's cells: the student's answers and the lab's own
cells. The **checker kernel** runs only the solution's check and checker cells (and the
shared ones that define names), so no student code ever runs where the checks run, and no
cell of the student's can patch ``labkit.check``, a probe or a baseline. Both kernels share
the working directory, the Docker engine and the services the grader started.

While the checker works, the student kernel's process group is stopped (SIGSTOP), so that
nothing the student started in it (a thread, a child process) changes state under a check.
A check that needs the student's code (an exercise whose answer is a function) asks for it
over a Unix socket (:mod:`labkit.student`): the engine thaws the student kernel, runs the
call there in a cell of its own and hands back the JSON value, and the outputs the notebook
has shown so far.

Both kernels talk to the engine over IPC, not TCP: their sockets are files in the run's private
folder (only this user can open them), beside the bridge's. Everything is on one machine, so
there is no port to pick and nothing crosses a network to encrypt, and ipykernel does not warn,
at every start, that it runs over TCP in plain text.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import secrets
import signal
import tempfile
from pathlib import Path

import nbformat
from jupyter_core.utils import ensure_async, run_sync
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import Engine, papermill_engines

from . import cells
from .student import BRIDGE_ENV, output_text

NAME = "labkit-two-kernels"
#: Imported in the checker kernel before the first cell, so that a student's cell that later
#: rewrites a module on disk cannot change the code the checks run.
PRELOAD = ("labkit", "labkit.checks", "labkit.student", "labkit.dockerlab", "labkit.compose", "labkit.k8s",
           "labkit.serving", "labkit.contract", "labkit.sagemaker", "labkit.aws", "labkit.emulators",
           "labkit.secretscan", "labkit.lint", "labkit.capabilities", "labkit.cells", "labkit.lab")


class TwoKernelEngine(Engine):
    """Registered with papermill as :data:`NAME`; ``grade`` passes ``roles``, ``student_env`` and ``checker_env``."""

    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, *, roles: dict, student_env: dict, checker_env: dict,
                                 kernel_cwd: str, timeout: int | None = None, start_timeout: int = 60, **kwargs):
        run = _Run(nb_man, kernel_name, roles, student_env, checker_env, kernel_cwd, timeout, start_timeout)
        run_sync(run.main)()
        nb_man.nb.metadata.setdefault("labkit", {})["checker_errors"] = run.checker_errors
        return nb_man.nb


papermill_engines.register(NAME, TwoKernelEngine)


class _Run:
    def __init__(self, nb_man, kernel_name, roles, student_env, checker_env, cwd, timeout, start_timeout):
        self.nb_man, self.nb, self.roles, self.cwd = nb_man, nb_man.nb, roles, cwd
        # A cell that outlives the timeout is interrupted; ``error_on_timeout`` makes the client go on
        # even if the kernel ignores the interrupt (then the kernel is stopped, see _stuck).
        client_args = dict(kernel_name=kernel_name, timeout=timeout, startup_timeout=start_timeout,
                           allow_errors=True, interrupt_on_timeout=True, log_output=False,
                           error_on_timeout={"ename": "CellTimeoutError",
                                             "evalue": f"the cell ran longer than {timeout} s and was interrupted"})
        self.student = PapermillNotebookClient(nb_man, **client_args)
        self.checker = PapermillNotebookClient(nb_man, **client_args)
        self.student_env, self.checker_env = student_env, checker_env
        self.student_dead: str | None = None   # why the student kernel stopped running cells
        self.checker_dead: str | None = None
        self.checker_errors: list[dict] = []   # errors of cells the checker ran, for the report
        self.executed: list[int] = []          # indices of cells the student kernel ran
        self.count = 0

    # -- the whole run ---------------------------------------------------------------------
    async def main(self) -> None:
        with tempfile.TemporaryDirectory(prefix="labkit-bridge-") as folder:
            bridge = str(Path(folder) / "bridge.sock")
            self.student.km = _ipc_manager(self.student, Path(folder) / "student.json")
            self.checker.km = _ipc_manager(self.checker, Path(folder) / "checker.json")
            server = await asyncio.start_unix_server(self._serve, path=bridge)
            try:
                async with self.student.async_setup_kernel(env=self.student_env, cwd=self.cwd), \
                        self.checker.async_setup_kernel(env={**self.checker_env, BRIDGE_ENV: bridge}, cwd=self.cwd):
                    await self._preload()
                    for index, cell in enumerate(self.nb.cells):
                        await self._run_cell(index, cell)
            finally:
                server.close()
                with contextlib.suppress(Exception):
                    await server.wait_closed()
                self._thaw()  # never leave a stopped kernel behind

    async def _preload(self) -> None:
        source = "import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in PRELOAD)
        if lab := self.nb.metadata.get("labkit", {}).get("lab"):  # the lab's shipped files, read now
            source += f"importlib.import_module('labkit.lab').solution_notebook({str(lab)!r})\n"
        cell = nbformat.v4.new_code_cell(source)
        await self._scratch(self.checker, cell)

    async def _run_cell(self, index: int, cell) -> None:
        role = self.roles.get(cell.get("id"), cells.role(cell))
        self.nb_man.cell_start(cell, index)
        try:
            if cell.cell_type != "code":
                return
            if role == cells.CHECKER:
                await self._in_checker(cell, index)
            elif role == cells.SHARED:
                # The checker's copy runs first, so its names cannot depend on anything the
                # student's kernel did in the same cell; the notebook keeps the student's outputs.
                await self._in_checker(copy.deepcopy(cell), index)
                self.nb.cells[index] = cell
                await self._in_student(cell, index)
            else:
                await self._in_student(cell, index)
        except CellExecutionError as exc:  # not raised with allow_errors; kept for papermill's bookkeeping
            self.nb_man.cell_exception(self.nb.cells[index], cell_index=index, exception=exc)
        finally:
            self.nb_man.cell_complete(self.nb.cells[index], cell_index=index)

    # -- the two kernels --------------------------------------------------------------------
    async def _in_student(self, cell, index: int) -> None:
        if self.student_dead:
            cell.outputs = [_error_output("NotRun", f"not run: {self.student_dead}")]
            return
        self.count += 1
        self.student_dead = await self._run(self.student, cell, index, "the notebook's kernel",
                                            execution_count=self.count)
        self.executed.append(index)

    async def _in_checker(self, cell, index: int) -> None:
        if self.checker_dead:
            cell.outputs = [_error_output("NotRun", f"not run: {self.checker_dead}")]
            return
        self._freeze()
        try:
            self.checker_dead = await self._run(self.checker, cell, index, "the checks' kernel")
        finally:
            self._thaw()
        for output in cell.outputs:
            if output.get("output_type") == "error":  # the lab's own code failed where the checks run
                self.checker_errors.append({"cell": index, "ename": output.get("ename", ""),
                                            "evalue": str(output.get("evalue", ""))[:300]})

    async def _run(self, client, cell, index: int, kernel: str, **kwargs) -> str | None:
        """Run a cell in one kernel; None, or why that kernel can run no more cells."""
        try:
            await client.async_execute_cell(cell, index, **kwargs)
            return None
        except DeadKernelError:
            name, why = "DeadKernelError", f"{kernel} died while running cell {index}"
        except CellTimeoutError:
            name, why = "CellTimeoutError", await self._stuck(client, index)
        cell.outputs.append(_error_output(name, why))
        return why

    async def _stuck(self, client, where) -> str:
        """A cell outlived its timeout and its kernel did not settle after the interrupt: stop the
        kernel (a loop that ignores Ctrl-C would hold it for ever); say why for the later cells."""
        with contextlib.suppress(Exception):
            await ensure_async(client.km.shutdown_kernel(now=True))
        what = f"cell {where}" if isinstance(where, int) else where
        return f"{what} ran longer than {client.timeout} s and its kernel did not stop when interrupted, so it was shut down"

    async def _scratch(self, client, cell, timeout: float | None = None) -> list:
        """Run ``cell`` in ``client``'s kernel outside the notebook; its outputs."""
        scratch = nbformat.v4.new_notebook(cells=[cell])
        saved_nb, saved_timeout = client.nb, client.timeout
        client.nb = scratch
        if timeout is not None:
            client.timeout = int(timeout)
        try:
            await client.async_execute_cell(cell, 0, store_history=False)
        finally:
            client.nb, client.timeout = saved_nb, saved_timeout
        return cell.outputs

    # -- freezing the student's kernel ----------------------------------------------------
    def _student_group(self) -> int | None:
        provisioner = getattr(self.student.km, "provisioner", None)
        group = getattr(provisioner, "pgid", None)
        if not group or not hasattr(os, "killpg") or group == os.getpgrp() or self.student_dead:
            return None
        return group

    def _freeze(self) -> None:
        if (group := self._student_group()) is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGSTOP)

    def _thaw(self) -> None:
        if (group := self._student_group()) is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGCONT)

    # -- the bridge --------------------------------------------------------------------------
    async def _serve(self, reader, writer) -> None:
        try:
            request = json.loads(await reader.readline())
            if request.get("op") == "call":
                answer = await self._call(str(request["name"]), request.get("args") or [],
                                          float(request.get("timeout") or 120))
            elif request.get("op") == "outputs":
                answer = {"ok": True, "value": self._outputs()}
            else:
                answer = {"ok": False, "error": f"unknown request {request.get('op')!r}"}
        except Exception as exc:  # noqa: BLE001 - a bad request gets an answer, never a crash
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        writer.write(json.dumps(answer).encode() + b"\n")
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    async def _call(self, name: str, args: list, timeout: float) -> dict:
        if self.student_dead:
            return {"ok": False, "error": f"not called: {self.student_dead}"}
        if not name.isidentifier():
            return {"ok": False, "error": f"{name!r} is not a function name"}
        marker = "labkit-answer-" + secrets.token_hex(8)
        source = (
            "def _labkit_call():\n"
            "    import json as _json\n"
            "    try:\n"
            f"        _value = {name}(*_json.loads({json.dumps(args)!r}))\n"
            "    except NameError as _exc:\n"
            f"        if {name!r} in str(_exc):\n"
            f"            return {{'ok': False, 'error': '{name} is not defined: its cell did not run or raised'}}\n"
            "        return {'ok': False, 'error': f'raised NameError: {_exc}'}\n"
            "    except BaseException as _exc:\n"
            "        return {'ok': False, 'error': f'raised {type(_exc).__name__}: {_exc}'}\n"
            "    try:\n"
            "        return {'ok': True, 'value': _json.loads(_json.dumps(_value))}\n"
            "    except (TypeError, ValueError) as _exc:\n"
            "        return {'ok': False, 'error': f'returned a {type(_value).__name__}, not plain data'}\n"
            f"print({marker!r} + __import__('json').dumps(_labkit_call()))\n"
            "del _labkit_call\n")
        self._thaw()
        try:
            outputs = await self._scratch(self.student, nbformat.v4.new_code_cell(source), timeout)
        except DeadKernelError:
            self.student_dead = "the notebook's kernel died while a check called " + name
            return {"ok": False, "error": f"not answered: {self.student_dead}"}
        except CellTimeoutError:  # it ignored the interrupt: the kernel can run nothing more
            self.student_dead = await self._stuck(self.student, f"calling {name}")
            return {"ok": False, "error": f"did not return within {timeout:.0f}s, and could not be interrupted"}
        except Exception as exc:  # noqa: BLE001
            return {"ok": False, "error": f"the call could not run: {type(exc).__name__}: {exc}"}
        finally:
            self._freeze()
        text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
        lines = [line for line in text.splitlines() if line.startswith(marker)]
        if not lines:
            errors = [o for o in outputs if o.get("output_type") == "error"]
            why = f"{errors[0].get('ename')}: {errors[0].get('evalue')}" if errors else f"no answer within {timeout:.0f}s"
            return {"ok": False, "error": why}
        try:
            return json.loads(lines[-1][len(marker):])
        except ValueError:
            return {"ok": False, "error": "the answer could not be read"}

    def _outputs(self) -> list[str]:
        """The text of every output of the cells the student kernel ran so far."""
        return [output_text(o) for i in self.executed for o in self.nb.cells[i].get("outputs", [])]


def _ipc_manager(client: PapermillNotebookClient, connection_file: Path):
    """A manager for ``client``'s kernel that listens on Unix sockets named after ``connection_file``.

    The folder is the run's own (mode 0700, removed after the run); its path must stay short,
    as the bridge's socket's does: a socket path holds at most 104 bytes (macOS) or 108 (Linux).
    The client still owns the manager: it shuts the kernel down and cleans its files up.
    """
    return client.kernel_manager_class(kernel_name=client.kernel_name, config=client.config,
                                       transport="ipc", connection_file=str(connection_file))


def _error_output(name: str, value: str):
    return nbformat.v4.new_output("error", ename=name, evalue=value, traceback=[])
