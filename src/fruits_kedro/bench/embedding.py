"""The embedding pipeline against the engine alone and plain Keras (``bench embedding``).

Gives ``pipeline_img_s``, ``ceiling_img_s``, ``ratio``, ``keras_img_s`` (plain Keras on a
subset), ``peak_rss_mb`` (largest Spark Python worker) and ``knn_accuracy`` (Test split,
1-nearest-neighbour on the Training features: a quality check).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fruits_kedro.bench.memory import WorkerPeakRss
from fruits_kedro.bench.reference import engine_alone_img_s, knn_accuracy, run_settings
from fruits_kedro.bench.workspace import (
    project_context,
    run_pipelines,
    runtime_params,
    scratch_project,
    workspace,
)
from fruits_kedro.model.engines import KERAS
from fruits_kedro.model.mobilenet import load_weights

if TYPE_CHECKING:
    import argparse

    import pandas as pd


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``bench embedding``, besides the shared ones."""
    parser.add_argument(
        "--keras-images",
        type=int,
        default=256,
        help="images for the plain-Keras reference (0 to skip)",
    )


def nearest_neighbour_accuracy(frame: pd.DataFrame) -> float | None:
    """Test-split accuracy of a cosine 1-nearest-neighbour on the Training split's features.

    Args:
        frame: ``label, split, features`` of the embedded images.
    """
    train, test = frame[frame["split"] == "Training"], frame[frame["split"] == "Test"]
    if train.empty or test.empty:
        return None
    features = (np.stack(part["features"].to_numpy()) for part in (train, test))
    labels = (part["label"].to_numpy() for part in (train, test))
    (x_train, x_test), (y_train, y_test) = features, labels
    return knn_accuracy(x_train, y_train, x_test, y_test)


def run(files: list[Path], args: argparse.Namespace) -> dict[str, Any]:
    """The embedding pipeline, then the engine alone and plain Keras on the same images."""
    params = runtime_params(args)
    with workspace(args.keep) as tmp:
        project = scratch_project(args.project_dir.resolve(), tmp / "project")
        with WorkerPeakRss() as rss:
            run_pipelines(project, params, ["embedding"])
        with project_context(project, params) as context:
            metrics = context.catalog.load("run_metrics")
            embedded = context.catalog.load("image_embeddings").filter("reason IS NULL")
            metrics["knn_accuracy"] = nearest_neighbour_accuracy(
                embedded.select("label", "split", "features").toPandas()
            )
            settings = run_settings(context.params)
    return _measure(files, args, metrics, settings, rss.peak_kb)


def _measure(
    files: list[Path],
    args: argparse.Namespace,
    metrics: dict[str, Any],
    settings: dict[str, Any],
    peak_kb: int,
) -> dict[str, Any]:
    embedding = settings["embedding"]
    size, engine = int(settings["image"]["input_size"]), embedding["engine"]
    weights = load_weights(str(Path(args.weights).resolve()), size)
    ceiling = engine_alone_img_s(files, weights, settings)
    keras_img_s = None
    if args.keras_images:
        subset = files[:: max(1, len(files) // args.keras_images)]
        keras_img_s = engine_alone_img_s(subset, weights, settings, KERAS)
    pipeline = metrics["embedding_images_per_s"]
    return {
        "images": metrics["images"]["read"],
        "embedded": metrics["images"]["embedded"],
        "engine": engine,
        "input_size": size,
        "pipeline_img_s": pipeline,
        "ceiling_img_s": round(ceiling, 2),
        "ratio": round(pipeline / ceiling, 3),
        "keras_img_s": round(keras_img_s, 2) if keras_img_s else None,
        "speedup_vs_keras": round(pipeline / keras_img_s, 2) if keras_img_s else None,
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "knn_accuracy": metrics["knn_accuracy"],
        "cores": os.cpu_count() or 1,
        "threads_per_worker": embedding["threads_per_worker"],
        "batch_size": embedding["batch_size"],
        "partitions_per_core": embedding["partitions_per_core"],
        "arrow_max_records_per_batch": metrics["spark_conf"].get(
            "spark.sql.execution.arrow.maxRecordsPerBatch"
        ),
    }
