"""What the template adds around the pipeline: alerts, logs, audit, retention, operator access.

Checked on the parsed template (moto models none of the policies' effects): the policies are
evaluated with ``tests.infra.cfn`` on concrete requests, so a grant that is too wide fails here.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from moto.events.models import EventPattern

from tests.conftest import PROJECT_ROOT
from tests.infra.cfn import (
    allowed,
    as_list,
    bucket_policy,
    by_sid,
    denied,
    role_statements,
    text,
)

RESULTS = "${ResultsBucket.Arn}/fruits-kedro"
DATASET = "${DatasetBucket.Arn}"
MANAGED_POLICY_TAG = {"Key": "for-use-with-amazon-emr-managed-policies", "Value": "true"}
MFA = {"aws:MultiFactorAuthPresent": "true"}
TLS = {"aws:SecureTransport": "true", "s3:TlsVersion": "1.3"}
STACK_KEY = "${DataKey.Arn}"


def _node_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    return role_statements(template["Resources"]["EmrInstanceRole"])


def _operator_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    return template["Resources"]["OperatorPolicy"]["Properties"]["PolicyDocument"]["Statement"]


def _key_statements(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return by_sid(template["Resources"]["DataKey"]["Properties"]["KeyPolicy"]["Statement"])


def _catalog_results() -> list[str]:
    """Paths of the catalog's datasets under ``data_root``, relative to it."""
    catalog = yaml.safe_load((PROJECT_ROOT / "conf" / "base" / "catalog.yml").read_text())
    paths = [entry.get("filepath", "") for entry in catalog.values() if isinstance(entry, dict)]
    prefix = "${globals:data_root}/"
    return [p.removeprefix(prefix) for p in paths if p.startswith(prefix)]


# ------------------------------------------------------------------ alerts


def test_budget_alerts_the_topic_at_50_80_and_100_percent(template: dict[str, Any]) -> None:
    properties = template["Resources"]["MonthlyCostBudget"]["Properties"]
    budget = properties["Budget"]

    notifications = properties["NotificationsWithSubscribers"]
    thresholds = sorted(n["Notification"]["Threshold"] for n in notifications)

    assert (budget["BudgetType"], budget["TimeUnit"]) == ("COST", "MONTHLY")
    assert budget["BudgetLimit"] == {"Amount": {"Ref": "MonthlyBudgetUsd"}, "Unit": "USD"}
    assert thresholds == [50, 80, 100]
    assert {
        (n["Notification"]["NotificationType"], n["Notification"]["ThresholdType"])
        for n in notifications
    } == {("ACTUAL", "PERCENTAGE")}
    assert [n["Subscribers"] for n in notifications] == [
        [{"SubscriptionType": "SNS", "Address": {"Ref": "AlertTopic"}}]
    ] * 3


def test_alert_topic_is_encrypted_and_only_the_budgets_and_the_rule_publish(
    template: dict[str, Any],
) -> None:
    topic = template["Resources"]["AlertTopic"]["Properties"]
    policy = template["Resources"]["AlertTopicPolicy"]["Properties"]
    statements = policy["PolicyDocument"]["Statement"]
    key = _key_statements(template)["AlertSourcesPublishToTheEncryptedTopic"]

    publishers = {
        s["Principal"]["Service"]: s["Condition"] for s in statements if s["Effect"] == "Allow"
    }

    assert text(topic["KmsMasterKeyId"]) == STACK_KEY
    assert policy["Topics"] == [{"Ref": "AlertTopic"}]
    assert set(publishers) == {"budgets.amazonaws.com", "events.amazonaws.com"}
    assert publishers["events.amazonaws.com"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["EmrFailureRule", "Arn"]}}
    }
    assert publishers["budgets.amazonaws.com"]["StringEquals"] == {
        "aws:SourceAccount": {"Ref": "AWS::AccountId"}
    }
    assert set(key["Principal"]["Service"]) == {"budgets.amazonaws.com", "events.amazonaws.com"}
    assert set(key["Action"]) == {"kms:GenerateDataKey*", "kms:Decrypt"}


@pytest.mark.parametrize(
    ("detail_type", "state", "alerts"),
    [
        ("EMR Step Status Change", "FAILED", True),
        ("EMR Step Status Change", "COMPLETED", False),
        ("EMR Step Status Change", "CANCELLED", False),
        ("EMR Cluster State Change", "TERMINATED_WITH_ERRORS", True),
        ("EMR Cluster State Change", "TERMINATED", False),
        ("EMR Cluster State Change", "FAILED", False),
    ],
)
def test_failure_rule_matches_failed_steps_and_clusters_ended_with_errors(
    template: dict[str, Any], detail_type: str, state: str, alerts: bool
) -> None:
    rule = template["Resources"]["EmrFailureRule"]["Properties"]
    event = {"source": "aws.emr", "detail-type": detail_type, "detail": {"state": state}}

    matches = EventPattern(None, rule["EventPattern"]).matches_event(event)

    assert matches is alerts
    assert rule["State"] == "ENABLED"
    assert rule["Targets"] == [{"Id": "alert-topic", "Arn": {"Ref": "AlertTopic"}}]


def test_failure_rule_ignores_other_sources(template: dict[str, Any]) -> None:
    pattern = template["Resources"]["EmrFailureRule"]["Properties"]["EventPattern"]
    event = {
        "source": "aws.ec2",
        "detail-type": "EMR Step Status Change",
        "detail": {"state": "FAILED"},
    }

    assert EventPattern(None, pattern).matches_event(event) is False


def test_alert_email_is_subscribed_only_when_given(template: dict[str, Any]) -> None:
    subscription = template["Resources"]["AlertEmailSubscription"]
    condition = template["Conditions"]["HasAlertEmail"]

    assert subscription["Condition"] == "HasAlertEmail"
    assert condition == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlertEmail"}, ""]}]}
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlertEmail"}
    assert template["Parameters"]["AlertEmail"]["Default"] == ""


# ------------------------------------------------------------------ logs and audit


def test_emr_log_group_is_encrypted_kept_for_the_retention_and_named_in_the_key_policy(
    template: dict[str, Any],
) -> None:
    group = template["Resources"]["EmrLogGroup"]["Properties"]
    parameter = template["Parameters"]["CloudWatchLogRetentionDays"]
    logs_key = _key_statements(template)["CloudWatchLogsEncryptsTheEmrLogGroup"]
    group_arn = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"

    context_arn = text(logs_key["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"])

    assert text(group["KmsKeyId"]) == STACK_KEY
    assert group["RetentionInDays"] == {"Ref": "CloudWatchLogRetentionDays"}
    assert parameter["Default"] in parameter["AllowedValues"]
    assert context_arn == group_arn + text(group["LogGroupName"])
    assert logs_key["Principal"] == {"Service": {"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}}
    assert template["Outputs"]["EmrLogGroupName"]["Value"] == {"Ref": "EmrLogGroup"}


def test_node_role_writes_logs_only_to_the_emr_log_group(template: dict[str, Any]) -> None:
    statements = _node_statements(template)
    group = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${EmrLogGroup}"
    other = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/other"

    log_actions = {a for s in statements for a in as_list(s["Action"]) if a.startswith("logs:")}

    assert log_actions == {"logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"}
    assert allowed(statements, "logs:PutLogEvents", f"{group}:log-stream:j-1/step")
    assert allowed(statements, "logs:DescribeLogStreams", group)
    assert not allowed(statements, "logs:PutLogEvents", f"{other}:log-stream:j-1/step")
    assert not allowed(statements, "logs:CreateLogGroup", group)


def test_trail_is_multi_region_and_delivers_to_the_audit_bucket(template: dict[str, Any]) -> None:
    trail = template["Resources"]["AuditTrail"]["Properties"]

    assert trail["IsMultiRegionTrail"] is True
    assert trail["IncludeGlobalServiceEvents"] is True
    assert trail["S3BucketName"] == {"Ref": "AuditBucket"}
    assert text(trail["KMSKeyId"]) == STACK_KEY


def test_buckets_log_their_access_to_the_access_log_bucket(template: dict[str, Any]) -> None:
    sources = ["DatasetBucket", "ResultsBucket", "AuditBucket"]
    delivery = by_sid(bucket_policy(template, "AccessLogBucket"))[
        "S3ServerAccessLogsOfTheStackBuckets"
    ]
    target = template["Resources"]["AccessLogBucket"]["Properties"]

    configurations = {
        b: template["Resources"][b]["Properties"]["LoggingConfiguration"] for b in sources
    }
    prefixes = {c["LogFilePrefix"] for c in configurations.values()}
    (encryption,) = target["BucketEncryption"]["ServerSideEncryptionConfiguration"]

    assert {text(c["DestinationBucketName"]) for c in configurations.values()} == {
        "${AccessLogBucket}"
    }
    assert len(prefixes) == len(sources)
    assert set(map(text, delivery["Resource"])) == {
        f"${{AccessLogBucket.Arn}}/{p}*" for p in prefixes
    }
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert set(map(text, delivery["Condition"]["ArnLike"]["aws:SourceArn"])) == {
        f"${{{b}.Arn}}" for b in sources
    }
    # S3 delivers server access logs only to an SSE-S3 bucket.
    assert encryption["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}


def test_every_checkov_skip_is_written_in_the_template_with_its_reason(
    template: dict[str, Any],
) -> None:
    skips = [
        (name, skip)
        for name, resource in template["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]

    assert [(name, skip["id"]) for name, skip in skips] == [("AccessLogBucket", "CKV_AWS_18")]
    assert all(re.fullmatch(r"CKV2?_AWS_\d+", s["id"]) and len(s["comment"]) > 40 for _, s in skips)


# ------------------------------------------------------------------ retention


def test_images_and_results_expire_after_the_gdpr_retention(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["DataRetentionDays"]
    dataset = template["Resources"]["DatasetBucket"]["Properties"]["LifecycleConfiguration"]
    results = template["Resources"]["ResultsBucket"]["Properties"]["LifecycleConfiguration"]

    images = by_sid([{**r, "Sid": r["Id"]} for r in dataset["Rules"]])["expire-images"]
    outputs = by_sid([{**r, "Sid": r["Id"]} for r in results["Rules"]])["expire-results"]

    assert "GDPR" in parameter["Description"]
    assert (images["Prefix"], images["ExpirationInDays"]) == (
        "fruits-360/",
        {"Ref": "DataRetentionDays"},
    )
    assert (outputs["Prefix"], outputs["ExpirationInDays"]) == (
        "fruits-kedro/0",
        {"Ref": "DataRetentionDays"},
    )


def test_every_catalog_output_is_in_a_layer_that_expires_and_that_the_nodes_write(
    template: dict[str, Any],
) -> None:
    statements = _node_statements(template)
    (rule,) = [
        r
        for r in template["Resources"]["ResultsBucket"]["Properties"]["LifecycleConfiguration"][
            "Rules"
        ]
        if r["Id"] == "expire-results"
    ]

    paths = _catalog_results()

    assert paths
    assert [p for p in paths if not f"fruits-kedro/{p}".startswith(rule["Prefix"])] == []
    assert [
        p for p in paths if not allowed(statements, "s3:PutObject", f"{RESULTS}/{p}/part-0")
    ] == []


# ------------------------------------------------------------------ node role


@pytest.mark.parametrize(
    "key", ["artifacts/bootstrap.sh", "artifacts/emr-tls/certs.zip", "artifacts/fruits_kedro.whl"]
)
def test_node_role_reads_but_cannot_change_the_artifacts(
    template: dict[str, Any], key: str
) -> None:
    statements = _node_statements(template)
    artifact = f"{RESULTS}/{key}"

    assert allowed(statements, "s3:GetObject", artifact)
    for action in ("s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"):
        assert not allowed(statements, action, artifact)
        assert denied(statements, action, artifact)


@pytest.mark.parametrize(
    "key",
    [
        "04_feature/image_embeddings.parquet/part-0.parquet",
        "08_reporting/run_metrics.json",
        "logs/j-1/steps/s-1/stderr.gz",
        "tmp/spark/x",
    ],
)
def test_node_role_writes_the_data_layers_logs_and_tmp(template: dict[str, Any], key: str) -> None:
    assert allowed(_node_statements(template), "s3:PutObject", f"{RESULTS}/{key}")


def test_node_role_writes_nothing_else(template: dict[str, Any]) -> None:
    statements = _node_statements(template)

    for resource in (
        f"{RESULTS}/other/x",
        "${ResultsBucket.Arn}/outside/x",
        f"{DATASET}/fruits-360/apple/1.jpg",
        f"{DATASET}/models/weights.h5",
    ):
        assert not allowed(statements, "s3:PutObject", resource), resource


# ------------------------------------------------------------------ network tags


@pytest.mark.parametrize(
    "resource",
    [
        "PrivateSubnet",
        "EmrPrimarySecurityGroup",
        "EmrCoreSecurityGroup",
        "EmrServiceAccessSecurityGroup",
    ],
)
def test_subnet_and_emr_security_groups_carry_the_managed_policy_tag(
    template: dict[str, Any], resource: str
) -> None:
    assert MANAGED_POLICY_TAG in template["Resources"][resource]["Properties"]["Tags"]


# ------------------------------------------------------------------ operator policy


def test_operator_policy_requires_mfa_in_every_statement(template: dict[str, Any]) -> None:
    statements = _operator_statements(template)

    assert statements
    assert all(s["Effect"] == "Allow" for s in statements)
    assert [s["Sid"] for s in statements if s["Condition"].get("Bool") != MFA] == []
    assert not allowed(statements, "elasticmapreduce:ListClusters", "*")
    assert allowed(statements, "elasticmapreduce:ListClusters", "*", {**MFA})
    assert template["Outputs"]["OperatorPolicyArn"]["Value"] == {"Ref": "OperatorPolicy"}


def test_operator_launches_and_changes_only_project_clusters(template: dict[str, Any]) -> None:
    statements = _operator_statements(template)
    cluster = "arn:${AWS::Partition}:elasticmapreduce:${AWS::Region}:${AWS::AccountId}:cluster/j-1"
    project = {**MFA, "elasticmapreduce:RequestTag/project": "fruits-kedro"}
    tagged = {**MFA, "elasticmapreduce:ResourceTag/project": "fruits-kedro"}
    other = {**MFA, "elasticmapreduce:ResourceTag/project": "other"}

    assert allowed(statements, "elasticmapreduce:RunJobFlow", "*", project)
    assert not allowed(statements, "elasticmapreduce:RunJobFlow", "*", MFA)
    for action in ("elasticmapreduce:AddJobFlowSteps", "elasticmapreduce:TerminateJobFlows"):
        assert allowed(statements, action, cluster, tagged)
        assert not allowed(statements, action, cluster, other)
    for action in ("DescribeCluster", "ListSteps", "DescribeStep"):
        assert allowed(statements, f"elasticmapreduce:{action}", cluster, MFA)
    for action in ("AddTags", "RemoveTags", "ModifyCluster", "SetTerminationProtection"):
        assert not allowed(statements, f"elasticmapreduce:{action}", cluster, tagged)


def test_operator_passes_only_the_two_emr_roles(template: dict[str, Any]) -> None:
    statements = _operator_statements(template)

    passing = {
        text(s["Resource"]): s["Condition"]["StringLike"]["iam:PassedToService"]
        for s in statements
        if s["Action"] == "iam:PassRole"
    }

    assert passing == {
        "${EmrServiceRole.Arn}": "elasticmapreduce.amazonaws.com*",
        "${EmrInstanceRole.Arn}": "ec2.amazonaws.com*",
    }


def test_operator_reads_this_stack_uploads_artifacts_and_data_and_uses_the_key(
    template: dict[str, Any],
) -> None:
    statements = _operator_statements(template)
    s3_kms = {**MFA, "kms:ViaService": "s3.${AWS::Region}.amazonaws.com"}

    assert allowed(statements, "cloudformation:DescribeStacks", "${AWS::StackId}", MFA)
    assert not allowed(
        statements,
        "cloudformation:DescribeStacks",
        "arn:aws:cloudformation:eu-west-1:1:stack/x/1",
        MFA,
    )
    for key in (
        f"{RESULTS}/artifacts/bootstrap.sh",
        f"{DATASET}/fruits-360/a/1.jpg",
        f"{DATASET}/models/w.h5",
    ):
        assert allowed(statements, "s3:PutObject", key, MFA), key
    for key in (f"{RESULTS}/04_feature/x", f"{RESULTS}/logs/x", f"{DATASET}/other/x"):
        assert not allowed(statements, "s3:PutObject", key, MFA), key
    assert allowed(statements, "s3:GetObject", f"{RESULTS}/08_reporting/run_metrics.json", MFA)
    assert allowed(statements, "kms:GenerateDataKey", STACK_KEY, s3_kms)
    assert not allowed(statements, "kms:GenerateDataKey", STACK_KEY, MFA)


# ------------------------------------------------------------------ upload encryption


@pytest.mark.parametrize("bucket", ["DatasetBucket", "ResultsBucket"])
@pytest.mark.parametrize(
    ("headers", "refused"),
    [
        ({}, False),  # default encryption applies the stack key
        (
            {"s3:x-amz-server-side-encryption": "aws:kms"}
            | {"s3:x-amz-server-side-encryption-aws-kms-key-id": STACK_KEY},
            False,
        ),
        ({"s3:x-amz-server-side-encryption": "AES256"}, True),
        (
            {
                "s3:x-amz-server-side-encryption": "aws:kms:dsse",
                "s3:x-amz-server-side-encryption-aws-kms-key-id": STACK_KEY,
            },
            True,
        ),
        ({"s3:x-amz-server-side-encryption": "aws:kms"}, True),  # the AWS managed key aws/s3
        (
            {
                "s3:x-amz-server-side-encryption": "aws:kms",
                "s3:x-amz-server-side-encryption-aws-kms-key-id": "arn:aws:kms:eu-west-1:1:key/other",
            },
            True,
        ),
        ({"s3:x-amz-server-side-encryption-customer-algorithm": "AES256"}, True),
    ],
)
def test_uploads_not_encrypted_with_the_stack_key_are_refused(
    template: dict[str, Any], bucket: str, headers: dict[str, str], refused: bool
) -> None:
    statements = bucket_policy(template, bucket)

    verdict = denied(statements, "s3:PutObject", f"${{{bucket}.Arn}}/fruits-kedro/x", TLS | headers)

    assert verdict is refused
