"""masked.show: what a notebook prints of a command never holds a secret."""

import os
import sys

import pytest

from labkit.tools import masked


def test_output_is_masked_and_a_failure_raises_after_printing(capsys):
    value = "hf_" + os.urandom(17).hex()  # fake, new each run
    masked.show(sys.executable, "-c", f"print('token={value}'); print('SWMTKN-1-abc-def')", hide=[value])
    out = capsys.readouterr().out
    assert value not in out and "<redacted" in out and "SWMTKN" not in out and out.startswith("$ ")
    with pytest.raises(masked.CommandFailed, match="exit code 3"):
        masked.show(sys.executable, "-c", f"print('{value}'); raise SystemExit(3)", hide=[value])
    assert value not in capsys.readouterr().out
    masked.show(sys.executable, "-c", "raise SystemExit(1)", check=False)
