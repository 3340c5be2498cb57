"""Lab 05's AWS side: the same code deploys to the moto emulator or, opted in, to a real account.

``target("emulator", lab="05", moto=m)`` talks only to a local moto server (see
:mod:`labkit.emulators`); ``target("aws", lab="05", confirm_spend=True)`` refuses unless
credentials are there and the spend was confirmed (:func:`labkit.spend.require_opt_in`),
before anything is created. Every resource is named ``labkit-<lab>-<what>-<run>``, tagged
``labkit-lab``/``labkit-run`` and registered with the target's :class:`~labkit.spend.Teardown`;
:func:`sweep` finds what interrupted runs left behind, by those tags. Lab 07 autoscales the
endpoints: their scheduled actions, scaling policies and scalable targets cannot carry tags
everywhere, so the cleanup and the sweep find them through the run's endpoints and delete them
before those endpoints (:mod:`labkit.cloud.autoscaling`).

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
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

from ..core.errors import LabkitError, RequirementNotMet
from ..core.names import slug, split_image_ref
from ..core.waiting import wait_until
from ..machine import probes
from . import emulators, spend, target as base
from .aws_resources import (delete_bucket, delete_leftover, find_quota, gone, ignore_gone, sagemaker_leftovers,
                            sweep, tags_of)
from .target import Deletion, Leftover

__all__ = ["Deletion", "Leftover", "QuotaError", "Target", "TargetError", "name", "sweep", "tags_of", "target"]

SAGEMAKER_NAME_MAX = 63
SETTLING = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")
QUOTA_NAME = "{instance_type} for endpoint usage"


class QuotaError(LabkitError):
    """The account's Service Quotas limit is below the instance count asked for."""


class TargetError(LabkitError):
    """The target cannot be set up as asked; the message says what to change."""


def name(target: Target, suffix: str) -> str:
    """``labkit-<lab>-<suffix>-<run>``, cut in the middle to SageMaker's 63 characters (the run id stays whole)."""
    head = f"labkit-{slug(target.lab)}-{slug(suffix)}"[:SAGEMAKER_NAME_MAX - len(target.run) - 1].rstrip("-")
    return f"{head}-{target.run}"


class Target(base.Target):
    """Where lab 05 deploys: boto3 clients, names, tags, and the deleters for what it made."""

    tagged_what = "SageMaker resources tagged"
    sweep_flag = "--aws"
    poll_s = 15.0  # how often to look at an endpoint that is still Creating/Updating
    settle_s = 3600.0  # and for how long at most: a large model's endpoint can take tens of minutes

    def __init__(self, kind: str, *, lab: str, region: str, moto=None, role_arn: str | None = None):
        self.kind, self.lab, self.region, self._moto = kind, lab, region, moto
        self.run = spend.run_id()
        self.tags = [{"Key": k, "Value": v} for k, v in self.resource_tags.items()]
        self.teardown = spend.Teardown()
        self._role_arn = role_arn
        self._clients: dict = {}
        self._bucket: str | None = None
        self._session = None if moto else boto3.Session(region_name=region)
        # First in, so last out: on a failure or at exit, whatever the run created with its tags
        # (through this module or by hand in a notebook cell) is deleted after the bucket and repository.
        self._register_tagged()

    @property
    def moto(self):
        """The emulator this target talks to (a labkit.emulators.Moto); None on a real account."""
        return self._moto

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
    def autoscaling(self):
        """Application Auto Scaling, where a variant's scalable target and policies live (lab 07)."""
        return self.client("application-autoscaling")

    @property
    def role_arn(self) -> str:
        """The execution role SageMaker assumes; on the emulator one made in moto IAM for this lab."""
        if self._role_arn is None:
            iam, role = self.client("iam"), f"labkit-{slug(self.lab)}-sagemaker"
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
            self.teardown.add(f"bucket {bucket}", lambda: delete_bucket(s3, bucket))
            s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": self.tags})
            self._bucket = bucket
        key = f"{slug(self.lab)}/{tar_path.name}"
        s3.upload_file(str(tar_path), self._bucket, key)
        uri = self.model_data_uri(tar_path)
        print(f"uploaded {tar_path.name} ({tar_path.stat().st_size:,} bytes) to {uri}")
        return uri

    def model_data_uri(self, tar_path: str | Path) -> str:
        """Where :meth:`model_data` puts ``tar_path`` in this run: what a check expects a model to name."""
        return f"s3://{name(self, 'model')}/{slug(self.lab)}/{Path(tar_path).name}"

    def image_uri(self, local_image: str, *, push: bool = True) -> str:
        """The image SageMaker should run: the local tag on the emulator, else pushed to a new ECR
        repository (with ``push=False``: the URI it was pushed to, for a check)."""
        if self.kind == "emulator":
            return local_image
        from ..tools import dockerlab
        repo_part, tag = split_image_ref(local_image)
        ecr = self.client("ecr")
        repo_name = name(self, repo_part.split("/")[-1])
        if not push:
            try:
                found = ecr.describe_repositories(repositoryNames=[repo_name])["repositories"][0]
            except ClientError:
                raise RequirementNotMet(f"there is no ECR repository {repo_name}: push the image with AWS.image_uri") \
                    from None
            return f"{found['repositoryUri']}:{tag}"
        uri = ecr.create_repository(repositoryName=repo_name, tags=self.tags,
                                    imageScanningConfiguration={"scanOnPush": True})["repository"]["repositoryUri"]
        self.teardown.add(f"repository {repo_name}",
                          lambda: ignore_gone(lambda: ecr.delete_repository(repositoryName=repo_name, force=True)))
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
            quota = find_quota(self.client("service-quotas"), quota_name)
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
        """Delete one SageMaker resource or piece of an endpoint's scaling configuration; gone
        already is fine; on AWS wait out a Creating/Updating endpoint."""
        if kind == "endpoint" and self.kind == "aws":
            self._wait_settled(resource)
        delete_leftover(self.sagemaker, self.autoscaling, kind, resource)

    def _wait_settled(self, endpoint: str) -> None:
        """Wait until ``endpoint`` is in no transitional state (SageMaker refuses to delete one that
        is), at most :attr:`settle_s`; an endpoint already gone is settled."""
        def settled() -> bool:
            try:
                status = self.sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointStatus"]
            except ClientError as exc:
                if gone(exc):
                    return True
                raise
            if status in SETTLING:
                print(f"endpoint {endpoint} is {status}: waiting {self.poll_s:.0f}s before deleting it")
                return False
            return True

        wait_until(settled, timeout=self.settle_s, every=self.poll_s, error=TargetError,
                   what=f"endpoint {endpoint} to finish {'/'.join(SETTLING)} before it can be deleted "
                        "(delete it later with `labkit sweep --aws --delete`)")

    def leftovers(self) -> list[Leftover]:
        """What this run made and has not deleted yet, found by its tags (as ``sweep`` finds it)."""
        if self._emulator_gone():
            return []
        return sweep(session=self._session, moto=self._moto, lab=self.lab, run=self.run)

    def _lab_leftovers(self) -> list[Leftover]:
        return [] if self._emulator_gone() else sweep(session=self._session, moto=self._moto, lab=self.lab)

    def _emulator_gone(self) -> bool:
        """True when the emulator is stopped, and everything it held with it."""
        return self._moto is not None and not self._moto.running()

    def _delete_tagged(self) -> list[Leftover]:
        """Delete every SageMaker endpoint, endpoint config and model tagged with this run, however
        it was created, each endpoint's scaling configuration first (scheduled actions, policies,
        scalable targets); raise at the end if something could not be deleted."""
        if self._emulator_gone():
            return []
        deleted, failed = [], []
        for item in sagemaker_leftovers(self.sagemaker, self.autoscaling, self.lab, self.run):
            try:
                self._delete(item.kind, item.name)
                print(f"deleted {item.kind} {item.name}")
                deleted.append(item)
            except ClientError as exc:
                print(f"could not delete {item.kind} {item.name}: {exc}")
                failed.append(f"{item.kind} {item.name}")
        if failed:
            raise TargetError(f"could not delete {', '.join(failed)}: delete them by hand or `labkit sweep --aws`")
        if not deleted:
            print(f"nothing else tagged {spend.RUN_TAG}={self.run} is left")
        return deleted


def target(kind: str, *, lab: str, region: str = "us-east-1", confirm_spend: bool = False, moto=None,
           role_arn: str | None = None) -> Target:
    """The place a lab deploys to: "emulator" (a labkit.emulators.Moto, always in its us-east-1) or "aws".

    "emulator" without ``moto`` starts the lab's moto server (or, under ``labkit grade``, attaches
    to the grader's) and points this process's AWS SDKs and CLI at it (``Target.moto``). "aws"
    checks the opt-in first (credentials and ``confirm_spend``), then the execution role
    (``role_arn`` or SAGEMAKER_ROLE_ARN); it creates nothing itself.
    """
    if kind == "emulator":
        if moto is None:
            moto = emulators.start_moto()
            moto.export()  # boto3 and `!aws` in this kernel now talk to the emulator, with fake credentials
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
