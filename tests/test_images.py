"""labkit.images: the base-image registry, recipe hashing/caching, and the stand-ins themselves.

The unit tests need no Docker. The ``docker`` tests call ensure_base_images() once (a cold
build of both stand-ins takes about 2 minutes on 2 cores; with the images present, well
under a second) and then inspect the images and run one short container per image.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest
from rich.console import Console

from labkit import images
from labkit.images import BASE_IMAGES, RECIPES_DIR, ImagesError
from labkit.machine.images import ensure
from labkit.machine.images.builder import Builder
from labkit.machine.images.progress import Progress

QUIET = Console(quiet=True)


# --------------------------------------------------------------------------- unit tests


@pytest.fixture
def recipes(tmp_path: Path) -> Path:
    """A private copy of environments/base-images/ to edit."""
    dest = tmp_path / "recipes"
    shutil.copytree(RECIPES_DIR, dest)
    return dest


def test_registry_is_complete():
    assert {"python:3.11-slim", "python:3.11"} <= set(BASE_IMAGES)
    for name, image in BASE_IMAGES.items():
        assert image.name == name and ":" in name
        for recipe_file in (image.packages, image.dockerfile, "rootfs-setup.sh"):
            assert (RECIPES_DIR / recipe_file).is_file(), recipe_file
        assert image.official_size is None or image.official_size > 0
    # lab 01's ratios are measured on these two, so their stand-ins must match a known official size
    assert all(BASE_IMAGES[name].official_size for name in ("python:3.11-slim", "python:3.11"))
    assert (RECIPES_DIR / "README.md").is_file()


def test_recipe_hash_is_stable_and_distinct():
    first = {name: images.recipe_hash(name) for name in BASE_IMAGES}
    again = {name: images.recipe_hash(BASE_IMAGES[name]) for name in BASE_IMAGES}
    assert first == again
    assert len(set(first.values())) == len(first)
    assert all(len(h) == 16 and int(h, 16) >= 0 for h in first.values())


def test_recipe_hash_follows_the_recipe_files(recipes: Path):
    slim, full = BASE_IMAGES["python:3.11-slim"], BASE_IMAGES["python:3.11"]
    before = {i.name: (images.recipe_hash(i, recipes), images.rootfs_key(i, recipes)) for i in (slim, full)}

    # a package list change: that image's rootfs and recipe change, the other's do not
    with (recipes / slim.packages).open("a") as fh:
        fh.write("less\n")
    assert images.rootfs_key(slim, recipes) != before[slim.name][1]
    assert images.recipe_hash(slim, recipes) != before[slim.name][0]
    assert images.recipe_hash(full, recipes) == before[full.name][0]

    # a Dockerfile change: new recipe hash (image rebuilt) but the cached rootfs is reused
    key = images.rootfs_key(full, recipes)
    with (recipes / full.dockerfile).open("a") as fh:
        fh.write("\n# a comment\n")
    assert images.rootfs_key(full, recipes) == key
    assert images.recipe_hash(full, recipes) != before[full.name][0]

    # the shared setup script is part of every rootfs
    with (recipes / "rootfs-setup.sh").open("a") as fh:
        fh.write("\n# a comment\n")
    assert images.rootfs_key(full, recipes) != key


def test_missing_recipe_file_is_a_clear_error(recipes: Path):
    (recipes / "python-3.11.packages").unlink()
    with pytest.raises(ImagesError, match="python-3.11.packages"):
        images.recipe_hash(BASE_IMAGES["python:3.11"], recipes)


def test_unknown_image_name():
    with pytest.raises(ImagesError, match="python:3.11-slim"):
        images.recipe_hash("python:2.7")


def _attrs(**labels: str) -> dict:
    return {"Id": "sha256:x", "Size": 1, "Config": {"Labels": labels or None}}


def test_image_state_decides_what_to_rebuild():
    name = "python:3.11-slim"
    recipe, ca = images.recipe_hash(name), "cafe"
    current = {"labkit.standin": "true", "labkit.standin.of": name,
               "labkit.standin.recipe": recipe, "labkit.standin.ca": ca}
    assert images.image_state(name, None, recipe=recipe, ca=ca) == "missing"
    assert images.image_state(name, _attrs(), recipe=recipe, ca=ca) == "official"
    assert images.image_state(name, _attrs(maintainer="x"), recipe=recipe, ca=ca) == "official"
    assert images.image_state(name, _attrs(**current), recipe=recipe, ca=ca) == "current"
    for key, value in (("labkit.standin.recipe", "0" * 16), ("labkit.standin.ca", "beef"),
                       ("labkit.standin.of", "python:3.11")):
        assert images.image_state(name, _attrs(**{**current, key: value}), recipe=recipe, ca=ca) == "stale"


def test_cache_files_are_keyed_by_name_arch_and_recipe(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_CACHE_DIR", str(tmp_path))
    builder = Builder(None, Progress(QUIET), force=False)
    slim, full = BASE_IMAGES["python:3.11-slim"], BASE_IMAGES["python:3.11"]
    slim_files = builder.rootfs_files(slim, images.rootfs_key(slim))
    full_files = builder.rootfs_files(full, images.rootfs_key(full))
    assert not set(slim_files) & set(full_files)
    for path, key in ((slim_files[0], images.rootfs_key(slim)), (full_files[0], images.rootfs_key(full))):
        assert path.parent == tmp_path / "base-images" / "rootfs"
        assert path.name.endswith(f"-{builder.arch}-{key}.tar")

    # cache hits: files present, unless forced (then only what this run made counts)
    tar, meta, _ = slim_files
    assert not builder.cached(tar, meta)
    tar.parent.mkdir(parents=True)
    tar.write_bytes(b"")
    meta.write_text("{}")
    assert builder.cached(tar, meta)
    forced = Builder(None, Progress(QUIET), force=True)
    assert not forced.cached(tar, meta)
    forced.made.update((tar, meta))
    assert forced.cached(tar, meta)


DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm

Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Enabled: no

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
"""

ONE_LINE = """\
# a comment
deb [arch=amd64 signed-by=/x.gpg] https://other.example/ubuntu jammy main
deb cdrom:[Debian]/ bookworm main
deb http://old.example/debian bullseye main  # trailing comment
"""


def test_mirrors_come_from_the_host_apt_sources(monkeypatch):
    monkeypatch.delenv("LABKIT_DEBIAN_MIRROR", raising=False)
    monkeypatch.delenv("LABKIT_DEBIAN_SECURITY_MIRROR", raising=False)
    sources = images.parse_apt_sources([("debian.sources", DEB822), ("extra.list", ONE_LINE)])
    assert sources == [
        ("http://mirror.example/debian", ["bookworm", "bookworm-updates"]),
        ("http://mirror.example/debian-security", ["bookworm-security"]),
        ("https://other.example/ubuntu", ["jammy"]),
        ("http://old.example/debian", ["bullseye"]),
    ]
    assert images.debian_mirrors("bookworm", sources) == (
        "http://mirror.example/debian", "http://mirror.example/debian-security")
    assert images.debian_mirrors("bullseye", sources) == ("http://old.example/debian", None)
    # nothing for the suite: debootstrap's own default (None), never a name of ours
    assert images.debian_mirrors("trixie", sources) == (None, None)

    monkeypatch.setenv("LABKIT_DEBIAN_MIRROR", "http://local.example/debian")
    assert images.debian_mirrors("bookworm", sources)[0] == "http://local.example/debian"
    assert images.debian_mirrors("trixie", [])[0] == "http://local.example/debian"


URL_HOST = re.compile(r"https?://([A-Za-z0-9.-]+)")


def test_no_mirror_host_is_hard_coded():
    """Mirrors come from the host's apt sources or the environment: no URL in any module of the
    package or in the recipes names a host, other than made-up ``*.example`` ones."""
    modules = sorted(Path(images.__file__).parent.glob("*.py"))
    recipes = sorted(p for p in RECIPES_DIR.iterdir() if p.is_file() and p.suffix != ".md")
    assert len(modules) > 1 and recipes, "the package's modules and the recipes must be read"
    hosts = {(path.name, host) for path in modules + recipes for host in URL_HOST.findall(path.read_text())}
    assert {(name, host) for name, host in hosts if not host.endswith(".example")} == set()
    assert URL_HOST.findall('mirror = "http://mirror.example/debian"') == ["mirror.example"]


CERT_A = b"-----BEGIN CERTIFICATE-----\nQUFB\nQUFB\n-----END CERTIFICATE-----\n"
CERT_B = b"-----BEGIN CERTIFICATE-----\nQkJC\n-----END CERTIFICATE-----\n"


def test_extra_certificates_are_the_hosts_additions():
    debian = CERT_A
    host = b"# proxy\n" + CERT_A.replace(b"\n", b"\r\n") + CERT_B
    assert images.extra_certificates(host, debian) == [CERT_B]
    assert images.extra_certificates(debian, debian) == []


def test_ca_digest_follows_the_bundle(tmp_path, monkeypatch):
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(CERT_A)
    monkeypatch.setenv("LABKIT_CA_BUNDLE", str(bundle))
    first = images.ca_digest()
    bundle.write_bytes(CERT_A + CERT_B)
    assert images.ca_digest() != first
    monkeypatch.setenv("LABKIT_CA_BUNDLE", str(tmp_path / "missing.pem"))
    with pytest.raises(ImagesError, match="LABKIT_CA_BUNDLE"):
        images.ca_digest()


class _FakeAPI:
    def __init__(self, attrs):
        self.attrs, self.removed = attrs, []

    def inspect_image(self, name):
        import docker

        if self.attrs is None:
            raise docker.errors.ImageNotFound(name)
        return self.attrs

    def remove_image(self, ref, **kw):
        self.removed.append(ref)


class _FakeClient:
    def __init__(self, attrs):
        self.api = _FakeAPI(attrs)


def _decide(monkeypatch, tmp_path, attrs, *, pull=None, build=None, force=False):
    """Run ensure_one's decision logic with a fake engine, pull and build."""
    monkeypatch.setenv("LABKIT_CACHE_DIR", str(tmp_path))
    client = _FakeClient(attrs)
    calls = []

    def fake_pull(name, progress):
        calls.append("pull")
        if pull is None:
            client.api.attrs = _attrs()
        return pull

    def fake_build(self, image, previous):
        calls.append("build")
        if isinstance(build, Exception):
            raise build
        return build

    monkeypatch.setattr(ensure, "try_pull", fake_pull)  # the global ensure_one reads
    monkeypatch.setattr(Builder, "build", fake_build)
    progress = Progress(QUIET)
    builder = Builder(client, progress, force=force)
    image = BASE_IMAGES["python:3.11-slim"]
    return ensure.ensure_one(client, image, progress, builder, force=force), calls


def test_decisions_without_docker(monkeypatch, tmp_path):
    name = "python:3.11-slim"
    current = _attrs(**{"labkit.standin": "true", "labkit.standin.of": name,
                        "labkit.standin.recipe": images.recipe_hash(name),
                        "labkit.standin.ca": images.ca_digest()})
    stale = _attrs(**{**current["Config"]["Labels"], "labkit.standin.recipe": "old"})

    result, calls = _decide(monkeypatch, tmp_path, current)
    assert (result.how, result.standin, calls) == ("present", True, [])
    result, calls = _decide(monkeypatch, tmp_path, _attrs())
    assert (result.how, result.standin, calls) == ("present", False, [])

    result, calls = _decide(monkeypatch, tmp_path, None)  # missing, the pull works
    assert (result.how, calls) == ("pulled", ["pull"])

    result, calls = _decide(monkeypatch, tmp_path, None, pull="no such host", build=current)
    assert (result.how, calls) == ("built stand-in", ["pull", "build"])

    with pytest.raises(ImagesError) as err:
        _decide(monkeypatch, tmp_path, None, pull="no such host", build=ImagesError("needs root"))
    assert "no such host" in str(err.value) and "needs root" in str(err.value)
    assert "docker pull python:3.11-slim" in str(err.value)

    # a stale stand-in that cannot be rebuilt is kept (with a warning), not an error
    result, calls = _decide(monkeypatch, tmp_path, stale, pull="no such host",
                            build=ImagesError("needs root"))
    assert (result.how, calls) == ("present", ["pull", "build"])

    # forced: a current stand-in is rebuilt without a pull attempt
    result, calls = _decide(monkeypatch, tmp_path, current, build=current, force=True)
    assert (result.how, calls) == ("built stand-in", ["build"])


# --------------------------------------------------------------------------- docker tests


def _docker_skip_reason() -> str | None:
    try:
        from labkit import probes

        return probes.docker_reason()
    except ImportError:
        pass
    try:
        import docker

        docker.from_env().ping()
    except Exception as exc:
        return f"Docker engine not reachable: {exc}"
    return None


# Runs inside each image: one container per image gathers everything the tests check.
PROBE = r"""
import json, os, pathlib, shutil, subprocess, sys
def run(*cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    return {"rc": p.returncode, "out": (p.stdout + p.stderr).strip()}
print(json.dumps({
    "python": sys.version.split()[0],
    "python_cmd": run("python", "--version"),
    "pip": run("pip", "--version"),
    "which": {t: shutil.which(t)
              for t in ("python", "python3", "pip", "pip3", "gcc", "cc", "g++", "make", "git", "curl")},
    "externally_managed": [str(p) for p in pathlib.Path("/usr/lib").glob("python3*/EXTERNALLY-MANAGED")],
    "env": {k: os.environ.get(k) for k in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PATH")},
    "cwd": os.getcwd(),
    "ca_bundle": os.path.isfile("/etc/ssl/certs/ca-certificates.crt"),
    "apt_lists": sorted(p.name for p in pathlib.Path("/var/lib/apt/lists").glob("*")
                        if p.name not in ("lock", "partial", "auxfiles")),
    "gcc": run("sh", "-c", "printf 'int main(void){return 0;}' > /tmp/t.c"
                           " && gcc /tmp/t.c -o /tmp/t && /tmp/t && echo compiled")
           if shutil.which("gcc") else None,
}))
"""


PYTHON_IMAGES = sorted(n for n in BASE_IMAGES if n.startswith("python:"))


@pytest.fixture(scope="module")
def ensured():
    """ensure_base_images() once for the module (a cold build takes minutes, then < 1 s)."""
    if reason := _docker_skip_reason():
        pytest.skip(reason)
    return {r.name: r for r in images.ensure_base_images()}


@pytest.fixture(scope="module")
def client(ensured):
    import docker

    return docker.from_env()


@pytest.fixture(scope="module")
def probe(client, ensured):
    facts = {}
    for name in (n for n in ensured if n in PYTHON_IMAGES):
        out = client.containers.run(name, ["python", "-c", PROBE], remove=True)
        facts[name] = json.loads(out.decode().strip().splitlines()[-1])
    return facts


@pytest.mark.docker
@pytest.mark.timeout(1800)
class TestStandIns:
    def _standin(self, ensured, name):
        if not ensured[name].standin:
            pytest.skip(f"{name} is the official image here, not a stand-in")

    def test_every_image_is_there_as_reported(self, ensured, client):
        assert set(ensured) == set(BASE_IMAGES)
        for name, result in ensured.items():
            attrs = client.images.get(name).attrs
            assert (result.image_id, result.size) == (attrs["Id"], attrs["Size"]) and result.size > 0
            labelled = (attrs["Config"].get("Labels") or {}).get("labkit.standin") == "true"
            assert result.standin == labelled, f"{name}: reported {'a' if result.standin else 'no'} stand-in"
            if result.how == "built stand-in":
                assert result.standin
            if result.how == "pulled":
                assert not result.standin

    def test_second_call_does_nothing(self, ensured):
        again = images.ensure_base_images(console=QUIET)
        assert [r.how for r in again] == ["present"] * len(again)
        assert {r.name: r.image_id for r in again} == {n: r.image_id for n, r in ensured.items()}

    @pytest.mark.parametrize("name", PYTHON_IMAGES)
    def test_python_and_pip(self, probe, name):
        facts = probe[name]
        assert facts["python"].startswith("3.11.")
        assert facts["python_cmd"]["out"].startswith("Python 3.11.")
        assert facts["pip"]["rc"] == 0 and "python 3.11" in facts["pip"]["out"]
        for tool in ("python", "python3", "pip", "pip3"):
            assert facts["which"][tool], f"{tool} not on PATH"
        assert facts["externally_managed"] == [], "PEP 668 marker would block pip install"
        assert facts["cwd"] == "/"

    @pytest.mark.parametrize("name", sorted(BASE_IMAGES))
    def test_standin_labels_and_config(self, ensured, client, name):
        self._standin(ensured, name)
        attrs = client.images.get(name).attrs
        labels = attrs["Config"]["Labels"]
        assert labels["labkit.standin"] == "true"
        assert labels["labkit.standin.of"] == name
        assert labels["labkit.standin.recipe"] == images.recipe_hash(name)
        assert "stand-in" in labels["org.opencontainers.image.description"]
        cmd = ["nginx", "-g", "daemon off;"] if name.startswith("nginx:") else ["python3"]
        assert attrs["Config"]["Cmd"] == cmd
        assert attrs["Config"]["WorkingDir"] == "/"

    @pytest.mark.parametrize("name", PYTHON_IMAGES)
    def test_standin_trusts_the_host_ca(self, ensured, probe, name):
        self._standin(ensured, name)
        facts = probe[name]
        bundle = "/etc/ssl/certs/ca-certificates.crt"
        assert facts["ca_bundle"]
        for var in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
            assert facts["env"][var] == bundle, var
        assert facts["apt_lists"] == [], "apt lists must be removed, as in the official images"

    @pytest.mark.parametrize("name", sorted(n for n, i in BASE_IMAGES.items() if i.official_size))
    def test_size_is_faithful_to_the_official_image(self, ensured, name):
        self._standin(ensured, name)
        ratio = ensured[name].size / BASE_IMAGES[name].official_size
        assert 0.75 < ratio < 1.25, f"{name}: stand-in is {ratio:.2f}x the official size"

    def test_slim_has_no_compiler(self, probe):
        which = probe["python:3.11-slim"]["which"]
        assert not which["gcc"] and not which["cc"] and not which["g++"]

    def test_full_has_build_tools(self, probe):
        facts = probe["python:3.11"]
        for tool in ("gcc", "g++", "make", "git", "curl"):
            assert facts["which"][tool], f"{tool} missing from python:3.11"
        assert facts["gcc"]["rc"] == 0 and facts["gcc"]["out"].endswith("compiled")

    def test_pip_user_install_through_the_proxy(self, ensured, client):
        """The FAQ's builder step: `pip install --user` from PyPI, in the slim image."""
        out = client.containers.run(
            "python:3.11-slim",
            ["sh", "-c", "pip install -q --user --no-deps --disable-pip-version-check six 2>/dev/null"
                         " && python -c 'import six; print(six.__file__)'"],
            remove=True)
        assert out.decode().strip().startswith("/root/.local/lib/python3.11/")

    def test_nginx_behaves_like_the_official_image(self, ensured, client):
        """Config in conf.d/default.conf, port 80, nginx in the foreground, logs on stdout/stderr."""
        name = "nginx:1.27"
        attrs = client.images.get(name).attrs["Config"]
        assert attrs["Cmd"] == ["nginx", "-g", "daemon off;"]
        assert "80/tcp" in attrs["ExposedPorts"]
        assert attrs["StopSignal"] == "SIGQUIT"
        script = ("nginx -T 2>/dev/null | grep -q 'configuration file /etc/nginx/conf.d/default.conf'"
                  " && ! nginx -T 2>/dev/null | grep -q sites-enabled/default"
                  " && [ \"$(readlink /var/log/nginx/access.log)\" = /dev/stdout ]"
                  " && [ \"$(readlink /var/log/nginx/error.log)\" = /dev/stderr ]"
                  " && id -u nginx && echo ok")
        out = client.containers.run(name, ["sh", "-c", script], remove=True).decode().split()
        assert out == ["101", "ok"], out
        server = client.containers.run(name, detach=True, labels={"labkit.lab": "test"})
        try:
            deadline = time.monotonic() + 20
            while True:
                code, page = server.exec_run(["curl", "-fsS", "http://127.0.0.1/"])
                if code == 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.3)
            assert code == 0 and b"Welcome to nginx" in page, page
            assert b'"GET / HTTP/1.1" 200' in server.logs(stdout=True, stderr=False)
        finally:
            server.remove(force=True)
