"""Where lab 06 deploys: the stand-in ("emulator") or a real project ("gcp") behind the spend
guard, with the labels every resource carries and the teardown of what the run made."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ...core import labels
from ...core.names import split_image_ref
from ...machine import probes
from ...tools import dockerlab
from .. import spend
from .. import target as base
from ..target import Leftover
from .leftovers import find, init_gcp_sdk
from .standin import LOCAL_PROJECT, StandIn, VertexError, start_standin


@dataclass
class Target(base.Target):
    """Where lab 06 deploys: the stand-in ("emulator") or a real project ("gcp")."""

    tagged_what = "Vertex endpoints and models labelled"
    sweep_flag = "--gcp"

    kind: str
    lab: str
    run: str
    project: str
    location: str
    standin: StandIn | None = None
    teardown: spend.Teardown = field(default_factory=spend.Teardown)

    @property
    def labels(self) -> dict[str, str]:
        return self.resource_tags

    @property
    def filter(self) -> str:
        return " AND ".join(f'labels.{k}="{v}"' for k, v in self.labels.items())

    def init_sdk(self) -> None:
        if self.kind == "emulator":
            self.standin.init_sdk(self.project, self.location)
            return
        init_gcp_sdk(self.project, self.location)

    def preflight(self, machine_type: str, count: int = 1) -> spend.Estimate | None:
        """Print what ``count`` machines cost here (the stand-in: nothing)."""
        if self.kind == "emulator":
            print(f"stand-in: {count} × {machine_type} costs $0 (a local container; nothing is billed)")
            return None
        found = spend.estimate("vertex", machine_type, count)
        print(found.describe())
        return found

    def artifacts(self, model_dir: str | Path) -> str:
        """Where Vertex reads the model: the local path (stand-in), or a copy in a labelled bucket."""
        model_dir = Path(model_dir).resolve()
        if not model_dir.is_dir():
            raise VertexError(f"model_dir {model_dir} is not a directory")
        if self.kind == "emulator":
            return str(model_dir)
        from google.cloud import storage
        client = storage.Client(project=self.project)
        bucket = client.bucket(f"labkit-{self.lab}-{self.run}")
        bucket.labels = self.labels
        bucket = client.create_bucket(bucket, location=self.location)
        self.teardown.add(f"bucket gs://{bucket.name}", lambda: bucket.delete(force=True))
        for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
            bucket.blob(f"model/{path.relative_to(model_dir).as_posix()}").upload_from_filename(str(path))
        return f"gs://{bucket.name}/model"

    def image_uri(self, local_image: str) -> str:
        """The image Vertex runs: the local one (stand-in), or a copy pushed to Artifact Registry."""
        if self.kind == "emulator":
            return local_image
        import google.auth
        import google.auth.transport.requests
        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        credentials.refresh(google.auth.transport.requests.Request())
        session = google.auth.transport.requests.AuthorizedSession(credentials)
        api = f"https://artifactregistry.googleapis.com/v1/projects/{self.project}/locations/{self.location}"
        found = session.get(f"{api}/repositories/labkit")
        if found.status_code not in (200, 404):
            raise VertexError(f"cannot read Artifact Registry in {self.project} ({found.status_code}): "
                              f"{found.text[:300]} — is the Artifact Registry API enabled?")
        if found.status_code == 404:
            created = session.post(f"{api}/repositories?repositoryId=labkit",
                                   json={"format": "DOCKER", "labels": self.labels})
            if created.status_code >= 300:
                raise VertexError(f"could not create Artifact Registry repository labkit: {created.text[:300]}")
            self.teardown.add("Artifact Registry repository labkit",
                              lambda: session.delete(f"{api}/repositories/labkit").raise_for_status())
            time.sleep(5)  # the repository accepts pushes a few seconds after it is created
        registry = f"{self.location}-docker.pkg.dev"
        repository, tag = split_image_ref(local_image)
        name = repository.rsplit("/", 1)[-1]
        remote = f"{registry}/{self.project}/labkit/{name}"
        auth = {"username": "oauth2accesstoken", "password": credentials.token}
        client = dockerlab.client()
        client.login(registry=registry, **auth)
        client.images.get(local_image).tag(remote, tag)
        for line in client.images.push(remote, tag=tag, auth_config=auth, stream=True, decode=True):
            if "error" in line:
                raise VertexError(f"docker push {remote}:{tag} failed: {line['error']}")
        self.teardown.add(f"image {remote}:{tag}", lambda: session.delete(
            f"{api}/repositories/labkit/packages/{name}").raise_for_status())
        return f"{remote}:{tag}"

    def leftovers(self) -> list[Leftover]:
        """This run's labelled endpoints (with their deployed models) and models that still exist."""
        return self._find(delete=False)

    def predictions(self) -> list[dict]:
        """Every predict call the stand-in forwarded (``endpoint``, ``deployedModelId``, ``instances``);
        a real project keeps no such log here: []."""
        return self.standin.predictions() if self.kind == "emulator" else []

    def _delete_tagged(self) -> list[Leftover]:
        return self._find(delete=True)

    def _lab_leftovers(self) -> list[Leftover]:
        return self._find(delete=False, filter_text=f'labels.{labels.LAB_TAG}="{self.lab}"')

    def _find(self, *, delete: bool, filter_text: str | None = None) -> list[Leftover]:
        if self.kind == "emulator" and not self.standin.answers():
            return []  # the stand-in is gone, and its containers with it
        self.init_sdk()
        return find(filter_text or self.filter, delete=delete)

    def __post_init__(self) -> None:
        """The teardown list starts with this run's labelled endpoints and models."""
        self._register_tagged()


def target(kind: str, *, lab: str, project: str | None = None, location: str = "us-central1",
           confirm_spend: bool = False, standin: StandIn | None = None) -> Target:
    """The stand-in (``"emulator"``; started if not given) or a real project (``"gcp"``: only with
    credentials and ``confirm_spend=True``; project from the argument or GOOGLE_CLOUD_PROJECT).
    Creates nothing in a real project."""
    if kind == "emulator":
        return Target(kind, lab, spend.run_id(), project or LOCAL_PROJECT, location,
                      standin=standin or start_standin(lab))
    if kind != "gcp":
        raise ValueError(f"unknown target kind {kind!r}: use 'emulator' or 'gcp'")
    spend.require_opt_in("Google Cloud (Vertex AI)", confirm_spend=confirm_spend,
                         credentials_reason=probes.gcp_credentials_reason())
    project = project or os.environ.get("GOOGLE_CLOUD_PROJECT")
    if not project:
        raise VertexError("no project: pass project=... or set GOOGLE_CLOUD_PROJECT")
    return Target(kind, lab, spend.run_id(), project, location)

