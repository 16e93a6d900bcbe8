"""``fruits-emr`` without AWS: dry runs, refused regions, missing credentials or artifacts."""

from __future__ import annotations

import json
import subprocess
import sys

import boto3
import botocore.endpoint
import pytest

from fruits_kedro.deploy.cli import main
from fruits_kedro.deploy.validate import validate_request
from tests.deploy.conftest import CONF_DIR, FAKE_OUTPUTS, describe_stacks_answer

CONF = ["--conf-dir", str(CONF_DIR)]


@pytest.fixture
def no_network(monkeypatch):
    """Any boto3 session or HTTP request fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("AWS was called")

    monkeypatch.setattr(boto3.session, "Session", refuse)
    monkeypatch.setattr(botocore.endpoint.Endpoint, "_send", refuse)


def request_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def test_dry_run_prints_every_request_of_run_and_calls_nothing(
    no_network, dist, stack_file, capsys
):
    argv = [*CONF, "--dry-run", "run", "--dist", str(dist), "--stack-outputs", str(stack_file)]
    assert main(argv) == 0

    lines = request_lines(capsys.readouterr().out)
    operations = [line["operation"] for line in lines]
    assert operations == ["PutObject"] * 6 + [
        "RunJobFlow",
        "ListSteps",
        "DescribeStep",
        "GetObject",
        "TerminateJobFlows",
    ]
    for line in lines:
        assert line["region"] == "eu-west-1"
        validate_request(line["service"], line["operation"], line["params"])
    run_job_flow = lines[6]["params"]
    assert run_job_flow["Instances"]["KeepJobFlowAliveWhenNoSteps"] is False
    assert run_job_flow["Steps"][0]["ActionOnFailure"] == "TERMINATE_CLUSTER"
    assert lines[0]["params"]["Body"].endswith("bytes>")
    assert lines[0]["params"]["SSEKMSKeyId"] == FAKE_OUTPUTS["KmsKeyArn"]


def test_dry_run_launches_on_the_stack_outputs(no_network, dist, stack_file, capsys):
    argv = [*CONF, "run", "--dry-run", "--dist", str(dist), "--stack-outputs", str(stack_file)]
    assert main(argv) == 0

    (request,) = [
        line["params"]
        for line in request_lines(capsys.readouterr().out)
        if line["operation"] == "RunJobFlow"
    ]
    instances = request["Instances"]
    assert instances["Ec2SubnetIds"] == [FAKE_OUTPUTS["PrivateSubnetId"]]
    assert instances["EmrManagedMasterSecurityGroup"] == FAKE_OUTPUTS["EmrPrimarySecurityGroupId"]
    assert instances["EmrManagedSlaveSecurityGroup"] == FAKE_OUTPUTS["EmrCoreSecurityGroupId"]
    assert (
        instances["ServiceAccessSecurityGroup"] == FAKE_OUTPUTS["EmrServiceAccessSecurityGroupId"]
    )
    assert request["ServiceRole"] == FAKE_OUTPUTS["EmrServiceRoleName"]
    assert request["JobFlowRole"] == FAKE_OUTPUTS["EmrInstanceProfileName"]
    assert request["SecurityConfiguration"] == FAKE_OUTPUTS["EmrSecurityConfigurationName"]
    assert request["LogUri"] == FAKE_OUTPUTS["EmrLogUri"]
    assert {"Key": "for-use-with-amazon-emr-managed-policies", "Value": "true"} in request["Tags"]


def test_the_stack_buckets_win_over_globals(no_network, dist, tmp_path, capsys):
    outputs = FAKE_OUTPUTS | {
        "DatasetBucketName": "acme-images-eu",
        "ResultsBucketName": "acme-results-eu",
        "EmrLogUri": "s3://acme-results-eu/fruits-kedro/logs/",
    }
    stack_file = tmp_path / "stack.json"
    stack_file.write_text(json.dumps(describe_stacks_answer(outputs)))
    argv = [*CONF, "--dry-run", "run", "--dist", str(dist), "--stack-outputs", str(stack_file)]

    assert main(argv) == 0

    lines = request_lines(capsys.readouterr().out)
    uploads = {line["params"]["Bucket"] for line in lines if line["operation"] == "PutObject"}
    assert uploads == {"acme-results-eu"}
    (metrics,) = [line["params"] for line in lines if line["operation"] == "GetObject"]
    assert metrics["Bucket"] == "acme-results-eu"
    run_job_flow = next(line["params"] for line in lines if line["operation"] == "RunJobFlow")
    args = run_job_flow["Steps"][0]["HadoopJarStep"]["Args"]
    assert "spark.yarn.appMasterEnv.FRUITS_DATASET_BUCKET=acme-images-eu" in args
    assert "spark.yarn.appMasterEnv.FRUITS_RESULTS_BUCKET=acme-results-eu" in args
    assert args[args.index("--env") - 1].startswith("s3://acme-results-eu/fruits-kedro/artifacts/")


def test_up_notebook_adds_what_emr_studio_attaches_to(no_network, dist, stack_file, capsys):
    argv = [*CONF, "--dry-run", "up", "--notebook", "--dist", str(dist)]
    assert main([*argv, "--stack-outputs", str(stack_file)]) == 0

    request = request_lines(capsys.readouterr().out)[-1]["params"]
    names = [app["Name"] for app in request["Applications"]]
    assert names == ["Spark", "JupyterEnterpriseGateway", "Livy"]
    assert request["ReleaseLabel"] == "emr-spark-8.1.0"


def test_up_without_notebook_has_spark_only(no_network, dist, stack_file, capsys):
    argv = [*CONF, "--dry-run", "up", "--dist", str(dist), "--stack-outputs", str(stack_file)]
    assert main(argv) == 0

    request = request_lines(capsys.readouterr().out)[-1]["params"]
    assert request["Applications"] == [{"Name": "Spark"}]


def test_a_stack_missing_an_output_is_one_line_naming_it(no_network, dist, tmp_path, capsys):
    outputs = {key: value for key, value in FAKE_OUTPUTS.items() if key != "KmsKeyArn"}
    stack_file = tmp_path / "stack.json"
    stack_file.write_text(json.dumps(describe_stacks_answer(outputs)))

    argv = [*CONF, "--dry-run", "run", "--dist", str(dist), "--stack-outputs", str(stack_file)]
    assert main(argv) == 2

    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = [line for line in captured.err.splitlines() if "error:" in line]
    assert line.startswith("fruits-emr: error: stack 'fruits-infra' of ")
    assert "missing output(s) KmsKeyArn;" in line


def test_stack_option_names_the_stack_to_read(no_network, dist, stack_file, capsys):
    argv = [*CONF, "--dry-run", "run", "--dist", str(dist), "--stack-outputs", str(stack_file)]

    assert main([*argv, "--stack", "fruits-infra-test"]) == 2

    assert "stack 'fruits-infra-test' of" in capsys.readouterr().err


def test_a_dry_run_without_credentials_says_it_reads_the_stack(dist, capsys):
    assert main([*CONF, "--dry-run", "run", "--dist", str(dist)]) == 2

    (line,) = capsys.readouterr().err.strip().splitlines()[-1:]
    assert line.startswith("fruits-emr: error: no AWS credentials found")
    assert "reads the outputs of stack 'fruits-infra'" in line and "--stack-outputs" in line


def test_dry_run_options_are_accepted_after_the_command(no_network, dist, stack_file, capsys):
    argv = ["up", "--dry-run", *CONF, "--dist", str(dist), "--stack-outputs", str(stack_file)]
    assert main(argv) == 0

    lines = request_lines(capsys.readouterr().out)
    assert lines[-1]["operation"] == "RunJobFlow"
    assert lines[-1]["params"]["Instances"]["KeepJobFlowAliveWhenNoSteps"] is True


def test_dry_run_of_submit_adds_a_step_that_keeps_the_cluster(no_network, dist, stack_file, capsys):
    argv = [*CONF, "--dry-run", "submit", "--cluster-id", "j-ABC", "--dist", str(dist), "--wait"]
    assert main([*argv, "--stack-outputs", str(stack_file)]) == 0

    lines = request_lines(capsys.readouterr().out)
    add = next(line for line in lines if line["operation"] == "AddJobFlowSteps")
    assert add["params"]["JobFlowId"] == "j-ABC"
    assert add["params"]["Steps"][0]["ActionOnFailure"] == "CONTINUE"
    assert lines[-1]["operation"] == "DescribeStep"


@pytest.mark.parametrize(
    ("command", "operations"),
    [
        (["status", "--cluster-id", "j-ABC"], ["DescribeCluster", "ListSteps"]),
        (["down", "--cluster-id", "j-ABC"], ["TerminateJobFlows"]),
        (
            ["logs", "--cluster-id", "j-ABC", "--step-id", "s-XYZ"],
            ["DescribeCluster", "ListObjectsV2"],
        ),
    ],
)
def test_dry_run_of_the_other_commands(no_network, capsys, command, operations):
    assert main([*CONF, "--dry-run", *command]) == 0

    lines = request_lines(capsys.readouterr().out)
    assert [line["operation"] for line in lines] == operations


@pytest.mark.parametrize("region", ["eu-west-2", "us-east-1"])
@pytest.mark.parametrize("dry_run", [True, False])
def test_a_region_outside_the_eu_is_refused_before_any_call(
    no_network, dist, capsys, region, dry_run
):
    argv = [
        *CONF,
        "--region",
        region,
        *(["--dry-run"] if dry_run else []),
        "run",
        "--dist",
        str(dist),
    ]

    assert main(argv) == 2

    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"region '{region}' is refused" in captured.err and "GDPR" in captured.err


def test_missing_credentials_exit_2_with_one_clear_line(dist, capsys):
    assert main([*CONF, "up", "--dist", str(dist)]) == 2

    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("fruits-emr: error: no AWS credentials found")
    assert "--dry-run" in err[-1] and "Traceback" not in "\n".join(err)


def test_missing_artifacts_are_refused_before_credentials(dist, capsys):
    (dist / "bootstrap.sh").unlink()

    assert main([*CONF, "run", "--dist", str(dist)]) == 2

    err = capsys.readouterr().err
    assert "lacks bootstrap.sh" in err and "nothing was launched" in err


def test_the_command_as_a_process_has_no_traceback(tmp_path):
    env_file = tmp_path / "none"
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_CONFIG_FILE": str(env_file),
        "AWS_SHARED_CREDENTIALS_FILE": str(env_file),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    }
    command = [
        sys.executable,
        "-m",
        "fruits_kedro.deploy.cli",
        *CONF,
        "status",
        "--cluster-id",
        "j-1",
    ]

    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)

    assert done.returncode == 2
    assert done.stderr.startswith("fruits-emr: error: no AWS credentials found")
    assert len(done.stderr.splitlines()) == 1
    assert "Traceback" not in done.stderr and done.stdout == ""
