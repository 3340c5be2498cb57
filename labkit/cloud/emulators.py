"""Local emulators of cloud APIs for the labs: moto's server mode for AWS.

``start_moto()`` runs ``moto_server`` as a child process on port 4566 (LocalStack's port,
the default of ``localstack-client``) or, when that is taken, a free port; it waits until
the server answers and registers its stop at interpreter exit. The returned
:class:`Moto` gives the environment an AWS SDK needs to talk to it (``AWS_ENDPOINT_URL``
and fake credentials) and stops it with ``stop()``. Nothing here ever touches a real
account: the credentials are fixed fake ones and every call goes to 127.0.0.1.

The server records every request it answers (moto's recorder), so that a check can tell
what a student's code really asked the emulator. When ``labkit grade`` runs a lab it starts
the emulator itself and names it in ``LABKIT_MOTO_URL``: ``start_moto()`` then attaches to
that one, and ``stop()`` leaves it to the grader.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import LabkitError, RequirementNotMet
from ..core.names import slug
from ..core.waiting import wait_until

DEFAULT_PORT = 4566
REGION = "us-east-1"
MOTO_URL_ENV = "LABKIT_MOTO_URL"              # the emulator the grader runs for this lab
MOTO_RECORDING_ENV = "LABKIT_MOTO_RECORDING"  # its request log (given to the checks' kernel only)
# Fixed fake credentials: moto accepts any; these can never work against real AWS.
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",  # pragma: allowlist secret
                    "AWS_SESSION_TOKEN": "testing"}  # pragma: allowlist secret


class EmulatorError(LabkitError):
    """An emulator or stand-in would not start, or cannot do what was asked of it."""


class NoSuchSecret(RequirementNotMet, AssertionError):
    """Secrets Manager has no such secret (an AssertionError too: lab 03's cells catch that)."""


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

    @classmethod
    def attach(cls, url: str, *, error: type[Exception], **fields):
        """The server another process (the grader) started at ``url``, once it answers."""
        address = urllib.parse.urlsplit(url)
        server = cls(port=address.port, host=address.hostname, **fields)
        if not server.answers():
            raise error(f"the grader's server at {url} does not answer")
        return server

    @property
    def attached(self) -> bool:
        """True for a server another process started (the grader's), which this one must not stop."""
        return self.process is None

    def running(self) -> bool:
        if self.attached:
            return self.answers()
        return self.process.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def terminate(self, grace: float = 5) -> bool:
        """SIGTERM, then SIGKILL after ``grace`` seconds; True when it was running (safe to repeat)."""
        if self.attached or self.process.poll() is not None:
            return False
        self.process.terminate()
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        return True


class _PortTaken(Exception):
    """The child could not have its port: another process took it between the check and the bind."""


def _listens(process: subprocess.Popen, port: int) -> bool:
    """Whether ``process`` itself listens on ``port``: an answer on the port may come from another
    server (another lab's emulator that won the race for the default port)."""
    import psutil

    try:
        return any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
                   for c in psutil.Process(process.pid).net_connections(kind="inet"))
    except psutil.Error:  # it ended meanwhile
        return False


def start_child(server_class, argv: list[str], *, name: str, port: int | None, default_port: int,
                timeout: float, error=EmulatorError, env: dict | None = None, **fields):
    """Start ``argv`` (which serves on ``port``: the default if free, else a free one) as a child
    that dies with this process and is stopped at exit; wait until it answers, from its own socket.
    Two processes that find the default port free at once both try it; the one that loses the bind
    tries a free port instead of taking the winner's server for its own."""
    for attempt in range(3):
        chosen = port or free_port(default_port if attempt == 0 else None)
        try:
            return _start_child(server_class, argv, name=name, port=chosen, requested=port is not None,
                                timeout=timeout, error=error, env=env, **fields)
        except _PortTaken:
            continue
    raise error(f"{name} found no free port three times running: is something starting servers in a loop?")


def _start_child(server_class, argv, *, name, port, requested, timeout, error, env, **fields):
    if not _port_free(port):
        if not requested:
            raise _PortTaken()
        raise error(f"port {port} is already in use: pass another port, or stop what uses it")
    log = Path(tempfile.mkstemp(prefix=f"{slug(name)}-{port}-", suffix=".log")[1])
    with open(log, "wb") as out:
        process = subprocess.Popen([a.replace("{port}", str(port)) for a in argv], stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env={**os.environ, **(env or {})},
                                   preexec_fn=_parent_death_signal if sys.platform == "linux" else None)
    server = server_class(port=port, process=process, log_path=log, **fields)
    atexit.register(server.stop)

    def up() -> bool:
        if not server.running():
            if not requested and not _port_free(port):  # it lost the port to another process
                raise _PortTaken()
            raise error(f"{name} exited (code {process.returncode}):\n{server.log_tail()}")
        return server.answers() and _listens(process, port)

    try:
        wait_until(up, timeout=timeout, what=f"{name} to answer on {server.url}", every=0.1, error=error,
                   explain=lambda: "last log lines:\n" + server.log_tail())
    except error:
        if server.running():  # it did not answer in time: it is not kept
            server.stop()
        raise
    return server


@dataclass
class Moto(ChildServer):
    health_path = "/moto-api/"  # the dashboard: static, unlike data.json, which dumps every resource
    recording: Path | None = None  # moto's request log, one JSON object a line
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

    def requests(self) -> list[dict]:
        """Every request the emulator answered so far: ``method``, ``url``, ``headers``, ``body`` (bytes)."""
        if self.recording is None:
            raise EmulatorError("this emulator's requests are not recorded here")
        found = []
        with contextlib.suppress(FileNotFoundError):
            for line in self.recording.read_text(errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                body = entry.get("body") or ""
                entry["body"] = base64.b64decode(body) if entry.get("body_encoded") else str(body).encode()
                found.append(entry)
        return found

    def stop(self, show: bool = False) -> None:
        """Stop the server (safe to repeat); one the grader runs is left running."""
        if self.terminate() and show:
            print(f"stopped moto on port {self.port}")
        elif self.attached and show:
            print(f"moto on port {self.port} belongs to the grader: it stops it")
        for name, value in (self._exported or {}).items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._exported = None


def secret_stages(secretsmanager, secret_id: str) -> dict[str, str]:
    """{version stage: value} of a Secrets Manager secret (AWSCURRENT, AWSPREVIOUS…); NoSuchSecret
    when there is none."""
    try:
        secretsmanager.describe_secret(SecretId=secret_id)
    except secretsmanager.exceptions.ResourceNotFoundException:
        raise NoSuchSecret(f"there is no secret {secret_id} in Secrets Manager") from None
    versions = secretsmanager.list_secret_version_ids(SecretId=secret_id)["Versions"]
    return {stage: secretsmanager.get_secret_value(SecretId=secret_id, VersionId=v["VersionId"])["SecretString"]
            for v in versions for stage in v["VersionStages"]}


def start_moto(port: int | None = None, *, timeout: float = 30, show: bool = True,
               recording: str | Path | None = None) -> Moto:
    """Start ``moto_server`` on ``port`` (4566 if free, else a free one) and wait until it answers;
    its request log goes to ``recording`` (a new temporary file by default). Under ``labkit
    grade`` (``LABKIT_MOTO_URL`` set, no ``port`` asked for) attach to the grader's instead."""
    if port is None and (url := os.environ.get(MOTO_URL_ENV)):
        log = os.environ.get(MOTO_RECORDING_ENV)
        moto = Moto.attach(url, error=EmulatorError, recording=Path(log) if log else None)
        if show:
            print(f"moto answers on {moto.url} (started by the grader)")
        return moto
    if recording is None:
        recording = tempfile.mkstemp(prefix="moto-requests-", suffix=".jsonl")[1]
    moto = start_child(Moto, [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "{port}"],
                       name="moto_server", port=port, default_port=DEFAULT_PORT, timeout=timeout,
                       env={**FAKE_CREDENTIALS, "MOTO_ENABLE_RECORDING": "1",
                            "MOTO_RECORDER_FILEPATH": str(recording)},
                       recording=Path(recording))
    if show:
        print(f"moto {_moto_version()} answers on {moto.url} (pid {moto.process.pid})")
    return moto


def _moto_version() -> str:
    try:
        from importlib.metadata import version
        return version("moto")
    except Exception:  # noqa: BLE001
        return "?"

