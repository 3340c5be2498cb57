"""A teaching copy of the HorizontalPodAutoscaler's control loop, run over the replicas of a Compose
service on this machine (lab 07). It is NOT a replacement for the HPA, and nothing should run it
outside a lab: it exists so that a student's own ``desired(current_replicas, metrics, target)``
drives real containers under real load, and the lab can plot what happened.

Every ``every`` seconds (the HPA's sync period is 15 s) the loop:

1. reads each running replica's CPU use from the Docker engine, one stats sample per container
   (what ``docker stats --no-stream`` reads), over the time since the previous tick (the HPA's
   figure, too, is a rate over a window: metrics-server's, about 15 s; a replica's first tick
   has only the engine's own second between its two reads), as a percentage of the replica's CPU
   *request*, the way the HPA computes utilization. Compose has no requests: ``request_cores``
   stands for one, else the container's CPU limit (``deploy.resources.limits.cpus``), else the
   machine's CPUs;
2. calls ``desired(current_replicas, metrics, target)`` (``metrics``: one :class:`ReplicaMetric`
   per replica; ``target``: the utilization aimed at, in %). An exception, a hang or a value that
   is not a whole number of at least 1 replica stops the loop with a message saying so; a value
   above ``max_replicas`` is capped there (and the tick says so);
3. scales the service with ``compose up -d --no-recreate --scale SERVICE=N`` and records a
   :class:`Tick` (time, offered load when a load driver is given, CPU per replica, replicas
   desired, running and ready).

Where it differs from the HPA (what the lab says): the HPA reads metrics-server, writes
``spec.replicas`` of the Deployment and returns, a scheduler places pods only where their requests
fit (else they stay Pending: "Insufficient cpu"), and a Service sends traffic only to ready pods;
this loop starts containers itself and waits for Compose, nothing stops replicas from asking for
more CPU than the machine has (they just share it), and Docker's DNS (so nginx) names a replica as
soon as it starts, ready or not, and still names a removed one until the proxy asks again.
Its bounds are ``max_seconds`` and ``max_replicas``; it runs in a background thread that is
stopped by its ``with`` block, by ``stop()``, by ``labkit.core.background.stop_all()`` (a lab's
cleanup) and at exit (see :mod:`labkit.core.background`).
"""

from __future__ import annotations

import numbers
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence

import yaml

from ..core import labels, paths
from ..core.background import BackgroundTask
from . import compose, dockerlab

#: How long the student's ``desired`` may take before the loop gives up on it.
DESIRED_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ReplicaMetric:
    """What the loop knows of one replica at a tick, as the HPA knows a pod."""
    name: str
    #: CPU used since the previous tick (a new replica: over the engine's last second), in % of the
    #: replica's CPU request; None: no figure (a replica started less than a second ago, or one
    #: that went away while being read).
    cpu_percent: float | None
    #: Healthy (or running, for a service without a healthcheck): a not-ready pod, to the HPA.
    ready: bool


@dataclass
class Tick:
    """One turn of the loop."""
    t: float                          # seconds since the loop started
    replicas: int                     # replicas running when measured
    ready: int                        # of which ready
    cpu: dict[str, float | None]      # % of request per replica (None: no sample)
    desired: int | None               # what desired() returned (None: it failed)
    scaled_to: int | None = None      # the replica count asked of Compose this tick (None: no change)
    load: dict | None = None          # the load driver's latest window (clients, rps, p50_ms, p99_ms, errors)
    note: str = ""                    # "capped at max_replicas=4", why the loop stopped

    @property
    def mean_cpu(self) -> float | None:
        """The replicas' average CPU % (of request) over those with a sample: the HPA's metric."""
        seen = [v for v in self.cpu.values() if v is not None]
        return sum(seen) / len(seen) if seen else None

    def as_dict(self) -> dict:
        return {**asdict(self), "mean_cpu": self.mean_cpu}


class Replicas(Protocol):
    """What the loop drives: :class:`ComposeReplicas` here, a stand-in in the tests."""

    def sample(self) -> list[ReplicaMetric]: ...

    def scale(self, replicas: int) -> None: ...


# ---------------------------------------------------------------- CPU from the engine's stats

def cpu_cores_used(sample: dict) -> float | None:
    """Cores a container used between the two reads of one stats sample (the Docker CLI's
    formula: its CPU time over the host's, times the online CPUs); None when the sample has no
    earlier read (``precpu_stats`` empty: the first sample of a new container, or ``one_shot``)."""
    now, before = sample.get("cpu_stats") or {}, sample.get("precpu_stats") or {}
    used, used_before = ((s.get("cpu_usage") or {}).get("total_usage") for s in (now, before))
    system, system_before = now.get("system_cpu_usage"), before.get("system_cpu_usage")
    if None in (used, used_before, system, system_before) or system <= system_before:
        return None
    online = now.get("online_cpus") or len((now.get("cpu_usage") or {}).get("percpu_usage") or ())
    if not online:
        return None
    return max(0, used - used_before) / (system - system_before) * online


def cpu_percent(sample: dict, request_cores: float) -> float | None:
    """CPU use of one stats sample in % of ``request_cores`` (100: all of its request; over 100
    is possible, up to its limit), as the HPA computes a pod's CPU utilization."""
    used = cpu_cores_used(sample)
    return None if used is None else 100.0 * used / request_cores


def cpu_limit(attrs: dict) -> float | None:
    """A container's CPU limit in cores (``--cpus``/``deploy.resources.limits.cpus``, or a CFS
    quota), from its ``docker inspect`` attributes; None when it has none."""
    host = attrs.get("HostConfig") or {}
    if host.get("NanoCpus"):
        return host["NanoCpus"] / 1e9
    if (host.get("CpuQuota") or 0) > 0:
        return host["CpuQuota"] / (host.get("CpuPeriod") or 100_000)
    return None


class ComposeReplicas:
    """The replicas of one service of a Compose project, read from the engine and scaled by Compose.

    ``request_cores``: what stands for the HPA's CPU request of one replica; None: each
    container's CPU limit, else the machine's CPUs (:attr:`basis` says which was used).
    ``scale_timeout``: the most one ``compose up --scale`` may take (measured here: up to 3 s),
    under the 30 s a ``stop()`` waits, so that a lab's cleanup never races a scale-up."""

    def __init__(self, project_dir: str | Path, project: str, service: str, *, files: tuple[str, ...] = (),
                 request_cores: float | None = None, scale_timeout: float = 25) -> None:
        if request_cores is not None and request_cores <= 0:
            raise ValueError(f"request_cores must be positive, not {request_cores!r}")
        self.project_dir, self.project, self.service, self.files = project_dir, project, service, files
        self.request_cores, self.scale_timeout = request_cores, scale_timeout
        self.basis = f"a request of {request_cores:g} cores" if request_cores else "?"
        self._previous: dict[str, dict] = {}  # container id → its cpu_stats at the previous tick

    def running(self) -> list:
        return sorted((c for c in compose.containers(self.project, self.service) if c.status == "running"),
                      key=lambda c: c.name)

    def sample(self) -> list[ReplicaMetric]:
        containers = self.running()
        if not containers:
            return []
        with ThreadPoolExecutor(max_workers=len(containers), thread_name_prefix="labkit-stats") as pool:
            return list(pool.map(self._read, containers))  # all in parallel: each read takes about 1 s

    def _read(self, container) -> ReplicaMetric:
        try:
            sample = container.stats(stream=False)  # as `docker stats --no-stream`: two reads ~1 s apart
            state = dockerlab.health(container)
        except Exception:  # noqa: BLE001 - gone or going while read, or a slow engine: no metric this tick
            return ReplicaMetric(container.name, None, False)
        earlier = self._previous.get(container.id)
        self._previous[container.id] = sample.get("cpu_stats") or {}
        if earlier:  # the rate since the previous tick, not over the engine's last second only
            sample = {**sample, "precpu_stats": earlier}
        cores = self.request_cores or cpu_limit(container.attrs)
        if cores is None:
            cores = (sample.get("cpu_stats") or {}).get("online_cpus") or None
            self.basis = f"the machine's {cores} CPUs (the container has no CPU limit)"
        elif not self.request_cores:
            self.basis = f"the container's CPU limit ({cores:g} cores)"
        percent = cpu_percent(sample, cores) if cores else None
        return ReplicaMetric(container.name, percent, state in ("healthy", "none"))

    def scale(self, replicas: int) -> None:
        compose.up(self.project_dir, self.project, self.service, files=self.files,
                   scale={self.service: replicas}, timeout=self.scale_timeout, show=False)


def sample_stack(directory: str | Path, *, lab: str, image: str, app_cpus: str | None = None,
                 reservations: dict[str, dict[str, str]] | None = None) -> Path:
    """Lab 02's reference stack (``environments/compose``: the sample app behind nginx, which
    re-resolves the app's replicas every 5 s) written to ``directory`` for ``lab``: its ``image``
    for the app, its label on every service and network, ``app_cpus`` as the app's CPU limit
    when given, and ``reservations`` ({service: {"cpus": "0.25", "memory": "128M"}}) as those
    services' ``deploy.resources.reservations``, next to the limits the stack sets (lab 09 reads
    them as requests). Returns the directory, for ``compose.up`` and :class:`ComposeReplicas`."""
    source, directory = paths.ENVIRONMENTS / "compose", Path(directory)
    doc = yaml.safe_load((source / "compose.yaml").read_text())
    for spec in doc["services"].values():
        spec["labels"] = {labels.LAB: lab}
    doc["services"]["app"]["image"] = image
    if app_cpus is not None:
        doc["services"]["app"]["deploy"]["resources"]["limits"]["cpus"] = app_cpus
    for service, reserved in (reservations or {}).items():
        if service not in doc["services"]:
            raise ValueError(f"the stack has no service {service!r} (it has {', '.join(doc['services'])})")
        doc["services"][service]["deploy"]["resources"]["reservations"] = dict(reserved)
    doc["networks"]["default"]["labels"] = {labels.LAB: lab}
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source / "nginx", directory / "nginx", dirs_exist_ok=True)
    (directory / "compose.yaml").write_text(f"# environments/compose/compose.yaml for lab {lab} "
                                            "(labkit.autoscale.sample_stack)\n" + yaml.safe_dump(doc, sort_keys=False))
    return directory


# ---------------------------------------------------------------- the loop

class BadDesired(ValueError):
    """The student's ``desired`` failed, hung or answered something that is not a replica count."""


def checked_desired(value, max_replicas: int) -> tuple[int, str]:
    """(replicas to run, note) for what ``desired`` returned; BadDesired when it is no replica count."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        hint = " (math.ceil gives an int)" if isinstance(value, float) else ""
        raise BadDesired(f"desired() returned {value!r} ({type(value).__name__}), not a whole number of "
                         f"replicas{hint}")
    if value < 1:
        raise BadDesired(f"desired() returned {value}: the HPA keeps at least minReplicas (1 or more) running")
    if value > max_replicas:
        return max_replicas, f"capped at max_replicas={max_replicas}"
    return int(value), ""


def ask(desired: Callable, args: tuple, timeout: float = DESIRED_TIMEOUT_S):
    """``desired(*args)`` in a daemon thread, so that neither an exception nor a hang reaches the
    loop's thread; raises BadDesired saying what went wrong."""
    answer: dict = {}

    def call() -> None:
        try:
            answer["value"] = desired(*args)
        except BaseException as exc:  # noqa: BLE001 - SystemExit, too, is the student's error here
            answer["error"] = exc

    helper = threading.Thread(target=call, name="labkit-autoscale-desired", daemon=True)
    helper.start()
    helper.join(timeout)
    if helper.is_alive():
        raise BadDesired(f"desired() did not return within {timeout:g}s (an endless loop, or a wait?)")
    if "error" in answer:
        exc = answer["error"]
        raise BadDesired(f"desired() raised {type(exc).__name__}: {exc}") from exc
    return answer["value"]


class ControlLoop(BackgroundTask):
    """The loop over ``replicas`` (:class:`ComposeReplicas`), asking ``desired`` every ``every`` s,
    for at most ``max_seconds``, never running more than ``max_replicas``. ``load``: anything with a
    ``latest()`` that returns a dict of the offered load (``labkit.serving.load.BackgroundLoad``).
    Use it as ``with autoscale.ControlLoop(...) as loop: loop.wait()``; :attr:`timeline` holds the
    ticks, :attr:`ended_because` why it ended. With ``show``, each tick prints a line from the loop's
    thread, and Jupyter puts it under whichever cell is running at the time (measured: a loop
    started in one cell printed into the next): wait for the loop in the cell that starts it, or
    pass ``show=False`` and print :meth:`summary` or plot :attr:`timeline` afterwards.
    ``max_seconds`` bounds the ticks; a ``compose up`` already running when it passes, or when
    ``stop()`` is called, is waited for (bounded by ``ComposeReplicas.scale_timeout``)."""

    kind = "autoscale"

    def __init__(self, replicas: Replicas, desired: Callable[[int, list[ReplicaMetric], float], int], *,
                 target: float = 70.0, max_replicas: int = 4, max_seconds: float = 120.0, every: float = 5.0,
                 load=None, show: bool = True, desired_timeout: float = DESIRED_TIMEOUT_S) -> None:
        if not callable(desired):
            raise TypeError(f"desired must be a function, not {type(desired).__name__}")
        if isinstance(max_replicas, bool) or not isinstance(max_replicas, int) or max_replicas < 1:
            raise ValueError(f"max_replicas must be a whole number of at least 1, not {max_replicas!r}")
        if not every or every <= 0:
            raise ValueError(f"every must be a positive number of seconds, not {every!r}")
        super().__init__(max_seconds=max_seconds, name=getattr(replicas, "service", ""))
        self.replicas, self.desired, self.target = replicas, desired, float(target)
        self.max_replicas, self.every, self.load, self.show = max_replicas, float(every), load, show
        self.desired_timeout = desired_timeout
        self.timeline: list[Tick] = []
        #: The message that stopped the loop when ``desired`` or the engine failed; None otherwise.
        self.error: str | None = None

    def run(self) -> str | None:
        current: int | None = None
        while not self.stopping:
            began = self.elapsed()
            tick = self._tick(current)
            if tick is None:
                return self.error
            if tick.scaled_to is not None:
                current = tick.scaled_to  # what the loop asked for, as the HPA's spec.replicas
            elif current is None:
                current = tick.replicas   # the first tick: what was running
            if not self.pause(self.every - (self.elapsed() - began)):
                break
        return None

    def _tick(self, current: int | None) -> Tick | None:
        """Measure, ask, scale, record; None when the loop must stop on an error (then in :attr:`error`)."""
        try:
            metrics = self.replicas.sample()
        except Exception as exc:  # noqa: BLE001 - said, and the loop ends
            return self._fail(f"reading the replicas failed: {type(exc).__name__}: {exc}")
        current = len(metrics) if current is None else current
        tick = Tick(round(self.elapsed(), 2), len(metrics), sum(m.ready for m in metrics),
                    {m.name: m.cpu_percent for m in metrics}, None,
                    load=self.load.latest() if self.load is not None else None)
        try:
            tick.desired = ask(self.desired, (current, list(metrics), self.target), self.desired_timeout)
            wanted, tick.note = checked_desired(tick.desired, self.max_replicas)
            tick.desired = int(tick.desired)  # a numpy integer, say, recorded as a plain one
        except BadDesired as exc:
            return self._fail(f"{exc}; the loop stopped at {current} replica(s)", tick)
        if wanted != current and not self.stopping:
            try:
                self.replicas.scale(wanted)
            except Exception as exc:  # noqa: BLE001
                return self._fail(f"scaling to {wanted} failed: {type(exc).__name__}: {exc}", tick)
            tick.scaled_to = wanted
        self._record(tick)
        return tick

    def _fail(self, message: str, tick: Tick | None = None) -> None:
        self.error = message
        tick = tick or Tick(round(self.elapsed(), 2), 0, 0, {}, None)
        tick.note = message
        self._record(tick)
        return None

    def _record(self, tick: Tick) -> None:
        self.timeline.append(tick)
        if self.show:
            print(describe(tick, self.target), flush=True)

    def summary(self) -> str:
        """What the loop did, in a few lines: ticks, replica counts seen, why it ended."""
        counts = [t.replicas for t in self.timeline]
        seen = f"replicas from {counts[0]} to {max(counts)}, ending at {counts[-1]}" if counts else "no tick"
        return (f"{self.name}: {len(self.timeline)} tick(s) in {self.elapsed():.0f}s, {seen}; "
                f"ended: {self.ended_because or 'still running'}")


def describe(tick: Tick, target: float | None = None) -> str:
    """One tick as a line: time, replicas, CPU per replica, the decision, the load."""
    cpu = " ".join("  -" if v is None else f"{v:3.0f}" for v in tick.cpu.values()) or "-"
    decision = ("" if tick.desired is None else f" -> desired {tick.desired}"
                + (f", scaled to {tick.scaled_to}" if tick.scaled_to is not None else ""))
    load = tick.load or {}
    offered = f"  load {load.get('clients', '?')} clients {load.get('rps', 0):.0f} rps" if load else ""
    aim = f" (target {target:g})" if target is not None else ""
    return (f"{tick.t:6.1f}s  replicas {tick.replicas} (ready {tick.ready})  CPU% {cpu}{aim}{decision}{offered}"
            + (f"  [{tick.note}]" if tick.note else ""))


def reaction(timeline: Sequence[Tick], load_started: float) -> dict[str, float | None]:
    """From load starting (``load_started`` s after the loop) to the first scale-up (``decided_s``)
    and to a tick that sees more replicas ready than before the load (``ready_s``); None: never.
    Ticks are ``every`` s apart, so each figure is known to within one period."""
    before = [t for t in timeline if t.t <= load_started]
    base = before[-1].ready if before else (timeline[0].ready if timeline else 0)
    after = [t for t in timeline if t.t > load_started]
    decided = next((t.t for t in after if t.scaled_to is not None and t.scaled_to > base), None)
    ready = next((t.t for t in after if t.ready > base), None)
    return {"decided_s": None if decided is None else round(decided - load_started, 1),
            "ready_s": None if ready is None else round(ready - load_started, 1)}


__all__ = ["BadDesired", "ComposeReplicas", "ControlLoop", "ReplicaMetric", "Tick", "ask", "checked_desired",
           "cpu_cores_used", "cpu_limit", "cpu_percent", "describe", "reaction", "sample_stack"]
