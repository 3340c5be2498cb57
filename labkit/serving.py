"""The sample model server as the labs' checks talk to it: known inputs, their right answers,
and one prediction call that also says which replica answered (``X-Served-By``)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

# Three Iris flowers, one of each class, and what the model must answer for them.
IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [5.9, 3.0, 4.2, 1.5], [6.7, 3.0, 5.2, 2.3]]
IRIS_CLASSES = ["setosa", "versicolor", "virginica"]


def predict(target: int | str, rows: list = IRIS_ROWS, *, timeout: float = 10) -> tuple[list, str | None]:
    """POST ``{"instances": rows}`` to ``/predict`` of ``target`` (a port on 127.0.0.1, or a
    base URL); returns the predictions and the ``X-Served-By`` header (the replica's hostname)."""
    base = f"http://127.0.0.1:{target}" if isinstance(target, int) else str(target).rstrip("/")
    request = urllib.request.Request(f"{base}/predict", json.dumps({"instances": rows}).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)["predictions"], response.headers.get("X-Served-By")


def train(image: str, out: str | Path, *, lab: str) -> Path:
    """Train the model with ``image``'s own ``train`` command into the host folder ``out`` (made
    writable for the image's non-root user); raises with the container's output if it fails."""
    from . import dockerlab

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o777)
    code, output = dockerlab.run_output(image, ["train", "--out", "/out"], lab=lab, timeout=120,
                                        volumes={str(out): {"bind": "/out", "mode": "rw"}})
    if code != 0:
        raise RuntimeError(f"training in {image} failed (exit code {code}):\n{output[-1000:]}")
    return out
