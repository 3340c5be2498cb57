"""Which release gets the traffic (lab 08): blue and green, two releases of the sample model
server, side by side behind nginx on one machine. The live release answers on the proxy's port
80, the other on a preview port (8081) that only testers use; both are published on 127.0.0.1.

A switch rewrites one small nginx include (``routes.inc``: which service is ``$live`` and which
``$preview``) and reloads nginx gracefully (``nginx -s reload``): the master process checks the
new configuration, starts new workers with it, and tells the old workers to stop accepting and
to exit once their requests in flight are answered. A client that opens a connection per request
sees no failure across a switch; a kept-alive connection is closed by its old worker when idle,
and a client that sends on it at that very moment gets a reset (HTTP clients retry that only for
idempotent requests, which a POST is not). Lab 08 measures the first kind: ``run_load`` sends
``Connection: close``.

Nothing is removed by a switch: the old release keeps running, for a rollback, until it is
deleted on purpose (:func:`remove_release`).
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request
from pathlib import Path

import yaml

from ..core import labels
from ..core.errors import LabkitError, RequirementNotMet
from ..core.waiting import wait_until
from . import compose

COLORS = ("blue", "green")
LIVE_PORT, PREVIEW_PORT = 80, 8081
ROUTES = "routes.inc"

NGINX_CONF = """\
# Blue-green in front of the model server (lab 08; labkit.tools.traffic writes this file).
# routes.inc says which release is live and which is in preview; a switch rewrites it and
# reloads nginx gracefully. Docker's DNS resolves the service names every 5 s.
resolver 127.0.0.11 valid=5s ipv6=off;
resolver_timeout 2s;

server {
    listen 80;            # the live release: what users get
    server_name _;
    include /etc/nginx/conf.d/routes.inc;

    location = /nginx-health {
        access_log off;
        default_type text/plain;
        return 200 "ok\\n";
    }

    location / {
        proxy_pass $live;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_connect_timeout 2s;
        proxy_read_timeout 10s;
        add_header X-Release $live always;
    }
}

server {
    listen 8081;          # the preview: the release being tested, no user traffic
    server_name _;
    include /etc/nginx/conf.d/routes.inc;

    location / {
        proxy_pass $preview;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_connect_timeout 2s;
        proxy_read_timeout 10s;
        add_header X-Release $preview always;
    }
}
"""


class SwitchError(LabkitError):
    """nginx refused the new routes, or the live port did not come to answer from the release asked for."""


def other(color: str) -> str:
    if color not in COLORS:
        raise ValueError(f"a release is {' or '.join(COLORS)}, not {color!r}")
    return COLORS[1 - COLORS.index(color)]


def routes_text(live: str) -> str:
    """The include that makes ``live`` the live release and the other one the preview."""
    return (f"# which release is live (labkit.tools.traffic.route); the other one is in preview\n"
            f"set $live http://{live}:8080;\nset $preview http://{other(live)}:8080;\n")


def write_stack(directory: str | Path, *, lab: str, images: dict[str, str], versions: dict[str, str],
                live: str | None = None, cpus: str = "0.50", models: dict[str, str | Path] | None = None) -> Path:
    """A Compose project in ``directory``: services ``blue`` and ``green`` (``images[color]``,
    ``APP_VERSION=versions[color]``, each with lab 02's health check and a ``cpus`` limit; with
    ``models[color]``, a host folder mounted read-only as that release's model) and ``proxy``
    (nginx 1.27 with :data:`NGINX_CONF`; ports 80 and 8081 published on 127.0.0.1), all labelled
    for ``lab``. ``live`` makes that release live; None keeps the routes already written (blue
    for a new stack), so that rewriting the stack to change one release never moves the traffic.
    Returns the directory."""
    directory = Path(directory)
    for color in COLORS:
        if color not in images or color not in versions:
            raise ValueError(f"write_stack needs an image and a version for {color}")
    health = {"test": ["CMD", "python", "-m", "model_server", "healthcheck", "--ready"],
              "interval": "2s", "timeout": "5s", "retries": 2, "start_period": "20s"}
    services = {color: {"image": images[color], "init": True, "restart": "unless-stopped",
                        "environment": {"APP_VERSION": versions[color]}, "healthcheck": health,
                        "deploy": {"resources": {"limits": {"cpus": cpus, "memory": "256M"}}},
                        "labels": {labels.LAB: lab}} for color in COLORS}
    for color, folder in (models or {}).items():
        services[color]["environment"]["MODEL_DIR"] = "/opt/ml/release-model"
        services[color]["volumes"] = [f"{Path(folder).resolve()}:/opt/ml/release-model:ro"]
    services["proxy"] = {
        "image": "nginx:1.27", "restart": "unless-stopped",
        "depends_on": {color: {"condition": "service_started"} for color in COLORS},
        "ports": [f"127.0.0.1::{LIVE_PORT}", f"127.0.0.1::{PREVIEW_PORT}"],
        "volumes": ["./nginx:/etc/nginx/conf.d:ro"],
        "healthcheck": {"test": ["CMD", "curl", "-fsS", "http://127.0.0.1/nginx-health"],
                        "interval": "2s", "timeout": "2s", "retries": 3},
        "deploy": {"resources": {"limits": {"cpus": "0.25", "memory": "64M"}}},
        "labels": {labels.LAB: lab}}
    doc = {"services": services, "networks": {"default": {"labels": {labels.LAB: lab}}}}
    (directory / "nginx").mkdir(parents=True, exist_ok=True)
    (directory / "nginx" / "default.conf").write_text(NGINX_CONF)
    if live is not None or routed_live(directory) is None:
        route(directory, live or "blue")
    (directory / "compose.yaml").write_text(f"# blue-green for lab {lab} (labkit.tools.traffic.write_stack)\n"
                                            + yaml.safe_dump(doc, sort_keys=False))
    return directory


def route(directory: str | Path, live: str) -> Path:
    """Write ``routes.inc`` for ``live``, atomically (a reload never reads half a file)."""
    target = Path(directory) / "nginx" / ROUTES
    scratch = target.with_suffix(".tmp")
    scratch.write_text(routes_text(live))
    os.replace(scratch, target)
    return target


def routed_live(directory: str | Path) -> str | None:
    """Which release ``routes.inc`` makes live (None: no such file, or one this module did not write)."""
    path = Path(directory) / "nginx" / ROUTES
    if not path.exists():
        return None
    text = path.read_text()
    return next((color for color in COLORS if text == routes_text(color)), None)


#: The PIDs of the proxy's nginx workers, from their process titles ("nginx: worker process").
WORKERS = ("for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null | grep -q '^nginx: worker' "
           "&& echo ${p#/proc/}; done; true")


def workers(proxy) -> set[str]:
    _, output = proxy.exec_run(["sh", "-c", WORKERS])
    return set(output.decode().split())


def reload(project: str, *, timeout: float = 15.0) -> None:
    """``nginx -t`` then ``nginx -s reload`` in the project's proxy, then wait until every worker
    that ran before has exited: ``nginx -s reload`` only signals the master, and until an old
    worker has taken in its signal it still accepts new connections with the old routes
    (measured: 27 of 1,335 requests sent after a switch had returned went to the old release when
    the switch waited only for one answer from the new one). SwitchError with nginx's words when
    the configuration is refused (the running one then stays in force)."""
    proxy = compose.container(project, "proxy")
    before = workers(proxy)
    for argv in (["nginx", "-t"], ["nginx", "-s", "reload"]):
        code, output = proxy.exec_run(argv)
        if code != 0:
            raise SwitchError(f"`{' '.join(argv)}` in {proxy.name} failed (exit {code}): "
                              f"{output.decode(errors='replace').strip()[-600:]}")
    wait_until(lambda: not before & workers(proxy), timeout=timeout, every=0.05,
               what="nginx's old workers to finish their requests and exit", error=SwitchError)


def version_at(port: int, *, timeout: float = 3.0) -> str:
    """The ``version`` that ``GET /version`` answers on 127.0.0.1:``port`` (through the proxy)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/version", timeout=timeout) as response:
        return json.load(response)["version"]


def switch(directory: str | Path, project: str, to: str, *, expect_version: str,
           timeout: float = 15.0) -> float:
    """Make ``to`` the live release: rewrite the routes, reload nginx, and wait until the live
    port answers with ``expect_version``. Returns the seconds from the rewrite to that answer."""
    started = time.monotonic()
    route(directory, to)
    reload(project)
    wait_for_version(compose.published_port(project, "proxy", LIVE_PORT), expect_version, timeout=timeout,
                     every=0.05, what=f"version {expect_version} on the live port")
    return time.monotonic() - started


def wait_for_version(port: int, version: str, *, timeout: float, every: float, what: str) -> None:
    """Wait until ``GET /version`` on 127.0.0.1:``port`` answers ``version`` (an error is no answer yet)."""

    def answered() -> bool:
        try:
            return version_at(port) == version
        except OSError:
            return False

    wait_until(answered, timeout=timeout, every=every, what=what, error=SwitchError)


def redeploy(directory: str | Path, project: str, color: str, *, expect_version: str, timeout: float = 90) -> None:
    """Recreate one release from the stack's current compose.yaml (``up -d --force-recreate
    --no-deps COLOR``), wait until it is healthy and until the port that routes to it answers
    ``expect_version`` (nginx asks Docker's DNS for the new container's address within 5 s)."""
    compose.run(directory, project, "up", "-d", "--force-recreate", "--no-deps", color, show=False)
    compose.wait_healthy(project, (color,), timeout=timeout, show=False)
    port = ports(project)["live" if routed_live(directory) == color else "preview"]
    wait_for_version(port, expect_version, timeout=30, every=0.2,
                     what=f"{color} answering {expect_version} through the proxy")


def served(port: int) -> dict[str, int]:
    """``/predict`` answers by HTTP status, from the ``/metrics`` of the release behind ``port``
    (its Prometheus counter ``model_server_requests_total``): what that release has served since
    it started."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    counts: dict[str, int] = {}
    for found in re.finditer(r'^model_server_requests_total\{([^}]*)\} ([0-9.e+]+)$', text, re.M):
        fields = dict(re.findall(r'(\w+)="([^"]*)"', found.group(1)))
        if fields.get("route") == "/predict":
            counts[fields.get("status", "?")] = counts.get(fields.get("status", "?"), 0) + int(float(found.group(2)))
    return counts


def ports(project: str) -> dict[str, int]:
    """{"live": port, "preview": port} on 127.0.0.1."""
    return {"live": compose.published_port(project, "proxy", LIVE_PORT),
            "preview": compose.published_port(project, "proxy", PREVIEW_PORT)}


def remove_release(directory: str | Path, project: str, color: str) -> None:
    """Stop and remove one release's container (``compose rm -sf COLOR``). Refused while it is live."""
    if routed_live(directory) == color:
        raise RequirementNotMet(f"{color} is the live release: switch to {other(color)} before removing it")
    compose.run(directory, project, "rm", "-s", "-f", color)


__all__ = ["COLORS", "LIVE_PORT", "NGINX_CONF", "PREVIEW_PORT", "ROUTES", "SwitchError", "other", "ports",
           "redeploy", "reload", "remove_release", "route", "routed_live", "routes_text", "served", "switch",
           "version_at", "wait_for_version", "write_stack"]
