"""The flows of ``emr.py`` with a scripted caller: failure paths that moto cannot produce."""

from __future__ import annotations

from typing import Any

import pytest

from fruits_kedro.deploy import aws, emr
from fruits_kedro.deploy.cli import main
from tests.deploy.conftest import CONF_DIR


class ScriptedCaller:
    """Answers from ``responses`` (an exception is raised); records every call."""

    region = "eu-west-1"

    def __init__(self, responses: dict[str, Any]) -> None:
        self.responses = responses
        self.calls: list[str] = []

    def call(self, service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(operation)
        answer = self.responses.get(operation, {})
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_a_failed_termination_says_how_the_cluster_will_stop(settings):
    caller = ScriptedCaller({"TerminateJobFlows": aws.DeployError("AccessDenied")})

    with pytest.raises(aws.DeployError) as caught:
        emr.terminate(caller, settings, "j-1")

    message = str(caught.value)
    assert "AccessDenied" in message and "may still run (it stops after 900 s idle)" in message
    assert "fruits-emr down --cluster-id j-1" in message


def test_failure_details_of_a_step_are_reported():
    failed = {"Step": {"Status": {"State": "FAILED", "FailureDetails": {"Reason": "OOM"}}}}
    caller = ScriptedCaller({"DescribeStep": failed})

    with pytest.raises(emr.StepFailedError, match="ended FAILED: OOM"):
        emr.wait_for_step(caller, "j-1", "s-1", emr.Polling(0, 1))


def test_a_cluster_without_step_is_reported():
    with pytest.raises(aws.DeployError, match="cluster j-1 has no step"):
        emr.latest_step_id(ScriptedCaller({"ListSteps": {"Steps": []}}), "j-1")


def test_a_log_uri_that_is_not_s3_is_reported(settings):
    cluster = {"Cluster": {"LogUri": "hdfs:///logs/", "Status": {"State": "WAITING"}}}
    caller = ScriptedCaller({"DescribeCluster": cluster})

    with pytest.raises(aws.DeployError, match="'hdfs:///logs/' is not an S3 URI"):
        emr.step_logs(caller, settings, "j-1", "s-1")


def test_s3n_log_uris_of_older_clusters_are_read(settings):
    cluster = {"Cluster": {"LogUri": "s3n://logs-bucket/emr/", "Status": {"State": "WAITING"}}}
    caller = ScriptedCaller({"DescribeCluster": cluster, "ListObjectsV2": {}})

    assert emr.step_logs(caller, settings, "j-1", "s-1") == []
    assert caller.calls == ["DescribeCluster", "ListObjectsV2"]


def test_an_unknown_profile_is_a_credentials_error(monkeypatch, capsys):
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")

    assert main(["--conf-dir", str(CONF_DIR), "status", "--cluster-id", "j-1"]) == 2

    err = capsys.readouterr().err
    assert "no-such-profile" in err and "no AWS credentials found" in err
