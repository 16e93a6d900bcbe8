"""Fixtures of the EMR launcher's tests: no real AWS, ever.

Every test runs with the AWS environment emptied (no credentials, no profile, no instance
metadata) and ``AWS_ENDPOINT_URL`` on a closed local port. Tests that talk to "AWS" ask for
``aws``: moto's server on 127.0.0.1 (one per session), with fake credentials and both buckets.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.emr.models import emr_backends

from fruits_kedro import __version__
from fruits_kedro.deploy.config import DeploySettings, load_settings
from fruits_kedro.deploy.requests import required_artifacts
from tests.conftest import PROJECT_ROOT, reset_moto

if TYPE_CHECKING:
    from pathlib import Path

CONF_DIR = PROJECT_ROOT / "conf"
REGION = "eu-west-1"
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


def _create_buckets(endpoint: str, settings: DeploySettings) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    for bucket in (settings.dataset_bucket, settings.results_bucket):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})


@pytest.fixture(scope="module")
def deploy_moto(moto_endpoint: str) -> str:
    """moto emptied for this module, with the two buckets."""
    reset_moto(moto_endpoint)
    _create_buckets(moto_endpoint, load_settings(CONF_DIR))
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
    """The project's own ``conf/`` for the EMR launcher."""
    return load_settings(CONF_DIR)


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
