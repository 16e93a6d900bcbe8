"""The benchmark command runs the real stages and prints one complete JSON line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from fruits_kedro.bench.__main__ import main
from fruits_kedro.bench.workspace import runtime_params
from tests.conftest import PROJECT_ROOT, write_images


def test_runtime_params_nest_dotted_keys_like_kedro():
    args = argparse.Namespace(
        input_dir=Path("/img"),
        weights="/w.h5",
        input_size=128,
        engine="keras",
        params="embedding.batch_size=8,reduction.k=5",
    )
    assert runtime_params(args) == {
        "input_dir": "/img",
        "weights": "/w.h5",
        "image": {"input_size": 128},
        "embedding": {"engine": "keras", "batch_size": 8},
        "reduction": {"k": 5},
    }


def test_benchmark_prints_pipeline_ceiling_and_keras_figures(tmp_path, random_weights):
    images = write_images(tmp_path / "images", classes=2, per_split=4)

    code = main(
        [
            "embedding",
            "--input-dir",
            str(tmp_path / "images"),
            "--weights",
            str(random_weights),
            "--input-size",
            "32",
            "--keras-images",
            "4",
            "--project-dir",
            str(PROJECT_ROOT),
            "--output",
            str(tmp_path / "result.json"),
        ]
    )

    assert code == 0
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["images"] == result["embedded"] == images
    assert result["engine"] == "tflite"
    assert result["input_size"] == 32
    assert result["pipeline_img_s"] > 0
    assert result["ceiling_img_s"] > 0
    assert result["ratio"] == round(result["pipeline_img_s"] / result["ceiling_img_s"], 3)
    assert result["keras_img_s"] > 0
    assert result["peak_rss_mb"] > 10  # a Spark Python worker was seen
    assert 0.0 <= result["knn_accuracy"] <= 1.0


def test_end_to_end_benchmark_times_the_whole_run(tmp_path, random_weights):
    images = write_images(tmp_path / "images", classes=3, per_split=4)
    (tmp_path / "images/Test/Fruit 0/empty.jpg").write_bytes(b"")

    code = main(
        [
            "end-to-end",
            "--input-dir",
            str(tmp_path / "images"),
            "--weights",
            str(random_weights),
            "--input-size",
            "32",
            "--params",
            "reduction.k=4,classification.sweep_k=[2]",
            "--project-dir",
            str(PROJECT_ROOT),
            "--output",
            str(tmp_path / "result.json"),
        ]
    )

    assert code == 0
    result = json.loads((tmp_path / "result.json").read_text())
    assert (result["images"], result["embedded"]) == (images + 1, images)
    assert result["wall_s"] > result["embed_s"] > 0
    assert result["overhead_ratio"] == pytest.approx(
        result["wall_s"] / (result["images"] / result["ceiling_img_s"]), rel=1e-2
    )
    assert {
        "ingestion.label_images",
        "embedding.embed_images",
        "reduction.fit_pca",
        "classification.sweep_k",
        "export.export_app_models",
    } <= set(result["node_wall_time_s"])
    assert result["driver_jvm_rss_mb"] > 100  # the Spark JVM of this process was seen
    assert result["driver_python_rss_mb"] > 50
    assert result["worker_rss_mb"] > 10
    assert result["bytes_written"]["image_embeddings"] > 0
    assert result["bytes_written_total"] == sum(result["bytes_written"].values())
    assert result["input_bytes"] == sum(
        f.stat().st_size for f in (tmp_path / "images").rglob("*.jpg")
    )


def test_int8_benchmark_prints_one_json_line(tmp_path, random_weights, capsys):
    write_images(tmp_path, classes=2, per_split=4, size=40)

    argv = ["--input-dir", str(tmp_path), "--weights", str(random_weights)]
    code = main(["int8", *argv, "--calibration-images", "3", "--input-size", "32"])

    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0
    assert result["images"] == 16
    assert result["calibration_images"] == 3
    assert result["int8_model_bytes"] < result["fp32_model_bytes"]
    assert 0 <= result["fp32_lr_accuracy"] <= 1
    assert -1 <= result["mean_cosine"] <= 1


@pytest.mark.shared
def test_app_benchmark_checks_the_files_of_a_finished_run(mini_run, tmp_path):
    code = main(
        [
            "app",
            "--run-dir",
            str(mini_run.project),
            "--input-dir",
            str(mini_run.images),  # the bad files among them are skipped
            "--project-dir",
            str(mini_run.project),
            "--output",
            str(tmp_path / "result.json"),
        ]
    )

    assert code == 0
    result = json.loads((tmp_path / "result.json").read_text())
    assert (result["test_images"], result["classes"]) == (24, 8)
    assert result["files"]["fp32"]["bytes"] > result["files"]["int8"]["bytes"] > 1_000_000
    assert result["files"]["fp32"]["top1_accuracy"] >= 0.9
    assert result["files"]["fp32"]["latency_ms_1_thread"] > 0
    assert result["fp32_top1_identical_to_pipeline"] == 1.0
    assert result["fp32_max_probability_difference"] < 1e-4
    mediapipe = result["mediapipe"]["fp32"]
    assert mediapipe["top1_agreement_with_fruits_predict"] >= 0.9
    assert {label for example in mediapipe["examples"] for label, _ in example["top"]} <= set(
        json.loads((mini_run.data / "06_models/app/model_card.json").read_text())["labels"]
    )
