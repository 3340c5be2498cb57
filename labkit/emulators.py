"""Local emulators of cloud APIs for the labs: moto's server mode for AWS.

``start_moto()`` runs ``moto_server`` as a child process on port 4566 (LocalStack's port,
the default of ``localstack-client``) or, when that is taken, a free port; it waits until
the server answers and registers its stop at interpreter exit. The returned
:class:`Moto` gives the environment an AWS SDK needs to talk to it (``AWS_ENDPOINT_URL``
and fake credentials) and stops it with ``stop()``. Nothing here ever touches a real
account: the credentials are fixed fake ones and every call goes to 127.0.0.1.
"""

from __future__ import annotations

import atexit
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PORT = 4566
REGION = "us-east-1"
# Fixed fake credentials: moto accepts any; these can never work against real AWS.
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",  # pragma: allowlist secret
                    "AWS_SESSION_TOKEN": "testing"}  # pragma: allowlist secret


class EmulatorError(RuntimeError):
    pass


def _port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def free_port(preferred: int | None = DEFAULT_PORT, host: str = "127.0.0.1") -> int:
    if preferred and _port_free(preferred, host):
        return preferred
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _parent_death_signal() -> None:  # pragma: no cover - runs in the child
    """Linux: the emulator gets SIGTERM if the Python process that started it dies."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - not Linux: atexit still stops it
        pass


@dataclass
class ChildServer:
    """A local server this process started (an emulator or stand-in): its log, and its stop."""
    port: int
    host: str = "127.0.0.1"
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    health_path = "/"  # a GET that answers 200 once the server is up

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}{self.health_path}", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def terminate(self, grace: float = 5) -> bool:
        """SIGTERM, then SIGKILL after ``grace`` seconds; True when it was running (safe to repeat)."""
        if not self.running():
            return False
        self.process.terminate()
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        return True


def start_child(server_class, argv: list[str], *, name: str, port: int | None, default_port: int,
                timeout: float, error=EmulatorError, env: dict | None = None, **fields):
    """Start ``argv`` (which serves on ``port``: the default if free, else a free one) as a child
    that dies with this process and is stopped at exit; wait until ``answers()``."""
    port = port or free_port(default_port)
    if not _port_free(port):
        raise error(f"port {port} is already in use: pass another port, or stop what uses it")
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")  # "the Vertex stand-in" → the-vertex-stand-in
    log = Path(tempfile.mkstemp(prefix=f"{slug}-{port}-", suffix=".log")[1])
    with open(log, "wb") as out:
        process = subprocess.Popen([a.replace("{port}", str(port)) for a in argv], stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env={**os.environ, **(env or {})},
                                   preexec_fn=_parent_death_signal if sys.platform == "linux" else None)
    server = server_class(port=port, process=process, log_path=log, **fields)
    atexit.register(server.stop)
    deadline = time.monotonic() + timeout
    while not server.answers():
        if not server.running():
            raise error(f"{name} exited (code {process.returncode}):\n{server.log_tail()}")
        if time.monotonic() > deadline:
            server.stop()
            raise error(f"{name} did not answer on {server.url} within {timeout:.0f}s:\n{server.log_tail()}")
        time.sleep(0.1)
    return server


@dataclass
class Moto(ChildServer):
    health_path = "/moto-api/data.json"
    _exported: dict | None = field(default=None, repr=False)

    @property
    def env(self) -> dict[str, str]:
        """Environment for an AWS SDK or CLI (here or in a container on the host network)."""
        return {"AWS_ENDPOINT_URL": self.url, "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
                **FAKE_CREDENTIALS}

    def client(self, service: str):
        """A boto3 client for ``service`` on this emulator (never a real account)."""
        import boto3
        return boto3.client(service, endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                            aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"])

    def localstack_session(self):
        """A ``localstack-client`` session on this emulator (it defaults to localhost:4566)."""
        from localstack_client.session import Session
        return Session(localstack_host=f"{self.host}:{self.port}", **{
            key: FAKE_CREDENTIALS[name] for key, name in (("aws_access_key_id", "AWS_ACCESS_KEY_ID"),
                                                          ("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY"),
                                                          ("aws_session_token", "AWS_SESSION_TOKEN"))})

    def reset(self) -> None:
        """Forget every resource (moto's reset API)."""
        urllib.request.urlopen(urllib.request.Request(f"{self.url}/moto-api/reset", method="POST"), timeout=5)

    def export(self) -> None:
        """Point every AWS SDK and CLI of this process (a lab's kernel, and the `!aws` commands it
        runs) at the emulator with the fake credentials; ``stop()`` puts the old values back."""
        if self._exported is None:
            self._exported = {name: os.environ.get(name) for name in self.env}
        os.environ.update(self.env)

    def stop(self, show: bool = False) -> None:
        """Stop the server (safe to repeat)."""
        if self.terminate() and show:
            print(f"stopped moto on port {self.port}")
        for name, value in (self._exported or {}).items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._exported = None


def start_moto(port: int | None = None, *, timeout: float = 30, show: bool = True) -> Moto:
    """Start ``moto_server`` on ``port`` (4566 if free, else a free one) and wait until it answers."""
    moto = start_child(Moto, [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "{port}"],
                       name="moto_server", port=port, default_port=DEFAULT_PORT, timeout=timeout,
                       env=FAKE_CREDENTIALS)
    if show:
        print(f"moto {_moto_version()} answers on {moto.url} (pid {moto.process.pid})")
    return moto


def _moto_version() -> str:
    try:
        from importlib.metadata import version
        return version("moto")
    except Exception:  # noqa: BLE001
        return "?"


# ---------------------------------------------------------------- real servers
