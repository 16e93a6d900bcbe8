"""The launcher against moto's server, on the stack of ``infra/fruits-infra.yaml`` deployed in
moto: the whole ``run``, ``down`` reached on every failure, the stack's outputs in the cluster."""

from __future__ import annotations

import gzip
import json

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.emr.models import emr_backends

from fruits_kedro.deploy import emr
from fruits_kedro.deploy import requests as req
from fruits_kedro.deploy.aws import BotoCaller
from fruits_kedro.deploy.cli import main
from tests.deploy.conftest import (
    CONF_DIR,
    REGION,
    STACK,
    FakeEmrWorker,
    deploy_template,
    emr_clusters,
    moto_client,
    s3_client,
)

# moto warns of each resource type of the template it skips (see test_stack.py).
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")
CONF = ["--conf-dir", str(CONF_DIR)]
FAST_POLLING = ["--poll-seconds", "0.01", "--timeout-minutes", "0.2"]
METRICS = {"images_read": 90, "images_embedded": 88, "wall_time_s": 42.0}


@pytest.fixture
def settings(stack_settings):
    """Here the settings are those of the stack deployed in moto, as the launcher reads them."""
    return stack_settings


def emr_client():
    return boto3.client("emr", region_name=REGION)


def metrics_location(settings) -> tuple[str, str]:
    request = req.metrics_request(settings)
    return request["Bucket"], request["Key"]


def cluster_state(cluster_id: str) -> str:
    return emr_client().describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"]


def new_clusters(before: set[str]) -> list[str]:
    return sorted(set(emr_clusters()) - before)


def run_argv(dist, *extra: str) -> list[str]:
    # A short timeout: a test never hangs, even if the fake worker misses the step.
    return [*CONF, "run", "--dist", str(dist), *FAST_POLLING, *extra]


def test_run_uploads_runs_prints_the_metrics_and_terminates(aws, settings, dist, capsys):
    s3_client().delete_object(Bucket=settings.results_bucket, Key=metrics_location(settings)[1])
    worker = FakeEmrWorker("COMPLETED", metrics_location(settings), json.dumps(METRICS).encode())

    with worker:
        code = main(run_argv(dist))

    assert code == 0
    assert json.loads(capsys.readouterr().out) == METRICS
    ((cluster_id, step_id),) = worker.ended
    assert cluster_state(cluster_id) == "TERMINATED"
    step = emr_client().describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]
    assert step["Config"]["Jar"] == "command-runner.jar"
    assert step["Config"]["Args"] == req.spark_submit_args(settings)
    listing = s3_client().list_objects_v2(
        Bucket=settings.results_bucket, Prefix="fruits-kedro/artifacts/"
    )
    uploaded = {item["Key"].rsplit("/", 1)[-1] for item in listing["Contents"]}
    assert uploaded == {path.name for path in dist.iterdir()}


def test_a_failing_step_still_terminates_the_cluster(aws, settings, dist, capsys):
    with FakeEmrWorker("FAILED", metrics_location(settings), None) as worker:
        code = main(run_argv(dist))

    assert code == 1
    ((cluster_id, step_id),) = worker.ended
    assert cluster_state(cluster_id) == "TERMINATED"
    err = capsys.readouterr().err
    assert f"step {step_id} of {cluster_id} ended FAILED" in err
    assert f"fruits-emr logs --cluster-id {cluster_id} --step-id {step_id}" in err


def test_missing_metrics_after_a_completed_step_still_terminate(aws, settings, dist, capsys):
    s3_client().delete_object(Bucket=settings.results_bucket, Key=metrics_location(settings)[1])

    with FakeEmrWorker("COMPLETED", metrics_location(settings), None) as worker:
        code = main(run_argv(dist))

    assert code == 1
    ((cluster_id, _),) = worker.ended
    assert cluster_state(cluster_id) == "TERMINATED"
    assert "s3 GetObject failed" in capsys.readouterr().err


def test_an_interrupt_while_waiting_still_terminates_the_cluster(aws, dist, monkeypatch):
    before = set(emr_clusters())

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(emr, "wait_for_step", interrupted)

    with pytest.raises(KeyboardInterrupt):
        main(run_argv(dist))

    (cluster_id,) = new_clusters(before)
    assert cluster_state(cluster_id) == "TERMINATED"


def test_a_step_that_never_ends_times_out_and_terminates(aws, dist, capsys):
    before = set(emr_clusters())

    code = main(run_argv(dist, "--timeout-minutes", "0.001"))

    assert code == 1
    (cluster_id,) = new_clusters(before)
    assert cluster_state(cluster_id) == "TERMINATED"
    assert "still RUNNING" in capsys.readouterr().err


def test_a_refused_region_creates_nothing(aws, dist, capsys):
    before = set(emr_clusters())

    assert main([*CONF, "--region", "us-east-1", *run_argv(dist)[2:]]) == 2

    assert new_clusters(before) == []
    assert "GDPR" in capsys.readouterr().err


def test_up_submit_status_logs_down(aws, settings, dist, capsys):
    assert main([*CONF, "up", "--dist", str(dist)]) == 0
    cluster_id = json.loads(capsys.readouterr().out)["cluster_id"]
    assert cluster_state(cluster_id) == "WAITING"

    with FakeEmrWorker("COMPLETED", metrics_location(settings), None):
        argv = [*CONF, "submit", "--cluster-id", cluster_id, "--dist", str(dist), "--wait"]
        assert main([*argv, *FAST_POLLING]) == 0
    step_id = json.loads(capsys.readouterr().out)["step_id"]
    step = emr_client().describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]
    assert step["ActionOnFailure"] == "CONTINUE" and step["Status"]["State"] == "COMPLETED"

    assert main([*CONF, "status", "--cluster-id", cluster_id]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["steps"] == [{"id": step_id, "name": step["Name"], "state": "COMPLETED"}]

    log_prefix = f"fruits-kedro/logs/{cluster_id}/steps/{step_id}/"
    s3 = s3_client()
    s3.put_object(
        Bucket=settings.results_bucket,
        Key=log_prefix + "stderr.gz",
        Body=gzip.compress(b"spark said no\n"),
    )
    s3.put_object(
        Bucket=settings.results_bucket, Key=log_prefix + "controller.gz", Body=gzip.compress(b"x")
    )
    assert main([*CONF, "logs", "--cluster-id", cluster_id]) == 0
    out = capsys.readouterr().out
    assert f"== s3://{settings.results_bucket}/{log_prefix}stderr.gz\nspark said no" in out
    assert f"{log_prefix}controller.gz" in out and "\nx" not in out

    assert main([*CONF, "down", "--cluster-id", cluster_id]) == 0
    assert cluster_state(cluster_id) == "TERMINATED"


def test_the_configured_instance_types_exist_for_the_release_in_the_region(aws, settings):
    """moto ships AWS's lists of release labels per region and instance types per release."""
    client = emr_client()
    cluster = settings.cluster

    # Asked of moto's eu-west-1 backend directly: its server answers EMR for us-east-1.
    backend = emr_backends[DEFAULT_ACCOUNT_ID][settings.region]
    assert cluster.release_label in backend.list_release_labels()
    supported = {
        item["Type"]: item
        for item in client.list_supported_instance_types(ReleaseLabel=cluster.release_label)[
            "SupportedInstanceTypes"
        ]
    }
    fleets = cluster.fleets
    for name in {
        *fleets.primary.instance_types,
        *fleets.core.instance_types,
        *fleets.task.instance_types,
    }:
        assert supported[name]["Architecture"] == "AARCH64", name  # Graviton
        assert supported[name]["VCPU"] == cluster.prices[name].vcpu, name


def test_boto_caller_signs_for_the_configured_region(aws, settings):
    caller = BotoCaller(settings.region)

    caller.call("emr", "ListClusters", {})

    assert caller._clients["emr"].meta.region_name == "eu-west-1"


def test_an_aws_error_is_one_line_and_exit_1(aws, capsys):
    assert main([*CONF, "status", "--cluster-id", "j-DOESNOTEXIST"]) == 1

    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert err[0].startswith("fruits-emr: error: emr DescribeCluster failed in eu-west-1:")


def test_a_real_run_job_flow_carries_the_stack_outputs(aws, settings, dist, capsys):
    outputs = {
        item["OutputKey"]: item["OutputValue"]
        for item in moto_client("cloudformation", aws).describe_stacks(StackName=STACK)["Stacks"][
            0
        ]["Outputs"]
    }

    assert main([*CONF, "up", "--notebook", "--dist", str(dist), "--stack", STACK]) == 0

    cluster_id = json.loads(capsys.readouterr().out)["cluster_id"]
    cluster = emr_client().describe_cluster(ClusterId=cluster_id)["Cluster"]
    attributes = cluster["Ec2InstanceAttributes"]
    # moto keeps no Ec2SubnetIds (instance fleets): the dry run below checks the subnet.
    assert attributes["EmrManagedMasterSecurityGroup"] == outputs["EmrPrimarySecurityGroupId"]
    assert attributes["EmrManagedSlaveSecurityGroup"] == outputs["EmrCoreSecurityGroupId"]
    assert attributes["ServiceAccessSecurityGroup"] == outputs["EmrServiceAccessSecurityGroupId"]
    assert attributes["IamInstanceProfile"] == outputs["EmrInstanceProfileName"]
    assert cluster["ServiceRole"] == outputs["EmrServiceRoleName"]
    assert cluster["SecurityConfiguration"] == outputs["EmrSecurityConfigurationName"]
    assert cluster["LogUri"] == outputs["EmrLogUri"]
    assert {"Key": "for-use-with-amazon-emr-managed-policies", "Value": "true"} in cluster["Tags"]
    names = {app["Name"] for app in cluster["Applications"]}
    assert {"Spark", "JupyterEnterpriseGateway", "Livy"} <= names
    # The security groups are the stack's, in its private subnet's VPC.
    ec2 = moto_client("ec2", aws)
    (subnet,) = ec2.describe_subnets(SubnetIds=[outputs["PrivateSubnetId"]])["Subnets"]
    groups = ec2.describe_security_groups(
        GroupIds=[
            attributes["EmrManagedMasterSecurityGroup"],
            attributes["EmrManagedSlaveSecurityGroup"],
            attributes["ServiceAccessSecurityGroup"],
        ]
    )["SecurityGroups"]
    assert {group["VpcId"] for group in groups} == {subnet["VpcId"]}
    head = s3_client().head_object(
        Bucket=outputs["ResultsBucketName"], Key="fruits-kedro/artifacts/bootstrap.sh"
    )
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == outputs["KmsKeyArn"]
    assert main([*CONF, "down", "--cluster-id", cluster_id]) == 0


def test_dry_run_reads_the_named_stack_and_prints_its_outputs(aws, dist, capsys):
    deploy_template(
        aws,
        "fruits-infra-b",
        {"DatasetBucketName": "fruits-b-images", "ResultsBucketName": "fruits-b-results"},
    )
    before = set(emr_clusters())

    assert main([*CONF, "run", "--stack", "fruits-infra-b", "--dry-run", "--dist", str(dist)]) == 0

    assert set(emr_clusters()) == before  # nothing but the stack was read
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    request = next(line["params"] for line in lines if line["operation"] == "RunJobFlow")
    (stack,) = moto_client("cloudformation", aws).describe_stacks(StackName="fruits-infra-b")[
        "Stacks"
    ]
    outputs = {item["OutputKey"]: item["OutputValue"] for item in stack["Outputs"]}
    assert request["LogUri"] == "s3://fruits-b-results/fruits-kedro/logs/"
    assert request["Instances"]["Ec2SubnetIds"] == [outputs["PrivateSubnetId"]]
    assert (
        request["Instances"]["EmrManagedMasterSecurityGroup"]
        == outputs["EmrPrimarySecurityGroupId"]
    )
    assert request["ServiceRole"] == outputs["EmrServiceRoleName"]
    args = request["Steps"][0]["HadoopJarStep"]["Args"]
    assert "spark.yarn.appMasterEnv.FRUITS_RESULTS_BUCKET=fruits-b-results" in args
    puts = {line["params"]["Bucket"] for line in lines if line["operation"] == "PutObject"}
    assert puts == {"fruits-b-results"}


def test_a_stack_that_does_not_exist_launches_nothing(aws, dist, capsys):
    before = set(emr_clusters())

    assert main([*CONF, "run", "--stack", "no-such-stack", "--dist", str(dist)]) == 2

    assert set(emr_clusters()) == before
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(
        "fruits-emr: error: stack 'no-such-stack': cloudformation DescribeStacks"
    )
