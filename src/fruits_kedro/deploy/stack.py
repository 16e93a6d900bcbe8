"""The infrastructure stack (``infra/fruits-infra.yaml``) as the launcher sees it: its outputs.

Roles, instance profile, security configuration, subnet, the three EMR-managed security groups,
buckets, KMS key and log URI are read from CloudFormation ``DescribeStacks``, or from a saved
``aws cloudformation describe-stacks`` answer (``--stack-outputs``) for an offline dry run.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fruits_kedro.deploy.aws import DeployError, MissingCredentialsError

if TYPE_CHECKING:
    from pathlib import Path

    from fruits_kedro.deploy.aws import AwsCaller

logger = logging.getLogger(__name__)

TEMPLATE = "infra/fruits-infra.yaml"
# Field of StackOutputs -> output key of the template.
OUTPUT_KEYS = {
    "dataset_bucket": "DatasetBucketName",
    "results_bucket": "ResultsBucketName",
    "audit_bucket": "AuditBucketName",
    "kms_key_arn": "KmsKeyArn",
    "service_role": "EmrServiceRoleName",
    "instance_profile": "EmrInstanceProfileName",
    "subnet_ids": "PrivateSubnetId",
    "primary_security_group": "EmrPrimarySecurityGroupId",
    "core_security_group": "EmrCoreSecurityGroupId",
    "service_access_security_group": "EmrServiceAccessSecurityGroupId",
    "security_configuration": "EmrSecurityConfigurationName",
    "log_uri": "EmrLogUri",
}
# Output values that must look like what they claim to be.
PREFIXES = {
    "KmsKeyArn": "arn:",
    "PrivateSubnetId": "subnet-",
    "EmrPrimarySecurityGroupId": "sg-",
    "EmrCoreSecurityGroupId": "sg-",
    "EmrServiceAccessSecurityGroupId": "sg-",
    "EmrLogUri": "s3://",
}
USABLE_STATES = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"})


class StackError(ValueError):
    """The stack cannot be read, is not usable, or lacks an output the launcher needs."""


@dataclass(frozen=True)
class StackOutputs:
    """The outputs of one deployed stack that a cluster is launched with."""

    name: str
    dataset_bucket: str
    results_bucket: str
    audit_bucket: str
    kms_key_arn: str
    service_role: str
    instance_profile: str
    subnet_ids: tuple[str, ...]
    primary_security_group: str
    core_security_group: str
    service_access_security_group: str
    security_configuration: str
    log_uri: str


def describe_stacks_request(name: str) -> dict[str, Any]:
    """``DescribeStacks`` of one stack."""
    return {"StackName": name}


def read_stack(caller: AwsCaller, name: str) -> StackOutputs:
    """The outputs of stack ``name``, read with ``DescribeStacks`` (read-only).

    Raises:
        StackError: The stack does not exist, is not usable, or lacks an output.
        MissingCredentialsError: No AWS credentials.
    """
    try:
        response = caller.call("cloudformation", "DescribeStacks", describe_stacks_request(name))
    except MissingCredentialsError:
        raise
    except DeployError as exc:
        raise StackError(f"stack {name!r}: {exc}; deploy {TEMPLATE} first") from exc
    return parse_outputs(name, response, f"stack {name!r} in {caller.region}")


def load_stack_file(path: Path, name: str) -> StackOutputs:
    """The outputs of stack ``name`` in a saved ``aws cloudformation describe-stacks`` answer."""
    try:
        response = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise StackError(f"{path}: cannot be read as describe-stacks JSON: {exc}") from exc
    return parse_outputs(name, response, f"stack {name!r} of {path}")


def parse_outputs(name: str, response: Any, where: str) -> StackOutputs:
    """The launcher's outputs of stack ``name`` in a ``DescribeStacks`` answer.

    Raises:
        StackError: One line naming ``where`` and the first thing wrong.
    """
    stacks = response.get("Stacks", []) if isinstance(response, dict) else []
    stack = next((item for item in stacks if item.get("StackName") == name), None)
    if stack is None:
        raise StackError(f"{where}: no such stack; deploy {TEMPLATE} first")
    status = stack.get("StackStatus", "CREATE_COMPLETE")
    if status not in USABLE_STATES:
        raise StackError(f"{where}: status {status}, expected one of {sorted(USABLE_STATES)}")
    values = {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])}
    missing = [key for key in OUTPUT_KEYS.values() if not values.get(key)]
    if missing:
        raise StackError(
            f"{where}: missing output(s) {', '.join(missing)}; update the stack with {TEMPLATE}"
        )
    for key, prefix in PREFIXES.items():
        if not all(part.strip().startswith(prefix) for part in values[key].split(",")):
            raise StackError(f"{where}: output {key} {values[key]!r} does not start {prefix!r}")
    fields: dict[str, Any] = {field: values[key] for field, key in OUTPUT_KEYS.items()}
    # One private subnet today; a comma-separated list of them is taken as it comes.
    fields["subnet_ids"] = tuple(item.strip() for item in fields["subnet_ids"].split(","))
    return StackOutputs(name=name, **fields)
