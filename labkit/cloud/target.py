"""What lab 05's AWS target and lab 06's Vertex target share: the leftovers they find by their
tags (AWS) or labels (GCP), what ``delete_all`` reports, and the one interface both implement,
so that a notebook's cleanup cells and ``labkit sweep`` read both the same way."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ..core import labels
from . import spend


@dataclass(frozen=True)
class Leftover:
    """A resource a lab made, found by its ``labkit-lab``/``labkit-run`` tags or labels.

    ``kind`` is "endpoint", "endpoint-config", "model", "bucket", "repository" or "budget" on AWS (and
    "scheduled-action", "scaling-policy" or "scalable-target" of an endpoint's variant, which
    carry their endpoint's tags), and "endpoint", "deployed model" or "model" on Vertex; ``name``
    is what deletes it (the AWS name or ResourceId, the Vertex resource name); ``display_name``
    is Vertex's, ``detail`` what it runs.
    """

    kind: str
    name: str
    tags: dict[str, str] = field(default_factory=dict, hash=False)
    created: datetime | None = None
    display_name: str = ""
    detail: str = ""

    @property
    def lab(self) -> str:
        return self.tags.get(labels.LAB_TAG, "")

    @property
    def run(self) -> str:
        return self.tags.get(labels.RUN_TAG, "")

    @property
    def age_hours(self) -> float | None:
        if self.created is None:
            return None
        created = self.created if self.created.tzinfo else self.created.replace(tzinfo=timezone.utc)
        return (datetime.now(timezone.utc) - created).total_seconds() / 3600

    def describe(self) -> str:
        age = "age unknown" if self.age_hours is None else f"{self.age_hours:.1f} h old"
        about = [repr(self.display_name)] if self.display_name else []
        about += [f"lab {self.lab or '?'}", f"run {self.run or '?'}", age] + ([self.detail] if self.detail else [])
        return f"{self.kind} {self.name} ({', '.join(about)})"


@dataclass
class Deletion:
    """What :meth:`Target.delete_all` did: ``found`` is what the run had left when it began (all
    gone unless a step ``failed``), ``failed`` the steps that could not delete, with their error."""

    found: list[Leftover]
    failed: list[tuple[str, BaseException]]


class Target(ABC):
    """Where a lab deploys: an emulator (``kind`` "emulator") or a real account. Every resource
    the run makes carries :attr:`resource_tags`; its :attr:`teardown` deletes them."""

    kind: str
    lab: str
    run: str
    teardown: spend.Teardown
    #: What the tagged sweep deletes, for the teardown's lines ("SageMaker resources tagged").
    tagged_what: str
    #: ``labkit sweep``'s flag for this target's cloud.
    sweep_flag: str

    @property
    def resource_tags(self) -> dict[str, str]:
        return spend.resource_tags(self.lab, self.run)

    @abstractmethod
    def leftovers(self) -> list[Leftover]:
        """What this run made and has not deleted yet, found by its tags (as a sweep finds it)."""

    @abstractmethod
    def _lab_leftovers(self) -> list[Leftover]:
        """What ``labkit sweep`` lists of this lab, every run of it, where this target points."""

    def sweep(self) -> list[Leftover]:
        """The last step of every session: what ``labkit sweep <cloud> --lab N`` lists, printed with
        the command. It looks at every run of the lab (one a dead kernel cut short too), not only
        this one, and deletes nothing (``--delete`` does, once you have read the list)."""
        print(f"$ labkit sweep {self.sweep_flag} --lab {self.lab}")
        found = self._lab_leftovers()
        for item in found:
            print(f"  {item.describe()}")
        print(f"  {len(found)} leftover(s): `labkit sweep {self.sweep_flag} --lab {self.lab} --delete` removes them"
              if found else "  nothing tagged by this lab was found")
        return found

    @abstractmethod
    def _delete_tagged(self) -> list[Leftover]:
        """Delete whatever carries this run's tags, however it was created (a cell by hand too), and
        return it; nothing when the emulator has stopped, and all it held with it."""

    def _register_tagged(self) -> None:
        """Put the tagged sweep on the teardown list; registered first, it runs last."""
        self.teardown.add(f"{self.tagged_what} {labels.RUN_TAG}={self.run}", self._delete_tagged)

    def delete_all(self) -> Deletion:
        """Delete what this run made: the teardown list (newest first), then everything tagged with
        this run. The tagged sweep stays registered, so a later failure or exit runs it again."""
        found = self.leftovers()
        failed = self.teardown.run()
        self._register_tagged()
        return Deletion(found, failed)
