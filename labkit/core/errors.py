"""The errors labkit raises on purpose, under one base.

- :class:`LabkitError`: every error of labkit's own (a tool that failed, a lab that cannot
  start, a grading that could not run) derives from it, so a caller can catch them all.
- :class:`RequirementNotMet`: what a check inspects is not as the lab asks (no such image,
  no published port, a server that never got ready). Tool code raises it where it used to
  raise a bare ``AssertionError``; ``labkit.check`` turns it into a failed check with its
  message, exactly as it does an ``assert`` in a check cell.
- :class:`TimedOut`: what :func:`labkit.core.waiting.wait_until` awaited did not happen in time.
"""

from __future__ import annotations


class LabkitError(Exception):
    """Base of every error labkit raises on purpose."""


class RequirementNotMet(LabkitError):
    """The real state a check looks at does not meet the lab's requirement; the message says how."""


class TimedOut(LabkitError):
    """Something awaited did not happen within its time-out; the message names it."""
