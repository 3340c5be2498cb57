"""The labs' tagged AWS resources: listing SageMaker resources, S3 buckets, ECR repositories and
budgets (lab 09) by their ``labkit-`` names and ``labkit-lab``/``labkit-run`` tags, with the
Application Auto Scaling configuration of those endpoints (lab 07), deleting them (gone already
is fine), and
:func:`sweep`, which finds what interrupted runs left behind (``labkit sweep --aws``)."""

from __future__ import annotations

import boto3
from botocore.exceptions import ClientError

from ..core import labels
from ..core.names import slug
from . import autoscaling
from .target import Leftover

#: The SageMaker kinds, in the order they can be deleted (an endpoint before its config).
SAGEMAKER_KINDS = ("endpoint", "endpoint-config", "model")
_LISTS = {"endpoint": ("list_endpoints", "Endpoints", "EndpointName", "EndpointArn"),
          "endpoint-config": ("list_endpoint_configs", "EndpointConfigs", "EndpointConfigName", "EndpointConfigArn"),
          "model": ("list_models", "Models", "ModelName", "ModelArn")}


def tags_of(sagemaker, arn: str) -> dict[str, str]:
    """The tags of a SageMaker resource, as a dict."""
    return _tags(sagemaker.list_tags(ResourceArn=arn)["Tags"])


def _tags(tag_list: list[dict]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tag_list}


def prefix(lab: str | None) -> str:
    """The start of every name labkit gives a resource of ``lab`` (of any lab when None)."""
    return "labkit-" if lab is None else f"labkit-{slug(lab)}-"


def _wanted(tags: dict[str, str], lab: str | None, run: str | None) -> bool:
    """Tagged by a lab (``lab`` and ``run`` when given): untagged resources are never ours to judge."""
    return (labels.LAB_TAG in tags and (lab is None or tags[labels.LAB_TAG] == lab)
            and (run is None or tags.get(labels.RUN_TAG) == run))


def gone(exc: ClientError) -> bool:
    """True when the error says the resource no longer exists (deleting it again is then fine)."""
    error = exc.response.get("Error", {})
    code, message = error.get("Code", ""), error.get("Message", "")
    return (code in ("NoSuchBucket", "RepositoryNotFoundException", "ResourceNotFound", "404", "NotFound",
                     "NotFoundException")
            or (code == "ValidationException" and "Could not find" in message))


def ignore_gone(fn) -> None:
    try:
        fn()
    except ClientError as exc:
        if not gone(exc):
            raise


def delete_sagemaker(sm, kind: str, resource: str) -> None:
    {"endpoint": lambda: sm.delete_endpoint(EndpointName=resource),
     "endpoint-config": lambda: sm.delete_endpoint_config(EndpointConfigName=resource),
     "model": lambda: sm.delete_model(ModelName=resource)}[kind]()


def delete_leftover(sm, aas, kind: str, resource: str) -> None:
    """Delete a SageMaker resource or an endpoint's scaling configuration; gone already is fine."""
    if kind in autoscaling.KINDS:
        autoscaling.delete(aas, kind, resource)
    else:
        ignore_gone(lambda: delete_sagemaker(sm, kind, resource))


def delete_bucket(s3, bucket: str) -> None:
    def empty_and_delete():
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            if keys := [{"Key": o["Key"]} for o in page.get("Contents", [])]:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
        s3.delete_bucket(Bucket=bucket)
    ignore_gone(empty_and_delete)


def list_sagemaker(sm, kind: str, name_prefix: str):
    """A :class:`Leftover` for each ``kind`` whose name starts with ``name_prefix`` (tagged or not)."""
    operation, key, name_key, arn_key = _LISTS[kind]
    for page in sm.get_paginator(operation).paginate(NameContains=name_prefix):
        for item in page[key]:
            if item[name_key].startswith(name_prefix):
                try:
                    tags = _tags(sm.list_tags(ResourceArn=item[arn_key]).get("Tags", []))
                except ClientError as exc:
                    if gone(exc):
                        continue
                    raise
                yield Leftover(kind, item[name_key], tags, item.get("CreationTime"))


def sagemaker_leftovers(sm, aas, lab: str | None, run: str | None = None) -> list[Leftover]:
    """The SageMaker endpoints, endpoint configs and models tagged ``labkit-lab`` (of ``lab`` and
    ``run`` when given), preceded by their endpoints' scheduled actions, scaling policies and
    scalable targets: the order they can be deleted in (AWS's documented order, see
    :mod:`labkit.cloud.autoscaling`). With ``run``, scaling configuration whose endpoint no longer
    exists but bears this run's name (``labkit-<lab>-…-<run>``: moto lets an endpoint be deleted under
    it) is claimed too, with the run's tags. When Application Auto Scaling cannot be listed (no
    permission), the scaling part is left out with a note: SageMaker's DeleteEndpoint deregisters
    an autoscaled variant itself where the caller may."""
    start = prefix(lab)
    listed = [item for kind in SAGEMAKER_KINDS for item in list_sagemaker(sm, kind, start)]
    found = [item for item in listed if _wanted(item.tags, lab, run)]
    endpoints = {item.name: item.tags for item in found if item.kind == "endpoint"}
    existing = {item.name for item in listed if item.kind == "endpoint"}
    ours = {labels.LAB_TAG: lab or "", labels.RUN_TAG: run or ""}

    def owner(endpoint: str) -> dict[str, str] | None:
        if endpoint in endpoints:
            return endpoints[endpoint]
        orphan = run and endpoint not in existing and endpoint.startswith(start) and endpoint.endswith(f"-{run}")
        return ours if orphan else None

    if not endpoints and not run:
        return found
    try:
        return autoscaling.leftovers(aas, owner) + found
    except (ClientError, autoscaling.AutoscalingError) as exc:
        why = exc.response["Error"].get("Code") if isinstance(exc, ClientError) else exc
        print(f"note: could not list Application Auto Scaling ({why}): the endpoints' scaling configuration "
              "is left out (deleting an endpoint deregisters it on AWS, where the caller may deregister)")
        return found


def budget_names(budgets, account_id: str) -> list[str]:
    """The names of every budget of ``account_id`` (none: AWS may answer NotFoundException)."""
    try:
        return [b["BudgetName"] for page in budgets.get_paginator("describe_budgets").paginate(AccountId=account_id)
                for b in page.get("Budgets", [])]
    except ClientError as exc:
        if gone(exc):
            return []
        raise


def budget_leftovers(budgets, account_id: str, lab: str | None, run: str | None = None) -> list[Leftover]:
    """The budgets of ``account_id`` named ``labkit-…`` and tagged ``labkit-lab`` (of ``lab`` and
    ``run`` when given), their tags read with ListTagsForResource. Budgets whose tags cannot be
    read (moto 5.2.5 keeps none and answers HTTP 500; an account may deny the permission), or
    that cannot be listed at all, are left out with a note."""
    start, found, unread = prefix(lab), [], []
    try:
        names = [name for name in budget_names(budgets, account_id) if name.startswith(start)]
    except ClientError as exc:
        print(f"note: could not list the account's budgets ({exc.response['Error'].get('Code')}): left out")
        return []
    for name in names:
        try:
            tags = _tags(budgets.list_tags_for_resource(
                ResourceARN=f"arn:aws:budgets::{account_id}:budget/{name}").get("ResourceTags", []))
        except ClientError as exc:
            unread.append(f"{name} ({exc.response['Error'].get('Code')})")
            continue
        if _wanted(tags, lab, run):
            found.append(Leftover("budget", name, tags))
    if unread:
        print(f"note: the tags of budget(s) {', '.join(unread)} could not be read: left out (delete them by hand "
              "if a lab made them)")
    return found


def find_quota(sq, quota_name: str) -> dict | None:
    """The account's applied quota by name, else AWS's default; None when neither lists it."""
    for operation in ("list_service_quotas", "list_aws_default_service_quotas"):
        for page in sq.get_paginator(operation).paginate(ServiceCode="sagemaker"):
            for quota in page.get("Quotas", []):
                if quota.get("QuotaName") == quota_name:
                    return quota
    return None


def sweep(*, session=None, moto=None, delete: bool = False, lab: str | None = None,
          run: str | None = None) -> list[Leftover]:
    """Every SageMaker endpoint/endpoint config/model, S3 bucket, ECR repository and budget tagged
    ``labkit-lab``, and the scaling configuration of those endpoints (:func:`sagemaker_leftovers`).

    Only names starting with ``labkit-`` are looked at (all of labkit's do), then their tags
    decide; untagged ones are never touched. ``lab`` and ``run`` narrow it; ``delete=True``
    removes what was found (scaling first, then endpoints) and prints a line each. It looks in the
    session's region only (S3 bucket names are global); an endpoint still Creating cannot be
    deleted yet and is reported: sweep again a few minutes later. Budgets are the account's,
    whatever the region.
    """
    def client(service):
        return moto.client(service) if moto else (session or boto3.Session()).client(service)

    start = prefix(lab)
    sm, s3, ecr, aas = client("sagemaker"), client("s3"), client("ecr"), client("application-autoscaling")
    found = sagemaker_leftovers(sm, aas, lab, run)
    for bucket in s3.list_buckets().get("Buckets", []):
        if bucket["Name"].startswith(start):
            try:
                tags = _tags(s3.get_bucket_tagging(Bucket=bucket["Name"])["TagSet"])
            except ClientError:  # NoSuchTagSet: untagged, not ours to judge
                continue
            if _wanted(tags, lab, run):
                found.append(Leftover("bucket", bucket["Name"], tags, bucket.get("CreationDate")))
    for page in ecr.get_paginator("describe_repositories").paginate():
        for repo in page["repositories"]:
            if repo["repositoryName"].startswith(start):
                tags = _tags(ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"]).get("tags", []))
                if _wanted(tags, lab, run):
                    found.append(Leftover("repository", repo["repositoryName"], tags, repo.get("createdAt")))
    budgets, account = client("budgets"), client("sts").get_caller_identity()["Account"]
    found += budget_leftovers(budgets, account, lab, run)
    if delete:
        for item in found:
            try:
                if item.kind == "bucket":
                    delete_bucket(s3, item.name)
                elif item.kind == "repository":
                    ignore_gone(lambda repo=item.name: ecr.delete_repository(repositoryName=repo, force=True))
                elif item.kind == "budget":
                    ignore_gone(lambda name=item.name: budgets.delete_budget(AccountId=account, BudgetName=name))
                else:
                    delete_leftover(sm, aas, item.kind, item.name)
                print(f"deleted {item.describe()}")
            except ClientError as exc:
                print(f"could not delete {item.describe()}: {exc}")
    return found
