"""Settings resolved from CLI flags and environment variables.

Precedence mirrors how each platform configures a container: an explicit flag
wins, then the platform's variable (Vertex AI, then SageMaker), then a generic one.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

DEFAULT_PORT = 8080
DEFAULT_MODEL_DIR = "/opt/ml/model"  # where SageMaker unpacks model.tar.gz
DEFAULT_VERSION = "1.0.0"

log = logging.getLogger("model_server")


def resolve_port(flag: Optional[int] = None, env: Mapping[str, str] = os.environ) -> int:
    """--port > AIP_HTTP_PORT > SAGEMAKER_BIND_TO_PORT > PORT > 8080."""
    if flag is not None:
        return int(flag)
    for name in ("AIP_HTTP_PORT", "SAGEMAKER_BIND_TO_PORT", "PORT"):
        value = env.get(name, "").strip()
        if value:
            try:
                return int(value)
            except ValueError:
                raise ValueError(f"{name}={value!r} is not a port number") from None
    return DEFAULT_PORT


def resolve_model_dir(flag: Optional[str] = None, env: Mapping[str, str] = os.environ) -> Path:
    """--model-dir > MODEL_DIR > AIP_STORAGE_URI (local paths only) > /opt/ml/model.

    Vertex's local endpoint (LocalModel.deploy_to_local_endpoint) mounts the
    artifacts and points AIP_STORAGE_URI at them; on real Vertex it is a gs://
    URI, which this server cannot download, so it is ignored with a warning.
    """
    if flag:
        return Path(flag)
    if env.get("MODEL_DIR"):
        return Path(env["MODEL_DIR"])
    uri = env.get("AIP_STORAGE_URI", "").strip()
    if uri:
        if uri.startswith("file://"):
            return Path(uri[len("file://"):])
        if "://" not in uri:
            return Path(uri)
        log.warning("AIP_STORAGE_URI=%s is remote; ignoring it and using %s", uri, DEFAULT_MODEL_DIR)
    return Path(DEFAULT_MODEL_DIR)


def _float_env(env: Mapping[str, str], name: str, default: float) -> float:
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a number") from None


def _device_env(env: Mapping[str, str]) -> str:
    from .accel import DEVICES

    value = env.get("MODEL_DEVICE", "").strip().lower() or "auto"
    if value not in DEVICES:
        raise ValueError(f"MODEL_DEVICE={value!r}: use one of {', '.join(DEVICES)}")
    return value


def _route_env(env: Mapping[str, str], name: str) -> Optional[str]:
    value = env.get(name, "").strip()
    if not value:
        return None
    return value if value.startswith("/") else "/" + value


@dataclass(frozen=True)
class Settings:
    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    model_dir: Path = Path(DEFAULT_MODEL_DIR)
    version: str = DEFAULT_VERSION
    model_load_delay_s: float = 0.0
    predict_delay_s: float = 0.0
    shutdown_grace_s: float = 10.0
    log_requests: bool = True
    health_route: Optional[str] = None   # AIP_HEALTH_ROUTE
    predict_route: Optional[str] = None  # AIP_PREDICT_ROUTE
    sagemaker_timeout: Optional[str] = None  # SAGEMAKER_MODEL_SERVER_TIMEOUT, logged only
    device: str = "auto"  # MODEL_DEVICE: auto | cpu | cuda (see accel.py)

    @classmethod
    def from_env(
        cls,
        host: Optional[str] = None,
        port: Optional[int] = None,
        model_dir: Optional[str] = None,
        env: Mapping[str, str] = os.environ,
    ) -> "Settings":
        return cls(
            host=host or "0.0.0.0",
            port=resolve_port(port, env),
            model_dir=resolve_model_dir(model_dir, env),
            version=env.get("APP_VERSION", "").strip() or DEFAULT_VERSION,
            model_load_delay_s=_float_env(env, "MODEL_LOAD_DELAY_S", 0.0),
            predict_delay_s=_float_env(env, "PREDICT_DELAY_S", 0.0),
            shutdown_grace_s=_float_env(env, "SHUTDOWN_GRACE_S", 10.0),
            log_requests=env.get("LOG_REQUESTS", "1").strip().lower() not in ("0", "false", "no", "off"),
            health_route=_route_env(env, "AIP_HEALTH_ROUTE"),
            predict_route=_route_env(env, "AIP_PREDICT_ROUTE"),
            sagemaker_timeout=env.get("SAGEMAKER_MODEL_SERVER_TIMEOUT") or None,
            device=_device_env(env),
        )
