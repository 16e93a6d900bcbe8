"""The CloudFormation template of ``infra/``: cfn-lint, static least-privilege checks, a moto deploy.

moto 5.2.5 creates every resource type of the template except ``AWS::S3::BucketPolicy``,
``AWS::CloudTrail::Trail``, ``AWS::EC2::SecurityGroupEgress``, ``AWS::SNS::TopicPolicy``,
``AWS::SNS::Subscription`` and ``AWS::Budgets::Budget`` (skipped with a warning), and of
``AWS::S3::Bucket`` it applies only ``BucketEncryption`` and ``Tags``; it ignores the ``Rules``
section and ``ManagedPolicyArns``. What moto cannot show is checked on the parsed template, here
and in ``test_hardening.py``.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError
from moto.events.models import EventPattern

from tests.conftest import reset_moto
from tests.infra.cfn import (
    TEMPLATE,
    as_list,
    bucket_policy,
    by_sid,
    identity_statements,
    role_statements,
    text,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

STACK = "fruits-infra"
REGION = "eu-west-1"
EU_EEA_REGIONS = [
    "eu-west-1",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
]
# The buckets encrypted with the stack key; the access-log bucket can only use SSE-S3.
BUCKETS = ["DatasetBucket", "ResultsBucket", "AuditBucket"]
ALL_BUCKETS = [*BUCKETS, "AccessLogBucket"]
MOTO_UNSUPPORTED = {
    "AWS::S3::BucketPolicy",
    "AWS::CloudTrail::Trail",
    "AWS::EC2::SecurityGroupEgress",
    "AWS::SNS::TopicPolicy",
    "AWS::SNS::Subscription",
    "AWS::Budgets::Budget",
}
# Actions without resource-level permissions: their statements need "Resource": "*".
UNSCOPED_ACTIONS = {"elasticmapreduce:RunJobFlow", "elasticmapreduce:ListClusters"}
NODE_WRITES = {
    "${ResultsBucket.Arn}/fruits-kedro/0*",
    "${ResultsBucket.Arn}/fruits-kedro/logs/*",
    "${ResultsBucket.Arn}/fruits-kedro/tmp/*",
}
OBJECT_GRANTS = {
    "s3:GetObject": {
        "${DatasetBucket.Arn}/fruits-360/*",
        "${DatasetBucket.Arn}/models/*",
        "${ResultsBucket.Arn}/fruits-kedro/*",
    },
    "s3:PutObject": NODE_WRITES,
    "s3:DeleteObject": NODE_WRITES,
    "s3:AbortMultipartUpload": NODE_WRITES,
}
LIST_PREFIXES = {
    "${DatasetBucket.Arn}": {"fruits-360", "fruits-360/*", "models", "models/*"},
    "${ResultsBucket.Arn}": {"fruits-kedro", "fruits-kedro/*"},
}
TRAIL_ARN = "arn:${AWS::Partition}:cloudtrail:${AWS::Region}:${AWS::AccountId}:trail/${AWS::StackName}-audit"

pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS::")


# ------------------------------------------------------------------ helpers


def _evaluate_rule(assertion: Any, region: str) -> Any:
    """Evaluate the ``Fn::Contains`` / ``Ref AWS::Region`` subset of Rules functions."""
    if isinstance(assertion, list):
        return [_evaluate_rule(item, region) for item in assertion]
    if assertion == {"Ref": "AWS::Region"}:
        return region
    if isinstance(assertion, dict) and "Fn::Contains" in assertion:
        values, item = _evaluate_rule(assertion["Fn::Contains"], region)
        return item in values
    if isinstance(assertion, str):
        return assertion
    raise AssertionError(f"rule function not evaluated by this test: {assertion}")


def _document(value: Any) -> dict[str, Any]:
    """A policy or configuration document as moto returns it: dict, JSON or (EMR) a Python repr."""
    if isinstance(value, dict):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return ast.literal_eval(value)


def _emr_host_names_region(request: Any, **_: Any) -> None:
    request.headers["Host"] = f"elasticmapreduce.{REGION}.amazonaws.com"


# ------------------------------------------------------------------ static checks


def test_cfn_lint_reports_nothing() -> None:
    command = [
        sys.executable,
        "-c",
        "import sys; from cfnlint.runner import main; sys.exit(main())",
    ]

    result = subprocess.run([*command, str(TEMPLATE)], capture_output=True, text=True, check=False)

    assert (result.returncode, result.stdout) == (0, "")


def test_no_identity_policy_allows_a_wildcard_resource_or_action(template: dict[str, Any]) -> None:
    statements = list(identity_statements(template))

    wildcards = [
        s.get("Sid")
        for s in statements
        if (
            "*" in map(text, as_list(s["Resource"]))
            and not set(as_list(s["Action"])) <= UNSCOPED_ACTIONS
        )
        or any(a in {"*", "s3:*", "kms:*"} for a in as_list(s["Action"]))
    ]
    unscoped = [s for s in statements if "*" in map(text, as_list(s["Resource"]))]

    assert statements
    assert wildcards == []
    # The actions that cannot be scoped to a resource are granted under conditions (MFA at least).
    assert unscoped
    assert all(s["Effect"] == "Allow" and s["Condition"] for s in unscoped)


def test_node_role_reads_and_writes_only_the_pipeline_prefixes(template: dict[str, Any]) -> None:
    statements = role_statements(template["Resources"]["EmrInstanceRole"])

    granted: dict[str, set[str]] = {}
    for statement in (s for s in statements if s["Effect"] == "Allow"):
        for action in as_list(statement["Action"]):
            if action.startswith("s3:") and action != "s3:ListBucket":
                granted.setdefault(action, set()).update(map(text, as_list(statement["Resource"])))

    assert granted == OBJECT_GRANTS


def test_node_role_lists_buckets_only_under_the_pipeline_prefixes(template: dict[str, Any]) -> None:
    statements = role_statements(template["Resources"]["EmrInstanceRole"])

    listing = {
        text(s["Resource"]): set(s["Condition"]["StringLike"]["s3:prefix"])
        for s in statements
        if s["Action"] == "s3:ListBucket"
    }

    assert listing == LIST_PREFIXES


def test_identity_policies_use_only_the_stack_key(template: dict[str, Any]) -> None:
    statements = list(identity_statements(template))

    kms_resources = {
        text(r)
        for s in statements
        if any(a.startswith("kms:") for a in as_list(s["Action"]))
        for r in as_list(s["Resource"])
    }

    assert kms_resources == {"${DataKey.Arn}"}


def test_service_role_uses_the_documented_v2_policy_and_passes_only_the_node_role(
    template: dict[str, Any],
) -> None:
    role = template["Resources"]["EmrServiceRole"]["Properties"]

    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    (pass_role,) = [
        s for s in role_statements({"Properties": role}) if s["Action"] == "iam:PassRole"
    ]

    assert trust["Principal"] == {"Service": "elasticmapreduce.amazonaws.com"}
    assert list(map(text, role["ManagedPolicyArns"])) == [
        "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonEMRServicePolicy_v2"
    ]
    assert text(pass_role["Resource"]) == "${EmrInstanceRole.Arn}"
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}


@pytest.mark.parametrize("bucket", BUCKETS)
def test_bucket_is_kms_encrypted_private_and_owner_enforced(
    template: dict[str, Any], bucket: str
) -> None:
    properties = template["Resources"][bucket]["Properties"]

    (encryption,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    default = encryption["ServerSideEncryptionByDefault"]

    assert (default["SSEAlgorithm"], text(default["KMSMasterKeyID"])) == (
        "aws:kms",
        "${DataKey.Arn}",
    )
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert properties["OwnershipControls"] == {
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]
    }
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}


@pytest.mark.parametrize("bucket", ALL_BUCKETS)
def test_bucket_policy_denies_every_request_without_tls(
    template: dict[str, Any], bucket: str
) -> None:
    statements = bucket_policy(template, bucket)

    (deny,) = [s for s in statements if s.get("Sid") == "DenyInsecureTransport"]

    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "s3:*")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert set(map(text, deny["Resource"])) == {f"${{{bucket}.Arn}}", f"${{{bucket}.Arn}}/*"}


@pytest.mark.parametrize("bucket", ALL_BUCKETS)
def test_bucket_aborts_stale_uploads_and_expires_old_versions(
    template: dict[str, Any], bucket: str
) -> None:
    rules = template["Resources"][bucket]["Properties"]["LifecycleConfiguration"]["Rules"]

    kinds = {key for rule in rules if rule["Status"] == "Enabled" for key in rule}

    assert {"AbortIncompleteMultipartUpload", "NoncurrentVersionExpiration"} <= kinds


def test_results_bucket_expires_results_logs_and_tmp(template: dict[str, Any]) -> None:
    rules = template["Resources"]["ResultsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    parameters = template["Parameters"]

    expiry = {
        r["Prefix"]: parameters[r["ExpirationInDays"]["Ref"]]["Default"]
        for r in rules
        if "Prefix" in r
    }

    assert expiry == {"fruits-kedro/0": 365, "fruits-kedro/logs/": 30, "fruits-kedro/tmp/": 7}


@pytest.mark.parametrize(
    ("region", "allowed"),
    [(r, True) for r in EU_EEA_REGIONS]
    + [
        ("us-east-1", False),
        ("eu-west-2", False),
        ("eu-central-2", False),
        ("il-central-1", False),
    ],
)
def test_region_rule_admits_only_eu_eea_regions(
    template: dict[str, Any], region: str, allowed: bool
) -> None:
    assertions = [a for rule in template["Rules"].values() for a in rule["Assertions"]]

    verdicts = [_evaluate_rule(a["Assert"], region) for a in assertions]

    assert all(verdicts) is allowed


def test_region_mapping_and_lint_regions_match_the_rule(template: dict[str, Any]) -> None:
    mapped = set(template["Mappings"]["EuEeaRegions"])
    linted = set(template["Metadata"]["cfn-lint"]["config"]["regions"])

    assert mapped == linted == set(EU_EEA_REGIONS)


def test_trail_validates_logs_and_records_data_events_of_both_buckets(
    template: dict[str, Any],
) -> None:
    trail = template["Resources"]["AuditTrail"]["Properties"]
    audit_policy = {s["Sid"]: s for s in bucket_policy(template, "AuditBucket")}

    (selector,) = trail["EventSelectors"]
    (data,) = selector["DataResources"]
    write = audit_policy["CloudTrailWritesLogs"]

    assert (trail["EnableLogFileValidation"], trail["IsMultiRegionTrail"]) == (True, True)
    assert trail["IncludeGlobalServiceEvents"] is True
    assert trail["S3BucketName"] == {"Ref": "AuditBucket"}
    assert (data["Type"], set(map(text, data["Values"]))) == (
        "AWS::S3::Object",
        {"${DatasetBucket.Arn}/", "${ResultsBucket.Arn}/"},
    )
    assert write["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
    assert text(write["Resource"]).startswith(f"${{AuditBucket.Arn}}/{trail['S3KeyPrefix']}/")
    assert text(write["Condition"]["StringEquals"]["aws:SourceArn"]) == TRAIL_ARN
    assert TRAIL_ARN.endswith("trail/" + text(trail["TrailName"]))


def test_network_has_no_route_to_the_internet(template: dict[str, Any]) -> None:
    types = {r["Type"] for r in template["Resources"].values()}
    subnet = template["Resources"]["PrivateSubnet"]["Properties"]
    association = template["Resources"]["PrivateSubnetRouteTable"]["Properties"]
    endpoint = template["Resources"]["S3GatewayEndpoint"]["Properties"]

    internet = {
        "AWS::EC2::InternetGateway",
        "AWS::EC2::NatGateway",
        "AWS::EC2::Route",
        "AWS::EC2::EIP",
    }

    assert types & internet == set()
    assert subnet["MapPublicIpOnLaunch"] is False
    assert association == {
        "SubnetId": {"Ref": "PrivateSubnet"},
        "RouteTableId": {"Ref": "PrivateRouteTable"},
    }
    assert (endpoint["VpcEndpointType"], endpoint["RouteTableIds"]) == (
        "Gateway",
        [{"Ref": "PrivateRouteTable"}],
    )


# ------------------------------------------------------------------ deployment into moto


@pytest.fixture(scope="module")
def aws(moto_endpoint: str) -> Iterator[None]:
    """Every boto3 client of this module talks to moto with fake credentials (set per module)."""
    reset_moto(moto_endpoint)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_DEFAULT_REGION", REGION)
        patch.setenv("AWS_CONFIG_FILE", os.devnull)
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):
            patch.delenv(name, raising=False)
        yield


@pytest.fixture(scope="module")
def stack(aws: None) -> dict[str, Any]:
    """The template deployed with its default parameters in eu-west-1."""
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    cloudformation.create_stack(
        StackName=STACK, TemplateBody=TEMPLATE.read_text(), Capabilities=["CAPABILITY_IAM"]
    )
    cloudformation.get_waiter("stack_create_complete").wait(
        StackName=STACK, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    return cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]


@pytest.fixture(scope="module")
def outputs(stack: dict[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def test_stack_is_created_with_the_outputs_the_launcher_reads(
    stack: dict[str, Any], outputs: dict[str, str]
) -> None:
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert {
        "DatasetBucketName",
        "ResultsBucketName",
        "KmsKeyArn",
        "EmrServiceRoleName",
        "EmrInstanceProfileName",
        "PrivateSubnetId",
        "EmrPrimarySecurityGroupId",
        "EmrCoreSecurityGroupId",
        "EmrServiceAccessSecurityGroupId",
        "EmrSecurityConfigurationName",
        "EmrLogUri",
        "EmrLogGroupName",
        "AlertTopicArn",
        "OperatorPolicyArn",
    } <= set(outputs)
    assert (outputs["DatasetBucketName"], outputs["ResultsBucketName"]) == (
        "fruits-dataset-bucket",
        "fruits-results-bucket",
    )


def test_moto_creates_every_resource_it_models(
    template: dict[str, Any], stack: dict[str, Any]
) -> None:
    cloudformation = boto3.client("cloudformation", region_name=REGION)

    summaries = cloudformation.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
    created = {s["LogicalResourceId"] for s in summaries if s["LogicalResourceId"]}

    # AlertEmail is empty by default: HasAlertEmail is false and its resources are not created.
    modelled = {
        n
        for n, r in template["Resources"].items()
        if r["Type"] not in MOTO_UNSUPPORTED and r.get("Condition") != "HasAlertEmail"
    }
    assert created == modelled


def test_deployed_buckets_are_encrypted_with_the_stack_key(outputs: dict[str, str]) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    names = [outputs[f"{b}Name"] for b in BUCKETS]

    defaults = [
        s3.get_bucket_encryption(Bucket=n)["ServerSideEncryptionConfiguration"]["Rules"][0][
            "ApplyServerSideEncryptionByDefault"
        ]
        for n in names
    ]

    assert defaults == [{"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": outputs["KmsKeyArn"]}] * 3


def test_deployed_key_rotates_and_serves_only_this_trail(outputs: dict[str, str]) -> None:
    kms = boto3.client("kms", region_name=REGION)
    account = boto3.client("sts", region_name=REGION).get_caller_identity()["Account"]

    rotation = kms.get_key_rotation_status(KeyId=outputs["KmsKeyArn"])["KeyRotationEnabled"]
    policy = _document(
        kms.get_key_policy(KeyId=outputs["KmsKeyArn"], PolicyName="default")["Policy"]
    )
    trail = {s["Sid"]: s for s in policy["Statement"]}["CloudTrailEncryptsItsLogs"]

    assert rotation is True
    assert trail["Condition"]["StringEquals"]["aws:SourceArn"] == (
        f"arn:aws:cloudtrail:{REGION}:{account}:trail/{STACK}-audit"
    )


def test_deployed_instance_profile_grants_the_pipeline_prefixes(outputs: dict[str, str]) -> None:
    iam = boto3.client("iam", region_name=REGION)

    profile = iam.get_instance_profile(InstanceProfileName=outputs["EmrInstanceProfileName"])
    (role,) = profile["InstanceProfile"]["Roles"]
    document = _document(
        iam.get_role_policy(RoleName=role["RoleName"], PolicyName="fruits-kedro-data-access")[
            "PolicyDocument"
        ]
    )
    statements = by_sid(document["Statement"])
    results = "arn:aws:s3:::fruits-results-bucket/fruits-kedro"

    assert _document(role["AssumeRolePolicyDocument"])["Statement"][0]["Principal"] == {
        "Service": "ec2.amazonaws.com"
    }
    assert statements["ReadResultsAndArtifacts"]["Resource"] == f"{results}/*"
    assert statements["WriteDataLayersLogsAndTmp"]["Resource"] == [
        f"{results}/0*",
        f"{results}/logs/*",
        f"{results}/tmp/*",
    ]
    assert statements["ArtifactsAreReadOnly"]["Effect"] == "Deny"
    assert statements["ArtifactsAreReadOnly"]["Resource"] == f"{results}/artifacts/*"


def test_deployed_service_role_may_pass_only_the_node_role(outputs: dict[str, str]) -> None:
    iam = boto3.client("iam", region_name=REGION)
    profile = iam.get_instance_profile(InstanceProfileName=outputs["EmrInstanceProfileName"])
    node_role_arn = profile["InstanceProfile"]["Roles"][0]["Arn"]

    role = iam.get_role(RoleName=outputs["EmrServiceRoleName"])["Role"]
    document = _document(
        iam.get_role_policy(RoleName=role["RoleName"], PolicyName="fruits-kedro-emr-service")[
            "PolicyDocument"
        ]
    )
    passed = [s["Resource"] for s in document["Statement"] if s["Action"] == "iam:PassRole"]

    assert _document(role["AssumeRolePolicyDocument"])["Statement"][0]["Principal"] == {
        "Service": "elasticmapreduce.amazonaws.com"
    }
    assert passed == [node_role_arn]


def test_deployed_subnet_reaches_s3_only_through_the_gateway_endpoint(
    outputs: dict[str, str],
) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc_id = ec2.describe_subnets(SubnetIds=[outputs["PrivateSubnetId"]])["Subnets"][0]["VpcId"]
    in_vpc = [{"Name": "vpc-id", "Values": [vpc_id]}]

    endpoints = ec2.describe_vpc_endpoints(Filters=in_vpc)["VpcEndpoints"]
    (s3_endpoint,) = [e for e in endpoints if e["ServiceName"] == f"com.amazonaws.{REGION}.s3"]
    (table,) = ec2.describe_route_tables(RouteTableIds=s3_endpoint["RouteTableIds"])["RouteTables"]
    gateways = ec2.describe_internet_gateways(
        Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}]
    )["InternetGateways"]
    (bucket_access,) = [
        s
        for s in _document(s3_endpoint["PolicyDocument"])["Statement"]
        if s["Sid"] == "PipelineBuckets"
    ]

    assert s3_endpoint["VpcEndpointType"] == "Gateway"
    assert gateways == []
    assert ec2.describe_nat_gateways(Filters=in_vpc)["NatGateways"] == []
    assert sorted(r.get("GatewayId", "")[:5] for r in table["Routes"]) == ["local", "vpce-"]
    assert set(bucket_access["Resource"]) == {
        f"arn:aws:s3:::{name}{suffix}"
        for name in ("fruits-dataset-bucket", "fruits-results-bucket")
        for suffix in ("", "/*")
    }


def test_deployed_service_access_group_admits_9443_from_the_primary_group(
    outputs: dict[str, str],
) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)

    (group,) = ec2.describe_security_groups(GroupIds=[outputs["EmrServiceAccessSecurityGroupId"]])[
        "SecurityGroups"
    ]
    rules = [
        (p["IpProtocol"], p["FromPort"], p["ToPort"], [g["GroupId"] for g in p["UserIdGroupPairs"]])
        for p in group["IpPermissions"]
    ]

    assert rules == [("tcp", 9443, 9443, [outputs["EmrPrimarySecurityGroupId"]])]
    assert {"Key": "for-use-with-amazon-emr-managed-policies", "Value": "true"} in group["Tags"]


def test_deployed_security_configuration_encrypts_at_rest_and_in_transit(
    outputs: dict[str, str],
) -> None:
    emr = boto3.client("emr", region_name=REGION)
    # moto's EMR takes the region from the Host name only, so a loopback endpoint would read the
    # us-east-1 backend; the header names the region the stack was deployed in.
    emr.meta.events.register("before-send.emr", _emr_host_names_region)

    described = emr.describe_security_configuration(Name=outputs["EmrSecurityConfigurationName"])
    encryption = _document(described["SecurityConfiguration"])["EncryptionConfiguration"]
    at_rest = encryption["AtRestEncryptionConfiguration"]
    tls = encryption["InTransitEncryptionConfiguration"]["TLSCertificateConfiguration"]

    assert (encryption["EnableAtRestEncryption"], encryption["EnableInTransitEncryption"]) == (
        True,
        True,
    )
    assert at_rest["S3EncryptionConfiguration"] == {
        "EncryptionMode": "SSE-KMS",
        "AwsKmsKey": outputs["KmsKeyArn"],
    }
    assert at_rest["LocalDiskEncryptionConfiguration"]["AwsKmsKey"] == outputs["KmsKeyArn"]
    assert tls == {
        "CertificateProviderType": "PEM",
        "S3Object": "s3://fruits-results-bucket/fruits-kedro/artifacts/emr-tls/certs.zip",
    }


def test_deployed_alert_topic_is_encrypted_with_the_stack_key(outputs: dict[str, str]) -> None:
    sns = boto3.client("sns", region_name=REGION)

    attributes = sns.get_topic_attributes(TopicArn=outputs["AlertTopicArn"])["Attributes"]

    assert attributes["KmsMasterKeyId"] == outputs["KmsKeyArn"]


def test_deployed_failure_rule_sends_failed_steps_to_the_alert_topic(
    outputs: dict[str, str],
) -> None:
    events = boto3.client("events", region_name=REGION)
    (rule,) = events.list_rules(NamePrefix=f"{STACK}-emr-failures")["Rules"]

    targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    # moto's TestEventPattern answers nothing: its pattern matcher judges the deployed pattern.
    pattern = EventPattern.load(rule["EventPattern"])
    verdicts = {
        state: pattern.matches_event(
            {
                "source": "aws.emr",
                "detail-type": "EMR Step Status Change",
                "detail": {"state": state, "clusterId": "j-1", "stepId": "s-1"},
            }
        )
        for state in ("FAILED", "COMPLETED")
    }

    assert rule["State"] == "ENABLED"
    assert [t["Arn"] for t in targets] == [outputs["AlertTopicArn"]]
    assert verdicts == {"FAILED": True, "COMPLETED": False}


def test_deployed_log_group_keeps_emr_logs_for_the_retention(outputs: dict[str, str]) -> None:
    logs = boto3.client("logs", region_name=REGION)

    groups = logs.describe_log_groups(logGroupNamePrefix=outputs["EmrLogGroupName"])["logGroups"]

    assert [(g["logGroupName"], g["retentionInDays"]) for g in groups] == [
        (f"/fruits-kedro/{STACK}/emr", 30)
    ]


def test_deployed_operator_policy_requires_mfa_everywhere(outputs: dict[str, str]) -> None:
    iam = boto3.client("iam", region_name=REGION)

    policy = iam.get_policy(PolicyArn=outputs["OperatorPolicyArn"])["Policy"]
    document = _document(
        iam.get_policy_version(
            PolicyArn=outputs["OperatorPolicyArn"], VersionId=policy["DefaultVersionId"]
        )["PolicyVersion"]["Document"]
    )

    assert policy["IsAttachable"] is True
    assert document["Statement"]
    assert {
        s["Condition"]["Bool"]["aws:MultiFactorAuthPresent"] for s in document["Statement"]
    } == {"true"}


def test_stack_outside_eu_eea_is_not_deployed(aws: None) -> None:
    # moto ignores Rules: what stops it here is the EuEeaRegions mapping, which has no us-east-1
    # key (real CloudFormation refuses earlier, on the rule). moto answers with an HTML 500.
    region = "us-east-1"
    once = Config(retries={"total_max_attempts": 1})
    cloudformation = boto3.client("cloudformation", region_name=region, config=once)
    names = {"DatasetBucketName": "fruits-us-dataset", "ResultsBucketName": "fruits-us-results"}

    with pytest.raises((ClientError, ResponseParserError)):
        cloudformation.create_stack(
            StackName=STACK,
            TemplateBody=TEMPLATE.read_text(),
            Capabilities=["CAPABILITY_IAM"],
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in names.items()],
        )

    statuses = [s["StackStatus"] for s in cloudformation.list_stacks()["StackSummaries"]]
    buckets = {b["Name"] for b in boto3.client("s3", region_name=region).list_buckets()["Buckets"]}
    assert "CREATE_COMPLETE" not in statuses
    assert buckets.isdisjoint(names.values())
