"""The device choice (MODEL_DEVICE) and the one-matrix-product predictor that runs on either device.

The GPU half runs where CuPy finds a GPU; here (no CuPy, no GPU) the tests hold what the CPU half
and the fallback promise. environments/gpu/device_check.py compares the two on a real GPU.
"""
from __future__ import annotations

import logging

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_iris

from model_server import accel
from model_server.config import Settings
from model_server.model import ModelHolder


@pytest.fixture(scope="module")
def pipeline(model_dir):
    return joblib.load(model_dir / "model.joblib")


def test_predictor_gives_the_pipelines_answers(pipeline):
    rows = load_iris().data
    rng = np.random.default_rng(0)
    rows = np.vstack([rows, rng.uniform(0, 8, size=(2000, 4))])  # and far from the training data
    assert accel.LinearPredictor.from_pipeline(pipeline, "cpu").predict(rows.tolist()) == [str(x) for x in pipeline.predict(rows)]


def test_predictor_refuses_another_model():
    with pytest.raises(ValueError, match="retrain it"):
        accel.LinearPredictor.from_pipeline(object())


@pytest.mark.skipif(accel.gpu_unavailable() is None, reason="a GPU is visible here")
def test_auto_falls_back_to_the_cpu_and_says_why(caplog):
    with caplog.at_level(logging.WARNING, logger="model_server"):
        assert accel.choose_device("auto") == "cpu"
    assert "no GPU: " in caplog.text and "predicting on the CPU" in caplog.text


@pytest.mark.skipif(accel.gpu_unavailable() is None, reason="a GPU is visible here")
def test_cuda_insists(model_dir):
    with pytest.raises(ValueError, match="MODEL_DEVICE=cuda but"):
        accel.choose_device("cuda")
    holder = ModelHolder(model_dir, "cuda")
    holder.load()
    assert holder.state == "failed" and "MODEL_DEVICE=cuda but" in holder.reason


def test_cpu_never_asks_for_a_gpu(model_dir, monkeypatch):
    monkeypatch.setattr(accel, "gpu_unavailable", lambda: pytest.fail("MODEL_DEVICE=cpu looked for a GPU"))
    holder = ModelHolder(model_dir, "cpu")
    holder.load()
    assert holder.ready and holder.device == "cpu"


def test_device_setting():
    assert Settings.from_env(env={}).device == "auto"
    assert Settings.from_env(env={"MODEL_DEVICE": " CPU "}).device == "cpu"
    with pytest.raises(ValueError, match="MODEL_DEVICE='gpu': use one of auto, cpu, cuda"):
        Settings.from_env(env={"MODEL_DEVICE": "gpu"})


def test_exported_weights_give_the_same_answers_without_scikit_learn(model_dir, tmp_path):
    """`python -m model_server export` writes linear.npz; a model folder holding only that and the
    metadata is served by NumPy alone (scikit-learn made unimportable in that process)."""
    import json
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import model_server

    app = str(Path(model_server.__file__).parents[1])
    done = subprocess.run([sys.executable, "-m", "model_server", "export", "--model-dir", str(model_dir)],
                          capture_output=True, text=True, check=True, cwd=app)
    weights = Path(json.loads(done.stdout)["weights"])
    assert weights == model_dir / "linear.npz"
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(weights, served)
    shutil.copy(model_dir / "metadata.json", served)
    rows = load_iris().data.tolist()
    script = ("import json, sys\nsys.modules['sklearn'] = sys.modules['joblib'] = sys.modules['scipy'] = None\n"
              "from model_server.model import ModelHolder\n"
              f"holder = ModelHolder({str(served)!r}, 'cpu')\nholder.load()\n"
              f"print(json.dumps([holder.state, holder.feature_names, holder.predict({rows!r})]))")
    state, features, answers = json.loads(subprocess.run([sys.executable, "-c", script], capture_output=True,
                                                         text=True, check=True, cwd=app).stdout)
    assert state == "ready" and len(features) == 4
    assert answers == [str(x) for x in joblib.load(model_dir / "model.joblib").predict(load_iris().data)]
