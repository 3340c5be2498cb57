"""One way to reach the Docker engine: a client with a time-out that fits the call."""

from __future__ import annotations

#: Seconds a client waits for one answer: a probe must not hang, a build may take minutes.
PROBE_TIMEOUT_S = 3
DEFAULT_TIMEOUT_S = 300


def docker_client(timeout: int = DEFAULT_TIMEOUT_S):
    """A Docker SDK client for the engine ``DOCKER_HOST`` (or the default socket) names. Raises
    ``docker.errors.DockerException`` when no engine answers. Callers that make many calls keep
    one (``labkit.dockerlab.client()``)."""
    import docker

    return docker.from_env(timeout=timeout)
