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
    "stored_embeddings",
    "embedding_store",
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
    "classification_head",
    "app_model",
    "app_model_int8",
    "model_card",
    "model_card_md",
    "run_report",
    "image_counts",
    "run_metrics",
    "node_time_plot",
    "embedding_throughput_plot",
]
IN_MEMORY = [
    "ingested_images",
    "image_changes",
    "head_inputs",
    "app_backbones",
    "app_accuracy",
]
READERS = ["image_reader"]  # no files of their own: they read the paths a run names
# An earlier run's output, read back (null when absent): the same entry under another name.
PREVIOUS = {
    "saved_pca_model": "pca_model",
    "saved_pca_variance": "pca_variance",
    "saved_classifier_model": "classifier_model",
}
TABLES = ["image_embeddings", "pca_features", "test_predictions"]  # Delta
SWAPPED = ["image_quarantine", "pca_features_csv"]  # folders written beside, then swapped in


def test_every_output_of_the_catalog_is_checked_here():
    catalog = load("local")["catalog"]
    assert {name for name in catalog if not name.startswith("_")} == {
        "raw_images",
        *IN_MEMORY,
        *READERS,
        *PREVIOUS,
        *OUTPUTS,
    }


@pytest.mark.parametrize("env", ["local", "emr"])
def test_each_previous_output_is_read_where_it_is_written(env):
    catalog = load(env)["catalog"]
    for name, output in PREVIOUS.items():
        assert catalog[name]["type"] == "fruits_kedro.datasets.PreviousDataset", name
        assert catalog[name]["dataset"] == catalog[output], name
    same = ("type", "filepath")  # the store as the run starts, and as the run writes it
    assert {k: catalog["stored_embeddings"][k] for k in same} == {
        k: catalog["embedding_store"][k] for k in same
    }
    assert catalog["embedding_store"]["type"] == "fruits_kedro.datasets.EmbeddingStoreDataset"


def test_table_outputs_are_delta_and_folders_are_swapped_in():
    catalog = load("local")["catalog"]
    for name in TABLES:
        assert catalog[name]["file_format"] == "delta", name
        assert not catalog[name]["filepath"].endswith(".parquet"), name
        assert catalog[name]["save_args"]["mode"] == "overwrite", name
    for name in SWAPPED:
        assert catalog[name]["type"] == "fruits_kedro.datasets.SwapSparkDataset", name
    for name in ["pca_model", "classifier_model"]:
        assert catalog[name]["type"] == "fruits_kedro.datasets.SparkMLModelDataset", name


def test_every_environment_has_delta_lake(monkeypatch):
    monkeypatch.delenv("FRUITS_SPARK_PACKAGES", raising=False)
    for env in ["local", "cluster", "emr"]:
        spark = load(env)["spark"]
        assert spark["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension", env
        assert spark["spark.sql.catalog.spark_catalog"] == (
            "org.apache.spark.sql.delta.catalog.DeltaCatalog"
        ), env
    assert load("local")["spark"]["spark.jars.packages"].startswith("io.delta:delta-spark_4.1_")
    assert load("emr")["spark"]["spark.jars.packages"] == ""  # EMR ships its own Delta


def test_incremental_knobs_have_their_defaults():
    parameters = load("local")["parameters"]
    assert parameters["reduction"]["refit"] is True
    assert parameters["classification"]["retrain"] is True
    assert parameters["embedding"]["chunk_size"] == 5000
    assert parameters["erasure"]["retention_hours"] == 168
    assert load("emr")["parameters"]["embedding"]["chunk_size"] == 5000


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


def test_emr_reads_and_writes_s3_in_the_eu(monkeypatch):
    monkeypatch.delenv("FRUITS_DATASET_BUCKET", raising=False)
    monkeypatch.delenv("FRUITS_RESULTS_BUCKET", raising=False)
    loader = load("emr")
    catalog = loader["catalog"]
    assert catalog["raw_images"]["filepath"] == "s3://fruits-dataset-bucket/fruits-360"
    for name in OUTPUTS:
        assert catalog[name]["filepath"].startswith("s3://fruits-results-bucket/fruits-kedro/"), (
            name
        )
    for name in PREVIOUS:
        assert catalog[name]["dataset"]["filepath"].startswith(
            "s3://fruits-results-bucket/fruits-kedro/"
        ), name
    assert loader["parameters"]["embedding"]["weights"] == (  # the model converted for EMR
        "s3://fruits-results-bucket/fruits-kedro/artifacts/mobilenet_v2_224.tflite"
    )
    assert loader["spark"]["spark.hadoop.fs.s3a.endpoint.region"] == "eu-west-1"
    assert "spark.master" not in loader["spark"]


@pytest.mark.parametrize("env", ["local", "emr"])
def test_catalog_builds(env):
    catalog = DataCatalog.from_config(load(env)["catalog"])
    assert {"raw_images", *READERS, *PREVIOUS, *OUTPUTS} <= set(catalog.keys())


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
