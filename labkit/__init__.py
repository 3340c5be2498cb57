"""labkit: the grading and Docker helpers behind the lab notebooks."""

from .checks import check, score_table, skip
from .lab import Lab, LabSetupError, start

__all__ = ["Lab", "LabSetupError", "check", "score_table", "skip", "start"]
