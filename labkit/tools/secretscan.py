"""Find secrets in a Docker image: every layer, the image config and its history.

``scan_image(ref, secret)`` exports the image the way ``docker save`` does, opens each
layer's tar and searches every file for the secret's value (and its base64 form), then
walks the image config (Env, Labels, Cmd, Entrypoint, history's ``created_by``...). Files
a later layer deletes are still found: a deletion only hides them (the layer that added
them still ships). With ``patterns=True`` it also runs detect-secrets' default plugins
(AWS keys, private keys, GitHub/Slack tokens, high-entropy strings...) over the config
and over the text files of the layers built on top of the base image.

Findings never carry the secret itself: ``Finding.excerpt`` is redacted. (What the notebook
itself shows is searched by ``labkit.student.outputs_containing``.)
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable, Iterator

from . import dockerlab

CHUNK = 1 << 20
PATTERN_MAX_FILE = 256 * 1024      # detect-secrets only reads text files up to this size
PATTERN_MAX_FILES = 5000           # and at most this many per image


@dataclass(frozen=True)
class Finding:
    kind: str               # "value", "value (base64)", or a detect-secrets type ("AWS Access Key")
    where: str              # "layer" or "config"
    layer: int | None       # index of the layer (0 = oldest), None for config fields not tied to one
    instruction: str        # the Dockerfile instruction that added it (from the history)
    path: str               # file path in the layer, or the config field (e.g. "config.Env[2]")
    deleted_later: bool = False   # a later layer deletes the file: hidden, but still shipped
    excerpt: str = ""       # redacted context

    def line(self) -> str:
        at = "config" if self.where == "config" else f"layer {self.layer}"
        if self.where == "config" and self.layer is not None:
            at = f"config, layer {self.layer}"
        gone = "  (deleted by a later layer, still in the image)" if self.deleted_later else ""
        return f"{self.kind:<16} {at:<16} {self.path:<28} ← {self.instruction[:70]}{gone}"


def fingerprint(value: str | bytes) -> str:
    """A short, one-way name for a secret: ``sha256:`` and 12 hex digits of its SHA-256."""
    data = value.encode() if isinstance(value, str) else value
    return "sha256:" + hashlib.sha256(data.strip()).hexdigest()[:12]


def new_token_file(path: str | Path) -> str:
    """Write a fresh fake Hugging Face token (``hf_`` + 34 hex digits) to ``path`` and return it.

    The folder is made readable only by you (0700); the file itself is 0644 so that a container's
    non-root user can read it once it is mounted. Never print what this returns."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    token = "hf_" + secrets.token_hex(17)
    path.write_text(token)
    path.chmod(0o644)
    return token


def redact(text: str, *secrets: str | bytes | None) -> str:
    """``text`` with every secret (and its base64 form) replaced by ``<redacted sha256:…>``."""
    for secret in secrets:
        if not secret:
            continue
        value = secret.decode() if isinstance(secret, bytes) else secret
        for form in forms(value.strip()):
            text = text.replace(form, f"<redacted {fingerprint(value)}>")
    return text


def forms(value: str) -> dict[str, str]:
    """The forms a secret may be shown in: as it is, and base64-encoded."""
    return {value: "value", base64.b64encode(value.encode()).decode(): "value (base64)"}


# ---------------------------------------------------------------- the image

@dataclass
class _Layer:
    index: int
    instruction: str
    tar_path: str          # member name in the saved archive


def _instruction(created_by: str) -> str:
    text = dockerlab.Layer(0, created_by).instruction
    return " ".join(re.sub(r"\bmulti:[0-9a-f]{64}", "…", text).split())


def _save(ref: str, into: Path) -> Path:
    """``docker save REF`` into a file; returns its path."""
    image = dockerlab.image(ref)
    target = into / "image.tar"
    with open(target, "wb") as out:
        for chunk in image.save(named=False):
            out.write(chunk)
    return target


def _layers_and_config(archive: tarfile.TarFile) -> tuple[list[_Layer], dict]:
    manifest = json.load(archive.extractfile("manifest.json"))[0]
    config = json.load(archive.extractfile(manifest["Config"]))
    made = [h for h in config.get("history", []) if not h.get("empty_layer")]
    layers = []
    for i, member in enumerate(manifest["Layers"]):
        created_by = made[i].get("created_by", "") if i < len(made) else ""
        layers.append(_Layer(i, _instruction(created_by), member))
    return layers, config


def _whiteouts(archive: tarfile.TarFile, layers: list[_Layer]) -> list[set[str]]:
    """Per layer, the paths it deletes (whiteout files ``.wh.NAME``; ``.wh..wh..opq`` = a whole folder)."""
    found = []
    for layer in layers:
        deleted = set()
        with tarfile.open(fileobj=archive.extractfile(layer.tar_path), mode="r:*") as tar:
            for member in tar:
                name = PurePosixPath(member.name.lstrip("./"))
                if name.name == ".wh..wh..opq":
                    deleted.add(str(name.parent) + "/")
                elif name.name.startswith(".wh."):
                    deleted.add(str(name.parent / name.name[4:]).lstrip("./"))
        found.append(deleted)
    return found


def _is_deleted(path: str, later: Iterable[set[str]]) -> bool:
    parts = PurePosixPath(path).parts
    prefixes = {"/".join(parts[:i]) for i in range(1, len(parts) + 1)}
    for deleted in later:
        if prefixes & deleted or any(path.startswith(d) for d in deleted if d.endswith("/")):
            return True
    return False


def _search_stream(stream, needles: dict[bytes, str]) -> Iterator[tuple[str, bytes]]:
    """(kind, context) for each needle found in a file-like object, read in chunks."""
    keep = max(len(n) for n in needles) - 1
    tail, seen = b"", set()
    while chunk := stream.read(CHUNK):
        buf = tail + chunk
        for needle, kind in needles.items():
            if kind not in seen and (at := buf.find(needle)) >= 0:
                seen.add(kind)
                yield kind, buf[max(0, at - 40): at + len(needle) + 40]
        tail = buf[-keep:] if keep else b""


def _base_layer_count(ref: str, diff_ids: list[str]) -> int:
    """How many of the image's layers come from one of the lab base images."""
    from ..machine.images import BASE_IMAGES
    best = 0
    for name in BASE_IMAGES:
        try:
            base = dockerlab.client().images.get(name).attrs["RootFS"]["Layers"]
        except Exception:  # noqa: BLE001 - not present: not the base
            continue
        if diff_ids[:len(base)] == base:
            best = max(best, len(base))
    return best


def _walk(value, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _walk(inner, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _walk(inner, f"{path}[{i}]")
    elif isinstance(value, str):
        yield path, value


def _config_instruction(path: str, config: dict, layers: list[_Layer]) -> tuple[int | None, str]:
    """The layer and instruction a config field belongs to (history entries name their own)."""
    match = re.match(r"history\[(\d+)\]", path)
    if not match:
        return None, "(image config: set by ENV/LABEL/CMD/ENTRYPOINT, see the history)"
    history = config.get("history", [])
    index = int(match.group(1))
    entry = history[index]
    made = sum(1 for h in history[:index + 1] if not h.get("empty_layer")) - 1
    layer = made if not entry.get("empty_layer") else None
    return layer, _instruction(entry.get("created_by", ""))


def scan_image(ref: str, secret: str | bytes | None = None, *, patterns: bool = False,
               pattern_layers: str = "added") -> list[Finding]:
    """Search the image ``ref`` for ``secret`` (and, with ``patterns``, for known secret shapes).

    ``pattern_layers``: ``"added"`` (default) scans text files only in the layers added on top of
    the lab base image (the base image's own files are not yours); ``"all"`` scans every layer.
    """
    value = (secret.decode() if isinstance(secret, bytes) else secret or "").strip()
    needles = {form.encode(): kind for form, kind in forms(value).items()} if value else {}
    findings: list[Finding] = []
    with tempfile.TemporaryDirectory(prefix="secretscan-") as tmp:
        archive_path = _save(ref, Path(tmp))
        with tarfile.open(archive_path) as archive:
            layers, config = _layers_and_config(archive)
            deleted = _whiteouts(archive, layers)
            diff_ids = config.get("rootfs", {}).get("diff_ids", [])
            first_own = 0 if pattern_layers == "all" else _base_layer_count(ref, diff_ids)
            text_files: list[tuple[_Layer, str, Path]] = []
            for layer in layers:
                with tarfile.open(fileobj=archive.extractfile(layer.tar_path), mode="r:*") as tar:
                    for member in tar:
                        if not member.isfile():
                            continue
                        path = member.name.lstrip("./")
                        if PurePosixPath(path).name.startswith(".wh."):
                            continue
                        gone = _is_deleted(path, deleted[layer.index + 1:])
                        if needles:
                            for kind, context in _search_stream(tar.extractfile(member), needles):
                                findings.append(Finding(kind, "layer", layer.index, redact(layer.instruction, value), "/" + path,
                                                        gone, redact(context.decode(errors="replace"), value)))
                        if (patterns and layer.index >= first_own and member.size <= PATTERN_MAX_FILE
                                and len(text_files) < PATTERN_MAX_FILES):
                            data = tar.extractfile(member).read()
                            if b"\0" not in data[:8192]:
                                local = Path(tmp) / "files" / str(layer.index) / path
                                local.parent.mkdir(parents=True, exist_ok=True)
                                local.write_bytes(data)
                                text_files.append((layer, "/" + path, local))
            fields = [(p, v) for p, v in _walk({k: v for k, v in config.items() if k != "rootfs"}, "")]
            for path, text in fields:
                for form, kind in forms(value).items() if value else ():
                    if form in text:
                        layer, instruction = _config_instruction(path, config, layers)
                        findings.append(Finding(kind, "config", layer, redact(instruction, value), path, False,
                                                redact(text[:160], value)))
            if patterns:
                findings += _pattern_findings(text_files, _pattern_fields(fields), config, layers, deleted,
                                              value, Path(tmp))
    return findings


PATTERN_FIELDS = re.compile(r"^(config\.(Env|Cmd|Entrypoint|OnBuild|Labels)\b|history\[\d+\]\.created_by$)")


def _pattern_fields(fields: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The config fields a person writes (not ids, hashes or labkit's own labels), as instructions."""
    return [(p, _instruction(v) if p.startswith("history") else v) for p, v in fields
            if PATTERN_FIELDS.match(p) and not p.startswith("config.Labels.labkit.")]


def _pattern_findings(text_files, fields, config, layers, deleted, value, tmp: Path) -> list[Finding]:
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    config_file = tmp / "image-config.txt"
    config_file.write_text("".join(f"{p} = {v!r}\n".replace("\n", " ").rstrip() + "\n" for p, v in fields))
    by_local = {str(local): (layer, path) for layer, path, local in text_files}
    found = []
    with default_settings():
        collection = SecretsCollection(root=str(tmp))
        collection.scan_files(str(config_file), *by_local)
    for filename, secret in collection:
        full = str(tmp / filename) if not os.path.isabs(filename) else filename
        if full == str(config_file):
            path = fields[secret.line_number - 1][0]
            layer, instruction = _config_instruction(path, config, layers)
            found.append(Finding(secret.type, "config", layer, redact(instruction, value), path, False,
                                 "(pattern match)"))
        elif full in by_local:
            layer, path = by_local[full]
            found.append(Finding(secret.type, "layer", layer.index, redact(layer.instruction, value), path,
                                 _is_deleted(path.lstrip("/"), deleted[layer.index + 1:]),
                                 f"(pattern match, line {secret.line_number})"))
    return found


def report(findings: list[Finding], title: str = "") -> None:
    """Print the findings, one line each (never the secret)."""
    if title:
        print(title)
    if not findings:
        print("  nothing found")
    for finding in findings:
        print("  " + finding.line())

