"""labkit: the grading and Docker helpers behind the lab notebooks."""

from .checks import check, score_table, skip
from .lab import Lab, start

__all__ = ["Lab", "check", "score_table", "skip", "start"]
