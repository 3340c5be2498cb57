"""The ``labkit`` command: build, release, grade, grade-all, report-check, doctor, images, clean, sweep."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _build(args) -> int:
    from .course.build import HasStudentWork, build

    try:
        stale = build(check_only=args.check, force=args.force)
    except HasStudentWork as exc:
        print(f"labkit build: {exc}", file=sys.stderr)
        return 1
    if args.check and stale:
        for path in stale:
            print(f"stale: {path} (run `labkit build`)", file=sys.stderr)
        return 1
    print("labs/ is up to date" if not stale else f"wrote {len(stale)} notebook(s) in labs/")
    return 0


def _release(args) -> int:
    from .course.release import ReleaseError, release

    try:
        out = release(Path(args.out), force=args.force)
    except ReleaseError as exc:
        print(f"labkit release: {exc}", file=sys.stderr)
        return 1
    print(f"wrote the class repository to {out}: no solutions, tests or reference answers; "
          f"its `make grade` runs the checks the labs show")
    return 0


def _grade(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from .course.grade import GradingError, grade, parse_value

    parameters = {name: parse_value(value) for name, value in args.parameter or []}
    executed = None
    if args.json:
        executed = Path(args.json).with_suffix(".executed.ipynb")
        executed.parent.mkdir(parents=True, exist_ok=True)
    try:
        report = grade(Path(args.notebook), parameters=parameters, timeout=args.timeout, lab=args.lab,
                       executed_path=executed, progress=sys.stderr.isatty())
    except GradingError as exc:
        print(f"labkit grade: {exc}", file=sys.stderr)
        return 2
    console = Console()
    table = Table(title=f"Lab {report.lab}: {report.score}/{report.max_score}")
    for column in ("check", "result", "points", "message"):
        table.add_column(column, overflow="fold")
    for c in report.checks:
        result = "skipped" if c["skipped"] else ("[green]pass" if c["passed"] else "[red]FAIL")
        table.add_row(c["id"], result, f"{c['earned']}/{c['points']}", c["message"])
    console.print(table)
    for note in report.notes:
        console.print(f"note: {note}", soft_wrap=True)
    if report.errors:
        console.print(f"{len(report.errors)} cell(s) raised errors; see the report.")
    if args.json:
        out = Path(args.json)
        out.write_text(json.dumps(report.as_dict(), indent=2) + "\n")
        out.with_suffix(".md").write_text(report.markdown())
        console.print(f"wrote {out}, {out.with_suffix('.md')} and {executed}")
    return 0


def _grade_all(args) -> int:
    from .course import gradebook
    from .course.batch import grade_all

    folder = Path(args.submissions)
    if not folder.is_dir():
        print(f"labkit grade-all: {folder} is not a folder (give the folder of notebooks, or of student folders)",
              file=sys.stderr)
        return 2
    out = Path(args.out)
    rows = grade_all(folder, out, lab=args.lab, jobs=args.jobs, cell_timeout=args.timeout, regrade=args.regrade,
                     **({"limit": args.limit} if args.limit else {}))
    if not rows:
        print(f"labkit grade-all: no notebooks in {folder}", file=sys.stderr)
        return 2
    for path in gradebook.write_all(rows, out):
        print(f"wrote {path}")
    print(f"each student's report: {out / 'reports'}/<student>/<lab>.md")
    return 0


def _report_check(args) -> int:
    from .course.classroom import check_status

    status, line = check_status(Path(args.report), args.check)
    print(line)
    return status


def jupyter_argv(port: int, extra: list[str], notebook_dir: Path | None = None) -> list[str]:
    """How `make lab` starts JupyterLab: on labs/ (a test: on a copy), bound to localhost, with this
    Python's kernel.

    Its kernels encrypt their traffic (CurveZMQ keys the server provisions for a kernelspec that
    declares them, as ipykernel's does), so that ipykernel does not warn at each start that it
    runs over TCP in plain text. Not IPC: its sockets would sit in Jupyter's runtime folder, whose
    path (a setting, a long home) can exceed the 104-108 bytes a socket path may have."""
    from .core.paths import LABS

    import os

    as_root = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []  # containers, CI
    return [sys.executable, "-m", "jupyterlab", f"--notebook-dir={notebook_dir or LABS}",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
            "--MappingKernelManager.transport_encryption=auto", *as_root, *extra]


def _lab(args) -> int:
    import os

    argv = jupyter_argv(args.port, args.jupyter_args)
    print("starting JupyterLab on labs/; open the http://127.0.0.1 URL it prints below "
          "(Ctrl+C twice to stop)", flush=True)
    os.execv(argv[0], argv)


def _doctor(args) -> int:
    if args.gpu or args.image:
        from .machine.gpu import run_gpu_doctor

        rows = run_gpu_doctor(args.image)
        return 1 if any(row.ok is False for row in rows) else 0
    from .machine.doctor import run_doctor

    return run_doctor()


def _images(args) -> int:
    from .machine.images import ImagesError, ensure_base_images

    try:
        ensure_base_images(force=args.force)
    except ImagesError as exc:
        print(f"labkit images: {exc}", file=sys.stderr)
        return 1
    return 0


def _clean(args) -> int:
    from .tools import dockerlab

    try:
        dockerlab.client()
    except dockerlab.DockerLabError as exc:
        print(f"labkit clean: {exc}", file=sys.stderr)
        return 1
    removed = dockerlab.cleanup(args.lab)
    images = dockerlab.remove_images(args.lab)
    if not any(removed.values()) and not images:
        print("nothing to clean")
    return 0


def _sweep(args) -> int:
    """List (or delete) what labs left on a real account, found by the labkit-lab tag/label."""
    from .machine import probes

    if not (args.aws or args.gcp):
        print("labkit sweep: say where: --aws, --gcp or both", file=sys.stderr)
        return 2
    found, status = [], 0
    for cloud, wanted, reason in (("aws", args.aws, probes.aws_credentials_reason),
                                  ("gcp", args.gcp, probes.gcp_credentials_reason)):
        if not wanted:
            continue
        problem = reason()
        if problem:
            print(f"labkit sweep --{cloud}: {problem}", file=sys.stderr)
            status = 1
            continue
        if cloud == "aws":
            import boto3

            from .cloud import aws
            leftovers = aws.sweep(session=boto3.Session(region_name=args.region) if args.region else None,
                                  delete=args.delete, lab=args.lab)
        else:
            from .cloud import vertex
            try:
                leftovers = vertex.sweep(delete=args.delete, lab=args.lab, project=args.project,
                                         **({"location": args.region} if args.region else {}))
            except vertex.VertexError as exc:  # e.g. no project given or configured
                print(f"labkit sweep --gcp: {exc}", file=sys.stderr)
                status = 1
                continue
        found += [(cloud, item) for item in leftovers]
    for cloud, item in found:
        print(f"{cloud}: {item.describe()}")
    if not found and not status:
        print("nothing tagged by the labs was found")
    elif found and not args.delete:
        print(f"{len(found)} leftover(s); `labkit sweep {'--aws ' if args.aws else ''}{'--gcp ' if args.gcp else ''}"
              "--delete` removes them")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="labkit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build", help="write labs/ from solutions/")
    p.add_argument("--check", action="store_true", help="fail when labs/ is stale; write nothing")
    p.add_argument("--force", action="store_true", help="overwrite lab notebooks that have outputs")
    p.set_defaults(func=_build)

    p = sub.add_parser("release", help="write the repository a graded class gets: the labs without the answers")
    p.add_argument("out", help="the folder to write it to (new or empty)")
    p.add_argument("--force", action="store_true", help="replace what the folder holds")
    p.set_defaults(func=_release)

    p = sub.add_parser("grade", help="run a notebook with the canonical checks and score it")
    p.add_argument("notebook")
    p.add_argument("--json", metavar="OUT", help="write the report as JSON (and Markdown beside it)")
    p.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="set a parameter of the notebook's parameters cell")
    p.add_argument("--timeout", type=int, default=900, help="seconds per cell (default 900)")
    p.add_argument("--lab", help="the lab the notebook must be (default: what its metadata or name says)")
    p.set_defaults(func=_grade)

    p = sub.add_parser("grade-all", help="grade a folder of submissions; write a gradebook, summaries, JUnit XML")
    p.add_argument("submissions", help="a folder of notebooks, or of student folders (one per student)")
    p.add_argument("--out", default="grades", help="where to write the gradebook and reports (default grades/)")
    p.add_argument("--lab", help="grade only this lab's notebooks (another lab's scores 0 with the reason)")
    p.add_argument("--jobs", type=int, default=1,
                   help="graded runs at once (default 1); runs of one lab never overlap")
    p.add_argument("--limit", type=float, help="seconds one notebook may take in all (default 1200)")
    p.add_argument("--timeout", type=int, default=900, help="seconds per cell (default 900)")
    p.add_argument("--regrade", action="store_true", help="grade again what an earlier run graded unchanged")
    p.set_defaults(func=_grade_all)

    p = sub.add_parser("report-check", help="exit 0 when a check passed in a grading report (1: failed, "
                                            "2: no such report or check, 3: skipped); GitHub Classroom's test")
    p.add_argument("report", help="a report written by `labkit grade --json`")
    p.add_argument("check", help="the check's id, e.g. 01.final-size")
    p.set_defaults(func=_report_check)

    p = sub.add_parser("lab", help="open JupyterLab on labs/ (prints the URL; needs no browser)")
    p.add_argument("--port", type=int, default=8888)
    p.add_argument("jupyter_args", nargs=argparse.REMAINDER, help="passed on to jupyter lab")
    p.set_defaults(func=_lab)

    p = sub.add_parser("doctor", help="check this machine for what the labs need")
    p.add_argument("--gpu", action="store_true",
                   help="the FAQ's three GPU checks: toolkit, a real --gpus all request, driver vs CUDA")
    p.add_argument("--image", metavar="IMAGE", help="with --gpu: also check IMAGE's CUDA version against the driver")
    p.set_defaults(func=_doctor)

    p = sub.add_parser("images", help="make sure the base images exist (pull, or build stand-ins)")
    p.add_argument("--force", action="store_true", help="rebuild stand-ins")
    p.set_defaults(func=_images)

    p = sub.add_parser("clean", help="remove containers, networks, volumes and images the labs made")
    p.add_argument("--lab", help="only this lab's (e.g. 01)")
    p.set_defaults(func=_clean)

    p = sub.add_parser("sweep", help="list (--delete: remove) cloud resources the labs left, by their tags")
    p.add_argument("--aws", action="store_true", help="SageMaker, S3 and ECR in the AWS region")
    p.add_argument("--gcp", action="store_true", help="Vertex AI endpoints and models in the GCP project")
    p.add_argument("--delete", action="store_true", help="remove what is found (default: only list)")
    p.add_argument("--lab", help="only this lab's (e.g. 05)")
    p.add_argument("--region", help="AWS region or GCP location (default: the SDK's configured one)")
    p.add_argument("--project", help="GCP project (default: GOOGLE_CLOUD_PROJECT or the gcloud default)")
    p.set_defaults(func=_sweep)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
