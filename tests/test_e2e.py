"""End to end: a real ``kedro run`` on real Fruits-360 images, real weights and bad files."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import MINI_RUN_K, first_run_counts, read_delta

pytestmark = [pytest.mark.shared, pytest.mark.e2e]

MINI_IMAGES, MINI_CLASSES = 72, 8
# conf/logging.yml: one line per record, whatever its length
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (?:DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+: ")
# What a quiet run may print besides its log lines: the JVM's notice of the vector module Spark's
# launcher always adds, and Spark's note that another application holds the UI's port.
EXPECTED_JVM_LINES = (
    re.compile(r"WARNING: Using incubator modules: jdk\.incubator\.vector$"),
    re.compile(r"\S+ \S+ WARN Utils: Service 'SparkUI' could not bind on port \d+\. Attempting"),
)
SPARK_LINE = re.compile(r"\d\d/\d\d/\d\d \d\d:\d\d:\d\d (?:TRACE|DEBUG|INFO|WARN|ERROR|FATAL) ")
PYTHON_WARNING = re.compile(r"\b\w*Warning: |^\s*warnings\.warn\(")
JAVA_TRACE = re.compile(
    r"^\s+at [\w$.]+\(|^Caused by: |^Exception in thread |^\S+(?:Exception|Error): "
)
IVY = re.compile(r":: resolving dependencies ::|:: loading settings ::|Ivy Default Cache|confs: \[")
NATIVE_CHATTER = (
    "XNNPACK delegate",
    "absl::InitializeLog",
    "oneDNN custom operations",
    "cpu_feature_guard",
)


def read_csv_folder(folder: Path) -> pd.DataFrame:
    parts = sorted(folder.glob("part-*.csv*"))
    assert parts, f"no CSV part in {folder}"
    return pd.concat([pd.read_csv(p) for p in parts], ignore_index=True)


@pytest.fixture(scope="module")
def finished_run(mini_run):
    return mini_run.data, mini_run.bad, mini_run.result


def test_every_image_is_embedded_or_quarantined(finished_run):
    data, bad, _ = finished_run
    metrics = json.loads((data / "08_reporting/run_metrics.json").read_text())
    assert metrics["images"] == first_run_counts(MINI_IMAGES, len(bad))
    assert metrics["embedding_images_per_s"] > 0
    assert {
        "ingestion.label_images",
        "embedding.embed_images",
        "reduction.fit_pca",
        "classification.sweep_k",
    } <= metrics["node_wall_time_s"].keys()
    assert metrics["versions"]["pyspark"] == "4.1.1"
    assert metrics["spark_conf"]["spark.sql.adaptive.enabled"].lower() == "true"
    assert metrics["spark_conf"]["spark.serializer"].endswith("KryoSerializer")


def test_quarantine_names_each_bad_file_and_why(finished_run):
    data, bad, _ = finished_run
    quarantine = read_csv_folder(data / "03_primary/image_quarantine.csv")
    found = {
        path.split("/images/", 1)[1]: reason
        for path, reason in zip(quarantine["path"], quarantine["reason"], strict=True)
    }
    assert found.keys() == bad.keys()
    for relative, word in bad.items():
        assert word in found[relative]


def test_embeddings_are_1280_floats_per_real_image(finished_run):
    data, bad, _ = finished_run
    table = read_delta(data / "04_feature/image_embeddings")
    assert len(table) == MINI_IMAGES + len(bad)  # every image read, once
    assert table["path"].is_unique
    quarantined = table[table["reason"].notna()]
    assert quarantined["features"].isna().all()
    assert {p.split("/images/", 1)[1] for p in quarantined["path"]} == bad.keys()
    embeddings = table[table["reason"].isna()]
    assert len(embeddings) == MINI_IMAGES
    assert embeddings["features"].map(len).eq(1280).all()
    assert embeddings["label"].nunique() == MINI_CLASSES
    assert set(embeddings["split"]) == {"Training", "Test"}
    assert embeddings["image_id"].is_unique
    assert embeddings["features"].map(lambda f: f.std()).gt(0).all()  # no zero vectors


def test_no_copy_of_the_image_bytes_is_written(finished_run):
    data, _, _ = finished_run
    written = sum(f.stat().st_size for f in data.rglob("*") if f.is_file())
    features = sum(f.stat().st_size for f in (data / "04_feature").rglob("*") if f.is_file())
    assert not (data / "02_intermediate").exists()
    assert not (data / "03_primary/preprocessed_images.parquet").exists()
    tables = [log.parent.relative_to(data).as_posix() for log in data.rglob("_delta_log")]
    assert sorted(tables) == [
        "04_feature/embedding_store/embeddings",
        "04_feature/embedding_store/erasures",
        "04_feature/embedding_store/files",
        "04_feature/image_embeddings",
        "07_model_output/pca_features",
        "07_model_output/test_predictions",
    ]
    assert not [p for p in data.rglob("*") if p.name.endswith((".__new", ".__old"))]
    assert features < written


def test_pca_outputs_agree(finished_run):
    data, _, _ = finished_run
    components = [f"pc_{i}" for i in range(1, MINI_RUN_K + 1)]
    csv = read_csv_folder(data / "07_model_output/pca_features.csv")
    assert list(csv.columns) == ["path", "label", "split", *components]
    assert len(csv) == MINI_IMAGES
    parquet = read_delta(data / "07_model_output/pca_features")
    assert list(parquet.columns) == ["image_id", "path", "label", "split", "pca"]
    assert parquet["pca"].map(len).eq(MINI_RUN_K).all()
    merged = parquet.merge(csv, on="path")
    assert len(merged) == MINI_IMAGES
    for i in (1, MINI_RUN_K):
        assert (merged["pca"].map(lambda v, i=i: v[i - 1]) - merged[f"pc_{i}"]).abs().max() < 1e-4

    variance = json.loads((data / "08_reporting/pca_variance.json").read_text())
    assert variance["k"] == MINI_RUN_K
    assert 0.7 < variance["total_explained_variance"] <= 1.0
    assert (data / "08_reporting/pca_variance.png").stat().st_size > 10_000
    assert (data / "06_models/pca_model/stages").is_dir()


def test_classes_separate_in_pca_space(finished_run):
    """Real features: each image's nearest neighbour (PCA space) is mostly of its own class."""
    data, _, _ = finished_run
    features = read_delta(data / "07_model_output/pca_features")
    matrix = np.stack(features["pca"].to_numpy())
    distances = ((matrix[:, None, :] - matrix[None, :, :]) ** 2).sum(-1)
    distances[range(len(matrix)), range(len(matrix))] = float("inf")
    nearest = features["label"].to_numpy()[distances.argmin(axis=1)]
    assert (nearest == features["label"].to_numpy()).mean() > 0.9


def test_classifier_metrics_confusion_and_sweep_agree(finished_run):
    data, _, _ = finished_run
    metrics = json.loads((data / "08_reporting/classification_metrics.json").read_text())
    assert metrics["k"] == MINI_RUN_K
    assert (metrics["train_images"], metrics["test_images"]) == (48, 24)
    assert metrics["classes"] == MINI_CLASSES
    assert metrics["accuracy"] >= 0.9  # 8 classes, 6 training images each
    assert set(metrics["per_class"]) == set(
        read_delta(data / "07_model_output/pca_features")["label"]
    )
    confusion = pd.read_csv(data / "08_reporting/confusion_matrix.csv", index_col=0)
    assert list(confusion.index) == list(confusion.columns)
    assert confusion.to_numpy().sum() == metrics["test_images"]
    assert confusion.to_numpy().trace() / metrics["test_images"] == pytest.approx(
        metrics["accuracy"]
    )
    predictions = read_delta(data / "07_model_output/test_predictions")
    assert len(predictions) == metrics["test_images"]
    assert predictions["correct"].mean() == pytest.approx(metrics["accuracy"])

    sweep = json.loads((data / "08_reporting/accuracy_vs_k.json").read_text())
    assert [p["k"] for p in sweep["points"]] == [10, MINI_RUN_K]
    if metrics["head"]["features"] == "pca":  # the model's own point
        assert sweep["points"][-1]["accuracy"] == metrics["accuracy"]
    scores = metrics["head"]["validation"]
    assert len(scores) == 3 and all(0 <= c["validation_accuracy"] <= 1 for c in scores)
    chosen = min(scores, key=lambda c: (-c["validation_accuracy"], c["validation_log_loss"]))
    assert {k: metrics["head"][k] for k in ("features", "transform", "reg_param")} == {
        k: chosen[k] for k in ("features", "transform", "reg_param")
    }
    assert metrics["inputs"] == 1280  # the candidates read the features
    assert (data / "06_models/classifier_model/stages").is_dir()
    assert (data / "06_models/app/fruits_classifier.tflite").stat().st_size > 1_000_000


def test_plots_and_the_report_are_written(finished_run):
    data, _, _ = finished_run
    reporting = data / "08_reporting"
    for plot in ("pca_variance", "pca_scatter", "confusion_matrix", "accuracy_vs_k"):
        assert (reporting / f"{plot}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (reporting / "run_report.html").read_text()
    metrics = json.loads((reporting / "classification_metrics.json").read_text())
    assert f"{100 * metrics['accuracy']:.2f} %" in report
    assert report.count("data:image/png;base64,") == 6
    for plot in (
        "pca_variance",
        "pca_scatter",
        "confusion_matrix",
        "accuracy_vs_k",
        "node_times",
        "embedding_throughput",
    ):
        saved = base64.b64encode((reporting / f"{plot}.png").read_bytes()).decode()
        assert f"data:image/png;base64,{saved}" in report  # the saved plot, not a redraw
    assert "images/s embedded" in report
    counts = json.loads((reporting / "image_counts.json").read_text())
    assert (
        f'<div class="value">{counts["quarantined"]}</div><div class="name">quarantined' in report
    )
    throughput = re.search(r'"value">([^<]+)</div><div class="name">images/s embedded', report)
    assert throughput is not None
    assert float(throughput.group(1)) > 0  # the throughput of this run is known


def test_the_log_shows_the_embedding_progress_chunk_by_chunk(finished_run):
    _, bad, result = finished_run
    read = MINI_IMAGES + len(bad)
    assert re.search(rf"{read} file\(s\) to read, in 1 chunk\(s\)", result.stdout)
    assert re.search(rf"chunk 1/1: {read} file\(s\)", result.stdout)
    lines = re.findall(
        r"fruits_kedro\.observe\.progress: embedding\.embed_images: (.*)$", result.stdout, re.M
    )
    assert lines, result.stdout[-3000:]
    for line in lines[:-1]:  # every few seconds while the node runs (none if it is quick)
        assert re.match(r"Spark tasks \d+/\d+ of \d+ job\(s\) so far, elapsed", line), line
    final = re.fullmatch(
        r"done, Spark tasks (\d+)/\1 of \d+ job\(s\) so far, in \d+:\d\d", lines[-1]
    )
    assert final, lines[-1]


def test_the_progress_samples_are_in_the_run_metrics(finished_run):
    data, _, _ = finished_run
    metrics = json.loads((data / "08_reporting/run_metrics.json").read_text())
    record = metrics["progress"]["embedding.embed_images"]
    assert record["unit"] == "tasks"  # a chunked node: its Spark tasks, chunk by chunk
    done = [d for _, d in record["samples"]]
    assert done == sorted(done) and done[-1] > 0
    assert 0 < record["started_s"] < metrics["wall_time_s"]


def test_log_lines_are_whole_and_the_last_one_sums_the_run_up(finished_run):
    data, bad, result = finished_run
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert [line for line in lines if not LOG_LINE.match(line)] == []  # none wrapped
    assert max(len(line) for line in lines) > 120
    assert "Using 'conf/logging.yml' as logging configuration" in lines[0]
    summary = re.search(
        rf"run complete in [\d.]+ s: {MINI_IMAGES + len(bad)} images read, {MINI_IMAGES}"
        rf" embedded, 0 reused, {len(bad)} quarantined, embedding [\d.]+ images/s; report: (.+)$",
        lines[-1],
    )
    assert summary, lines[-1]
    assert Path(summary.group(1)).resolve() == (data / "08_reporting/run_report.html").resolve()


def test_a_run_prints_no_warning_stack_trace_or_chatter(finished_run):
    """Only log lines, the quarantined files' warnings among them, and the JVM's notices."""
    _, bad, result = finished_run
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    unexpected = [
        line
        for line in lines
        if not LOG_LINE.match(line) and not any(e.match(line) for e in EXPECTED_JVM_LINES)
    ]
    assert unexpected == []
    assert [line for line in lines if PYTHON_WARNING.search(line)] == []
    assert [line for line in lines if JAVA_TRACE.search(line)] == []
    assert [line for line in lines if IVY.search(line)] == []
    warnings = [line for line in lines if re.match(r"\S+ \S+ WARNING ", line)]
    assert all(" fruits_kedro." in line for line in warnings), warnings
    assert len(warnings) <= len(bad)  # about the user's data only


def test_the_quiet_run_check_catches_each_kind_of_noise():
    for noise in (
        "/x/omegaconf.py:881: UserWarning: register_new_resolver() is deprecated",
        "\tat org.apache.spark.util.Utils$.tryLogNonFatalError(Utils.scala:1)",
        "java.io.FileNotFoundException: /tmp/x/appstatus_local-1.inprogress does not exist",
        ":: resolving dependencies :: org.apache.spark#spark-submit-parent;1.0",
        "26/12/04 01:35:42 WARN NativeCodeLoader: Unable to load native-hadoop library",
    ):
        quiet = LOG_LINE.match(noise) or any(e.match(noise) for e in EXPECTED_JVM_LINES)
        assert not quiet, noise
        assert (
            PYTHON_WARNING.search(noise)
            or JAVA_TRACE.search(noise)
            or IVY.search(noise)
            or SPARK_LINE.match(noise)
        ), noise


def test_no_native_start_up_chatter(finished_run):
    _, _, result = finished_run
    output = result.stdout + result.stderr
    assert [noise for noise in NATIVE_CHATTER if noise in output] == []
