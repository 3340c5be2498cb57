"""Lab 05's AWS side: the same code deploys to the moto emulator or, opted in, to a real account.

``target("emulator", lab="05", moto=m)`` talks only to a local moto server (see
:mod:`labkit.emulators`); ``target("aws", lab="05", confirm_spend=True)`` refuses unless
credentials are there and the spend was confirmed (:func:`labkit.spend.require_opt_in`),
before anything is created. Every resource is named ``labkit-<lab>-<what>-<run>``, tagged
``labkit-lab``/``labkit-run`` and registered with the target's :class:`~labkit.spend.Teardown`;
:func:`sweep` finds what interrupted runs left behind, by those tags.

What moto 5.2.5 does here (tried, not assumed): SageMaker create/list/describe/delete and
``list_tags`` on model, endpoint-config and endpoint ARNs work, endpoints are InService at
once; S3 bucket tagging and ECR repositories with tags and scan-on-push work. Service
Quotas has no SageMaker data (``ListServiceQuotas`` answers HTTP 500,
``ListAWSDefaultServiceQuotas`` NoSuchResource), so the quota check runs only against AWS
and is tested with botocore's Stubber. The Resource Groups Tagging API is not used:
moto returns endpoint-config ARNs mangled, and real accounts need an extra permission.
"""

from __future__ import annotations

import base64
import os
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

from ..machine import probes
from . import emulators, spend

SAGEMAKER_NAME_MAX = 63
SETTLING = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")
QUOTA_NAME = "{instance_type} for endpoint usage"


class QuotaError(RuntimeError):
    """The account's Service Quotas limit is below the instance count asked for."""


class TargetError(RuntimeError):
    """The target cannot be set up as asked; the message says what to change."""


@dataclass(frozen=True)
class Leftover:
    kind: str                 # "endpoint", "endpoint-config", "model", "bucket", "repository"
    name: str
    lab: str
    run: str
    created: datetime | None

    @property
    def age_hours(self) -> float | None:
        if self.created is None:
            return None
        created = self.created if self.created.tzinfo else self.created.replace(tzinfo=timezone.utc)
        return (datetime.now(timezone.utc) - created).total_seconds() / 3600

    def describe(self) -> str:
        age = "age unknown" if self.age_hours is None else f"{self.age_hours:.1f} h old"
        return f"{self.kind} {self.name} (lab {self.lab}, run {self.run or '?'}, {age})"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def name(target: Target, suffix: str) -> str:
    """``labkit-<lab>-<suffix>-<run>``, cut in the middle to SageMaker's 63 characters (the run id stays whole)."""
    head = f"labkit-{_slug(target.lab)}-{_slug(suffix)}"[:SAGEMAKER_NAME_MAX - len(target.run) - 1].rstrip("-")
    return f"{head}-{target.run}"


def tags_of(sagemaker, arn: str) -> dict[str, str]:
    """The tags of a SageMaker resource, as a dict."""
    return _tags(sagemaker.list_tags(ResourceArn=arn)["Tags"])


def _gone(exc: ClientError) -> bool:
    """True when the error says the resource no longer exists (deleting it again is then fine)."""
    error = exc.response.get("Error", {})
    code, message = error.get("Code", ""), error.get("Message", "")
    return (code in ("NoSuchBucket", "RepositoryNotFoundException", "ResourceNotFound", "404", "NotFound")
            or (code == "ValidationException" and "Could not find" in message))


def _tags(tag_list: list[dict]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tag_list}


class Target:
    """Where lab 05 deploys: boto3 clients, names, tags, and the deleters for what it made."""

    poll_s = 15.0  # how often to look at an endpoint that is still Creating/Updating

    def __init__(self, kind: str, *, lab: str, region: str, moto=None, role_arn: str | None = None):
        self.kind, self.lab, self.region, self._moto = kind, lab, region, moto
        self.run = spend.run_id()
        self.tags = [{"Key": k, "Value": v} for k, v in spend.resource_tags(lab, self.run).items()]
        self.teardown = spend.Teardown()
        self._role_arn = role_arn
        self._clients: dict = {}
        self._bucket: str | None = None
        self._session = None if moto else boto3.Session(region_name=region)
        # First in, so last out: on a failure or at exit, whatever the run created with its tags
        # (through this module or by hand in a notebook cell) is deleted after the bucket and repository.
        self._tagged_description = f"SageMaker resources tagged {spend.RUN_TAG}={self.run}"
        self.teardown.add(self._tagged_description, self._delete_tagged)

    def __repr__(self) -> str:
        return f"Target({self.kind!r}, lab={self.lab!r}, run={self.run!r}, region={self.region!r})"

    # -- clients -------------------------------------------------------------------------------
    def client(self, service: str):
        if service not in self._clients:
            self._clients[service] = (self._moto.client(service) if self._moto
                                      else self._session.client(service, region_name=self.region))
        return self._clients[service]

    @property
    def sagemaker(self):
        return self.client("sagemaker")

    @property
    def runtime(self):
        return self.client("sagemaker-runtime")

    @property
    def role_arn(self) -> str:
        """The execution role SageMaker assumes; on the emulator one made in moto IAM for this lab."""
        if self._role_arn is None:
            iam, role = self.client("iam"), f"labkit-{_slug(self.lab)}-sagemaker"
            try:
                self._role_arn = iam.get_role(RoleName=role)["Role"]["Arn"]
            except iam.exceptions.NoSuchEntityException:
                trust = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":'
                         '{"Service":"sagemaker.amazonaws.com"},"Action":"sts:AssumeRole"}]}')
                self._role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust,
                                                 Tags=self.tags)["Role"]["Arn"]
        return self._role_arn

    # -- artefacts -----------------------------------------------------------------------------
    def model_data(self, tar_path: str | Path) -> str:
        """Upload model.tar.gz to this run's bucket (made and tagged on first use); its s3:// URI."""
        s3, tar_path = self.client("s3"), Path(tar_path)
        if self._bucket is None:
            bucket = name(self, "model")
            extra = {} if self.region == "us-east-1" else {
                "CreateBucketConfiguration": {"LocationConstraint": self.region}}
            s3.create_bucket(Bucket=bucket, **extra)
            self.teardown.add(f"bucket {bucket}", lambda: _delete_bucket(s3, bucket))
            s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": self.tags})
            self._bucket = bucket
        key = f"{_slug(self.lab)}/{tar_path.name}"
        s3.upload_file(str(tar_path), self._bucket, key)
        uri = self.model_data_uri(tar_path)
        print(f"uploaded {tar_path.name} ({tar_path.stat().st_size:,} bytes) to {uri}")
        return uri

    def model_data_uri(self, tar_path: str | Path) -> str:
        """Where :meth:`model_data` puts ``tar_path`` in this run: what a check expects a model to name."""
        return f"s3://{name(self, 'model')}/{_slug(self.lab)}/{Path(tar_path).name}"

    def image_uri(self, local_image: str, *, push: bool = True) -> str:
        """The image SageMaker should run: the local tag on the emulator, else pushed to a new ECR
        repository (with ``push=False``: the URI it was pushed to, for a check)."""
        if self.kind == "emulator":
            return local_image
        from ..tools import dockerlab
        repo_part, _, tag = local_image.rpartition(":") if ":" in local_image.split("/")[-1] else (local_image, "", "")
        tag = tag or "latest"
        ecr = self.client("ecr")
        repo_name = name(self, repo_part.split("/")[-1])
        if not push:
            try:
                found = ecr.describe_repositories(repositoryNames=[repo_name])["repositories"][0]
            except ClientError:
                raise AssertionError(f"there is no ECR repository {repo_name}: push the image with AWS.image_uri") \
                    from None
            return f"{found['repositoryUri']}:{tag}"
        uri = ecr.create_repository(repositoryName=repo_name, tags=self.tags,
                                    imageScanningConfiguration={"scanOnPush": True})["repository"]["repositoryUri"]
        self.teardown.add(f"repository {repo_name}",
                          lambda: _ignore_gone(lambda: ecr.delete_repository(repositoryName=repo_name, force=True)))
        auth = ecr.get_authorization_token()["authorizationData"][0]
        user, _, password = base64.b64decode(auth["authorizationToken"]).decode().partition(":")
        docker = dockerlab.client()
        docker.images.get(local_image).tag(uri, tag=tag)
        print(f"pushing {local_image} to {uri}:{tag}")
        seen = set()
        for line in docker.api.push(uri, tag=tag, stream=True, decode=True,
                                    auth_config={"username": user, "password": password}):
            if "error" in line:
                raise TargetError(f"docker push to {uri} failed: {line['error']} — check that your credentials may "
                                  "push to ECR (ecr:InitiateLayerUpload and friends)")
            status = line.get("status", "")
            if status in ("Pushed", "Layer already exists") and (key := (line.get("id"), status)) not in seen:
                seen.add(key)
                print(f"  {line.get('id', '')}: {status}")
            elif "digest" in status:
                print(f"  {status}")
        return f"{uri}:{tag}"

    # -- guardrails ----------------------------------------------------------------------------
    def preflight(self, instance_type: str, count: int) -> spend.Estimate:
        """Print what ``count`` × ``instance_type`` costs; on AWS also check the endpoint quota (QuotaError)."""
        est = spend.estimate("sagemaker", instance_type, count)
        if self.kind == "emulator":
            print(f"{est.describe()} — on the emulator this costs $0")
            return est
        print(est.describe())
        quota_name = QUOTA_NAME.format(instance_type=instance_type)
        try:
            quota = _find_quota(self.client("service-quotas"), quota_name)
        except ClientError as exc:  # e.g. no servicequotas:ListServiceQuotas permission: not a reason to stop
            print(f"note: could not read quota {quota_name!r} ({exc.response['Error'].get('Code')}); if it is "
                  "below the count, create_endpoint will fail with ResourceLimitExceeded")
            return est
        if quota is None:
            print(f"note: quota {quota_name!r} not found in Service Quotas; if it is 0, create_endpoint will fail "
                  "with ResourceLimitExceeded")
        elif quota["Value"] < count:
            raise QuotaError(
                f"quota {quota_name!r} is {quota['Value']:g} in {self.region}, but this deployment needs {count}: "
                f"deploy {int(quota['Value'])} or fewer, or request an increase (Service Quotas console → Amazon "
                f"SageMaker → {quota_name!r}, or `aws service-quotas request-service-quota-increase --service-code "
                f"sagemaker --quota-code {quota['QuotaCode']} --desired-value {count} --region {self.region}`); "
                "increases can take a day")
        else:
            print(f"quota {quota_name!r}: {quota['Value']:g} ≥ {count}")
        return est

    # -- deleting -----------------------------------------------------------------------------
    def _delete(self, kind: str, resource: str) -> None:
        """Delete one SageMaker resource; gone already is fine; on AWS wait out a Creating/Updating endpoint."""
        if kind == "endpoint" and self.kind == "aws":
            self._wait_settled(resource)
        _ignore_gone(lambda: _delete_sagemaker(self.sagemaker, kind, resource))

    def _wait_settled(self, endpoint: str) -> None:
        while True:
            try:
                status = self.sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointStatus"]
            except ClientError as exc:
                if _gone(exc):
                    return
                raise
            if status not in SETTLING:
                return
            print(f"endpoint {endpoint} is {status}: waiting {self.poll_s:.0f}s before deleting it")
            time.sleep(self.poll_s)

    def leftovers(self) -> list[Leftover]:
        """What this run made and has not deleted yet, found by its tags (as ``sweep`` finds it)."""
        return [r for r in sweep(session=self._session, moto=self._moto, lab=self.lab) if r.run == self.run]

    def _delete_tagged(self) -> None:
        """Delete every SageMaker endpoint, endpoint config and model tagged with this run (in that
        order), however it was created; raise at the end if one could not be deleted."""
        if self._moto is not None and not self._moto.running():
            return  # the emulator is stopped, and everything it held with it
        deleted, failed = 0, []
        for kind in ("endpoint", "endpoint-config", "model"):
            for resource, tags, _ in _list_sagemaker(self.sagemaker, kind, f"labkit-{_slug(self.lab)}-"):
                if tags.get(spend.RUN_TAG) == self.run:
                    try:
                        self._delete(kind, resource)
                        print(f"deleted {kind} {resource}")
                        deleted += 1
                    except ClientError as exc:
                        print(f"could not delete {kind} {resource}: {exc}")
                        failed.append(f"{kind} {resource}")
        if failed:
            raise TargetError(f"could not delete {', '.join(failed)}: delete them by hand or `labkit sweep --aws`")
        if not deleted:
            print(f"nothing else tagged {spend.RUN_TAG}={self.run} is left")

    def delete_all(self) -> list[tuple[str, BaseException]]:
        """Delete what this run made: what the teardown list holds (bucket, repository), then every
        SageMaker resource tagged with this run. Returns what could not be deleted (empty when all
        went). The tagged sweep stays registered, so a later failure or exit runs it again."""
        errors = self.teardown.run()
        self.teardown.add(self._tagged_description, self._delete_tagged)
        return errors


def target(kind: str, *, lab: str, region: str = "us-east-1", confirm_spend: bool = False, moto=None,
           role_arn: str | None = None) -> Target:
    """The place lab 05 deploys to: "emulator" (a labkit.emulators.Moto, always in its us-east-1) or "aws".

    "aws" checks the opt-in first (credentials and ``confirm_spend``), then the execution
    role (``role_arn`` or SAGEMAKER_ROLE_ARN); it creates nothing itself.
    """
    if kind == "emulator":
        if moto is None:
            raise TargetError('target("emulator") needs the moto server: moto=emulators.start_moto()')
        return Target(kind, lab=lab, region=emulators.REGION, moto=moto, role_arn=role_arn)
    if kind != "aws":
        raise TargetError(f'unknown target kind {kind!r}: use "emulator" or "aws"')
    spend.require_opt_in(f"AWS ({region})", confirm_spend=confirm_spend,
                         credentials_reason=probes.aws_credentials_reason())
    role_arn = role_arn or os.environ.get("SAGEMAKER_ROLE_ARN")
    if not role_arn:
        raise TargetError("no SageMaker execution role: create one that SageMaker may assume (IAM → Roles → "
                          "SageMaker, with AmazonSageMakerFullAccess or narrower), then pass role_arn=... or set "
                          "SAGEMAKER_ROLE_ARN")
    return Target(kind, lab=lab, region=region, role_arn=role_arn)


# ---------------------------------------------------------------------------------- helpers

def _ignore_gone(fn) -> None:
    try:
        fn()
    except ClientError as exc:
        if not _gone(exc):
            raise


def _delete_sagemaker(sm, kind: str, resource: str) -> None:
    {"endpoint": lambda: sm.delete_endpoint(EndpointName=resource),
     "endpoint-config": lambda: sm.delete_endpoint_config(EndpointConfigName=resource),
     "model": lambda: sm.delete_model(ModelName=resource)}[kind]()


def _delete_bucket(s3, bucket: str) -> None:
    def empty_and_delete():
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            if keys := [{"Key": o["Key"]} for o in page.get("Contents", [])]:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
        s3.delete_bucket(Bucket=bucket)
    _ignore_gone(empty_and_delete)


_LISTS = {"endpoint": ("list_endpoints", "Endpoints", "EndpointName", "EndpointArn"),
          "endpoint-config": ("list_endpoint_configs", "EndpointConfigs", "EndpointConfigName", "EndpointConfigArn"),
          "model": ("list_models", "Models", "ModelName", "ModelArn")}


def _list_sagemaker(sm, kind: str, prefix: str):
    """(name, tags, created) of each ``kind`` whose name starts with ``prefix``."""
    operation, key, name_key, arn_key = _LISTS[kind]
    for page in sm.get_paginator(operation).paginate(NameContains=prefix):
        for item in page[key]:
            if item[name_key].startswith(prefix):
                try:
                    tags = _tags(sm.list_tags(ResourceArn=item[arn_key]).get("Tags", []))
                except ClientError as exc:
                    if _gone(exc):
                        continue
                    raise
                yield item[name_key], tags, item.get("CreationTime")


def _find_quota(sq, quota_name: str) -> dict | None:
    """The account's applied quota by name, else AWS's default; None when neither lists it."""
    for operation in ("list_service_quotas", "list_aws_default_service_quotas"):
        for page in sq.get_paginator(operation).paginate(ServiceCode="sagemaker"):
            for quota in page.get("Quotas", []):
                if quota.get("QuotaName") == quota_name:
                    return quota
    return None


def sweep(*, session=None, moto=None, delete: bool = False, lab: str | None = None) -> list[Leftover]:
    """Every SageMaker endpoint/endpoint config/model, S3 bucket and ECR repository tagged ``labkit-lab``.

    Only names starting with ``labkit-`` are looked at (all of labkit's do), then their tags
    decide; untagged ones are never touched. ``lab`` narrows to one lab; ``delete=True``
    removes what was found (endpoints first) and prints a line each. It looks in the
    session's region only (S3 bucket names are global); an endpoint still Creating cannot be
    deleted yet and is reported: sweep again a few minutes later.
    """
    def client(service):
        return moto.client(service) if moto else (session or boto3.Session()).client(service)

    def wanted(tags: dict[str, str]) -> bool:
        return spend.LAB_TAG in tags and (lab is None or tags[spend.LAB_TAG] == lab)

    prefix = "labkit-" if lab is None else f"labkit-{_slug(lab)}-"
    sm, s3, ecr = client("sagemaker"), client("s3"), client("ecr")
    found: list[Leftover] = []
    for kind in ("endpoint", "endpoint-config", "model"):
        for resource, tags, created in _list_sagemaker(sm, kind, prefix):
            if wanted(tags):
                found.append(Leftover(kind, resource, tags[spend.LAB_TAG], tags.get(spend.RUN_TAG, ""), created))
    for bucket in s3.list_buckets().get("Buckets", []):
        if bucket["Name"].startswith(prefix):
            try:
                tags = _tags(s3.get_bucket_tagging(Bucket=bucket["Name"])["TagSet"])
            except ClientError:  # NoSuchTagSet: untagged, not ours to judge
                continue
            if wanted(tags):
                found.append(Leftover("bucket", bucket["Name"], tags[spend.LAB_TAG], tags.get(spend.RUN_TAG, ""),
                                      bucket.get("CreationDate")))
    for page in ecr.get_paginator("describe_repositories").paginate():
        for repo in page["repositories"]:
            if repo["repositoryName"].startswith(prefix):
                tags = _tags(ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"]).get("tags", []))
                if wanted(tags):
                    found.append(Leftover("repository", repo["repositoryName"], tags[spend.LAB_TAG],
                                          tags.get(spend.RUN_TAG, ""), repo.get("createdAt")))
    if delete:
        for item in found:
            try:
                if item.kind == "bucket":
                    _delete_bucket(s3, item.name)
                elif item.kind == "repository":
                    _ignore_gone(lambda repo=item.name: ecr.delete_repository(repositoryName=repo, force=True))
                else:
                    _ignore_gone(lambda it=item: _delete_sagemaker(sm, it.kind, it.name))
                print(f"deleted {item.describe()}")
            except ClientError as exc:
                print(f"could not delete {item.describe()}: {exc}")
    return found
