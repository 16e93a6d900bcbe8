"""The pure request builders: every request fits botocore's model and says what we mean."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import pytest
from kedro.config import OmegaConfigLoader

from fruits_kedro.deploy import requests as req
from fruits_kedro.deploy.validate import validate_request
from tests.deploy.conftest import CONF_DIR

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
    assert request["SecurityConfiguration"] == settings.cluster.security_configuration
    assert request["ServiceRole"] == settings.cluster.service_role
    assert request["JobFlowRole"] == settings.cluster.instance_profile
    assert request["Instances"]["Ec2SubnetIds"] == settings.cluster.subnet_ids
    assert request["EbsRootVolumeSize"] == settings.cluster.ebs_root_volume_gib
    assert {"Key": "project", "Value": "fruits-kedro"} in request["Tags"]


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
    expected = len(settings.spark_conf) - sum(
        key in settings.spark_conf for key in req.SUBMIT_OWNED_CONF
    )
    assert len(confs) == expected


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
    }


@pytest.mark.filterwarnings("ignore::UserWarning")  # omegaconf's deprecation notice to Kedro
def test_metrics_are_read_where_the_catalog_writes_them(settings):
    loader = OmegaConfigLoader(str(CONF_DIR), base_env="base", default_run_env="emr", env="emr")
    request = req.metrics_request(settings)

    assert (
        loader["catalog"]["run_metrics"]["filepath"] == f"s3://{request['Bucket']}/{request['Key']}"
    )


@pytest.mark.parametrize("region", ["eu-west-2", "us-east-1", "eu-central-2"])
def test_regions_outside_the_eu_eea_are_refused(settings, region):
    outside = dataclasses.replace(settings, region=region)

    with pytest.raises(req.RegionNotAllowedError, match=rf"{region}.*GDPR.*EU/EEA"):
        req.run_job_flow_request(outside, keep_alive=True, steps=[])


def test_region_error_is_a_value_error():
    with pytest.raises(ValueError, match="'us-east-1' is refused"):
        req.check_region("us-east-1", ["eu-west-1"])


def test_required_artifacts_are_the_five_files():
    assert req.required_artifacts("1.2.3") == (
        "fruits_kedro-1.2.3-py3-none-any.whl",
        "conf-fruits_kedro.tar.gz",
        "spark_entrypoint.py",
        "requirements-runtime.txt",
        "bootstrap.sh",
    )
