"""Train the Iris classifier and write ``model.joblib`` + ``metadata.json``; export its weights
(``linear.npz``) for an image that serves it with NumPy alone.

Deterministic: fixed split and solver seed, so every build trains the same model.
``trained_at`` honours SOURCE_DATE_EPOCH (the reproducible-builds convention) so
that a build can also produce byte-identical metadata when it wants to.
"""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
WEIGHTS_FILE = "linear.npz"  # the pipeline folded into one matrix product: NumPy serves it


def _trained_at() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    moment = datetime.fromtimestamp(int(epoch), timezone.utc) if epoch else datetime.now(timezone.utc)
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def train(out_dir: str | os.PathLike) -> dict:
    """Fit Pipeline(StandardScaler, LogisticRegression) on Iris; return the metadata written."""
    import joblib
    import sklearn
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    iris = load_iris()  # ships inside scikit-learn: no download
    class_names = [str(name) for name in iris.target_names]
    labels = iris.target_names[iris.target]  # train on names so predict() returns them
    x_train, x_test, y_train, y_test = train_test_split(
        iris.data, labels, test_size=0.25, random_state=0, stratify=labels
    )
    model = Pipeline([
        ("scaler", StandardScaler()),
        ("clf", LogisticRegression(random_state=0, max_iter=1000)),
    ])
    model.fit(x_train, y_train)

    metadata = {
        "name": "iris-logreg",
        "feature_names": [str(name) for name in iris.feature_names],
        "class_names": class_names,
        "sklearn_version": sklearn.__version__,
        "accuracy": round(float(model.score(x_test, y_test)), 4),
        "n_train": int(len(x_train)),
        "n_test": int(len(x_test)),
        "trained_at": _trained_at(),
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, out / MODEL_FILE)
    (out / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
    return metadata


def export(model_dir: str | os.PathLike) -> Path:
    """Write the trained pipeline of ``model_dir`` as ``linear.npz`` beside it (it needs
    scikit-learn to read the pipeline; the file it writes needs NumPy alone)."""
    import joblib

    from .accel import LinearPredictor

    folder = Path(model_dir)
    target = folder / WEIGHTS_FILE
    LinearPredictor.from_pipeline(joblib.load(folder / MODEL_FILE)).save(target)
    return target
