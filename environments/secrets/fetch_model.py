"""Stand-in for a build step that downloads a gated model with a Hugging Face token.

The "hub" accepts any token shaped like ``hf_`` + 30 or more letters/digits. The model
card it writes records the token's fingerprint (so a check can tell which token was
used), never the token. The token comes from ``--token-file``, ``--env-file`` (a
``KEY=value`` file) or the ``HF_TOKEN`` environment variable, in that order.
"""

import argparse
import hashlib
import json
import os
import re
import sys
from pathlib import Path


def read_token(args) -> str:
    if args.token_file:
        return Path(args.token_file).read_text().strip()
    if args.env_file:
        for line in Path(args.env_file).read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "HF_TOKEN":
                return value.strip()
    return os.environ.get("HF_TOKEN", "").strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--token-file")
    parser.add_argument("--env-file")
    parser.add_argument("--out", default="/opt/ml/model")
    args = parser.parse_args()
    token = read_token(args)
    if not re.fullmatch(r"hf_[A-Za-z0-9]{30,}", token):
        sys.exit("fetch_model: no valid token (expected hf_ followed by 30+ letters/digits): "
                 "the hub refuses the download")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    card = {"model": "iris-classifier", "revision": "v1",
            "token_fingerprint": "sha256:" + hashlib.sha256(token.encode()).hexdigest()[:12]}
    (out / "model_card.json").write_text(json.dumps(card) + "\n")
    print(f"fetch_model: downloaded {card['model']}@{card['revision']} into {out}")


if __name__ == "__main__":
    main()
