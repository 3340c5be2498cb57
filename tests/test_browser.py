"""The student's side, in a real browser: JupyterLab started as `make lab` starts it, lab 00 run
from the menu (Run → Run All Cells) after an answer typed into it that gets one check right and
one wrong, and what the student then sees: the passed check's line, the failed check's why and hint, the score
table; then lab 01's exercise cells. Playwright drives Debian's Chromium (`.ci/run` installs it;
no browser download). Screenshots go to reports/screenshots/, which CI keeps.

JupyterLab serves a copy of the lab notebooks: running cells writes outputs and work/ next to
the notebook, which labs/ (and `labkit build --check`, and the grader) must never see.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from labkit import build, dockerlab, locks, paths, probes

pytestmark = [pytest.mark.docker, pytest.mark.notebook,
              pytest.mark.skipif(bool(probes.docker_reason()), reason=str(probes.docker_reason()))]

SCREENSHOTS = paths.REPO / "reports" / "screenshots"
# A student's first try, typed into lab 00's answer cell: the right base image, the wrong message (00.hello-image passes, 00.hello-run fails).
ANSWER = "FROM python:3.11-slim\nCMD [\"python\", \"-c\", \"print('hello')\"]\n"
RUN_ALL_S = 180  # measured: the whole test takes about 15 s here once lab 00's base image exists


def browser_reason() -> str | None:
    """Why this machine cannot drive a browser, found by trying; None when it can."""
    chromium = shutil.which("chromium")
    if chromium is None:
        return "chromium not found on PATH — install Debian's: apt-get install chromium (.ci/run does)"
    try:
        version = subprocess.run([chromium, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"`chromium --version` could not run: {exc}"
    if version.returncode != 0:
        return f"`chromium --version` failed: {(version.stderr or version.stdout).strip()[-300:]}"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed — pip install -e '.[test]' (make test does)"
    return None


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (Debian's, at `which chromium`) driven by Playwright."""
    if reason := browser_reason():
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=shutil.which("chromium"), headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


@pytest.fixture
def labs_copy(tmp_path) -> Path:
    """The lab notebooks copied to a folder of their own, holding lab 00's lock (no graded run of lab
    00 on this engine meanwhile); afterwards every container, network and image lab 00 made is gone."""
    copy = tmp_path / "labs"
    copy.mkdir()
    for notebook in paths.lab_notebooks(paths.LABS):
        shutil.copy(notebook, copy)
    with locks.graded_run("00", timeout=600):
        yield copy
        dockerlab.cleanup("00", show=False)
        dockerlab.remove_images("00", show=False)
    assert dockerlab.client().containers.list(all=True, filters={"label": "labkit.lab=00"}) == []


def type_answer(notebook, marker: str, answer: str) -> None:
    """Type ``answer`` over the ``# YOUR CODE HERE`` line of the cell that starts with ``marker``,
    key by key, as a student would."""
    stub = notebook.locator(".jp-CodeCell", has_text=marker).locator(".cm-line", has_text=build.FILE_STUB.strip())
    stub.click()
    page = notebook.page
    page.keyboard.press("End")
    page.keyboard.press("Shift+Home")
    for number, line in enumerate(answer.strip().splitlines()):
        if number:
            page.keyboard.press("Enter")
        page.keyboard.type(line)
    page.keyboard.press("Escape")  # command mode: the menu's Run All runs from there


def open_notebook(page, server, name: str):
    """Open ``name`` in JupyterLab; its panel once the kernel is idle."""
    page.goto(server.page(f"/lab/tree/{name}"))
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    panel.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(timeout=60_000)
    return panel


def shoot(locator, name: str) -> None:
    """A screenshot of the page with ``locator`` in the middle of the notebook's view."""
    locator.evaluate("element => element.scrollIntoView({block: 'center'})")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    locator.page.screenshot(path=SCREENSHOTS / name)


def test_a_student_runs_lab_00_and_sees_the_checks(page, labs_copy, jupyterlab):
    from playwright.sync_api import expect

    shipped = (paths.LABS / "00_setup.ipynb").read_bytes()
    server = jupyterlab(labs_copy)
    notebook = open_notebook(page, server, "00_setup.ipynb")
    answer = "%%writefile work/00/hello/Dockerfile"
    type_answer(notebook, answer, ANSWER)

    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    page.locator("#jp-mainmenu-run .lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()

    score = notebook.locator(".jp-OutputArea-output", has_text=re.compile(r"total\s.*2/5"))
    try:
        score.wait_for(timeout=RUN_ALL_S * 1000)
    finally:
        shoot(notebook.locator(".jp-Cell").last, "00_score.png")
    expect(score).to_contain_text("00.hello-run")

    passed = notebook.locator(".jp-RenderedHTMLCommon > div", has_text="[PASS] 00.hello-image 2/2")
    failed = notebook.locator(".jp-RenderedHTMLCommon > div", has_text="[FAIL] 00.hello-run 0/3")
    expect(passed).to_have_css("color", "rgb(26, 127, 55)")  # green, as labkit.checks renders it
    expect(failed).to_have_css("color", "rgb(207, 34, 46)")  # red
    expect(failed).to_contain_text("why: the container printed 'hello' (expected 'hello from a container')")
    expect(failed).to_contain_text("hint: What a container runs by default comes from CMD")
    shoot(passed, "00_checks.png")
    # How the checks work, drawn by Mermaid: JupyterLab renders it as an SVG image
    diagram = notebook.locator(".jp-RenderedMermaid img")
    expect(diagram).to_have_count(1)
    expect(diagram).to_be_visible()
    drawn = diagram.evaluate("image => decodeURIComponent(image.src)")
    assert drawn.startswith("data:image/svg+xml") and "report: score, why, hint" in drawn
    shoot(diagram, "00_diagram.png")
    shoot(notebook.locator(".jp-CodeCell", has_text=answer), "00_answer.png")
    # the kernel ran in the copy: the answer landed in its work/00, and labs/ is as it was
    assert (labs_copy / "work" / "00" / "hello" / "Dockerfile").read_text().strip() == ANSWER.strip()
    assert (paths.LABS / "00_setup.ipynb").read_bytes() == shipped

    lab01 = paths.lab_notebook("01").name
    exercises = [c for c in nbformat.read(labs_copy / lab01, as_version=4).cells
                 if c.cell_type == "code" and build.FILE_STUB.strip() in c.source]
    notebook = open_notebook(page, server, lab01)
    stubs = notebook.locator(".jp-CodeCell .cm-content", has_text=build.FILE_STUB.strip())
    expect(stubs).to_have_count(len(exercises))
    shoot(stubs.first, "01_exercises.png")
