"""Lab 09's pictures: what each one marks (a size that misses the objective, a policy's month, the
idle part of a node, a platform's curve), drawn without a display."""

from __future__ import annotations

import math

import matplotlib
import pytest

matplotlib.use("Agg")

from labkit import plots  # noqa: E402 - after the backend is chosen


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    matplotlib.pyplot.close("all")

ROWS = [{"cpus": 0.25, "rps": 40.0, "p99_ms": 180.0, "errors": 0},
        {"cpus": 0.5, "rps": 85.0, "p99_ms": 70.0, "errors": 0},
        {"cpus": 1.0, "rps": 150.0, "p99_ms": 40.0, "errors": 3}]


def test_a_size_that_misses_the_objective_or_failed_is_hatched():
    fig = plots.cost_per_size(ROWS, [0.07, 0.06, math.inf], 100)
    cost, latency = fig.axes
    assert [bar.get_hatch() for bar in cost.patches] == ["//", None, "//"]
    assert cost.patches[2].get_height() == 0  # a size that answered nothing has no finite price
    assert [round(bar.get_height()) for bar in latency.patches] == [180, 70, 40]


def test_the_month_shows_each_policy_hour_by_hour_and_its_total():
    fleets = {"peak": [3] * 24, "tracking": [1] * 12 + [3] * 12}
    fig = plots.fleet_month([10] * 12 + [100] * 12, fleets, {"peak": 219.0, "tracking": 146.0})
    day, month, count = fig.axes
    assert [line.get_label() for line in count.get_lines()] == ["peak", "tracking"]
    assert [round(bar.get_height()) for bar in month.patches] == [219, 146]
    assert [t.get_text() for t in month.texts] == ["$219", "$146"]


def test_the_node_split_ends_with_the_idle_part():
    fig = plots.node_split({"app-1": 0.02, "proxy-1": 0.005}, 0.04)
    (ax,) = fig.axes
    widths = [round(bar.get_width(), 6) for bar in ax.patches]
    assert widths == [0.02, 0.005, 0.04] and math.isclose(ax.patches[2].get_x(), 0.025)
    assert ax.get_legend().get_texts()[-1].get_text() == "idle: $0.0400"


def test_break_even_draws_one_curve_per_platform_on_log_axes():
    fig = plots.break_even([10, 100, 1000], {"sagemaker": [80, 160, 1600], "eks": [900, 960, 1500]})
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.get_lines()] == ["sagemaker", "eks"]
    assert ax.get_xscale() == ax.get_yscale() == "log"
