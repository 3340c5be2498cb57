"""Base images the labs build FROM, and faithful offline stand-ins for them.

Every lab Dockerfile starts ``FROM`` one of :data:`BASE_IMAGES`. :func:`ensure_base_images`
makes sure each exists in the local Docker engine:

1. already there (a pulled official image, or a stand-in built from the current recipe):
   nothing to do;
2. else ``docker pull`` it once, with a short timeout;
3. else build an offline *stand-in*: Debian (``debootstrap --variant=minbase``) plus the
   packages the official image has, finalised by a small Dockerfile. The recipes live in
   ``environments/base-images/`` (see its README.md for what the stand-ins are and how
   their sizes compare with the official images).

Stand-ins are labelled ``labkit.standin=true``, ``labkit.standin.of=<official name>`` and
``labkit.standin.recipe=<hash of the recipe files>``; a stand-in whose recipe (or the
host's CA bundle, which it carries) changed is rebuilt. Root filesystems are cached under
``~/.cache/labkit/base-images/`` keyed by the recipe hash, so a rebuild after
``docker rmi`` takes seconds.

Its modules, one job each: :mod:`.catalog` (the images and their recipe hashes), :mod:`.host`
(cache folder, CA bundle, Debian mirrors, architecture), :mod:`.state` (what the engine holds),
:mod:`.progress`, :mod:`.host_commands` (logged host commands, tar, mounts, the build lock),
:mod:`.builder` (the stand-in build) and :mod:`.ensure` (the policy above).

Environment:
  LABKIT_DEBIAN_MIRROR           Debian archive URL (default: the host's apt sources for
                                 the suite, else debootstrap's default)
  LABKIT_DEBIAN_SECURITY_MIRROR  debian-security URL (default: host's apt sources, else
                                 derived from the archive URL)
  LABKIT_NO_PULL=1               do not try ``docker pull``; build stand-ins directly
  LABKIT_PULL_TIMEOUT            seconds without progress before a pull is given up (20)
  LABKIT_CA_BUNDLE               CA bundle to copy into stand-ins (default: the host's)
  LABKIT_CACHE_DIR               cache root (default: $XDG_CACHE_HOME/labkit or ~/.cache/labkit)
"""

from __future__ import annotations

from .catalog import (BASE_IMAGES, RECIPES_DIR, BaseImage, ImagesError, debootstrap_key, recipe_hash,
                      rootfs_key)
from .ensure import ImageResult, ensure_base_images
from .host import (ca_digest, cache_dir, debian_mirrors, extra_certificates, host_ca_bundle,
                   parse_apt_sources, pem_certificates)
from .state import image_state, missing_base_images

__all__ = [
    "BASE_IMAGES",
    "BaseImage",
    "ImageResult",
    "ImagesError",
    "RECIPES_DIR",
    "ca_digest",
    "cache_dir",
    "debian_mirrors",
    "debootstrap_key",
    "ensure_base_images",
    "extra_certificates",
    "host_ca_bundle",
    "image_state",
    "missing_base_images",
    "parse_apt_sources",
    "pem_certificates",
    "recipe_hash",
    "rootfs_key",
]
