"""The user that :mod:`labkit.serving.capacity` runs in locust, in locust's own process (locust
patches the standard library with gevent when imported, which a notebook kernel must never get).

Each user POSTs one body to one path, at most ``LABKIT_LOAD_USER_RPS`` times a second (as fast
as answers come when 0), and the whole run stops after ``LABKIT_LOAD_MAX_REQUESTS`` requests (and
at ``--run-time`` at the latest, or as soon as the process that started it is gone). When it
stops it writes locust's request stats (CSV, beside ``LABKIT_LOAD_REPORT``) and the CPU seconds
this process spent loading (``LABKIT_LOAD_REPORT``): a load generator that uses a whole core
measures itself, not the server. ``FastPoster`` is what
capacity uses (geventhttpclient: less CPU per request than ``requests``, which matters on two
cores); ``RequestsPoster`` is locust's default client, kept for environments/load/compare.py.
"""

import csv
import json
import os
import time
from pathlib import Path

import gevent
from locust import FastHttpUser, HttpUser, constant, constant_throughput, events, task
from locust.exception import StopUser
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

BODY = Path(os.environ["LABKIT_LOAD_BODY"]).read_bytes()
PATH = os.environ.get("LABKIT_LOAD_PATH", "/")
HEADERS = {"Content-Type": os.environ.get("LABKIT_LOAD_CONTENT_TYPE", "application/json")}
USER_RPS = float(os.environ.get("LABKIT_LOAD_USER_RPS") or 0)
PARENT = int(os.environ.get("LABKIT_LOAD_PARENT") or os.getppid())
_left = [int(os.environ["LABKIT_LOAD_MAX_REQUESTS"])]
_started: list[float] = []


def _post(user) -> None:
    if _left[0] <= 0:
        if _left[0] == 0:  # quit from a greenlet of its own: quit() stops every user, this one too
            gevent.spawn(user.environment.runner.quit)
            _left[0] = -1
        raise StopUser()
    _left[0] -= 1
    user.client.post(PATH, data=BODY, headers=HEADERS)


class FastPoster(FastHttpUser):
    wait_time = constant_throughput(USER_RPS) if USER_RPS else constant(0)
    post = task(_post)


class RequestsPoster(HttpUser):
    wait_time = constant_throughput(USER_RPS) if USER_RPS else constant(0)
    post = task(_post)


@events.test_start.add_listener
def _start(environment, **_):
    _started[:] = [time.process_time(), time.monotonic()]

    def orphaned():  # a killed kernel cannot kill its load: stop when the parent is gone
        while os.getppid() == PARENT:
            gevent.sleep(0.5)
        environment.runner.quit()

    gevent.spawn(orphaned)


@events.test_stop.add_listener
def _stop(environment, **_):
    """The figures, once the users are stopped: locust's request stats as its ``--csv`` writes
    them (its own writer; ``--csv`` rewrites its file once a second, so after a stop on the
    request budget it lacked the last second: 46 of 60 requests, measured), and this process's
    CPU seconds while it loaded."""
    if not _started or not os.environ.get("LABKIT_LOAD_REPORT"):
        return
    cpu, wall = time.process_time() - _started[0], time.monotonic() - _started[1]
    report = Path(os.environ["LABKIT_LOAD_REPORT"])
    with report.with_suffix(".csv").open("w", newline="") as f:
        StatsCSV(environment, PERCENTILES_TO_REPORT).requests_csv(csv.writer(f))
    report.write_text(json.dumps({"cpu_s": cpu, "wall_s": wall}))
    _started.clear()  # a quit after a stop fires test_stop again: the first one counts
