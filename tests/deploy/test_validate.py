"""Request validation: botocore's checks, plus the enum values botocore and moto let through."""

from __future__ import annotations

import copy

import pytest

from fruits_kedro.deploy import requests as req
from fruits_kedro.deploy.validate import RequestValidationError, validate_request


@pytest.fixture
def run_job_flow(settings):
    step = req.spark_step(settings, req.ON_FAILURE_TERMINATE)
    return req.run_job_flow_request(settings, keep_alive=False, steps=[step])


def test_a_valid_request_passes(run_job_flow):
    validate_request("emr", "RunJobFlow", run_job_flow)


def test_an_invalid_allocation_strategy_is_caught_with_its_path(run_job_flow):
    bad = copy.deepcopy(run_job_flow)
    spot = bad["Instances"]["InstanceFleets"][1]["LaunchSpecifications"]["SpotSpecification"]
    spot["AllocationStrategy"] = "cheapest-please"

    with pytest.raises(RequestValidationError) as caught:
        validate_request("emr", "RunJobFlow", bad)

    message = str(caught.value)
    assert "RunJobFlow" in message and "'cheapest-please' is not one of" in message
    assert "Instances.InstanceFleets[1].LaunchSpecifications.SpotSpecification" in message
    assert "price-capacity-optimized" in message


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        (
            "AddJobFlowSteps",
            {
                "JobFlowId": "j-1",
                "Steps": [
                    {
                        "Name": "s",
                        "ActionOnFailure": "RETRY",
                        "HadoopJarStep": {"Jar": "command-runner.jar"},
                    }
                ],
            },
        ),
        (
            "RunJobFlow",
            {
                "Name": "c",
                "Instances": {},
                "ManagedScalingPolicy": {
                    "ComputeLimits": {
                        "UnitType": "Nodes",
                        "MinimumCapacityUnits": 1,
                        "MaximumCapacityUnits": 2,
                    }
                },
            },
        ),
        (
            "RunJobFlow",
            {"Name": "c", "Instances": {"InstanceFleets": [{"InstanceFleetType": "PRIMARY"}]}},
        ),
    ],
)
def test_every_enum_is_checked(operation, params):
    with pytest.raises(RequestValidationError, match="is not one of"):
        validate_request("emr", operation, params)


def test_botocore_errors_are_reported_too(run_job_flow):
    bad = copy.deepcopy(run_job_flow)
    del bad["Name"]
    bad["StepConcurrencyLevel"] = "one"

    with pytest.raises(RequestValidationError, match=r"Missing required parameter.*Name"):
        validate_request("emr", "RunJobFlow", bad)


def test_an_unknown_parameter_is_refused():
    with pytest.raises(RequestValidationError, match="Unknown parameter"):
        validate_request("emr", "TerminateJobFlows", {"JobFlowIds": ["j-1"], "Force": True})


def test_s3_requests_are_validated_as_well():
    with pytest.raises(RequestValidationError, match="is not one of"):
        validate_request(
            "s3", "PutObject", {"Bucket": "b", "Key": "k", "Body": b"", "StorageClass": "CHEAP"}
        )


def test_maps_are_walked():
    params = {"Bucket": "b", "Key": "k", "Body": b"", "Metadata": {"run": "1"}}

    validate_request("s3", "PutObject", params)
