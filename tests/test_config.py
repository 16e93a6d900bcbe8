"""Configuration: each environment resolves every catalog entry where it should."""

from __future__ import annotations

import pytest
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog

from fruits_kedro import settings
from tests.conftest import PROJECT_ROOT

OUTPUTS = [
    "image_quarantine",
    "model_artifact",
    "image_embeddings",
    "pca_model",
    "pca_features",
    "pca_features_csv",
    "pca_variance",
    "pca_variance_plot",
    "pca_scatter_points",
    "pca_scatter_plot",
    "classifier_model",
    "classification_metrics",
    "confusion_matrix",
    "test_predictions",
    "accuracy_vs_k",
    "confusion_matrix_plot",
    "accuracy_vs_k_plot",
    "predictor",
    "run_report",
    "image_counts",
    "run_metrics",
    "node_time_plot",
    "embedding_throughput_plot",
]
IN_MEMORY = ["ingested_images"]


def test_every_output_of_the_catalog_is_checked_here():
    catalog = load("local")["catalog"]
    assert {name for name in catalog if not name.startswith("_")} == {
        "raw_images",
        *IN_MEMORY,
        *OUTPUTS,
    }


def load(env: str, runtime_params: dict | None = None) -> OmegaConfigLoader:
    return OmegaConfigLoader(
        str(PROJECT_ROOT / "conf"),
        env=env,
        runtime_params=runtime_params or {},
        **settings.CONFIG_LOADER_ARGS,
    )


def test_local_reads_data_raw_and_writes_under_data():
    catalog = load("local")["catalog"]
    assert catalog["raw_images"]["filepath"] == "data/01_raw"
    assert all(catalog[name]["filepath"].startswith("data/0") for name in OUTPUTS)


def test_runtime_params_point_the_run_at_other_images_and_weights():
    loader = load("local", {"input_dir": "/photos", "weights": "/models/w.h5"})
    assert loader["catalog"]["raw_images"]["filepath"] == "/photos"
    assert loader["parameters"]["embedding"]["weights"] == "/models/w.h5"


def test_emr_reads_and_writes_s3_in_the_eu():
    loader = load("emr")
    catalog = loader["catalog"]
    assert catalog["raw_images"]["filepath"] == "s3://fruits-dataset-bucket/fruits-360"
    for name in OUTPUTS:
        assert catalog[name]["filepath"].startswith("s3://fruits-results-bucket/fruits-kedro/"), (
            name
        )
    assert loader["parameters"]["embedding"]["weights"].startswith("s3://fruits-dataset-bucket/")
    assert loader["spark"]["spark.hadoop.fs.s3a.endpoint.region"] == "eu-west-1"
    assert "spark.master" not in loader["spark"]


@pytest.mark.parametrize("env", ["local", "emr"])
def test_catalog_builds(env):
    catalog = DataCatalog.from_config(load(env)["catalog"])
    assert {"raw_images", *OUTPUTS} <= set(catalog.keys())


def test_s3a_jars_come_from_the_environment_outside_emr(monkeypatch):
    monkeypatch.setenv("FRUITS_SPARK_PACKAGES", "org.apache.hadoop:hadoop-aws:3.4.2")
    assert load("emr")["spark"]["spark.jars.packages"] == "org.apache.hadoop:hadoop-aws:3.4.2"
    monkeypatch.delenv("FRUITS_SPARK_PACKAGES")
    assert load("emr")["spark"]["spark.jars.packages"] == ""


def test_cluster_takes_its_master_and_executors_python_from_the_environment(monkeypatch):
    monkeypatch.delenv("FRUITS_SPARK_MASTER", raising=False)
    monkeypatch.delenv("FRUITS_EXECUTOR_PYTHON", raising=False)
    spark = load("cluster")["spark"]
    assert spark["spark.master"] == "spark://127.0.0.1:7077"
    assert spark["spark.pyspark.python"] == ".cluster/python/bin/python"
    assert spark["spark.decommission.enabled"] is True
    assert spark["spark.task.maxFailures"] == 4
    monkeypatch.setenv("FRUITS_SPARK_MASTER", "spark://127.0.0.1:17077")
    monkeypatch.setenv("FRUITS_EXECUTOR_PYTHON", "/opt/executors/bin/python")
    spark = load("cluster")["spark"]
    assert spark["spark.master"] == "spark://127.0.0.1:17077"
    assert spark["spark.pyspark.python"] == "/opt/executors/bin/python"


def test_local_runs_retry_a_failed_task():
    assert load("local")["spark"]["spark.master"] == "local[*,4]"


@pytest.mark.parametrize("env", ["local", "cluster"])
def test_every_run_writes_an_event_log_under_the_project(env, monkeypatch):
    monkeypatch.delenv("FRUITS_SPARK_EVENTS", raising=False)
    spark = load(env)["spark"]
    assert spark["spark.eventLog.enabled"] is True
    assert spark["spark.eventLog.dir"] == "logs/spark-events"
