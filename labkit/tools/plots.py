"""Pictures: image sizes side by side and where each image's bytes are (lab 01); what a model needs
in memory and speed, CPU against GPU (lab 04); one replica's capacity under stepped load, and load,
CPU and replicas over time under an autoscaler (lab 07); cost per size, a month's fleets, a node's
bill split over its containers, and a month per platform against traffic (lab 09); a class's pass
rate per check (``labkit grade-all``)."""

from __future__ import annotations

import re

from . import dockerlab


def image_sizes(images: dict[str, str], title: str = "Image size"):
    """A bar chart of the sizes of ``{label: image ref}``, in MB, with each bar labelled."""
    import matplotlib.pyplot as plt

    labels = list(images)
    sizes = [dockerlab.image_size(ref) / 1e6 for ref in images.values()]
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(labels) + 1.2))
    bars = ax.barh(labels, sizes, color="#4c72b0")
    ax.bar_label(bars, labels=[f"{s:.0f} MB" for s in sizes], padding=3)
    ax.invert_yaxis()
    ax.set_xlabel("MB")
    ax.set_xlim(0, max(sizes) * 1.2)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def layer_breakdown(images: dict[str, str], bases=("python:3.11", "python:3.11-slim")):
    """Stacked bars, one per image: its base image, then each layer it added, in build order,
    labelled with the instruction that made it (layers under 1 MB are lumped together)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 1.1 * len(images) + 1.4))
    colours = iter(plt.get_cmap("tab10").colors)
    widest = max(dockerlab.image_size(ref) for ref in images.values()) / 1e6
    for row, (label, ref) in enumerate(images.items()):
        base = dockerlab.base_image(ref, bases)
        added = dockerlab.layers(ref)[len(dockerlab.layers(base)) if base else 0:]
        small = sum(layer.size for layer in added if layer.size < 1e6)
        segments = ([(dockerlab.image_size(base), base, "#b0b0b0")] if base else [])
        segments += [(layer.size, layer.instruction, next(colours)) for layer in added if layer.size >= 1e6]
        segments += [(small, "small layers", "#e0e0e0")] if small else []
        left = 0.0
        for size, text, colour in segments:
            width = size / 1e6
            ax.barh(row, width, left=left, color=colour, edgecolor="white")
            room = int(width / widest * 180)  # characters that fit in the segment at this size
            if room >= 6:
                ax.text(left + widest / 200, row, f"{text[:room]}\n{width:.0f} MB", va="center", fontsize=7)
            left += width
    ax.set_yticks(range(len(images)), list(images))
    ax.invert_yaxis()
    ax.set_xlabel("MB: the base image, then each layer the Dockerfile added")
    ax.set_title("Where the bytes are")
    fig.tight_layout()
    return fig


def layer_table(ref: str) -> None:
    """Print the image's layers, oldest first: size and the instruction that made each."""
    for layer in dockerlab.layers(ref):
        print(f"{dockerlab.human(layer.size):>9}  {layer.instruction[:90]}")


def gpu_sizing(memory_gb, tokens_per_s, *, models: dict[str, float], dtypes=("fp32", "fp16", "int8", "int4"),
               gpus, cpu_bandwidth_gbs: float, cpu_memory_gb: float, gpu: str | None = None):
    """Two panels for "Do I need a GPU?", drawn from the student's own two functions.

    Left: ``memory_gb(params, dtype)`` for each model and dtype (log bars), against a line at each
    GPU's memory (GPUs of one size share a line) and one at this machine's RAM. Right:
    ``tokens_per_s(params, dtype, bandwidth_gbs)``, the batch-1, memory-bound ceiling on tokens per
    second, on this CPU (dashed) and on ``gpu`` (solid; a name in ``gpus``, else the last of them);
    a hollow marker means the model does not fit in that device's memory at that dtype.
    ``gpus`` are rows with ``name``, ``memory_gb`` and ``bandwidth_gbs`` (labkit.accelerators.GPUS).
    """
    import matplotlib.pyplot as plt

    gpus = list(gpus)
    chosen = next((g for g in gpus if g.name == gpu), gpus[-1])
    names, colours = list(models), plt.get_cmap("tab10").colors
    needed = {(m, d): memory_gb(models[m], d) for m in names for d in dtypes}
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 5.5))

    width = 0.8 / len(dtypes)
    for i, dtype in enumerate(dtypes):
        left.bar([x + (i - (len(dtypes) - 1) / 2) * width for x in range(len(names))],
                 [needed[m, dtype] for m in names], width, label=dtype, color=colours[i])
    lines: dict[float, list[str]] = {cpu_memory_gb: ["this machine's RAM"]}
    for g in gpus:
        lines.setdefault(g.memory_gb, []).append(g.name)
    for size in lines:
        left.axhline(size, color="black" if size == cpu_memory_gb else "#555555",
                     linewidth=1.2 if size == cpu_memory_gb else 0.8, linestyle="-" if size == cpu_memory_gb else ":")
    clusters: list[list[float]] = []  # sizes within 35 % of each other share one label, so none overlap
    for size in sorted(lines):
        if clusters and size / clusters[-1][-1] < 1.35:
            clusters[-1].append(size)
        else:
            clusters.append([size])
    for cluster in clusters:
        text = "\n".join(f"{size:.0f} GB: {', '.join(lines[size])}" for size in reversed(cluster))
        left.text(-0.45, (cluster[0] * cluster[-1]) ** 0.5, text, va="center", fontsize=7,
                  bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5, "alpha": 0.8})
    left.set_yscale("log")
    left.set_xticks(range(len(names)), names)
    left.set_xlim(-0.5, len(names) - 0.5)
    left.set_ylabel("GB of memory for the weights")
    left.set_title("Does it fit?")
    left.legend(title="dtype", fontsize=8)

    for i, dtype in enumerate(dtypes):
        for device, bandwidth, memory, style in (("this CPU", cpu_bandwidth_gbs, cpu_memory_gb, "--"),
                                                 (chosen.name, chosen.bandwidth_gbs, chosen.memory_gb, "-")):
            rates = [tokens_per_s(models[m], dtype, bandwidth) for m in names]
            right.plot(range(len(names)), rates, style, color=colours[i], label=f"{dtype}, {device}")
            fits = [needed[m, dtype] <= memory for m in names]
            right.scatter(range(len(names)), rates, color=[colours[i] if f else "white" for f in fits],
                          edgecolors=colours[i], zorder=3)
    right.set_yscale("log")
    right.set_xticks(range(len(names)), names)
    right.set_ylabel("tokens/s, at most (batch 1, memory-bound)")
    right.set_title(f"How fast can it answer? This CPU ({cpu_bandwidth_gbs:.0f} GB/s) "
                    f"vs {chosen.name} ({chosen.bandwidth_gbs:g} GB/s)", fontsize=10)
    right.legend(fontsize=7, ncol=2, title="hollow: does not fit", title_fontsize=7)
    fig.tight_layout()
    return fig


def cpu_vs_gpu_latency(results: dict[str, dict[int, float]], title: str = "Latency per batch"):
    """Measured latency (ms) against batch size, one line per device: ``{"cpu": {1: 0.4, 64: 2.1}}``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for device, latencies in results.items():
        batches = sorted(latencies)
        ax.plot(batches, [latencies[b] for b in batches], "o-", label=device)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    batches = sorted({b for latencies in results.values() for b in latencies})
    ax.set_xticks(batches, [str(b) for b in batches])
    ax.set_xlabel("batch size")
    ax.set_ylabel("ms per batch")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


def capacity_steps(steps, p99_objective_ms: float, title: str = "One replica under stepped load"):
    """Two panels from ``labkit.serving.capacity.step_load``'s steps. Left: the achieved against
    the offered requests/s (the dotted diagonal is "all of it served"). Right: p50 and p99 per
    step against the objective (dashed); a red cross marks a step with errors. The capacity (the
    highest step with p99 under the objective and no errors) is marked on both: the rule of
    ``serving.capacity.capacity``, restated here because plots sit in a layer below serving
    (tests/test_capacity.py holds the two equal)."""
    import matplotlib.pyplot as plt

    steps = list(steps)
    closed = any(s.offered_rps is None for s in steps)  # closed-loop steps: users, not a rate
    x = [s.users if closed else s.offered_rps for s in steps]
    good = [s for s in steps if s.errors == 0 and s.requests > 0 and s.p99_ms < p99_objective_ms]
    best = max(good, key=lambda s: (s.users if closed else s.offered_rps, s.rps), default=None)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))

    left.plot(x, [s.rps for s in steps], "o-", color="#4c72b0", label="achieved")
    if not closed:
        left.plot([0, max(x)], [0, max(x)], ":", color="#888888", label="offered")
    left.set_ylabel("requests/s answered")
    left.set_title("Throughput")
    right.plot(x, [s.p50_ms for s in steps], "o-", color="#55a868", label="p50")
    right.plot(x, [s.p99_ms for s in steps], "o-", color="#c44e52", label="p99")
    right.axhline(p99_objective_ms, color="black", linestyle="--", linewidth=1,
                  label=f"p99 objective {p99_objective_ms:g} ms")
    failed = [(xi, s.p99_ms) for xi, s in zip(x, steps) if s.errors]
    if failed:
        right.scatter(*zip(*failed), marker="x", s=80, color="red", zorder=3, label="errors")
    right.set_ylabel("ms")
    right.set_yscale("log")
    right.set_title("Latency per step")
    for ax in (left, right):
        if best is not None:
            at = best.users if closed else best.offered_rps
            ax.axvline(at, color="#dd8452", linewidth=2, alpha=0.6,
                       label=f"capacity: {best.rps:.0f} rps" if ax is right else None)
        ax.set_xlabel("users (closed loop)" if closed else "requests/s offered")
        ax.legend(fontsize=8)
    fig.suptitle(title if best else f"{title}: no step met the objective")
    fig.tight_layout()
    return fig


def autoscaling_timeline(timeline, *, target: float | None = None, max_replicas: int | None = None,
                         title: str = "Autoscaling over time"):
    """Three panels over the same time axis, from a control loop's ticks (``labkit.autoscale``'s
    :class:`Tick` objects or their ``as_dict()``): the load (requests per second answered, p99
    latency on the right axis, and where the number of clients sending it changes; each figure at
    the tick that read it, so up to one period after the load window it describes), each
    replica's CPU in % of its request with their mean (the HPA's metric) against ``target``, and
    the replicas running, ready and desired (with ``max_replicas`` as a ceiling)."""
    import matplotlib.pyplot as plt

    ticks = [t if isinstance(t, dict) else t.as_dict() for t in timeline]
    times = [t["t"] for t in ticks]
    fig, (load_ax, cpu_ax, rep_ax) = plt.subplots(3, 1, figsize=(11, 8), sharex=True,
                                                  gridspec_kw={"height_ratios": [1, 1.3, 1]})
    loads = [(t["t"], t["load"]) for t in ticks if t.get("load")]
    if loads:
        at = [x for x, _ in loads]
        load_ax.plot(at, [w["rps"] for _, w in loads], "o-", color="#4c72b0", label="answered (rps)")
        latency = load_ax.twinx()
        latency.plot(at, [w["p99_ms"] for _, w in loads], ".:", color="#c44e52", label="p99 latency (ms)")
        latency.set_ylabel("p99 latency, ms", color="#c44e52")
        latency.set_ylim(bottom=0)
        clients = None
        for x, w in loads:  # the offered load: a line and a label where the number of clients changes
            if w["clients"] != clients:
                clients = w["clients"]
                load_ax.axvline(x, color="#55a868", linestyle="--", linewidth=0.8)
                load_ax.annotate(f"{clients} clients", (x, 1), xycoords=("data", "axes fraction"), fontsize=7,
                                 color="#55a868", xytext=(2, -10), textcoords="offset points")
        handles = [*load_ax.get_legend_handles_labels()[0], *latency.get_legend_handles_labels()[0]]
        load_ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.08, 1), fontsize=7)
        load_ax.set_ylim(bottom=0)
    else:
        load_ax.text(0.5, 0.5, "no load recorded", ha="center", va="center", transform=load_ax.transAxes)
    load_ax.set_ylabel("requests/s answered")
    load_ax.set_title(title)

    for name in dict.fromkeys(n for t in ticks for n in t["cpu"]):  # every replica, in order of appearance
        seen = [(t["t"], t["cpu"][name]) for t in ticks if t["cpu"].get(name) is not None]
        if seen:
            # the replica's number: Compose names it project-service-N (v2) or project_service_N (v1)
            cpu_ax.plot(*zip(*seen), ".-", linewidth=0.8, alpha=0.6, label="#" + re.split("[-_]", name)[-1])
    means = [(t["t"], t["mean_cpu"]) for t in ticks if t.get("mean_cpu") is not None]
    if means:
        cpu_ax.plot(*zip(*means), "k-", linewidth=2, label="mean (the HPA's metric)")
    if target is not None:
        cpu_ax.axhline(target, color="#c44e52", linestyle="--", label=f"target {target:g} %")
    cpu_ax.set_ylabel("CPU, % of request")
    cpu_ax.set_ylim(bottom=0)
    if cpu_ax.get_lines():
        cpu_ax.legend(loc="upper left", bbox_to_anchor=(1.08, 1), fontsize=7, title="replica", title_fontsize=7)

    rep_ax.step(times, [t["replicas"] for t in ticks], where="post", label="running", linewidth=2)
    rep_ax.step(times, [t["ready"] for t in ticks], where="post", label="ready", linestyle="--")
    decided = [(t["t"], t["desired"]) for t in ticks if t["desired"] is not None]
    if decided:
        rep_ax.plot(*zip(*decided), "x", color="black", label="desired()")
    if max_replicas is not None:
        rep_ax.axhline(max_replicas, color="grey", linestyle=":", label=f"max_replicas {max_replicas}")
    rep_ax.set_ylabel("replicas")
    rep_ax.set_ylim(0, max([t["replicas"] for t in ticks] + [d for _, d in decided] + [max_replicas or 0, 1]) + 1)
    rep_ax.set_xlabel("seconds since the loop started")
    rep_ax.legend(loc="upper left", bbox_to_anchor=(1.08, 1), fontsize=7)
    fig.tight_layout()
    return fig


def cost_per_size(rows, per_million, p99_objective_ms: float, title: str = "Cost and latency per size"):
    """Two panels over lab 09's sizes (rows with ``cpus``, ``rps``, ``p99_ms``, ``errors``): USD per
    million predictions (``per_million``, one per row), and p99 against the objective; a size that
    misses it (or had errors) is drawn hatched on the left."""
    import matplotlib.pyplot as plt

    names = [f"{r['cpus']:g} CPU" for r in rows]
    missed = [r["errors"] > 0 or not r["p99_ms"] < p99_objective_ms for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    bars = left.bar(names, [p if p != float("inf") else 0 for p in per_million], color="#4c72b0")
    for bar, miss in zip(bars, missed):
        if miss:
            bar.set_hatch("//")
            bar.set_alpha(0.5)
    left.set_ylabel("USD per million predictions")
    left.set_title("Cost (hatched: misses the objective)")
    right.bar(names, [r["p99_ms"] for r in rows], color=["#c44e52" if m else "#55a868" for m in missed])
    right.axhline(p99_objective_ms, color="black", linestyle="--", linewidth=1, label=f"objective {p99_objective_ms:g} ms")
    right.set_ylabel("p99, ms")
    right.set_title("Latency flat out")
    right.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def fleet_month(hourly_rps, fleets: dict, monthly: dict, title: str = "A month of traffic"):
    """Lab 09's day of traffic with the instances each policy runs hour by hour (``fleets``:
    {policy: [instances per hour]}), and each policy's month (``monthly``: {policy: USD})."""
    import matplotlib.pyplot as plt

    fig, (day, month) = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [2.2, 1]})
    hours = list(range(len(hourly_rps)))
    day.fill_between(hours, hourly_rps, step="post", color="#cccccc", label="traffic (requests/s)")
    day.set_ylabel("requests/s")
    day.set_xlabel("hour of the day (UTC)")
    count = day.twinx()
    for policy, fleet in fleets.items():
        count.step(hours, fleet, where="post", linewidth=2, label=policy)
    count.set_ylabel("instances")
    count.set_ylim(0, max(max(f) for f in fleets.values()) + 1)
    handles = day.get_legend_handles_labels()[0] + count.get_legend_handles_labels()[0]
    day.legend(handles=handles, fontsize=8, loc="upper left")
    day.set_title("One day")
    month.bar(list(monthly), list(monthly.values()), color="#4c72b0")
    for x, usd in enumerate(monthly.values()):
        month.annotate(f"${usd:,.0f}", (x, usd), ha="center", va="bottom", fontsize=8)
    month.set_ylabel("USD a month")
    month.set_title("A month")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def node_split(allocated: dict, idle: float, title: str = "A node's hour"):
    """One bar: a node's hourly price split into what each container is charged (``allocated``:
    {name: USD}) and the ``idle`` rest, as OpenCost shows it."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 2.6))
    left = 0.0
    for name, usd in [*allocated.items(), ("idle", idle)]:
        ax.barh([0], [usd], left=left, color="#dddddd" if name == "idle" else None, edgecolor="white",
                label=f"{name}: ${usd:.4f}")
        left += usd
    ax.set_yticks([])
    ax.set_xlabel("USD per hour")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig


def break_even(loads, curves: dict, title: str = "A month per platform"):
    """Monthly cost against traffic (``curves``: {platform: [USD per load of ``loads``]}), both axes
    logarithmic, so that fixed costs show at the left and the cost per instance at the right."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    for name, curve in curves.items():
        ax.plot(loads, curve, "o-", markersize=3, label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("requests/s, all month")
    ax.set_ylabel("USD a month")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def pass_rates(rates: dict[str, float], title: str = "Pass rate per check"):
    """A bar per check of the share of a class's graded submissions that passed it (0–1), lowest
    first: the exercises a class found hardest stand out (``labkit grade-all``'s summary)."""
    import matplotlib.pyplot as plt

    ordered = sorted(rates.items(), key=lambda item: item[1])
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(ordered) + 1.3))
    bars = ax.barh([name for name, _ in ordered], [100 * rate for _, rate in ordered], color="#4c72b0")
    ax.bar_label(bars, labels=[f"{100 * rate:.0f}%" for _, rate in ordered], padding=3, fontsize=8)
    ax.set_xlim(0, 115)
    ax.set_xlabel("% of graded submissions that passed")
    ax.set_title(title)
    fig.tight_layout()
    return fig
