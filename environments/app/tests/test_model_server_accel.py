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
    assert accel.LinearPredictor(pipeline, "cpu").predict(rows.tolist()) == [str(x) for x in pipeline.predict(rows)]


def test_predictor_refuses_another_model():
    with pytest.raises(ValueError, match="retrain it"):
        accel.LinearPredictor(object())


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
