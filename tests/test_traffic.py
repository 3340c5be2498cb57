"""Lab 08's groundwork: two releases behind nginx, switched gracefully (labkit.tools.traffic), and a
load run with an action in the middle of it (labkit.serving.load.run_across)."""

from __future__ import annotations

import time

import pytest
import yaml

from labkit import compose
from labkit.serving import load
from labkit.tools import traffic

# ---------------------------------------------------------------- offline


def test_routes_name_one_live_release_and_the_other_in_preview():
    assert traffic.other("blue") == "green" and traffic.other("green") == "blue"
    text = traffic.routes_text("green")
    assert "set $live http://green:8080;" in text and "set $preview http://blue:8080;" in text
    with pytest.raises(ValueError, match="blue or green"):
        traffic.routes_text("red")


def test_the_stack_is_a_valid_compose_file_with_both_releases_on_loopback(tmp_path):
    directory = traffic.write_stack(tmp_path, lab="t8", images={"blue": "labkit/t8-app:v1", "green": "labkit/t8-app:v1"},
                                    versions={"blue": "1.0", "green": "1.1"})
    assert compose.schema_problems(directory / "compose.yaml") == []
    doc = yaml.safe_load((directory / "compose.yaml").read_text())
    assert {c: doc["services"][c]["environment"]["APP_VERSION"] for c in traffic.COLORS} == {"blue": "1.0", "green": "1.1"}
    assert doc["services"]["proxy"]["ports"] == ["127.0.0.1::80", "127.0.0.1::8081"]
    assert all(s["labels"] == {"labkit.lab": "t8"} for s in doc["services"].values())
    assert traffic.routed_live(directory) == "blue"
    conf = (directory / "nginx" / "default.conf").read_text()
    assert conf.count("include /etc/nginx/conf.d/routes.inc;") == 2 and "listen 8081;" in conf
    with pytest.raises(ValueError, match="green"):
        traffic.write_stack(tmp_path / "x", lab="t8", images={"blue": "a"}, versions={"blue": "1"})


def test_rewriting_the_stack_keeps_the_traffic_where_it_is_and_mounts_a_release_model(tmp_path):
    images, versions = {"blue": "a:1", "green": "a:1"}, {"blue": "1.0", "green": "1.2"}
    traffic.write_stack(tmp_path, lab="t8", images=images, versions=versions)
    traffic.route(tmp_path, "green")
    traffic.write_stack(tmp_path, lab="t8", images=images, versions=versions, models={"green": tmp_path / "bad"})
    assert traffic.routed_live(tmp_path) == "green"  # not moved back to blue
    green = yaml.safe_load((tmp_path / "compose.yaml").read_text())["services"]["green"]
    assert green["environment"] == {"APP_VERSION": "1.2", "MODEL_DIR": "/opt/ml/release-model"}
    assert green["volumes"] == [f"{(tmp_path / 'bad').resolve()}:/opt/ml/release-model:ro"]
    traffic.write_stack(tmp_path, lab="t8", images=images, versions=versions, live="blue")
    assert traffic.routed_live(tmp_path) == "blue"


def test_served_reads_the_release_s_own_counter_of_predict_answers(monkeypatch):
    text = ('# HELP model_server_requests_total HTTP requests served, by route and status code.\n'
            'model_server_requests_total{route="/predict",status="200"} 1234.0\n'
            'model_server_requests_total{route="/predict",status="503"} 2.0\n'
            'model_server_requests_total{route="/readyz",status="200"} 99.0\n')

    class Reply:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self):
            return text.encode()

    monkeypatch.setattr(traffic.urllib.request, "urlopen", lambda url, timeout: Reply())
    assert traffic.served(1234) == {"200": 1234, "503": 2}


def test_route_replaces_the_file_whole_and_says_what_is_live(tmp_path):
    (tmp_path / "nginx").mkdir()
    assert traffic.routed_live(tmp_path) is None
    traffic.route(tmp_path, "green")
    assert traffic.routed_live(tmp_path) == "green"
    assert list((tmp_path / "nginx").iterdir()) == [tmp_path / "nginx" / traffic.ROUTES]  # no scratch file left
    (tmp_path / "nginx" / traffic.ROUTES).write_text("set $live http://somewhere;\n")
    assert traffic.routed_live(tmp_path) is None  # a file this module did not write


def test_the_live_release_cannot_be_removed(tmp_path):
    (tmp_path / "nginx").mkdir()
    traffic.route(tmp_path, "blue")
    with pytest.raises(traffic.RequirementNotMet, match="blue is the live release"):
        traffic.remove_release(tmp_path, "labkit-t8-nothing", "blue")


@pytest.fixture
def versioned_server(local_server):
    local_server.delay_s = 0.003  # so that the load outlasts the action
    return local_server


def test_run_across_tells_what_answered_before_and_after_the_action(versioned_server):
    url = f"http://127.0.0.1:{versioned_server.server_address[1]}/predict"

    def switch():
        time.sleep(0.2)
        versioned_server.version = "1.1"
        return "switched"

    across = load.run_across(url, b"{}", switch, requests=1500, concurrency=4, after_s=0.3)
    assert across.error is None and across.value == "switched"
    assert across.result.requests == 1500 and across.result.errors == 0
    before, after = across.seen(before=True), across.seen(before=False)
    assert set(before) == {"1.0"} and set(after) == {"1.1"}, (before, after)
    assert sum(before.values()) > 0 and sum(after.values()) > 0
    assert 0.3 <= across.action_at < 2 and 0.2 <= across.action_s < 1
    assert across.p99_ms(during=True) > 0 and across.p99_ms(during=False) > 0


def test_run_across_records_a_failed_action_and_ends_the_load_there(versioned_server):
    url = f"http://127.0.0.1:{versioned_server.server_address[1]}/predict"

    def broken():
        raise RuntimeError("nginx said no")

    across = load.run_across(url, b"{}", broken, requests=5000, concurrency=2, after_s=0.1)
    assert across.error == "RuntimeError: nginx said no" and across.value is None
    assert 0 < across.result.requests < 5000 and across.result.seconds < 2  # 5,000 would take over 7 s
    assert set(across.seen(before=False)) <= {"1.0"}


def test_run_across_counts_failures_as_none():
    across = load.run_across("http://127.0.0.1:9/predict", b"{}", lambda: None, requests=20, concurrency=2,
                             after_s=0.0)
    assert across.result.errors == 20
    assert set(across.seen(before=True)) | set(across.seen(before=False)) == {None}


def test_run_across_refuses_a_target_that_is_not_loopback():
    with pytest.raises(load.NotLoopback):
        load.run_across("http://10.0.0.8/predict", b"{}", lambda: None)


# ---------------------------------------------------------------- on the engine

LAB = "t8"
APP = f"labkit/{LAB}-app:v1"
BODY = b'{"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}'


@pytest.mark.docker
@pytest.mark.timeout(600)
def test_a_switch_and_a_rollback_under_load_fail_no_request(tmp_path, compose_stack):
    stack = traffic.write_stack(tmp_path / "stack", lab=LAB, images={"blue": APP, "green": APP},
                                versions={"blue": "1.0", "green": "1.1"})
    project = compose_stack(stack, LAB, "bluegreen", ("blue", "green", "proxy"))
    at = traffic.ports(project)
    assert (traffic.version_at(at["live"]), traffic.version_at(at["preview"])) == ("1.0", "1.1")
    url = f"http://127.0.0.1:{at['live']}/predict"

    to_green = load.run_across(url, BODY, lambda: traffic.switch(stack, project, "green", expect_version="1.1"),
                               requests=2000, concurrency=4, after_s=1.0)
    assert to_green.error is None and to_green.result.requests == 2000
    assert to_green.result.errors == 0, to_green.seen(before=False)
    assert set(to_green.seen(before=True)) == {"1.0"} and set(to_green.seen(before=False)) == {"1.1"}
    assert traffic.version_at(at["preview"]) == "1.0"  # blue waits in preview, for a rollback

    back = load.run_across(url, BODY, lambda: traffic.switch(stack, project, "blue", expect_version="1.0"),
                           requests=2000, concurrency=4, after_s=1.0)
    assert back.error is None and back.result.errors == 0 and set(back.seen(before=False)) == {"1.0"}

    # routes nginx refuses: the reload fails, and the release that was live stays live
    (stack / "nginx" / traffic.ROUTES).write_text("set $live http://green:8080\n")  # no semicolon
    with pytest.raises(traffic.SwitchError, match="nginx -t"):
        traffic.reload(project)
    assert traffic.version_at(at["live"]) == "1.0"
    traffic.route(stack, "blue")

    # a new green (another version) replaces the one in preview; blue stays live throughout
    traffic.write_stack(stack, lab=LAB, images={"blue": APP, "green": APP}, versions={"blue": "1.0", "green": "1.2"})
    traffic.redeploy(stack, project, "green", expect_version="1.2")
    assert (traffic.version_at(at["live"]), traffic.version_at(at["preview"])) == ("1.0", "1.2")

    traffic.switch(stack, project, "green", expect_version="1.2")
    load.run_load(url, BODY, requests=50, concurrency=2)
    assert traffic.served(at["live"]).get("200", 0) >= 50  # green's own count, since it started
    traffic.remove_release(stack, project, "blue")
    assert compose.containers(project, "blue") == []
    assert traffic.version_at(at["live"]) == "1.2"
