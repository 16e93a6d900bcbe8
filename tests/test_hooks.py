"""The SparkSession hook's settings: paths made absolute, the workers' Python checked, the jars
and event-log folder of a session started off a cluster."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from kedro.config import OmegaConfigLoader

from fruits_kedro import settings
from fruits_kedro.deploy import jars
from fruits_kedro.hooks import (
    DELTA_EXTENSION,
    local_event_log,
    local_paths,
    prepare_workers,
    started_here,
    under_spark_submit,
)
from tests.conftest import PROJECT_ROOT


def test_relative_interpreter_and_event_log_are_made_absolute_under_the_project(tmp_path):
    settings = {
        "spark.pyspark.python": ".cluster/python/bin/python",
        "spark.eventLog.enabled": "True",
        "spark.eventLog.dir": "logs/spark-events",
    }
    resolved = local_paths(settings, tmp_path)
    assert resolved["spark.pyspark.python"] == str(tmp_path / ".cluster/python/bin/python")
    assert resolved["spark.eventLog.dir"] == str(tmp_path / "logs/spark-events")
    assert settings["spark.eventLog.dir"] == "logs/spark-events"  # a copy, not changed


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"spark.pyspark.python": "python3.11"}, "python3.11"),  # on the PATH of the nodes
        ({"spark.eventLog.enabled": "True", "spark.eventLog.dir": "s3://b/logs"}, None),
        ({"spark.eventLog.enabled": "False", "spark.eventLog.dir": "logs"}, None),
        ({"spark.eventLog.enabled": "true", "spark.eventLog.dir": "file:/tmp/ev"}, "/tmp/ev"),
    ],
)
def test_only_local_paths_are_touched(settings, expected, tmp_path):
    resolved = local_paths(settings, tmp_path)
    if "spark.pyspark.python" in settings:
        assert resolved["spark.pyspark.python"] == expected
    else:
        assert local_event_log(resolved) == expected


def test_a_missing_executor_python_names_the_setting_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("PYSPARK_PYTHON", "/usr/bin/python3")
    missing = str(tmp_path / ".cluster/python/bin/python")
    with pytest.raises(FileNotFoundError, match=r"spark\.pyspark\.python.*make cluster-up"):
        prepare_workers({"spark.pyspark.python": missing})
    assert os.environ["PYSPARK_PYTHON"] == "/usr/bin/python3"


def test_the_configured_interpreter_wins_over_the_environment(tmp_path, monkeypatch):
    python = tmp_path / "bin/python"
    python.parent.mkdir()
    python.touch()
    monkeypatch.setenv("PYSPARK_PYTHON", "/usr/bin/python3")
    events = tmp_path / "events"
    settings = {
        "spark.pyspark.python": str(python),
        "spark.eventLog.enabled": "True",
        "spark.eventLog.dir": str(events),
    }
    prepare_workers(settings)
    assert os.environ["PYSPARK_PYTHON"] == str(python)
    assert Path(events).is_dir()


def fake_repository(root: Path, coordinates: tuple[str, ...]) -> Path:
    for coordinate in coordinates:
        path = jars.jar_path(coordinate, root)
        path.parent.mkdir(parents=True)
        path.write_bytes(b"PK")
    return root


def test_a_session_started_here_takes_delta_from_the_local_maven_repository(tmp_path):
    repository = fake_repository(tmp_path, jars.DELTA)
    settings = {
        "spark.jars.packages": jars.DELTA[0],
        "spark.sql.extensions": DELTA_EXTENSION,
    }
    resolved = started_here(settings, repository)
    assert load_spark("local")["spark.jars.packages"] == jars.DELTA[0]
    assert "spark.jars.packages" not in resolved  # no Ivy resolution at start-up
    assert resolved["spark.jars"].split(",") == [
        str(repository / "io/delta/delta-spark_4.1_2.13/4.2.0/delta-spark_4.1_2.13-4.2.0.jar"),
        str(repository / "io/delta/delta-storage/4.2.0/delta-storage-4.2.0.jar"),
    ]


def test_off_emr_the_emr_environment_gets_delta_s3a_and_a_local_event_log(tmp_path, caplog):
    emr = load_spark("emr")
    repository = fake_repository(tmp_path, (*jars.DELTA, *jars.S3A))
    caplog.set_level("INFO", logger="fruits_kedro.hooks")
    resolved = started_here(emr, repository)
    names = [Path(p).name for p in resolved["spark.jars"].split(",")]
    assert names == [
        "delta-spark_4.1_2.13-4.2.0.jar",
        "delta-storage-4.2.0.jar",
        "hadoop-aws-3.4.2.jar",
        "bundle-2.29.52.jar",
        "analyticsaccelerator-s3-1.2.1.jar",
        "wildfly-openssl-2.1.4.Final.jar",
    ]
    assert resolved["spark.eventLog.dir"] == "logs/spark-events"
    assert emr["spark.eventLog.dir"] == "hdfs:///var/log/spark/apps"  # what EMR itself gets
    assert "hdfs:///var/log/spark/apps is the cluster's" in caplog.text


def test_a_jar_missing_locally_is_named_and_left_to_maven_central(tmp_path, caplog):
    repository = fake_repository(tmp_path, jars.DELTA[:1])
    caplog.set_level("INFO", logger="fruits_kedro.hooks")
    settings = {"spark.sql.extensions": DELTA_EXTENSION}
    resolved = started_here(settings, repository)
    assert resolved["spark.jars.packages"] == jars.DELTA[0]
    assert "spark.jars" not in resolved
    assert f"Spark fetches {jars.DELTA[1]} from Maven Central" in caplog.text


def test_an_unknown_package_is_left_to_ivy_with_its_dependencies(tmp_path):
    settings = {"spark.jars.packages": "org.example:other:1.0", "spark.sql.extensions": ""}
    resolved = started_here(settings, fake_repository(tmp_path, ()))
    assert resolved["spark.jars.packages"] == "org.example:other:1.0"


def test_only_spark_submit_brings_its_own_libraries():
    assert under_spark_submit({"PYSPARK_GATEWAY_PORT": "4321"})
    assert not under_spark_submit({})


def test_the_jvm_logging_file_is_made_absolute_or_dropped_where_there_is_none(tmp_path):
    option = "-Dlog4j2.configurationFile=conf/log4j2.properties"
    settings = {"spark.driver.extraJavaOptions": f"-Xss4m {option}"}
    assert local_paths(settings, tmp_path) == {"spark.driver.extraJavaOptions": "-Xss4m"}
    assert local_paths({"spark.executor.extraJavaOptions": option}, tmp_path) == {}
    resolved = local_paths(settings, PROJECT_ROOT)
    assert resolved["spark.driver.extraJavaOptions"] == (
        f"-Xss4m -Dlog4j2.configurationFile={PROJECT_ROOT / 'conf/log4j2.properties'}"
    )


def test_make_jars_fetches_the_project_list():
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    assert "-m fruits_kedro.deploy.jars" in makefile
    assert "hadoop-aws" not in makefile and "delta-spark" not in makefile  # one list, in code
    for group in sorted(jars.GROUPS):
        assert f"$(JARS) {group}" in makefile


def load_spark(env: str) -> dict[str, str]:
    """The Spark settings of ``env`` as the hook receives them (empty values dropped)."""
    loader = OmegaConfigLoader(
        str(PROJECT_ROOT / "conf"), env=env, runtime_params={}, **settings.CONFIG_LOADER_ARGS
    )
    return {k: str(v) for k, v in loader["spark"].items() if v != ""}
