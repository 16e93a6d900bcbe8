"""The launcher against moto's server: the whole ``run``, and ``down`` reached on every failure."""

from __future__ import annotations

import gzip
import json

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.emr.models import emr_backends

from fruits_kedro.deploy import emr
from fruits_kedro.deploy import requests as req
from fruits_kedro.deploy.cli import main
from tests.deploy.conftest import CONF_DIR, REGION, FakeEmrWorker, emr_clusters, s3_client

CONF = ["--conf-dir", str(CONF_DIR)]
FAST_POLLING = ["--poll-seconds", "0.01", "--timeout-minutes", "0.2"]
METRICS = {"images_read": 90, "images_embedded": 88, "wall_time_s": 42.0}


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
    caller = emr.BotoCaller(settings.region)

    caller.call("emr", "ListClusters", {})

    assert caller._clients["emr"].meta.region_name == "eu-west-1"


def test_an_aws_error_is_one_line_and_exit_1(aws, capsys):
    assert main([*CONF, "status", "--cluster-id", "j-DOESNOTEXIST"]) == 1

    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert err[0].startswith("fruits-emr: error: emr DescribeCluster failed in eu-west-1:")
