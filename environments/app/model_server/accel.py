"""Where the model's arithmetic runs: on an NVIDIA GPU through CuPy when one is visible, else on the CPU.

The sample model is StandardScaler then LogisticRegression, so a prediction is one affine map
and an argmax. Folding the scaler into the weights leaves a single matrix product, which NumPy
runs on the CPU and CuPy (same API) on the GPU: one code path, two devices, the same answers.

``MODEL_DEVICE`` picks: ``auto`` (the default) uses the GPU when CuPy finds one and says in the
log why it does not when it falls back to the CPU; ``cpu`` never touches CUDA; ``cuda`` insists,
and the model then fails to load (the server stays up, not ready, with the reason) when no GPU is
visible: a GPU deployment that silently ran on the CPU would be slow and nobody would know why.
"""
from __future__ import annotations

import logging
from typing import Any, Sequence

log = logging.getLogger("model_server")

DEVICES = ("auto", "cpu", "cuda")


def gpu_unavailable() -> str | None:
    """None when CuPy can run on a GPU in this process, else why not (in words for the log)."""
    try:
        import cupy
    except ImportError:
        return "CuPy is not installed (a CPU-only image)"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001 - CUDARuntimeError, or a driver too old for the CUDA it ships
        return f"the CUDA runtime found no usable GPU ({type(exc).__name__}: {exc})"
    if count == 0:
        return "no GPU is visible to this container (run it with --gpus, or set NVIDIA_VISIBLE_DEVICES)"
    return None


def gpu_name() -> str:
    import cupy

    name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def choose_device(requested: str) -> str:
    """"cpu" or "cuda" for MODEL_DEVICE=``requested``; raises ValueError when it cannot be had."""
    if requested not in DEVICES:
        raise ValueError(f"MODEL_DEVICE={requested!r}: use one of {', '.join(DEVICES)}")
    if requested == "cpu":
        return "cpu"
    reason = gpu_unavailable()
    if reason is None:
        log.info("predicting on the GPU: %s", gpu_name())
        return "cuda"
    if requested == "cuda":
        raise ValueError(f"MODEL_DEVICE=cuda but {reason}")
    log.warning("no GPU: %s; predicting on the CPU", reason)
    return "cpu"


class LinearPredictor:
    """The fitted pipeline as one matrix product, on ``device`` ("cpu" or "cuda"): made from the
    scikit-learn pipeline (:meth:`from_pipeline`), or from the weights file that ``python -m
    model_server export`` writes (:meth:`from_file`), which needs NumPy alone: an image can serve
    the model without scikit-learn and SciPy."""

    def __init__(self, weights: Any, bias: Any, classes: Sequence[Any], device: str = "cpu"):
        import numpy as np

        self.classes = [str(c) for c in classes]
        self.device = device
        self._saved = (np.asarray(weights, dtype=np.float64), np.asarray(bias, dtype=np.float64))
        if device == "cuda":
            import cupy

            self._xp = cupy
        else:
            self._xp = np
        self._weights = self._xp.asarray(self._saved[0])
        self._bias = self._xp.asarray(self._saved[1])

    @classmethod
    def from_pipeline(cls, pipeline: Any, device: str = "cpu") -> LinearPredictor:
        import numpy as np

        steps = dict(getattr(pipeline, "named_steps", {}))
        scaler, classifier = steps.get("scaler"), steps.get("clf")
        if scaler is None or classifier is None or not hasattr(classifier, "coef_"):
            raise ValueError("the model is not the sample's Pipeline(scaler=StandardScaler, clf=LogisticRegression): "
                             "retrain it with `python -m model_server train`")
        mean = scaler.mean_ if scaler.with_mean else np.zeros_like(classifier.coef_[0])
        scale = scaler.scale_ if scaler.with_std else np.ones_like(classifier.coef_[0])
        # ((x - mean) / scale) @ coef.T + b  ==  x @ (coef / scale).T + (b - (mean / scale) @ coef.T)
        weights = (classifier.coef_ / scale).T
        bias = classifier.intercept_ - (mean / scale) @ classifier.coef_.T
        return cls(weights, bias, classifier.classes_, device)

    @classmethod
    def from_file(cls, path: Any, device: str = "cpu") -> LinearPredictor:
        import numpy as np

        with np.load(path, allow_pickle=False) as saved:
            return cls(saved["weights"], saved["bias"], saved["classes"].tolist(), device)

    def save(self, path: Any) -> None:
        import numpy as np

        with open(path, "wb") as out:  # a file object: np.savez would add ".npz" to a name without it
            np.savez(out, weights=self._saved[0], bias=self._saved[1], classes=np.asarray(self.classes))

    @property
    def n_features(self) -> int:
        return int(self._saved[0].shape[0])

    def predict(self, rows: Sequence[Sequence[float]]) -> list[str]:
        xp = self._xp
        scores = xp.asarray(rows, dtype=xp.float64) @ self._weights + self._bias
        if scores.shape[1] == 1:  # binary: one column of log-odds for the second class
            picked = (scores[:, 0] > 0).astype(xp.int64)
        else:
            picked = xp.argmax(scores, axis=1)
        indexes = picked.get() if self.device == "cuda" else picked
        return [self.classes[int(i)] for i in indexes]
