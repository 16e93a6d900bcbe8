"""The pure request builders: every request fits botocore's model and says what we mean."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import pytest
from kedro.config import OmegaConfigLoader

from fruits_kedro import settings as project_settings
from fruits_kedro.deploy import regions
from fruits_kedro.deploy import requests as req
from fruits_kedro.deploy.config import load_settings
from fruits_kedro.deploy.validate import validate_request
from tests.deploy.conftest import CONF_DIR, FAKE_OUTPUTS

if TYPE_CHECKING:
    from fruits_kedro.deploy.config import DeploySettings

CLUSTER = "j-1234567890ABC"
STEP = "s-1234567890ABC"


def all_requests(settings: DeploySettings) -> list[tuple[str, str, dict]]:
    run_step = req.spark_step(settings, req.ON_FAILURE_TERMINATE)
    submit_step = req.spark_step(settings, req.ON_FAILURE_CONTINUE)
    return [
        ("emr", "RunJobFlow", req.run_job_flow_request(settings, keep_alive=True, steps=[])),
        (
            "emr",
            "RunJobFlow",
            req.run_job_flow_request(settings, keep_alive=True, steps=[], notebook=True),
        ),
        (
            "emr",
            "RunJobFlow",
            req.run_job_flow_request(settings, keep_alive=False, steps=[run_step]),
        ),
        ("emr", "AddJobFlowSteps", req.add_job_flow_steps_request(CLUSTER, submit_step)),
        ("emr", "DescribeStep", req.describe_step_request(CLUSTER, STEP)),
        ("emr", "ListSteps", req.list_steps_request(CLUSTER)),
        ("emr", "DescribeCluster", req.describe_cluster_request(CLUSTER)),
        ("emr", "TerminateJobFlows", req.terminate_request(CLUSTER)),
        ("s3", "PutObject", req.put_object_request(settings, "bootstrap.sh", b"#!/bin/bash\n")),
        ("s3", "GetObject", req.metrics_request(settings)),
        ("s3", "GetObject", req.get_object_request("bucket", "logs/stderr.gz")),
        ("s3", "ListObjectsV2", req.list_objects_request("bucket", "logs/")),
    ]


def test_every_request_validates_against_botocore(settings):
    for service, operation, params in all_requests(settings):
        validate_request(service, operation, params)


def test_run_cluster_ends_itself_after_its_step_and_up_cluster_stays(settings):
    step = req.spark_step(settings, req.ON_FAILURE_TERMINATE)
    run = req.run_job_flow_request(settings, keep_alive=False, steps=[step])
    up = req.run_job_flow_request(settings, keep_alive=True, steps=[])

    assert run["Instances"]["KeepJobFlowAliveWhenNoSteps"] is False
    assert run["Steps"] == [step] and step["ActionOnFailure"] == "TERMINATE_CLUSTER"
    assert up["Instances"]["KeepJobFlowAliveWhenNoSteps"] is True and up["Steps"] == []
    assert up["AutoTerminationPolicy"] == {"IdleTimeout": 900}


def test_run_job_flow_has_the_cluster_settings(settings):
    request = req.run_job_flow_request(settings, keep_alive=True, steps=[])

    assert request["ReleaseLabel"] == "emr-spark-8.1.0"
    assert request["LogUri"] == "s3://fruits-results-bucket/fruits-kedro/logs/"
    assert {"Name": "Spark"} in request["Applications"]
    assert request["StepConcurrencyLevel"] == 1 and request["VisibleToAllUsers"] is True
    assert request["EbsRootVolumeSize"] == settings.cluster.ebs_root_volume_gib
    assert {"Key": "project", "Value": "fruits-kedro"} in request["Tags"]


def test_run_job_flow_takes_roles_network_and_security_from_the_stack(settings):
    request = req.run_job_flow_request(settings, keep_alive=True, steps=[])
    instances = request["Instances"]

    assert request["ServiceRole"] == FAKE_OUTPUTS["EmrServiceRoleName"]
    assert request["JobFlowRole"] == FAKE_OUTPUTS["EmrInstanceProfileName"]
    assert request["SecurityConfiguration"] == FAKE_OUTPUTS["EmrSecurityConfigurationName"]
    assert request["LogUri"] == FAKE_OUTPUTS["EmrLogUri"]
    assert instances["Ec2SubnetIds"] == [FAKE_OUTPUTS["PrivateSubnetId"]]
    assert instances["EmrManagedMasterSecurityGroup"] == FAKE_OUTPUTS["EmrPrimarySecurityGroupId"]
    assert instances["EmrManagedSlaveSecurityGroup"] == FAKE_OUTPUTS["EmrCoreSecurityGroupId"]
    assert (
        instances["ServiceAccessSecurityGroup"] == FAKE_OUTPUTS["EmrServiceAccessSecurityGroupId"]
    )


def test_the_managed_policy_tag_is_always_there(settings):
    cluster = dataclasses.replace(
        settings.cluster, tags={"for-use-with-amazon-emr-managed-policies": "false"}
    )
    request = req.run_job_flow_request(
        dataclasses.replace(settings, cluster=cluster), keep_alive=True, steps=[]
    )

    assert request["Tags"] == [{"Key": "for-use-with-amazon-emr-managed-policies", "Value": "true"}]


def test_notebook_applications_are_added_once(settings):
    cluster = dataclasses.replace(settings.cluster, applications=["Spark", "Livy"])
    request = req.run_job_flow_request(
        dataclasses.replace(settings, cluster=cluster), keep_alive=True, steps=[], notebook=True
    )

    assert [app["Name"] for app in request["Applications"]] == [
        "Spark",
        "Livy",
        "JupyterEnterpriseGateway",
    ]


def test_requests_on_the_stack_need_its_outputs():
    without_stack = load_settings(CONF_DIR)

    with pytest.raises(req.MissingStackError, match="read the stack first"):
        req.run_job_flow_request(without_stack, keep_alive=True, steps=[])
    with pytest.raises(req.MissingStackError):
        req.spark_step(without_stack, req.ON_FAILURE_CONTINUE)
    assert req.log_uri(without_stack) == "s3://fruits-results-bucket/fruits-kedro/logs/"


def test_bootstrap_action_runs_the_uploaded_script_with_the_artifacts_prefix(settings):
    (action,) = req.run_job_flow_request(settings, keep_alive=True, steps=[])["BootstrapActions"]
    prefix = "s3://fruits-results-bucket/fruits-kedro/artifacts/"

    assert action["ScriptBootstrapAction"] == {"Path": prefix + "bootstrap.sh", "Args": [prefix]}


def test_fleets_primary_on_demand_workers_spot_graviton_with_on_demand_fallback(settings):
    fleets = req.run_job_flow_request(settings, keep_alive=True, steps=[])["Instances"][
        "InstanceFleets"
    ]
    primary, core, task = fleets

    assert primary["InstanceFleetType"] == "MASTER" and primary["TargetOnDemandCapacity"] == 1
    assert "TargetSpotCapacity" not in primary
    for fleet in (core, task):
        types = [config["InstanceType"] for config in fleet["InstanceTypeConfigs"]]
        assert len(types) >= 2 and all(name.split(".")[0].endswith(("g", "gd")) for name in types)
        assert "TargetSpotCapacity" in fleet and "TargetOnDemandCapacity" not in fleet
        spot = fleet["LaunchSpecifications"]["SpotSpecification"]
        assert spot["TimeoutAction"] == "SWITCH_TO_ON_DEMAND"
        assert spot["AllocationStrategy"] == "price-capacity-optimized"
        assert fleet["LaunchSpecifications"]["OnDemandSpecification"] == {
            "AllocationStrategy": "lowest-price"
        }
        assert {config["WeightedCapacity"] for config in fleet["InstanceTypeConfigs"]} == {8}
    assert core["TargetSpotCapacity"] == 16 and task["TargetSpotCapacity"] == 0


def test_managed_scaling_counts_instance_fleet_units(settings):
    policy = req.run_job_flow_request(settings, keep_alive=True, steps=[])["ManagedScalingPolicy"]

    assert policy["ComputeLimits"] == {
        "UnitType": "InstanceFleetUnits",
        "MinimumCapacityUnits": 16,
        "MaximumCapacityUnits": 48,
        "MaximumCoreCapacityUnits": 16,
        "MaximumOnDemandCapacityUnits": 0,
    }


def test_step_runs_spark_submit_in_yarn_cluster_mode_with_every_spark_setting(settings):
    step = req.spark_step(settings, req.ON_FAILURE_CONTINUE)
    args = step["HadoopJarStep"]["Args"]
    artifacts = "s3://fruits-results-bucket/fruits-kedro/artifacts/"

    assert step["HadoopJarStep"]["Jar"] == "command-runner.jar"
    assert step["ActionOnFailure"] == "CONTINUE"
    assert args[:7] == [
        "spark-submit",
        "--master",
        "yarn",
        "--deploy-mode",
        "cluster",
        "--name",
        "fruits-kedro",
    ]
    assert args[-5:] == [
        artifacts + "spark_entrypoint.py",
        "--env",
        "emr",
        "--conf-source",
        artifacts + "conf-fruits_kedro.tar.gz",
    ]
    confs = [args[i + 1] for i, arg in enumerate(args[:-5]) if arg == "--conf"]
    assert "spark.executor.memory=6g" in confs  # from conf/emr/spark.yml
    assert "spark.serializer=org.apache.spark.serializer.KryoSerializer" in confs  # from base
    assert "spark.sql.adaptive.enabled=true" in confs  # YAML true, as Spark writes it
    owned = ("spark.app.name=", "spark.master=", "spark.submit.deployMode=")
    assert not [conf for conf in confs if conf.startswith(owned)]
    stack_confs = [
        "spark.yarn.appMasterEnv.FRUITS_DATASET_BUCKET=fruits-dataset-bucket",
        "spark.yarn.appMasterEnv.FRUITS_RESULTS_BUCKET=fruits-results-bucket",
        "spark.hadoop.fs.s3a.encryption.algorithm=SSE-KMS",
        f"spark.hadoop.fs.s3a.encryption.key={FAKE_OUTPUTS['KmsKeyArn']}",
    ]
    assert confs[-4:] == stack_confs
    expected = len(settings.spark_conf) - sum(
        key in settings.spark_conf for key in req.SUBMIT_OWNED_CONF
    )
    assert len(confs) == expected + len(stack_confs)


def test_spark_master_of_the_conf_is_replaced_by_yarn(settings):
    conf = settings.spark_conf | {"spark.master": "local[*]"}
    args = req.spark_submit_args(dataclasses.replace(settings, spark_conf=conf))

    assert "spark.master=local[*]" not in args and args[1:3] == ["--master", "yarn"]


def test_uploads_go_under_the_artifacts_prefix(settings):
    request = req.put_object_request(settings, "spark_entrypoint.py", b"print()")

    assert request == {
        "Bucket": "fruits-results-bucket",
        "Key": "fruits-kedro/artifacts/spark_entrypoint.py",
        "Body": b"print()",
        "ServerSideEncryption": "aws:kms",
        "SSEKMSKeyId": FAKE_OUTPUTS["KmsKeyArn"],
    }


@pytest.mark.filterwarnings("ignore::UserWarning")  # omegaconf's deprecation notice to Kedro
@pytest.mark.filterwarnings("ignore::UserWarning")  # omegaconf's deprecation notice to Kedro
def test_metrics_are_read_where_the_catalog_writes_them(settings):
    loader = OmegaConfigLoader(str(CONF_DIR), env="emr", **project_settings.CONFIG_LOADER_ARGS)
    request = req.metrics_request(settings)

    assert (
        loader["catalog"]["run_metrics"]["filepath"] == f"s3://{request['Bucket']}/{request['Key']}"
    )


@pytest.mark.filterwarnings("ignore::UserWarning")  # omegaconf's deprecation notice to Kedro
def test_the_step_environment_points_the_kedro_run_at_the_stack_buckets(settings, monkeypatch):
    """The driver's environment set by the step is what conf/emr/globals.yml reads."""
    stack = dataclasses.replace(
        settings.stack, dataset_bucket="acme-images-eu", results_bucket="acme-results-eu"
    )
    args = req.spark_submit_args(dataclasses.replace(settings, stack=stack))
    prefix = "spark.yarn.appMasterEnv."
    for conf in (arg for arg in args if arg.startswith(prefix)):
        name, _, value = conf.removeprefix(prefix).partition("=")
        monkeypatch.setenv(name, value)
    loader_args = project_settings.CONFIG_LOADER_ARGS
    loader = OmegaConfigLoader(str(CONF_DIR), env="emr", **loader_args)

    catalog = loader["catalog"]

    assert catalog["raw_images"]["filepath"] == "s3://acme-images-eu/fruits-360"
    assert catalog["run_metrics"]["filepath"] == (
        "s3://acme-results-eu/fruits-kedro/08_reporting/run_metrics.json"
    )


@pytest.mark.parametrize("region", ["eu-west-2", "us-east-1", "eu-central-2"])
def test_regions_outside_the_eu_eea_are_refused(settings, region):
    outside = dataclasses.replace(settings, region=region)

    with pytest.raises(regions.RegionNotAllowedError, match=rf"{region}.*GDPR.*EU/EEA"):
        req.run_job_flow_request(outside, keep_alive=True, steps=[])


@pytest.mark.parametrize("region", ["eu-west-2", "eu-central-2", "us-east-1"])
def test_a_region_outside_the_eu_eea_is_refused_even_when_allowed(settings, region):
    cluster = dataclasses.replace(settings.cluster, allowed_regions=["eu-west-1", region])
    outside = dataclasses.replace(settings, region=region, cluster=cluster)

    with pytest.raises(regions.RegionNotAllowedError, match=rf"'{region}' is refused"):
        req.run_job_flow_request(outside, keep_alive=True, steps=[])


def test_region_error_is_a_value_error():
    with pytest.raises(ValueError, match="'us-east-1' is refused"):
        regions.check_region("us-east-1", ["eu-west-1"])
    with pytest.raises(ValueError, match="'eu-west-2' is refused"):
        regions.check_region("eu-west-2", ["eu-west-1", "eu-west-2"])


def test_required_artifacts_are_the_five_files():
    assert req.required_artifacts("1.2.3") == (
        "fruits_kedro-1.2.3-py3-none-any.whl",
        "conf-fruits_kedro.tar.gz",
        "spark_entrypoint.py",
        "requirements-runtime.txt",
        "bootstrap.sh",
    )


def test_the_cluster_has_delta_lake_on_its_classpath(settings):
    request = req.run_job_flow_request(settings, keep_alive=False, steps=[])

    assert {"Classification": "delta-defaults", "Properties": {"delta.enabled": "true"}} in (
        request["Configurations"]
    )
