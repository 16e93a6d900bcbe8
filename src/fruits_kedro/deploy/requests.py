"""Pure builders of the exact requests the launcher sends to AWS (boto3 keyword arguments).

Nothing here calls AWS or reads a file: each function turns the settings into the parameters of
one API operation, so that every request can be validated, printed (``--dry-run``) and tested.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fruits_kedro.deploy.regions import check_region

if TYPE_CHECKING:
    from fruits_kedro.deploy.config import DeploySettings, Fleet
    from fruits_kedro.deploy.stack import StackOutputs

PACKAGE = "fruits_kedro"
ENTRYPOINT = "spark_entrypoint.py"
CONF_ARCHIVE = f"conf-{PACKAGE}.tar.gz"
RUNTIME_REQUIREMENTS = "requirements-runtime.txt"
BOOTSTRAP = "bootstrap.sh"
KEDRO_ENV = "emr"
# Set by the step's own spark-submit options (--name, --master, --deploy-mode), not as --conf.
SUBMIT_OWNED_CONF = frozenset({"spark.app.name", "spark.master", "spark.submit.deployMode"})
ON_FAILURE_TERMINATE = "TERMINATE_CLUSTER"
ON_FAILURE_CONTINUE = "CONTINUE"
SPOT, ON_DEMAND = "SPOT", "ON_DEMAND"
FLEET_TYPES = {"primary": "MASTER", "core": "CORE", "task": "TASK"}
# AmazonEMRServicePolicy_v2 (the stack's service role) acts only on clusters with this tag.
MANAGED_POLICY_TAG = ("for-use-with-amazon-emr-managed-policies", "true")
# The driver's environment (YARN cluster mode): conf/emr/globals.yml reads the buckets from it.
BUCKET_VARIABLES = {"dataset": "FRUITS_DATASET_BUCKET", "results": "FRUITS_RESULTS_BUCKET"}
SSE_KMS = "aws:kms"


class MissingStackError(ValueError):
    """A request needs the stack's outputs and the settings have none."""


def stack_of(settings: DeploySettings) -> StackOutputs:
    """The stack outputs of ``settings``.

    Raises:
        MissingStackError: They were not read.
    """
    if settings.stack is None:
        raise MissingStackError("the stack's outputs are needed: read the stack first")
    return settings.stack


def required_artifacts(version: str) -> tuple[str, ...]:
    """The five files ``dist/`` must hold for a launch."""
    wheel = f"{PACKAGE}-{version}-py3-none-any.whl"
    return (wheel, CONF_ARCHIVE, ENTRYPOINT, RUNTIME_REQUIREMENTS, BOOTSTRAP)


def results_key(settings: DeploySettings, *parts: str) -> str:
    """An object key under the results prefix; a trailing ``/`` of the last part is kept."""
    key = "/".join(part.strip("/") for part in (settings.results_prefix, *parts) if part.strip("/"))
    return key + "/" if parts and parts[-1].endswith("/") else key


def results_uri(settings: DeploySettings, *parts: str) -> str:
    """``s3://<results_bucket>/<results_prefix>/<parts...>``."""
    return f"s3://{settings.results_bucket}/{results_key(settings, *parts)}"


def artifact_uri(settings: DeploySettings, name: str = "") -> str:
    """Where an artifact of ``dist/`` is uploaded (the artifacts prefix when ``name`` is empty)."""
    return results_uri(settings, settings.cluster.artifacts_prefix.strip("/") + "/" + name)


def log_uri(settings: DeploySettings) -> str:
    """The cluster's log URI: the stack's ``EmrLogUri``, else ``s3://<results>/<prefix>/logs/``."""
    if settings.stack is not None:
        return settings.stack.log_uri
    return results_uri(settings, settings.cluster.log_prefix.rstrip("/") + "/")


def spark_submit_args(settings: DeploySettings) -> list[str]:
    """``spark-submit`` arguments: YARN cluster mode, every Spark setting, the stack's buckets
    and key, then the entrypoint."""
    conf = settings.spark_conf
    args = ["spark-submit", "--master", "yarn", "--deploy-mode", "cluster"]
    args += ["--name", str(conf.get("spark.app.name", settings.cluster.name))]
    for key, value in (conf | stack_spark_conf(stack_of(settings))).items():
        if key not in SUBMIT_OWNED_CONF:
            args += ["--conf", f"{key}={_spark_value(value)}"]
    entrypoint, conf_source = (
        artifact_uri(settings, ENTRYPOINT),
        artifact_uri(settings, CONF_ARCHIVE),
    )
    return [*args, entrypoint, "--env", KEDRO_ENV, "--conf-source", conf_source]


def stack_spark_conf(stack: StackOutputs) -> dict[str, str]:
    """The stack's buckets in the driver's environment; S3A writes with the stack's key."""
    env = {
        f"spark.yarn.appMasterEnv.{BUCKET_VARIABLES['dataset']}": stack.dataset_bucket,
        f"spark.yarn.appMasterEnv.{BUCKET_VARIABLES['results']}": stack.results_bucket,
    }
    return env | {
        "spark.hadoop.fs.s3a.encryption.algorithm": "SSE-KMS",
        "spark.hadoop.fs.s3a.encryption.key": stack.kms_key_arn,
    }


def _spark_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def spark_step(settings: DeploySettings, action_on_failure: str) -> dict[str, Any]:
    """The one EMR step: ``spark-submit`` of the Kedro entrypoint through ``command-runner.jar``."""
    return {
        "Name": f"{settings.cluster.name} kedro run --env {KEDRO_ENV}",
        "ActionOnFailure": action_on_failure,
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": spark_submit_args(settings)},
    }


# EMR puts its own Delta Lake jars on Spark's classpath only when asked: the embedding store and
# the table outputs are Delta tables (conf/base/spark.yml sets the session's extensions).
DELTA_ON_EMR = {"Classification": "delta-defaults", "Properties": {"delta.enabled": "true"}}


def run_job_flow_request(
    settings: DeploySettings,
    *,
    keep_alive: bool,
    steps: list[dict[str, Any]],
    notebook: bool = False,
) -> dict[str, Any]:
    """``RunJobFlow`` on the stack: ``keep_alive`` for ``up``; ``False`` with the step for
    ``run``; ``notebook`` adds what an EMR Studio Workspace attaches to."""
    check_region(settings.region, settings.cluster.allowed_regions)
    cluster, stack = settings.cluster, stack_of(settings)
    applications = [*cluster.applications, *(cluster.notebook_applications if notebook else [])]
    tags = cluster.tags | dict([MANAGED_POLICY_TAG])
    return {
        "Name": cluster.name,
        "ReleaseLabel": cluster.release_label,
        "LogUri": log_uri(settings),
        "Applications": [{"Name": name} for name in dict.fromkeys(applications)],
        "Configurations": [DELTA_ON_EMR],
        "Instances": _instances(settings, stack, keep_alive),
        "Steps": steps,
        "BootstrapActions": [_bootstrap_action(settings)],
        "ServiceRole": stack.service_role,
        "JobFlowRole": stack.instance_profile,
        "SecurityConfiguration": stack.security_configuration,
        "ManagedScalingPolicy": _managed_scaling(settings),
        "AutoTerminationPolicy": {"IdleTimeout": cluster.auto_termination_idle_timeout_s},
        "StepConcurrencyLevel": cluster.step_concurrency_level,
        "VisibleToAllUsers": True,
        "EbsRootVolumeSize": cluster.ebs_root_volume_gib,
        "Tags": [{"Key": key, "Value": value} for key, value in tags.items()],
    }


def _instances(settings: DeploySettings, stack: StackOutputs, keep_alive: bool) -> dict[str, Any]:
    fleets = settings.cluster.fleets
    return {
        "InstanceFleets": [
            _fleet(settings, "primary", fleets.primary),
            _fleet(settings, "core", fleets.core),
            _fleet(settings, "task", fleets.task),
        ],
        "Ec2SubnetIds": list(stack.subnet_ids),
        "EmrManagedMasterSecurityGroup": stack.primary_security_group,
        "EmrManagedSlaveSecurityGroup": stack.core_security_group,
        "ServiceAccessSecurityGroup": stack.service_access_security_group,
        "KeepJobFlowAliveWhenNoSteps": keep_alive,
        "TerminationProtected": False,
    }


def _fleet(settings: DeploySettings, role: str, fleet: Fleet) -> dict[str, Any]:
    """One fleet; core and task instance types weigh their vCPU count (units = vCPUs)."""
    target = "TargetSpotCapacity" if fleet.market == SPOT else "TargetOnDemandCapacity"
    return {
        "Name": f"{settings.cluster.name}-{role}",
        "InstanceFleetType": FLEET_TYPES[role],
        target: fleet.target_units,
        "InstanceTypeConfigs": [
            _instance_type(settings, name, weighted=role != "primary")
            for name in fleet.instance_types
        ],
        "LaunchSpecifications": _launch_specifications(settings, fleet),
    }


def _instance_type(settings: DeploySettings, name: str, *, weighted: bool) -> dict[str, Any]:
    volume = {"VolumeType": "gp3", "SizeInGB": settings.cluster.ebs_volume_gib}
    config: dict[str, Any] = {
        "InstanceType": name,
        "EbsConfiguration": {
            "EbsBlockDeviceConfigs": [{"VolumeSpecification": volume, "VolumesPerInstance": 1}],
            "EbsOptimized": True,
        },
    }
    if weighted:
        config["WeightedCapacity"] = settings.cluster.prices[name].vcpu
    return config


def _launch_specifications(settings: DeploySettings, fleet: Fleet) -> dict[str, Any]:
    """On-demand strategy always; for Spot fleets, a timeout that switches to on-demand."""
    cluster = settings.cluster
    specs: dict[str, Any] = {
        "OnDemandSpecification": {"AllocationStrategy": cluster.on_demand_allocation_strategy}
    }
    if fleet.market == SPOT:
        specs["SpotSpecification"] = {
            "TimeoutDurationMinutes": cluster.spot_timeout_minutes,
            "TimeoutAction": "SWITCH_TO_ON_DEMAND",
            "AllocationStrategy": cluster.spot_allocation_strategy,
        }
    return specs


def _managed_scaling(settings: DeploySettings) -> dict[str, Any]:
    limits = settings.cluster.managed_scaling
    compute = {
        "UnitType": limits.unit_type,
        "MinimumCapacityUnits": limits.minimum_units,
        "MaximumCapacityUnits": limits.maximum_units,
        "MaximumCoreCapacityUnits": limits.maximum_core_units,
    }
    if limits.maximum_on_demand_units is not None:
        compute["MaximumOnDemandCapacityUnits"] = limits.maximum_on_demand_units
    return {"ComputeLimits": compute}


def _bootstrap_action(settings: DeploySettings) -> dict[str, Any]:
    """``bootstrap.sh <artifacts prefix>``: installs the wheel and its runtime requirements."""
    return {
        "Name": f"install {PACKAGE}",
        "ScriptBootstrapAction": {
            "Path": artifact_uri(settings, BOOTSTRAP),
            "Args": [artifact_uri(settings)],
        },
    }


def add_job_flow_steps_request(cluster_id: str, step: dict[str, Any]) -> dict[str, Any]:
    """``AddJobFlowSteps``: one step on a running cluster."""
    return {"JobFlowId": cluster_id, "Steps": [step]}


def put_object_request(settings: DeploySettings, name: str, body: bytes) -> dict[str, Any]:
    """``PutObject`` of one ``dist/`` file under the artifacts prefix, with the stack's key."""
    key = results_key(settings, settings.cluster.artifacts_prefix, name)
    encryption = {"ServerSideEncryption": SSE_KMS, "SSEKMSKeyId": stack_of(settings).kms_key_arn}
    return {"Bucket": settings.results_bucket, "Key": key, "Body": body} | encryption


def metrics_request(settings: DeploySettings) -> dict[str, Any]:
    """``GetObject`` of the run's ``run_metrics.json``."""
    key = results_key(settings, settings.cluster.metrics_key)
    return {"Bucket": settings.results_bucket, "Key": key}


def get_object_request(bucket: str, key: str) -> dict[str, Any]:
    """``GetObject`` of any object."""
    return {"Bucket": bucket, "Key": key}


def list_objects_request(bucket: str, prefix: str) -> dict[str, Any]:
    """``ListObjectsV2`` under ``prefix``."""
    return {"Bucket": bucket, "Prefix": prefix}


def describe_cluster_request(cluster_id: str) -> dict[str, Any]:
    """``DescribeCluster``."""
    return {"ClusterId": cluster_id}


def list_steps_request(cluster_id: str) -> dict[str, Any]:
    """``ListSteps`` (most recent first)."""
    return {"ClusterId": cluster_id}


def describe_step_request(cluster_id: str, step_id: str) -> dict[str, Any]:
    """``DescribeStep``."""
    return {"ClusterId": cluster_id, "StepId": step_id}


def terminate_request(cluster_id: str) -> dict[str, Any]:
    """``TerminateJobFlows`` of one cluster."""
    return {"JobFlowIds": [cluster_id]}
