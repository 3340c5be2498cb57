"""The layer scanner against real images: a token in ENV, a file deleted in a later layer,
a clean image, a BuildKit secret mount; and the notebook output recorder."""

import secrets

import pytest

from labkit import dockerlab, probes, secretscan

pytestmark = [pytest.mark.docker,
              pytest.mark.skipif(bool(probes.docker_reason()), reason=str(probes.docker_reason()))]
LAB = "t3"


@pytest.fixture(scope="module")
def token():
    return "hf_" + secrets.token_hex(17)


@pytest.fixture(scope="module")
def images(tmp_path_factory, token):
    """Three tiny images built once: ENV leak, deleted-file leak, clean."""
    ctx = tmp_path_factory.mktemp("secretscan")
    (ctx / "app.py").write_text("print('hello')\n")
    (ctx / ".env").write_text(f"HF_TOKEN={token}\n")
    (ctx / "Dockerfile.env").write_text(
        "FROM python:3.11-slim\nARG HF_TOKEN\nENV HF_TOKEN=$HF_TOKEN\nCOPY app.py /app/app.py\n")
    (ctx / "Dockerfile.deleted").write_text(
        "FROM python:3.11-slim\nCOPY .env /app/.env\nRUN cat /app/.env > /dev/null\nRUN rm /app/.env\n")
    (ctx / "Dockerfile.clean").write_text("FROM python:3.11-slim\nCOPY app.py /app/app.py\n")
    tags = {}
    for name, args in (("env", {"HF_TOKEN": token}), ("deleted", {}), ("clean", {})):
        tags[name] = f"labkit/{LAB}-{name}:v1"
        dockerlab.build(ctx, tags[name], lab=LAB, dockerfile=f"Dockerfile.{name}", buildargs=args, show=False)
    yield tags
    dockerlab.cleanup(LAB, show=False)
    dockerlab.remove_images(LAB, show=False)


def _never_shows(findings, token):
    for f in findings:
        assert token not in repr(f) and token not in f.line()


def test_token_in_env_is_found_in_config_and_history(images, token):
    findings = secretscan.scan_image(images["env"], token)
    paths = {f.path for f in findings}
    assert "config.Env[" in " ".join(paths)
    history = [f for f in findings if f.path.startswith("history[")]
    assert history and history[0].instruction.startswith("ENV HF_TOKEN=<redacted sha256:")
    assert all(f.where == "config" and f.kind == "value" for f in findings)
    _never_shows(findings, token)


def test_file_deleted_in_a_later_layer_is_still_found(images, token):
    findings = secretscan.scan_image(images["deleted"], token)
    in_layers = [f for f in findings if f.where == "layer"]
    assert len(in_layers) == 1, findings
    leak = in_layers[0]
    assert leak.path == "/app/.env" and leak.deleted_later
    layers = len(dockerlab.image(images["deleted"]).attrs["RootFS"]["Layers"])
    assert leak.instruction == "COPY in /app/.env" and 0 < leak.layer < layers - 1
    assert "<redacted sha256:" in leak.excerpt
    _never_shows(findings, token)


def test_clean_image_has_no_findings_even_with_patterns(images, token):
    assert secretscan.scan_image(images["clean"], token) == []
    assert secretscan.scan_image(images["clean"], token, patterns=True) == []


def test_patterns_find_a_known_credential_shape(tmp_path):
    key = "AKIA" + "Z7Q2" + "X9LMPR4TK3WB"  # an AWS access key id's shape, made up, split so no scanner flags this file
    (tmp_path / "Dockerfile").write_text(f"FROM python:3.11-slim\nRUN echo 'aws_access_key_id = {key}' > /root/creds\n")
    tag = f"labkit/{LAB}-pattern:v1"
    try:
        dockerlab.build(tmp_path, tag, lab=LAB, show=False)
        findings = secretscan.scan_image(tag, patterns=True)
        kinds = {(f.kind, f.path) for f in findings if f.where == "layer"}
        assert ("AWS Access Key", "/root/creds") in kinds, findings
        assert any(f.path.startswith("history[") and f.kind == "AWS Access Key" for f in findings), findings
    finally:
        dockerlab.remove_images(LAB, show=False)


@pytest.mark.skipif(bool(probes.buildkit_reason()), reason=str(probes.buildkit_reason()))
def test_buildkit_secret_mount_leaves_nothing(tmp_path, token, capsys):
    (tmp_path / "token").write_text(token)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM python:3.11-slim\nRUN --mount=type=secret,id=t sha256sum /run/secrets/t > /sum\n")
    tag = f"labkit/{LAB}-buildkit:v1"
    try:
        image = dockerlab.build_with_buildkit(ctx, tag, lab=LAB, secrets={"t": tmp_path / "token"}, no_cache=True)
        assert image.labels[dockerlab.LABEL] == LAB and image.labels[dockerlab.BUILT_BY] == dockerlab.RUN_ID
        assert "$ " in capsys.readouterr().out
        code, out = dockerlab.run_output(tag, ["cat", "/sum"], lab=LAB)
        assert code == 0 and len(out.split()[0]) == 64
        assert secretscan.scan_image(tag, token) == []
        (ctx / "Dockerfile").write_text("FROM python:3.11-slim\nRUN exit 3\n")
        with pytest.raises(dockerlab.BuildError, match="failed"):
            dockerlab.build_with_buildkit(ctx, tag, lab=LAB, show=False)
    finally:
        dockerlab.cleanup(LAB, show=False)
        dockerlab.remove_images(LAB, show=False)


def test_fingerprint_and_redact(token):
    fp = secretscan.fingerprint(token)
    assert fp.startswith("sha256:") and len(fp) == 19 and fp == secretscan.fingerprint(token + "\n")
    import base64
    text = f"a {token} b {base64.b64encode(token.encode()).decode()} c"
    redacted = secretscan.redact(text, token)
    assert token not in redacted and redacted.count(f"<redacted {fp}>") == 2
