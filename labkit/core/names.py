"""Names made from other names: slugs, and the parts of an image reference."""

from __future__ import annotations

import re


def slug(text: str, *, keep: str = "") -> str:
    """``text`` in lower case, each run of characters other than a-z, 0-9 and ``keep`` made one
    ``-``, with none at either end: "The Vertex stand-in" → "the-vertex-stand-in"."""
    return re.sub(f"[^a-z0-9{re.escape(keep)}]+", "-", text.lower()).strip("-")


def split_image_ref(ref: str) -> tuple[str, str]:
    """(repository, tag) of an image reference; the tag is "latest" when none is named.

    A registry's port is not a tag (``localhost:5000/app`` is ``("localhost:5000/app", "latest")``)
    and a digest stays with the repository (``app@sha256:…`` is ``("app@sha256:…", "")``).
    """
    if "@" in ref:
        return ref, ""
    head, _, last = ref.rpartition("/")
    name, sep, tag = last.partition(":")
    repository = f"{head}/{name}" if head else name
    return repository, tag if sep else "latest"
