"""Repository hygiene: no credential in any file that is (or is about to be) committed.

detect-secrets scans every file git tracks or would add (``git ls-files --cached --others
--exclude-standard``) with its default plugins; a finding fails the test unless the committed
baseline ``.secrets.baseline`` lists it. Every entry of the baseline must be a reviewed false
positive, marked ``"is_secret": false`` and explained in REVIEWED below.

To review a new finding: if it is a real secret, remove it (and rotate it: it may be in git
history already). If it is a false positive, either mark the line with
``# pragma: allowlist secret`` or refresh the baseline with
``detect-secrets scan --baseline .secrets.baseline $(git ls-files --cached --others --exclude-standard)``,
run ``detect-secrets audit .secrets.baseline`` (answer "no, not a secret") and add a line here.
"""

import subprocess

import pytest

from labkit import paths

BASELINE = paths.REPO / ".secrets.baseline"

# filename -> why its baseline entries are not secrets
REVIEWED = {
    "tests/test_doctor.py": "AWS's documented example key pair (from the IAM user guide), used to "
                            "prove that the doctor never prints credential values",
    "tests/test_probes.py": "the same AWS documentation example keys, used to prove that the credential probes "
                            "report only where credentials come from, never their values",
}


def _files() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=paths.REPO,
                             capture_output=True, text=True, check=True, timeout=60).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"not a git checkout: {exc}")
    return [f for f in out.splitlines() if f != ".secrets.baseline" and (paths.REPO / f).is_file()]


def test_no_secret_outside_the_reviewed_baseline(monkeypatch):
    from detect_secrets import SecretsCollection
    from detect_secrets.core import baseline

    monkeypatch.chdir(paths.REPO)
    known = baseline.load(baseline.load_from_file(str(BASELINE)), str(BASELINE))  # also applies its settings
    found = SecretsCollection()  # from the repo root (chdir above): paths as in the baseline
    found.scan_files(*_files(), num_processors=1)
    new = found - known
    listed = [f"{name}:{secret.line_number} {secret.type}" for name, secret in new]
    assert not listed, "possible secrets (see this test's docstring to review them):\n" + "\n".join(listed)


def test_baseline_holds_only_reviewed_false_positives():
    import json

    results = json.loads(BASELINE.read_text())["results"]
    for name, entries in results.items():
        assert name in REVIEWED, f"{name} is in .secrets.baseline without a review in REVIEWED"
        for entry in entries:
            assert entry.get("is_secret") is False, f"{name}:{entry['line_number']} is not audited as a false positive"
