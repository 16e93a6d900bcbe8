"""Fixtures of the EMR launcher's tests: no real AWS, ever.

Every test runs with the AWS environment emptied (no credentials, no profile, no instance
metadata) and ``AWS_ENDPOINT_URL`` on a closed local port. Tests that talk to "AWS" ask for
``aws``: moto's server on 127.0.0.1 (one per session), with fake credentials and the stack of
``infra/fruits-infra.yaml`` deployed into moto's CloudFormation (its buckets, roles, network...).
Offline tests get ``settings`` with made-up stack outputs.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import warnings
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.emr.models import emr_backends

from fruits_kedro import __version__
from fruits_kedro.deploy.aws import BotoCaller
from fruits_kedro.deploy.config import DeploySettings, load_settings, with_stack
from fruits_kedro.deploy.requests import required_artifacts
from fruits_kedro.deploy.stack import parse_outputs, read_stack
from tests.conftest import PROJECT_ROOT, reset_moto

if TYPE_CHECKING:
    from pathlib import Path

CONF_DIR = PROJECT_ROOT / "conf"
TEMPLATE = PROJECT_ROOT / "infra" / "fruits-infra.yaml"
REGION = "eu-west-1"
STACK = "fruits-infra"  # `stack` of conf/emr/cluster.yml
# Made-up outputs of the stack for offline tests; its buckets are those of conf/emr/globals.yml.
FAKE_OUTPUTS = {
    "DatasetBucketName": "fruits-dataset-bucket",
    "ResultsBucketName": "fruits-results-bucket",
    "AuditBucketName": "fruits-infra-auditbucket-1a2b3c4d5e6f",
    "KmsKeyArn": "arn:aws:kms:eu-west-1:123456789012:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
    "EmrServiceRoleName": "fruits-infra-EmrServiceRole-1A2B3C4D5E6F",
    "EmrInstanceProfileName": "fruits-infra-EmrInstanceProfile-1A2B3C4D5E6F",
    "PrivateSubnetId": "subnet-0a1b2c3d4e5f60001",
    "EmrPrimarySecurityGroupId": "sg-0a1b2c3d4e5f60001",
    "EmrCoreSecurityGroupId": "sg-0a1b2c3d4e5f60002",
    "EmrServiceAccessSecurityGroupId": "sg-0a1b2c3d4e5f60003",
    "EmrSecurityConfigurationName": "fruits-infra-security",
    "EmrLogUri": "s3://fruits-results-bucket/fruits-kedro/logs/",
}
CLOSED_ENDPOINT = "http://127.0.0.1:9"  # the discard port: nothing listens, nothing leaves
AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "MOTO_ACCOUNT_ID",
)


@pytest.fixture(autouse=True)
def no_real_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials anywhere, and every endpoint on a closed local port."""
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", CLOSED_ENDPOINT)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


def describe_stacks_answer(outputs: dict[str, str], name: str = STACK) -> dict[str, Any]:
    """What ``DescribeStacks`` (and ``aws cloudformation describe-stacks``) answers."""
    items = [{"OutputKey": key, "OutputValue": value} for key, value in outputs.items()]
    return {"Stacks": [{"StackName": name, "StackStatus": "CREATE_COMPLETE", "Outputs": items}]}


def moto_client(service: str, endpoint: str) -> Any:
    """A client of moto's server with fake credentials, whatever the environment says."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def deploy_template(
    endpoint: str,
    name: str = STACK,
    parameters: dict[str, str] | None = None,
    body: str | None = None,
) -> None:
    """``infra/fruits-infra.yaml`` (or ``body``) created as stack ``name`` in moto.

    moto skips the resource types it does not implement, with a warning each (silenced here);
    test_stack.py checks that everything behind the launcher's outputs was really created.
    """
    moto_log = logging.getLogger("moto")
    level = moto_log.level
    moto_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Tried to parse .* not supported by moto")
            moto_client("cloudformation", endpoint).create_stack(
                StackName=name,
                TemplateBody=body or TEMPLATE.read_text(),
                Parameters=[
                    {"ParameterKey": key, "ParameterValue": value}
                    for key, value in (parameters or {}).items()
                ],
                Capabilities=["CAPABILITY_NAMED_IAM"],
            )
    finally:
        moto_log.setLevel(level)


@pytest.fixture(scope="module")
def deploy_moto(moto_endpoint: str) -> str:
    """moto emptied for this module, with the stack of ``infra/fruits-infra.yaml``."""
    reset_moto(moto_endpoint)
    deploy_template(moto_endpoint)
    return moto_endpoint


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, deploy_moto: str) -> str:
    """Fake credentials and ``AWS_ENDPOINT_URL`` on moto: boto3 goes there by itself."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", deploy_moto)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return deploy_moto


@pytest.fixture
def settings() -> DeploySettings:
    """The project's own ``conf/`` for the EMR launcher, on a stack with made-up outputs."""
    outputs = parse_outputs(STACK, describe_stacks_answer(FAKE_OUTPUTS), "test stack")
    return with_stack(load_settings(CONF_DIR), outputs)


@pytest.fixture
def stack_settings(aws: str) -> DeploySettings:
    """The project's own ``conf/`` on the stack deployed in moto, read as the launcher reads it."""
    return with_stack(load_settings(CONF_DIR), read_stack(BotoCaller(REGION), STACK))


@pytest.fixture
def stack_file(tmp_path: Path) -> Path:
    """A saved ``aws cloudformation describe-stacks`` answer with the made-up outputs."""
    path = tmp_path / "describe-stacks.json"
    path.write_text(json.dumps(describe_stacks_answer(FAKE_OUTPUTS)))
    return path


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    """A ``dist/`` with the five required artifacts (tiny made-up content) and one extra file."""
    folder = tmp_path / "dist"
    folder.mkdir()
    for name in required_artifacts(__version__):
        folder.joinpath(name).write_bytes(f"test artifact {name}\n".encode())
    folder.joinpath("NOTICE.txt").write_text("extra files are uploaded too\n")
    return folder


def emr_clusters() -> dict[str, Any]:
    """Every EMR cluster moto holds (its server runs in this process), in any region.

    moto's EMR takes the region from the host name only (``elasticmapreduce.<region>.amazonaws
    .com``): behind ``AWS_ENDPOINT_URL`` it files every cluster under us-east-1, whatever region
    the request was signed for.
    """
    backends = list(emr_backends[DEFAULT_ACCOUNT_ID].values())  # the regions in use only
    return {key: cluster for backend in backends for key, cluster in backend.clusters.items()}


def s3_client() -> Any:
    """A client of whatever ``AWS_ENDPOINT_URL`` points to (moto, under ``aws``)."""
    return boto3.client("s3", region_name=REGION)


class FakeEmrWorker:
    """Plays the part of EMR that moto lacks: it ends the steps started while it runs.

    moto's EMR has no state machine for steps (no ``moto_api`` transition either): a step stays
    ``RUNNING`` forever. This thread ends each new running step in ``outcome`` and, before
    completing it, writes ``metrics`` where the real job writes ``run_metrics.json``. It never
    terminates a cluster, so a ``TERMINATED`` cluster proves the launcher's ``down``.
    """

    def __init__(self, outcome: str, metrics_key: tuple[str, str], metrics: bytes | None) -> None:
        self.outcome, self.metrics_key, self.metrics = outcome, metrics_key, metrics
        self.ended: list[tuple[str, str]] = []
        self._known = {(key, step.id) for key, c in emr_clusters().items() for step in c.steps}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> FakeEmrWorker:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(0.01):
            for cluster_id, cluster in emr_clusters().items():
                self._end_new_running_steps(cluster_id, cluster)

    def _end_new_running_steps(self, cluster_id: str, cluster: Any) -> None:
        for step in cluster.steps:
            seen = self._known.union(self.ended)
            if step.state == "RUNNING" and (cluster_id, step.id) not in seen:
                if self.metrics is not None and self.outcome == "COMPLETED":
                    bucket, key = self.metrics_key
                    s3_client().put_object(Bucket=bucket, Key=key, Body=self.metrics)
                step.last_state_change_reason = f"simulated {self.outcome}"
                step.end_date_time = step.start_date_time
                step.state = self.outcome
                self.ended.append((cluster_id, step.id))


def wait_until(predicate: Any, timeout_s: float = 5.0) -> None:
    """Poll ``predicate`` until true, or fail the test."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail("condition not met in time")
        time.sleep(0.01)
