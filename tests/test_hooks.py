"""The SparkSession hook's settings: paths made absolute, the workers' Python checked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fruits_kedro.hooks import local_event_log, local_paths, prepare_workers


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
