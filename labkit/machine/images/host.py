"""What the host gives a stand-in build: the cache folder, the CA bundle to carry, the Debian
mirrors its apt sources name, and its architecture. None of it is part of a recipe hash."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path

from .catalog import ImagesError, file_digest

_HOST_CA_CANDIDATES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
    "/etc/ssl/cert.pem",  # Arch, macOS-style
)


def cache_dir() -> Path:
    """Root of labkit's cache (``$LABKIT_CACHE_DIR`` or ``~/.cache/labkit``)."""
    if os.environ.get("LABKIT_CACHE_DIR"):
        return Path(os.environ["LABKIT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "labkit"


def host_ca_bundle() -> Path | None:
    """The CA bundle stand-ins carry: ``$LABKIT_CA_BUNDLE`` or the host's system bundle."""
    if os.environ.get("LABKIT_CA_BUNDLE"):
        path = Path(os.environ["LABKIT_CA_BUNDLE"])
        if not path.is_file():
            raise ImagesError(f"LABKIT_CA_BUNDLE={path} is not a file")
        return path
    for candidate in _HOST_CA_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    return None


def ca_digest(bundle: Path | None = None) -> str:
    """Value of the ``labkit.standin.ca`` label for the CA bundle stand-ins carry now."""
    bundle = host_ca_bundle() if bundle is None else bundle
    if bundle is None:
        return "none"
    return file_digest(bundle.read_bytes())[:16]


_PEM_RE = re.compile(
    rb"-----BEGIN CERTIFICATE-----\s*(.+?)\s*-----END CERTIFICATE-----", re.DOTALL
)


def pem_certificates(data: bytes) -> dict[str, bytes]:
    """The certificates in a PEM bundle, keyed by their (whitespace-free) base64 body."""
    certs = {}
    for match in _PEM_RE.finditer(data):
        body = re.sub(rb"\s+", b"", match.group(1))
        certs[body.decode("ascii", "replace")] = match.group(0) + b"\n"
    return certs


def extra_certificates(host_bundle: bytes, debian_bundle: bytes) -> list[bytes]:
    """Certificates the host trusts that Debian's bundle lacks (e.g. a proxy's CA)."""
    debian = pem_certificates(debian_bundle)
    return [pem for body, pem in pem_certificates(host_bundle).items() if body not in debian]


def parse_apt_sources(texts: Iterable[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """(URI, suites) of every enabled ``deb`` source in one-line or deb822 files.

    ``texts`` yields (file name, content); deb822 files end in ``.sources``.
    """
    sources: list[tuple[str, list[str]]] = []
    for fname, text in texts:
        if fname.endswith(".sources"):
            for stanza in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = {}
                key = None
                for line in stanza.splitlines():
                    if not line.strip() or line.lstrip().startswith("#"):
                        continue
                    if line[0] in " \t" and key:
                        fields[key] += " " + line.strip()
                        continue
                    key, _, value = line.partition(":")
                    key = key.strip().lower()
                    fields[key] = value.strip()
                if "deb" not in fields.get("types", "").split():
                    continue
                if fields.get("enabled", "yes").lower() == "no":
                    continue
                for uri in fields.get("uris", "").split():
                    sources.append((uri, fields.get("suites", "").split()))
        else:
            for line in text.splitlines():
                line = line.split("#", 1)[0].strip()
                parts = line.split()
                if len(parts) < 3 or parts[0] != "deb":
                    continue
                rest = parts[1:]
                if rest[0].startswith("["):  # options: deb [arch=amd64 signed-by=...] URI ...
                    while rest and not rest[0].endswith("]"):
                        rest = rest[1:]
                    rest = rest[1:]
                if len(rest) >= 2:
                    sources.append((rest[0], [rest[1]]))
    return [(uri, suites) for uri, suites in sources if uri.startswith(("http://", "https://"))]


def _host_apt_sources() -> list[tuple[str, list[str]]]:
    texts = []
    main = Path("/etc/apt/sources.list")
    files = [main] if main.is_file() else []
    d = Path("/etc/apt/sources.list.d")
    if d.is_dir():
        files += sorted(p for p in d.iterdir() if p.suffix in (".list", ".sources"))
    for path in files:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            texts.append((path.name, path.read_text()))
    return parse_apt_sources(texts)


def debian_mirrors(suite: str, sources: list[tuple[str, list[str]]] | None = None
                   ) -> tuple[str | None, str | None]:
    """(archive, security) URLs to build SUITE from; None means "debootstrap's default".

    ``$LABKIT_DEBIAN_MIRROR`` / ``$LABKIT_DEBIAN_SECURITY_MIRROR`` win; else the host's
    apt sources that serve the suite; else None (rootfs-setup.sh then derives the
    security URL from the archive URL debootstrap used).
    """
    sources = _host_apt_sources() if sources is None else sources
    archive = os.environ.get("LABKIT_DEBIAN_MIRROR") or next(
        (uri for uri, suites in sources if suite in suites), None)
    security = os.environ.get("LABKIT_DEBIAN_SECURITY_MIRROR") or next(
        (uri for uri, suites in sources if f"{suite}-security" in suites), None)
    return archive, security


def host_arch() -> str:
    """The Debian architecture of this host (``amd64``): part of every cached file's name."""
    try:
        return subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return os.uname().machine
