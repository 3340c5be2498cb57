"""CLI: ``python -m model_server {http,serve,train,export,healthcheck}`` (``http`` is the default).

``serve`` exists because SageMaker starts containers as ``docker run IMAGE serve``.
``healthcheck`` lets slim images without curl run a Docker HEALTHCHECK.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Optional, Sequence

from .config import DEFAULT_MODEL_DIR, Settings, resolve_port

COMMANDS = ("http", "serve", "train", "export", "healthcheck")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m model_server", description="Sample Iris model server for the containerization labs.")
    sub = parser.add_subparsers(dest="command", metavar="{http,serve,train,export,healthcheck}")
    for name, text in (("http", "run the HTTP model server (default)"),
                       ("serve", "same server; the command SageMaker runs")):
        cmd = sub.add_parser(name, help=text, description=text)
        cmd.add_argument("--host", default=None, help="bind address (default 0.0.0.0)")
        cmd.add_argument("--port", type=int, default=None,
                         help="default: AIP_HTTP_PORT > SAGEMAKER_BIND_TO_PORT > PORT > 8080")
        cmd.add_argument("--model-dir", default=None, help="default: MODEL_DIR > /opt/ml/model")
    cmd = sub.add_parser("train", help="train the Iris model and write it to a directory")
    cmd.add_argument("--out", default=None, help="output dir (default: MODEL_DIR > /opt/ml/model)")
    cmd = sub.add_parser("export", help="write the trained model's weights (linear.npz): served with NumPy alone")
    cmd.add_argument("--model-dir", default=None, help="default: MODEL_DIR > /opt/ml/model")
    cmd = sub.add_parser("healthcheck", help="exit 0 if the local server answers 200, else 1")
    cmd.add_argument("--url", default=None, help="default: http://127.0.0.1:<resolved port>/healthz")
    cmd.add_argument("--ready", action="store_true", help="check /readyz instead of /healthz")
    cmd.add_argument("--timeout", type=float, default=3.0, help="seconds (default 3)")
    return parser


def healthcheck(url: Optional[str], ready: bool = False, timeout: float = 3.0) -> int:
    url = url or f"http://127.0.0.1:{resolve_port()}/{'readyz' if ready else 'healthz'}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except Exception as exc:  # refused, timed out, DNS...
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    print(f"{'healthy' if status == 200 else 'unhealthy'}: {url} answered {status}")
    return 0 if status == 200 else 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help")):
        argv.insert(0, "http")  # `python -m model_server --port 9000` runs the server
    args = _parser().parse_args(argv)
    if args.command in ("http", "serve"):
        from .server import configure_logging, serve

        configure_logging()
        try:
            settings = Settings.from_env(host=args.host, port=args.port, model_dir=args.model_dir)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return serve(settings)
    if args.command == "train":
        from .train import train

        out = args.out or os.environ.get("MODEL_DIR") or DEFAULT_MODEL_DIR
        metadata = train(out)
        print(json.dumps({"model_dir": out, "accuracy": metadata["accuracy"],
                          "sklearn_version": metadata["sklearn_version"]}))
        return 0
    if args.command == "export":
        from .train import export

        print(json.dumps({"weights": str(export(args.model_dir or os.environ.get("MODEL_DIR") or DEFAULT_MODEL_DIR))}))
        return 0
    return healthcheck(args.url, args.ready, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
