"""Model loading, request parsing and prediction, free of any HTTP code.

Parsers raise BadRequest with a message meant for the client: it says which
instance and which feature is wrong, so a 400 is actionable.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from .accel import LinearPredictor, choose_device
from .train import METADATA_FILE, MODEL_FILE, WEIGHTS_FILE

log = logging.getLogger("model_server")

Rows = list[list[float]]


class BadRequest(ValueError):
    """The client sent something we cannot predict on (maps to HTTP 400)."""


def _number(value: Any, where: str, feature: str) -> float:
    # bool is an int subclass in Python; true/false are not features.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequest(f"{where}, feature {feature} is not a number: {json.dumps(value)}")
    number = float(value)
    if not math.isfinite(number):
        raise BadRequest(f"{where}, feature {feature} is not finite: {value}")
    return number


def _check_width(row: Sequence[Any], where: str, feature_names: Sequence[str]) -> None:
    if len(row) != len(feature_names):
        raise BadRequest(
            f"{where} has {len(row)} values; expected {len(feature_names)} "
            f"({', '.join(feature_names)})"
        )


def rows_digest(rows: Rows) -> str:
    """A short name for a batch of rows, logged with each prediction: a client (or a grader) that
    knows what it sent can find its request in the server's log without the log holding the data."""
    text = json.dumps([[float(v) for v in row] for row in rows], separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:12]


def parse_json_instances(body: bytes, feature_names: Sequence[str]) -> Rows:
    """Parse ``{"instances": [[f1, f2, ...], ...]}`` (extra keys such as Vertex's
    "parameters" are ignored)."""
    if not body.strip():
        raise BadRequest('request body is empty; expected JSON {"instances": [[...], ...]}')
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or "instances" not in doc:
        raise BadRequest('expected a JSON object with key "instances": {"instances": [[...], ...]}')
    instances = doc["instances"]
    if not isinstance(instances, list) or not instances:
        raise BadRequest('"instances" must be a non-empty list of rows')
    rows: Rows = []
    for i, row in enumerate(instances):
        where = f"instance {i}"
        if not isinstance(row, list):
            raise BadRequest(
                f"{where} must be a list of {len(feature_names)} numbers, got {type(row).__name__}"
            )
        _check_width(row, where, feature_names)
        rows.append([_number(v, where, f'{j} ("{feature_names[j]}")') for j, v in enumerate(row)])
    return rows


def parse_csv_instances(body: bytes, feature_names: Sequence[str]) -> Rows:
    """Parse SageMaker-style CSV: one instance per line, no header, no label column."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"CSV body is not UTF-8: {exc}") from None
    rows: Rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"CSV line {lineno}"
        cells = [cell.strip() for cell in line.split(",")]
        _check_width(cells, where, feature_names)
        row = []
        for j, cell in enumerate(cells):
            feature = f'{j} ("{feature_names[j]}")'
            try:
                number = float(cell)
            except ValueError:
                raise BadRequest(f"{where}, feature {feature} is not a number: {cell!r}") from None
            row.append(_number(number, where, feature))
        rows.append(row)
    if not rows:
        raise BadRequest("CSV body has no rows; expected one line of numbers per instance")
    return rows


class ModelHolder:
    """Holds the model and its loading state: loading -> ready | failed."""

    def __init__(self, model_dir: Path, device: str = "auto"):
        self.model_dir = Path(model_dir)
        self.requested_device = device
        self.device: Optional[str] = None  # "cpu" or "cuda" once loaded
        self.state = "loading"
        self.reason = "model is loading"
        self.predictor: Optional[LinearPredictor] = None
        self.metadata: Optional[dict] = None
        self._lock = threading.Lock()

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    @property
    def feature_names(self) -> list[str]:
        return list(self.metadata["feature_names"]) if self.metadata else []

    def load(self, delay_s: float = 0.0) -> None:
        """Load model.joblib (else linear.npz, which needs no scikit-learn) and metadata.json;
        never raises (the state says what happened)."""
        if delay_s > 0:
            log.info("MODEL_LOAD_DELAY_S=%s: sleeping before loading the model", delay_s)
            time.sleep(delay_s)
        started = time.monotonic()
        model_path = self.model_dir / MODEL_FILE
        weights_path = self.model_dir / WEIGHTS_FILE
        meta_path = self.model_dir / METADATA_FILE
        try:
            device = choose_device(self.requested_device)
            metadata = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
            if model_path.is_file():
                import joblib  # deferred: importing scikit-learn takes ~1 s
                import sklearn

                predictor = LinearPredictor.from_pipeline(joblib.load(model_path), device)
                trained_with = metadata.get("sklearn_version")
                if trained_with and trained_with != sklearn.__version__:
                    log.warning("model was trained with scikit-learn %s but %s is installed",
                                trained_with, sklearn.__version__)
            elif weights_path.is_file():
                predictor = LinearPredictor.from_file(weights_path, device)
            else:
                raise FileNotFoundError(
                    f"no model at {model_path} (nor exported weights at {weights_path}); train one with "
                    f"`python -m model_server train --out {self.model_dir}` "
                    "or set MODEL_DIR / --model-dir"
                )
            metadata.setdefault("feature_names", [f"f{i}" for i in range(predictor.n_features)])
            metadata.setdefault("class_names", predictor.classes)
        except Exception as exc:  # any failure keeps the server alive but not ready
            with self._lock:
                self.state, self.reason = "failed", f"model failed to load: {exc}"
            log.error("%s", self.reason)
            return
        with self._lock:
            self.predictor, self.metadata, self.device = predictor, metadata, device
            self.state, self.reason = "ready", "model loaded"
        log.info("model loaded from %s in %.0f ms (%s, accuracy %s, on %s)", self.model_dir,
                 (time.monotonic() - started) * 1000, metadata.get("name", "model"),
                 metadata.get("accuracy", "n/a"), device)

    def predict(self, rows: Rows) -> list[str]:
        if not self.ready:
            raise RuntimeError(self.reason)
        return self.predictor.predict(rows)
