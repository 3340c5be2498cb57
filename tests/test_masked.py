"""masked.show: what a notebook prints of a command never holds a secret."""

import sys

import pytest

from labkit.tools import masked


def test_output_is_masked_and_a_failure_raises_after_printing(capsys):
    secret = "hf_" + "a1" * 17
    masked.show(sys.executable, "-c", f"print('token={secret}'); print('SWMTKN-1-abc-def')", hide=[secret])
    out = capsys.readouterr().out
    assert secret not in out and "<redacted" in out and "SWMTKN" not in out and out.startswith("$ ")
    with pytest.raises(masked.CommandFailed, match="exit code 3"):
        masked.show(sys.executable, "-c", f"print('{secret}'); raise SystemExit(3)", hide=[secret])
    assert secret not in capsys.readouterr().out
    masked.show(sys.executable, "-c", "raise SystemExit(1)", check=False)
