"""A tiny app that needs a secret at start-up, for lab 03 (secrets).

It loads an API token from one source, then serves its fingerprint (never the value) on
``GET /`` (port 8080), or with ``--once`` prints it and exits:

  reader.py --file /run/secrets/hf_token        a file (Compose/Swarm secret, K8s Secret volume)
  reader.py --env HF_TOKEN                      an environment variable (the leaky way)
  reader.py --aws SECRET_ID                     AWS Secrets Manager via boto3; AWS_ENDPOINT_URL
                                                points it at an emulator

The start-up line is ``reader: source=... version=... fingerprint=sha256:...``.
"""

import argparse
import hashlib
import json
import os
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer


def fingerprint(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.strip().encode()).hexdigest()[:12]


def from_aws(secret_id: str, attempts: int = 10) -> tuple[str, str]:
    import boto3  # only this source needs it

    client = boto3.client("secretsmanager")  # honours AWS_ENDPOINT_URL and AWS_* credentials
    for attempt in range(attempts):
        try:
            answer = client.get_secret_value(SecretId=secret_id)
            return answer["SecretString"], answer["VersionId"]
        except Exception as exc:  # the emulator may still be starting: retry briefly
            if attempt == attempts - 1:
                raise SystemExit(f"reader: cannot read {secret_id} from Secrets Manager: "
                                 f"{type(exc).__name__}: {exc}") from None
            time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--file")
    source.add_argument("--env")
    source.add_argument("--aws")
    parser.add_argument("--once", action="store_true", help="print the fingerprint and exit")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # PID 1 gets no default handler: stop at once

    version = "-"
    if args.file:
        try:
            with open(args.file) as f:
                value = f.read()
        except OSError as exc:
            sys.exit(f"reader: cannot read the secret file: {exc}")
        where = f"file:{args.file}"
    elif args.env:
        value = os.environ.get(args.env, "")
        if not value:
            sys.exit(f"reader: environment variable {args.env} is not set")
        where = f"env:{args.env}"
    else:
        value, version = from_aws(args.aws)
        where = f"aws:{args.aws}"
    info = {"source": where, "version": version, "length": len(value.strip()), "fingerprint": fingerprint(value)}
    print(f"reader: source={where} version={version} fingerprint={info['fingerprint']}", flush=True)
    if args.once:
        return

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(info).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_):
            pass

    HTTPServer(("0.0.0.0", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
