"""The stack of ``infra/fruits-infra.yaml`` deployed in moto, and the launcher reading it.

moto creates what it implements and skips (with a warning) the resource types it does not, e.g.
bucket policies, security-group egress rules, the CloudTrail trail. The outputs the launcher
reads must come from resources moto did create: each one is looked up in its own service.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml
from moto.cloudformation.parsing import get_model_map
from moto.core import DEFAULT_ACCOUNT_ID
from moto.emr.models import emr_backends

from fruits_kedro.deploy.aws import BotoCaller
from fruits_kedro.deploy.cli import main
from fruits_kedro.deploy.stack import OUTPUT_KEYS, StackError, parse_outputs, read_stack
from tests.deploy.conftest import (
    CONF_DIR,
    FAKE_OUTPUTS,
    REGION,
    STACK,
    TEMPLATE,
    deploy_template,
    describe_stacks_answer,
    emr_clusters,
    moto_client,
)

# moto warns of each resource type it skips, whenever it reads the template.
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")
CONF = ["--conf-dir", str(CONF_DIR)]
MANAGED_TAG = {"Key": "for-use-with-amazon-emr-managed-policies", "Value": "true"}


class _TemplateLoader(yaml.SafeLoader):
    """Reads CloudFormation's short forms (``!Ref X`` becomes ``{"Ref": "X"}``)."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict:
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}": value}


_TemplateLoader.add_multi_constructor("!", _intrinsic)


def template() -> dict:
    return yaml.load(TEMPLATE.read_text(), Loader=_TemplateLoader)


def referenced_resources(value: object) -> set[str]:
    """Logical ids an output value refers to (``Ref``, ``GetAtt``, ``${X}`` of ``Sub``)."""
    if isinstance(value, dict):
        found: set[str] = set()
        for key, item in value.items():
            if key == "Ref":
                found.add(item)
            elif key == "Fn::GetAtt":
                found.add(item.split(".")[0] if isinstance(item, str) else item[0])
            elif key == "Fn::Sub":
                text = item if isinstance(item, str) else item[0]
                found |= {name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", text)}
            else:
                found |= referenced_resources(item)
        return found
    if isinstance(value, list):
        return set().union(*(referenced_resources(item) for item in value))
    return set()


@pytest.fixture(scope="module")
def stack(deploy_moto):
    """The deployed stack: its outputs and its resources as CloudFormation lists them."""
    cloudformation = moto_client("cloudformation", deploy_moto)
    (described,) = cloudformation.describe_stacks(StackName=STACK)["Stacks"]
    resources = cloudformation.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
    outputs = {item["OutputKey"]: item["OutputValue"] for item in described["Outputs"]}
    return described, outputs, {item["LogicalResourceId"]: item for item in resources}


def test_the_template_deploys_and_has_every_output_the_launcher_reads(stack):
    described, outputs, _ = stack

    assert described["StackStatus"] == "CREATE_COMPLETE"
    assert set(OUTPUT_KEYS.values()) <= set(outputs)


def test_moto_skipped_only_the_resource_types_it_lacks(stack):
    _, _, created = stack
    resources = template()["Resources"]

    skipped = {name: item["Type"] for name, item in resources.items() if name not in created}

    assert skipped, "moto now creates every resource: drop the skip note of this module"
    assert not [kind for kind in skipped.values() if kind in get_model_map()]


def test_every_output_the_launcher_reads_comes_from_a_created_resource(stack):
    _, _, created = stack
    outputs = template()["Outputs"]

    for key in OUTPUT_KEYS.values():
        behind = referenced_resources(outputs[key]["Value"])
        assert behind, key
        for name in behind:
            assert created[name]["ResourceStatus"] == "CREATE_COMPLETE", (key, name)


def test_the_outputs_are_real_resources(stack, deploy_moto):
    _, outputs, _ = stack
    ec2, iam = moto_client("ec2", deploy_moto), moto_client("iam", deploy_moto)

    (subnet,) = ec2.describe_subnets(SubnetIds=[outputs["PrivateSubnetId"]])["Subnets"]
    assert MANAGED_TAG in subnet["Tags"]
    group_ids = [
        outputs[key]
        for key in (
            "EmrPrimarySecurityGroupId",
            "EmrCoreSecurityGroupId",
            "EmrServiceAccessSecurityGroupId",
        )
    ]
    groups = ec2.describe_security_groups(GroupIds=group_ids)["SecurityGroups"]
    assert len(groups) == 3 and {group["VpcId"] for group in groups} == {subnet["VpcId"]}
    assert all(MANAGED_TAG in group["Tags"] for group in groups)

    service_role = iam.get_role(RoleName=outputs["EmrServiceRoleName"])["Role"]
    assert "elasticmapreduce.amazonaws.com" in json.dumps(service_role["AssumeRolePolicyDocument"])
    profile = iam.get_instance_profile(InstanceProfileName=outputs["EmrInstanceProfileName"])
    (node_role,) = profile["InstanceProfile"]["Roles"]
    assert "ec2.amazonaws.com" in json.dumps(node_role["AssumeRolePolicyDocument"])

    # moto's DescribeKey fails on a key whose policy came from a template: listed is enough.
    keys = moto_client("kms", deploy_moto).list_keys()["Keys"]
    assert outputs["KmsKeyArn"] in {key["KeyArn"] for key in keys}

    s3 = moto_client("s3", deploy_moto)
    for name in ("DatasetBucketName", "ResultsBucketName", "AuditBucketName"):
        s3.head_bucket(Bucket=outputs[name])
    assert outputs["EmrLogUri"].startswith(f"s3://{outputs['ResultsBucketName']}/")

    # moto's EMR API answers for us-east-1 only; CloudFormation created it in eu-west-1.
    configurations = emr_backends[DEFAULT_ACCOUNT_ID][REGION].security_configurations
    assert outputs["EmrSecurityConfigurationName"] in configurations


def test_the_launcher_reads_the_deployed_stack(stack, aws):
    _, outputs, _ = stack

    read = read_stack(BotoCaller(REGION), STACK)

    assert read.subnet_ids == (outputs["PrivateSubnetId"],)
    assert read.primary_security_group == outputs["EmrPrimarySecurityGroupId"]
    assert read.core_security_group == outputs["EmrCoreSecurityGroupId"]
    assert read.service_access_security_group == outputs["EmrServiceAccessSecurityGroupId"]
    assert read.kms_key_arn == outputs["KmsKeyArn"]
    assert read.results_bucket == outputs["ResultsBucketName"]


def test_a_deployed_stack_missing_an_output_launches_nothing(aws, dist, capsys):
    head, _, tail = TEMPLATE.read_text().partition("\nOutputs:\n")
    body = head + "\nOutputs:\n" + re.sub(r"(?m)^  KmsKeyArn:\n(?:    .*\n)+", "", tail)
    parameters = {"DatasetBucketName": "fruits-c-images", "ResultsBucketName": "fruits-c-results"}
    deploy_template(aws, "fruits-infra-c", parameters, body)
    before = set(emr_clusters())

    assert main([*CONF, "run", "--stack", "fruits-infra-c", "--dist", str(dist)]) == 2

    assert set(emr_clusters()) == before
    (line,) = capsys.readouterr().err.splitlines()
    assert line == (
        "fruits-emr: error: stack 'fruits-infra-c' in eu-west-1: missing output(s) KmsKeyArn; "
        "update the stack with infra/fruits-infra.yaml"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"StackStatus": "ROLLBACK_COMPLETE"}, "status ROLLBACK_COMPLETE"),
        ({"StackName": "other"}, "no such stack"),
    ],
)
def test_an_unusable_stack_is_refused(change, message):
    answer = describe_stacks_answer(FAKE_OUTPUTS)
    answer["Stacks"][0] |= change

    with pytest.raises(StackError, match=message):
        parse_outputs(STACK, answer, "here")


def test_an_output_of_the_wrong_kind_is_named():
    answer = describe_stacks_answer(FAKE_OUTPUTS | {"EmrCoreSecurityGroupId": "subnet-1"})

    with pytest.raises(StackError, match=r"output EmrCoreSecurityGroupId 'subnet-1' .*'sg-'"):
        parse_outputs(STACK, answer, "here")


def test_several_private_subnets_are_taken_in_order():
    answer = describe_stacks_answer(FAKE_OUTPUTS | {"PrivateSubnetId": "subnet-a, subnet-b"})

    assert parse_outputs(STACK, answer, "here").subnet_ids == ("subnet-a", "subnet-b")


def test_an_unreadable_outputs_file_is_named(tmp_path, dist, capsys):
    broken = tmp_path / "stack.json"
    broken.write_text("{not json")
    argv = [*CONF, "--dry-run", "run", "--dist", str(dist), "--stack-outputs", str(broken)]

    assert main(argv) == 2

    assert f"{broken}: cannot be read as describe-stacks JSON" in capsys.readouterr().err
