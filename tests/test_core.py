"""labkit.core: one wait, one slug, one image-reference parser, one error base."""

import time

import pytest

from labkit.core import errors, labels, names
from labkit.core.waiting import wait_until


def test_wait_until_returns_the_first_true_value_and_names_what_it_awaited_on_time_out():
    tries = iter([None, 0, "", "ready"])
    assert wait_until(lambda: next(tries), timeout=5, every=0.01, what="x") == "ready"

    def flaky():
        raise ConnectionError("not yet")

    started = time.monotonic()
    with pytest.raises(errors.TimedOut, match=r"port 80 to answer: not within 0.2s \(last: refused\)"):
        wait_until(flaky, timeout=0.2, every=0.05, what="port 80 to answer", ignore=(ConnectionError,),
                   explain=lambda: "last: refused")
    assert 0.2 <= time.monotonic() - started < 2
    with pytest.raises(ConnectionError):  # only the exceptions named in ignore mean "not yet"
        wait_until(flaky, timeout=1, what="x")

    class MineError(Exception):
        pass

    seen = []
    with pytest.raises(MineError, match="^z: not within 0.05s$"):
        wait_until(lambda: False, timeout=0.05, every=0.01, what="z", error=MineError, progress=seen.append)
    assert seen and seen == sorted(seen)


def test_wait_until_keeps_its_pace_whatever_a_try_costs(monkeypatch):
    now, naps = [0.0], []
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    monkeypatch.setattr(time, "sleep", lambda s: (naps.append(round(s, 6)), now.__setitem__(0, now[0] + s)))

    def slow_try(cost):
        def condition():
            now[0] += cost
            return now[0] >= 3.0
        return condition

    wait_until(slow_try(0.25), timeout=10, every=1.0, what="x")
    assert naps and set(naps) == {0.75}  # a try of 0.25 s, then the rest of the second
    naps.clear()
    now[0] = 0.0
    wait_until(slow_try(1.5), timeout=10, every=1.0, what="x")
    assert naps == [0.0]  # a try longer than the period is followed at once


def test_one_slug_and_one_image_reference_parser():
    assert names.slug("The Vertex stand-in") == "the-vertex-stand-in"
    assert names.slug("--Lab 05__x--") == "lab-05-x"
    assert names.slug("python:3.11-slim", keep=".") == "python-3.11-slim"
    assert names.split_image_ref("labkit/05-sagemaker:v1") == ("labkit/05-sagemaker", "v1")
    assert names.split_image_ref("python") == ("python", "latest")
    assert names.split_image_ref("localhost:5000/team/app") == ("localhost:5000/team/app", "latest")
    assert names.split_image_ref("localhost:5000/app:2") == ("localhost:5000/app", "2")
    assert names.split_image_ref("app@sha256:ab") == ("app@sha256:ab", "")


def test_errors_share_one_base_and_labels_are_distinct():
    assert issubclass(errors.RequirementNotMet, errors.LabkitError)
    assert issubclass(errors.TimedOut, errors.LabkitError)
    keys = [v for k, v in vars(labels).items() if k.isupper()]
    assert len(keys) == len(set(keys)) and labels.BUILT_BY != labels.RUN_TAG
