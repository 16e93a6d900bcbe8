"""The AWS calls of the launcher, each through an :class:`AwsCaller`.

:class:`BotoCaller` validates the request against the service model and sends it with boto3
(which honours ``AWS_ENDPOINT_URL``, ``AWS_PROFILE``, ...); :class:`DryRunCaller` validates it and
writes it as one JSON line instead, with no credentials and no network.
"""

from __future__ import annotations

import copy
import io
import json
from typing import TYPE_CHECKING, Any, Protocol

import boto3
from botocore import xform_name
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ProfileNotFound

from fruits_kedro.deploy.validate import validate_request

if TYPE_CHECKING:
    from typing import TextIO

STEP_DONE = "COMPLETED"
DRY_RUN_CLUSTER_ID = "j-DRYRUN"
DRY_RUN_STEP_ID = "s-DRYRUN"
_DRY_RUN_RESPONSES: dict[str, dict[str, Any]] = {
    "RunJobFlow": {"JobFlowId": DRY_RUN_CLUSTER_ID},
    "AddJobFlowSteps": {"StepIds": [DRY_RUN_STEP_ID]},
    "ListSteps": {"Steps": [{"Id": DRY_RUN_STEP_ID, "Status": {"State": "PENDING"}}]},
    "DescribeStep": {"Step": {"Id": DRY_RUN_STEP_ID, "Status": {"State": STEP_DONE}}},
    "DescribeCluster": {"Cluster": {"Id": DRY_RUN_CLUSTER_ID, "Status": {"State": "WAITING"}}},
    "ListObjectsV2": {"Contents": []},
}


class DeployError(RuntimeError):
    """A command could not be completed on AWS."""


class MissingCredentialsError(DeployError):
    """No AWS credentials were found."""


class AwsCaller(Protocol):
    """Sends (or prints) one request; returns the response as boto3 does."""

    region: str

    def call(self, service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Run ``operation`` (``"RunJobFlow"``) of ``service`` (``"emr"``) with ``params``."""
        ...


NO_CREDENTIALS = (
    "no AWS credentials found (environment, AWS_PROFILE, ~/.aws, SSO or instance role): "
    "log in first (e.g. `aws sso login --profile <profile>` and export AWS_PROFILE), "
    "or use --dry-run to print the requests without calling AWS"
)


class BotoCaller:
    """Validated calls through boto3 clients of one region.

    Raises:
        MissingCredentialsError: On creation, when no credentials can be found.
    """

    def __init__(self, region: str, session: boto3.session.Session | None = None) -> None:
        try:
            self._session = session or boto3.session.Session(region_name=region)
            credentials = self._session.get_credentials()
        except ProfileNotFound as exc:
            raise MissingCredentialsError(f"{exc}; {NO_CREDENTIALS}") from exc
        if credentials is None:
            raise MissingCredentialsError(NO_CREDENTIALS)
        self.region = region
        self._clients: dict[str, Any] = {}

    def call(self, service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Validate, then send; AWS errors become :class:`DeployError` naming the operation."""
        validate_request(service, operation, params)
        if service not in self._clients:
            self._clients[service] = self._session.client(service, region_name=self.region)
        try:
            response: dict[str, Any] = getattr(self._clients[service], xform_name(operation))(
                **params
            )
        except NoCredentialsError as exc:
            raise MissingCredentialsError(NO_CREDENTIALS) from exc
        except (ClientError, BotoCoreError) as exc:
            raise DeployError(f"{service} {operation} failed in {self.region}: {exc}") from exc
        return response


class DryRunCaller:
    """Validates each request and writes it to ``out`` as a JSON line; AWS is never called."""

    def __init__(self, region: str, out: TextIO) -> None:
        self.region = region
        self._out = out

    def call(self, service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Print ``{"region", "service", "operation", "params"}``; return a canned response."""
        validate_request(service, operation, params)
        line = {"region": self.region, "service": service, "operation": operation}
        self._out.write(json.dumps(line | {"params": params}, default=_printable) + "\n")
        if operation == "GetObject":
            return {"Body": io.BytesIO(b"{}")}
        return copy.deepcopy(_DRY_RUN_RESPONSES.get(operation, {}))


def _printable(value: Any) -> str:
    return f"<{len(value)} bytes>" if isinstance(value, bytes) else str(value)
