"""The flows of the launcher's commands on EMR and S3, every call through an
:class:`~fruits_kedro.deploy.aws.AwsCaller`."""

from __future__ import annotations

import gzip
import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fruits_kedro import __version__
from fruits_kedro.deploy import requests as req
from fruits_kedro.deploy.aws import (
    STEP_DONE,
    AwsCaller,
    DeployError,
)

if TYPE_CHECKING:
    from pathlib import Path

    from fruits_kedro.deploy.config import DeploySettings

logger = logging.getLogger(__name__)

STEP_FAILED = frozenset({"CANCELLED", "FAILED", "INTERRUPTED"})
LOG_NAMES = ("stderr", "stdout")


class MissingArtifactsError(DeployError):
    """``dist/`` lacks one of the files a launch needs."""


class StepFailedError(DeployError):
    """The EMR step ended in another state than ``COMPLETED``."""


@dataclass(frozen=True)
class Polling:
    """How often, and how long at most, to wait for a step."""

    interval_s: float = 30.0
    timeout_s: float = 3 * 3600.0


def dist_files(dist: Path) -> list[Path]:
    """Every file of ``dist/``, once the five required artifacts are known to be there.

    Raises:
        MissingArtifactsError: One of them is missing.
    """
    missing = [name for name in req.required_artifacts(__version__) if not (dist / name).is_file()]
    if missing:
        raise MissingArtifactsError(
            f"{dist}/ lacks {', '.join(missing)}: build the artifacts first, nothing was launched"
        )
    return sorted(path for path in dist.iterdir() if path.is_file())


def upload_artifacts(caller: AwsCaller, settings: DeploySettings, dist: Path) -> None:
    """Upload every file of ``dist/`` under the artifacts prefix."""
    for path in dist_files(dist):
        caller.call(
            "s3", "PutObject", req.put_object_request(settings, path.name, path.read_bytes())
        )
    logger.info("artifacts of %s uploaded to %s", dist, req.artifact_uri(settings))


def create_cluster(
    caller: AwsCaller,
    settings: DeploySettings,
    *,
    keep_alive: bool,
    steps: list[dict[str, Any]],
    notebook: bool = False,
) -> str:
    """Start a cluster (with the notebook applications if ``notebook``); returns its id."""
    request = req.run_job_flow_request(
        settings, keep_alive=keep_alive, steps=steps, notebook=notebook
    )
    cluster_id: str = caller.call("emr", "RunJobFlow", request)["JobFlowId"]
    logger.info("cluster %s requested in %s", cluster_id, caller.region)
    return cluster_id


def add_step(caller: AwsCaller, settings: DeploySettings, cluster_id: str) -> str:
    """Add the Spark step to a running cluster (a failure leaves the cluster up); its id."""
    step = req.spark_step(settings, req.ON_FAILURE_CONTINUE)
    response = caller.call(
        "emr", "AddJobFlowSteps", req.add_job_flow_steps_request(cluster_id, step)
    )
    step_id: str = response["StepIds"][0]
    return step_id


def latest_step_id(caller: AwsCaller, cluster_id: str) -> str:
    """The id of the cluster's most recent step."""
    steps = caller.call("emr", "ListSteps", req.list_steps_request(cluster_id)).get("Steps", [])
    if not steps:
        raise DeployError(f"cluster {cluster_id} has no step")
    step_id: str = steps[0]["Id"]
    return step_id


def wait_for_step(caller: AwsCaller, cluster_id: str, step_id: str, polling: Polling) -> None:
    """Poll ``DescribeStep`` until the step completes.

    Raises:
        StepFailedError: It failed, was cancelled or interrupted.
        DeployError: It did not end within ``polling.timeout_s``.
    """
    deadline, last = time.monotonic() + polling.timeout_s, ""
    while True:
        step = caller.call("emr", "DescribeStep", req.describe_step_request(cluster_id, step_id))
        state = step["Step"]["Status"]["State"]
        if state != last:
            logger.info("step %s of %s: %s", step_id, cluster_id, state)
            last = state
        if state == STEP_DONE:
            return
        if state in STEP_FAILED:
            raise StepFailedError(_step_failure(cluster_id, step_id, step["Step"]))
        if time.monotonic() > deadline:
            raise DeployError(
                f"step {step_id} of {cluster_id} still {state} after {polling.timeout_s:.0f} s"
            )
        time.sleep(polling.interval_s)


def _step_failure(cluster_id: str, step_id: str, step: dict[str, Any]) -> str:
    status = step["Status"]
    details = status.get("FailureDetails") or {}
    reason = (
        details.get("Reason")
        or status.get("StateChangeReason", {}).get("Message")
        or "no reason given"
    )
    return (
        f"step {step_id} of {cluster_id} ended {status['State']}: {reason}; "
        f"see `fruits-emr logs --cluster-id {cluster_id} --step-id {step_id}`"
    )


def fetch_metrics(caller: AwsCaller, settings: DeploySettings) -> dict[str, Any]:
    """The ``run_metrics.json`` the run wrote to the results bucket."""
    response = caller.call("s3", "GetObject", req.metrics_request(settings))
    metrics: dict[str, Any] = json.loads(response["Body"].read())
    return metrics


def terminate(caller: AwsCaller, settings: DeploySettings, cluster_id: str) -> None:
    """Terminate the cluster; if that fails, say how it will stop anyway."""
    try:
        caller.call("emr", "TerminateJobFlows", req.terminate_request(cluster_id))
    except DeployError as exc:
        idle = settings.cluster.auto_termination_idle_timeout_s
        raise DeployError(
            f"{exc}; cluster {cluster_id} may still run (it stops after {idle} s idle): "
            f"retry `fruits-emr down --cluster-id {cluster_id}`"
        ) from exc
    logger.info("cluster %s: termination requested", cluster_id)


def up(caller: AwsCaller, settings: DeploySettings, dist: Path, *, notebook: bool = False) -> str:
    """Upload the artifacts and start a long-lived cluster (it ends after the idle timeout);
    ``notebook`` adds what an EMR Studio Workspace attaches to."""
    upload_artifacts(caller, settings, dist)
    return create_cluster(caller, settings, keep_alive=True, steps=[], notebook=notebook)


def submit(
    caller: AwsCaller, settings: DeploySettings, dist: Path, cluster_id: str, wait: Polling | None
) -> str:
    """Upload the artifacts and add the step to ``cluster_id``; wait for it if ``wait``."""
    upload_artifacts(caller, settings, dist)
    step_id = add_step(caller, settings, cluster_id)
    if wait is not None:
        wait_for_step(caller, cluster_id, step_id, wait)
    return step_id


def run(
    caller: AwsCaller, settings: DeploySettings, dist: Path, polling: Polling
) -> dict[str, Any]:
    """Upload, start a cluster that runs the step then ends, wait, fetch the metrics.

    The step goes in the ``RunJobFlow`` request itself, so the cluster never waits without it.
    Whatever happens once the cluster exists (failure, timeout, Ctrl-C), it is terminated.
    """
    upload_artifacts(caller, settings, dist)
    step = req.spark_step(settings, req.ON_FAILURE_TERMINATE)
    cluster_id = create_cluster(caller, settings, keep_alive=False, steps=[step])
    try:
        wait_for_step(caller, cluster_id, latest_step_id(caller, cluster_id), polling)
        return fetch_metrics(caller, settings)
    finally:
        terminate(caller, settings, cluster_id)


def status(caller: AwsCaller, cluster_id: str) -> dict[str, Any]:
    """The cluster's state and its steps' states."""
    cluster = caller.call("emr", "DescribeCluster", req.describe_cluster_request(cluster_id))
    steps = caller.call("emr", "ListSteps", req.list_steps_request(cluster_id)).get("Steps", [])
    state = cluster["Cluster"]["Status"]
    return {
        "cluster_id": cluster_id,
        "state": state["State"],
        "reason": state.get("StateChangeReason", {}).get("Message"),
        "steps": [
            {"id": s["Id"], "name": s.get("Name"), "state": s["Status"]["State"]} for s in steps
        ],
    }


def step_logs(
    caller: AwsCaller, settings: DeploySettings, cluster_id: str, step_id: str | None
) -> list[tuple[str, str | None]]:
    """``(uri, text)`` of each log object of the step; text only for stderr and stdout.

    EMR copies the step's logs to ``<LogUri><cluster>/steps/<step>/`` a few minutes after it ends.
    """
    step_id = step_id or latest_step_id(caller, cluster_id)
    cluster = caller.call("emr", "DescribeCluster", req.describe_cluster_request(cluster_id))
    bucket, prefix = _split_s3(cluster["Cluster"].get("LogUri") or req.log_uri(settings))
    prefix = f"{prefix.rstrip('/')}/{cluster_id}/steps/{step_id}/".lstrip("/")
    listing = caller.call("s3", "ListObjectsV2", req.list_objects_request(bucket, prefix))
    return [_log_entry(caller, bucket, item["Key"]) for item in listing.get("Contents", [])]


def _log_entry(caller: AwsCaller, bucket: str, key: str) -> tuple[str, str | None]:
    uri = f"s3://{bucket}/{key}"
    if not key.rsplit("/", 1)[-1].startswith(LOG_NAMES):
        return uri, None
    body = caller.call("s3", "GetObject", req.get_object_request(bucket, key))["Body"].read()
    text = gzip.decompress(body) if key.endswith(".gz") else body
    return uri, text.decode("utf-8", errors="replace")


def _split_s3(uri: str) -> tuple[str, str]:
    """``("bucket", "key/prefix")`` of an ``s3://``, ``s3n://`` or ``s3a://`` URI."""
    scheme, _, rest = uri.partition("://")
    if not scheme.startswith("s3") or not rest:
        raise DeployError(f"log URI {uri!r} is not an S3 URI")
    bucket, _, prefix = rest.partition("/")
    return bucket, prefix
