"""Smoke test: JupyterLab starts the way `make lab` starts it and serves the lab notebooks."""

from labkit import paths


def test_jupyterlab_lists_the_labs(jupyterlab):
    server = jupyterlab()
    names = {item["name"] for item in server.get("/api/contents").json()["content"]}
    expected = {p.name for p in paths.lab_notebooks(paths.LABS)}
    assert expected and expected <= names
    lab_page = server.get("/lab")
    assert lab_page.status_code == 200 and "JupyterLab" in lab_page.text
