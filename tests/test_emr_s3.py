"""The ``emr`` environment over S3 for real: Spark's S3A connector against moto's S3 server.

Images and weights are uploaded to the dataset bucket, ``kedro run --env=emr`` runs with only
``AWS_ENDPOINT_URL`` and credentials set, and every output is checked in the results bucket.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pandas as pd
import pyspark
import pytest

from fruits_kedro.deploy import jars
from fruits_kedro.deploy.package import build
from fruits_kedro.model.mobilenet import WEIGHTS_FILE_NAME
from tests.conftest import (
    PROJECT_ROOT,
    copy_project,
    delta_conf,
    first_run_counts,
    reset_moto,
    run_command,
    run_kedro,
    write_bad_files,
)

pytestmark = [pytest.mark.shared, pytest.mark.e2e, pytest.mark.s3]

REGION = "eu-west-1"
DATASET, RESULTS = "fruits-dataset-bucket", "fruits-results-bucket"
IMAGES_PREFIX, RESULTS_PREFIX = "fruits-360", "fruits-kedro"
WEIGHTS_KEY = f"models/{WEIGHTS_FILE_NAME}"
# What an EMR step's spark-submit is given on a cluster that lacks them (EMR ships both).
SUBMIT_PACKAGES = ",".join([*jars.S3A, *jars.DELTA])
MINI_IMAGES = 72


@pytest.fixture(scope="module", autouse=True)
def s3a_jars() -> None:
    """The S3A and Delta jars in the local Maven repository (``make jars``)."""
    _, missing = jars.local_jars([jars.S3A[0], jars.DELTA[0]], jars.maven_repository())
    if missing:
        if os.environ.get("FRUITS_REQUIRE_S3A"):
            pytest.fail(f"FRUITS_REQUIRE_S3A is set but {missing} are not in ~/.m2")
        pytest.skip(f"needs the S3A jars in ~/.m2 (run `make jars`); missing: {missing}")


@pytest.fixture(scope="module")
def s3_endpoint(moto_endpoint: str) -> str:
    """moto's server, emptied for this module."""
    reset_moto(moto_endpoint)
    return moto_endpoint


@pytest.fixture(scope="module")
def aws_env(s3_endpoint: str) -> dict[str, str]:
    """The environment of a run as the README gives it: the endpoint and credentials."""
    return {
        **os.environ,
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "KEDRO_DISABLE_TELEMETRY": "true",
    }


@pytest.fixture(scope="module")
def s3(s3_endpoint: str):
    return boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="module")
def uploaded(s3, mini_dir: Path, weights_file: Path, tmp_path_factory) -> dict[str, str]:
    """The mini set, one file of each bad kind and the weights, in the dataset bucket."""
    for bucket in (DATASET, RESULTS):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    bad_root = tmp_path_factory.mktemp("bad")
    bad = write_bad_files(bad_root)
    for root in (mini_dir, bad_root):
        for path in root.rglob("*"):
            if path.is_file():
                key = f"{IMAGES_PREFIX}/{path.relative_to(root).as_posix()}"
                s3.upload_file(str(path), DATASET, key)
    s3.upload_file(str(weights_file), DATASET, WEIGHTS_KEY)
    return bad


# The emr environment runs the TFLite model `make package` converts; these runs convert the
# uploaded weights themselves (the packaged model is tested in tests/deploy).
WEIGHTS = f"weights=s3://{DATASET}/{WEIGHTS_KEY}"


def kedro_emr(
    project: Path, env: dict[str, str], *args: str, params: str = ""
) -> subprocess.CompletedProcess:
    joined = ",".join(p for p in (WEIGHTS, params) if p)
    return run_kedro(project, "run", "--env=emr", *args, "--params", joined, env=env)


def delta_files(s3, table: str) -> list[str]:
    """The keys of the data files of a Delta table's latest version (from its log)."""
    prefix = f"{RESULTS_PREFIX}/{table}"
    live: set[str] = set()
    for key in results(s3, f"{table}/_delta_log/"):
        if key.endswith(".json"):
            for line in read_object(s3, key).decode().splitlines():
                action = json.loads(line)
                if "add" in action:
                    live.add(f"{prefix}/{action['add']['path']}")
                if "remove" in action:
                    live.discard(f"{prefix}/{action['remove']['path']}")
    return sorted(live)


def read_delta(s3, table: str) -> pd.DataFrame:
    return pd.concat(
        pd.read_parquet(io.BytesIO(read_object(s3, k))) for k in delta_files(s3, table)
    )


def results(s3, suffix: str = "") -> list[str]:
    listing = s3.list_objects_v2(Bucket=RESULTS, Prefix=f"{RESULTS_PREFIX}/{suffix}")
    return sorted(o["Key"] for o in listing.get("Contents", []))


def read_object(s3, key: str) -> bytes:
    return s3.get_object(Bucket=RESULTS, Key=key)["Body"].read()


@pytest.fixture(scope="module")
def emr_run(uploaded, aws_env, tmp_path_factory, s3):
    project = copy_project(tmp_path_factory.mktemp("emr") / "project")
    result = kedro_emr(project, aws_env, params="reduction.k=40")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return project, uploaded


def test_nothing_touches_the_local_data_folder(emr_run):
    project, _ = emr_run
    assert not (project / "data").exists()


def test_every_output_lands_in_the_results_bucket(emr_run, s3):
    keys = results(s3)
    for folder in (
        "03_primary/image_quarantine.csv/",
        "06_models/pca_model/metadata/",
        "07_model_output/pca_features.csv/",
    ):
        assert f"{RESULTS_PREFIX}/{folder}_SUCCESS" in keys, folder
    for table in (
        "04_feature/embedding_store/embeddings",
        "04_feature/embedding_store/files",
        "04_feature/image_embeddings",
        "07_model_output/pca_features",
        "07_model_output/test_predictions",
    ):
        assert f"{RESULTS_PREFIX}/{table}/_delta_log/00000000000000000000.json" in keys, table
    for report in (
        "pca_variance.json",
        "pca_variance.png",
        "pca_scatter.png",
        "classification_metrics.json",
        "confusion_matrix.csv",
        "confusion_matrix.png",
        "accuracy_vs_k.json",
        "accuracy_vs_k.png",
        "run_report.html",
        "run_metrics.json",
        "image_counts.json",
    ):
        assert f"{RESULTS_PREFIX}/08_reporting/{report}" in keys
    for model in (
        "06_models/classifier_model/metadata/_SUCCESS",
        "06_models/embedding_model/model.tflite",
        "06_models/app/fruits_classifier.tflite",
        "06_models/app/model_card.json",
        "06_models/app/model_card.md",
    ):
        assert f"{RESULTS_PREFIX}/{model}" in keys, model
    # the image bytes are read once from the dataset bucket and never copied
    assert not [k for k in keys if "/02_intermediate/" in k or "preprocessed" in k]


def test_counts_reconcile_and_the_run_is_marked_complete(emr_run, s3):
    _, bad = emr_run
    metrics = json.loads(read_object(s3, f"{RESULTS_PREFIX}/08_reporting/run_metrics.json"))
    assert metrics["status"] == "complete"
    assert metrics["images"] == first_run_counts(MINI_IMAGES, len(bad))
    assert metrics["spark_conf"]["spark.hadoop.fs.s3a.path.style.access"] == "true"


def test_features_quarantine_and_csv_are_right(emr_run, s3):
    _, bad = emr_run
    table = read_delta(s3, "04_feature/image_embeddings")
    assert len(table) == MINI_IMAGES + len(bad)  # one row per image read
    assert table["features"].isna().sum() == table["reason"].notna().sum() == len(bad)
    features = table[table["reason"].isna()]
    assert features["features"].map(len).eq(1280).all()
    assert features["path"].str.startswith(f"s3a://{DATASET}/{IMAGES_PREFIX}/").all()

    quarantine_parts = [
        k for k in results(s3, "03_primary/image_quarantine.csv/") if k.endswith(".csv")
    ]
    quarantine = pd.concat(pd.read_csv(io.BytesIO(read_object(s3, k))) for k in quarantine_parts)
    assert sorted(p.split(f"{IMAGES_PREFIX}/", 1)[1] for p in quarantine["path"]) == sorted(bad)

    parts = [k for k in results(s3, "07_model_output/pca_features.csv/") if k.endswith(".csv.gz")]
    assert parts
    for key in parts:  # every part has the header
        header = gzip.decompress(read_object(s3, key)).decode().splitlines()[0]
        assert header == ",".join(["path", "label", "split", *[f"pc_{i}" for i in range(1, 41)]])


def test_rerun_overwrites_and_a_failed_run_is_marked_failed(emr_run, aws_env, s3):
    project, _ = emr_run
    before = results(s3, "07_model_output/")

    rerun = kedro_emr(project, aws_env, "--pipelines", "reduction", params="reduction.k=40")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    csv = [k for k in results(s3, "07_model_output/pca_features.csv/")]
    assert len(csv) == len([k for k in before if "/pca_features.csv/" in k])  # replaced
    assert not [k for k in results(s3, "07_model_output/") if ".__new/" in k or ".__old/" in k]
    features = read_delta(s3, "07_model_output/pca_features")
    assert len(features) == MINI_IMAGES  # the new version only

    failed = kedro_emr(project, aws_env, "--pipelines", "reduction", params="reduction.k=0")
    assert failed.returncode != 0
    metrics = json.loads(read_object(s3, f"{RESULTS_PREFIX}/08_reporting/run_metrics.json"))
    assert metrics["status"] == "failed"
    assert "at least one" in metrics["error"] or "k" in metrics["error"]


def test_spark_submit_runs_the_packaged_project(emr_run, aws_env, s3, tmp_path):
    """What a cluster runs: the built artifacts, from S3, through the real spark-submit."""
    dist = tmp_path / "dist"
    build(PROJECT_ROOT, dist)
    for artifact in dist.iterdir():
        s3.upload_file(str(artifact), RESULTS, f"{RESULTS_PREFIX}/artifacts/{artifact.name}")
    s3.delete_object(Bucket=RESULTS, Key=f"{RESULTS_PREFIX}/08_reporting/run_metrics.json")
    conf_source = f"s3://{RESULTS}/{RESULTS_PREFIX}/artifacts/conf-fruits_kedro.tar.gz"
    spark_submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    command = [
        str(spark_submit),
        "--master",
        "local[2]",
        "--packages",
        SUBMIT_PACKAGES,
        "--exclude-packages",
        delta_conf()["spark.jars.excludes"],
        str(dist / "spark_entrypoint.py"),
        "--env",
        "emr",
        "--conf-source",
        conf_source,
        "--params",
        f"{WEIGHTS},reduction.k=30",
    ]

    # EMR's own spark-defaults name its HDFS folder for event logs; this machine has none.
    env = {**aws_env, "FRUITS_SPARK_EVENTS": f"file://{tmp_path / 'spark-events'}"}
    (tmp_path / "spark-events").mkdir()
    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900, check=False
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    metrics = json.loads(read_object(s3, f"{RESULTS_PREFIX}/08_reporting/run_metrics.json"))
    assert metrics["status"] == "complete"
    assert metrics["images"]["embedded"] == 0  # the store on S3 already has every image
    assert metrics["images"]["reused"] == metrics["images"]["read"]
    assert metrics["spark_conf"]["spark.master"] == "local[2]"
    variance = json.loads(read_object(s3, f"{RESULTS_PREFIX}/08_reporting/pca_variance.json"))
    assert variance["k"] == 30
    assert not (tmp_path / "data").exists()


def test_erasure_removes_an_image_everywhere_then_vacuum_deletes_its_files(emr_run, aws_env, s3):
    project, _ = emr_run
    table = read_delta(s3, "04_feature/image_embeddings")
    victim = table[table["reason"].isna()].iloc[0]
    erase = [
        sys.executable,
        "-m",
        "fruits_kedro.tools.erase",
        "--env",
        "emr",
        "--project",
        str(project),
    ]

    command = [*erase, "--path", victim["path"], "--vacuum", "--retention-hours", "0"]
    done = run_command(command, project, aws_env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "erased 1 image(s)" in done.stdout and done.stdout.strip().endswith("; vacuumed")
    assert victim["image_id"] not in set(read_delta(s3, "04_feature/image_embeddings")["image_id"])
    assert victim["image_id"] not in set(read_delta(s3, "07_model_output/pca_features")["image_id"])
    stored = read_delta(s3, "04_feature/embedding_store/embeddings")
    assert victim["image_id"] not in set(stored["image_id"])
    parts = [k for k in results(s3, "07_model_output/pca_features.csv/") if k.endswith(".csv.gz")]
    csv = pd.concat(pd.read_csv(io.BytesIO(read_object(s3, k)), compression="gzip") for k in parts)
    assert victim["path"] not in set(csv["path"])
    metrics = json.loads(read_object(s3, f"{RESULTS_PREFIX}/08_reporting/run_metrics.json"))
    assert metrics["erasures"][-1]["image_ids"] == [victim["image_id"]]
    assert metrics["erasures"][-1]["vacuumed"] is True

    # Vacuumed at once: only the current version's files remain (that the old versions hold the
    # rows until then: tests/pipelines/test_embedding.py).
    table_keys = [k for k in results(s3, "04_feature/image_embeddings/") if k.endswith(".parquet")]
    assert sorted(table_keys) == delta_files(s3, "04_feature/image_embeddings")
    for key in results(s3, "04_feature/"):
        if key.endswith(".parquet") and "/erasures/" not in key:  # erasures: the ids, by design
            frame = pd.read_parquet(io.BytesIO(read_object(s3, key)))
            if "image_id" in frame:
                assert victim["image_id"] not in set(frame["image_id"]), key
