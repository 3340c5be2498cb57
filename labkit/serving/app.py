"""The sample model server as the labs' checks talk to it: known inputs, their right answers,
fresh inputs nobody could know in advance, one prediction call that also says which replica
answered (``X-Served-By``), and the server's log line for each batch it predicted."""

from __future__ import annotations

import hashlib
import json
import random
import re
import urllib.request
from pathlib import Path

from ..core.errors import RequirementNotMet
from ..core.waiting import wait_until

# Three Iris flowers, one of each class, and what the model must answer for them.
IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [5.9, 3.0, 4.2, 1.5], [6.7, 3.0, 5.2, 2.3]]
IRIS_CLASSES = ["setosa", "versicolor", "virginica"]


def random_rows(n: int = 4) -> list[list[float]]:
    """``n`` Iris-shaped rows drawn afresh (within the data set's ranges, one decimal)."""
    ranges = ((4.0, 8.0), (2.0, 4.5), (1.0, 7.0), (0.1, 2.5))
    return [[round(random.uniform(low, high), 1) for low, high in ranges] for _ in range(n)]


def rows_digest(rows) -> str:
    """The name the model server logs for a batch it predicted (``predicted N rows sha256:…``; the
    server's ``model.rows_digest``): how a check finds its own request in a container's log."""
    text = json.dumps([[float(v) for v in row] for row in rows], separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:12]


def predicted_digests(log: str) -> set[str]:
    """The digests of every batch a model server's log says it predicted."""
    return set(re.findall(r"predicted \d+ rows (sha256:[0-9a-f]{12})", log))


def predict(target: int | str, rows: list = IRIS_ROWS, *, timeout: float = 10) -> tuple[list, str | None]:
    """POST ``{"instances": rows}`` to ``/predict`` of ``target`` (a port on 127.0.0.1, or a
    base URL); returns the predictions and the ``X-Served-By`` header (the replica's hostname)."""
    base = f"http://127.0.0.1:{target}" if isinstance(target, int) else str(target).rstrip("/")
    request = urllib.request.Request(f"{base}/predict", json.dumps({"instances": rows}).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)["predictions"], response.headers.get("X-Served-By")


def wait_ready(container, port: int = 8080, *, timeout: float = 60) -> int:
    """Wait until the server in ``container`` answers ``/readyz`` with 200 (its model is loaded);
    returns the host port. Only the server's own answer counts, not Docker's health status."""
    from . import contract
    from ..tools import dockerlab

    host = dockerlab.host_port(container, port)

    def explain() -> str:
        container.reload()
        logs = container.logs(tail=10).decode(errors="replace").strip()
        return f"the container is {container.status}; last log lines:\n{logs}"

    wait_until(lambda: contract.request(host, "GET", "/readyz", timeout=2.0).status == 200, timeout=timeout,
               what=f"a 200 from /readyz on port {port}", error=RequirementNotMet, explain=explain)
    return host


def train(image: str, out: str | Path, *, lab: str) -> Path:
    """Train the model with ``image``'s own ``train`` command into the host folder ``out`` (made
    writable for the image's non-root user); raises with the container's output if it fails."""
    from ..tools import dockerlab

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o777)
    code, output = dockerlab.run_output(image, ["train", "--out", "/out"], lab=lab, timeout=120,
                                        volumes={str(out): {"bind": "/out", "mode": "rw"}})
    if code != 0:
        raise dockerlab.DockerLabError(f"training in {image} failed (exit code {code}):\n{output[-1000:]}")
    return out
