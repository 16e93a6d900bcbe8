"""Nodes of the embedding pipeline: ship the model once, decode and embed every image in one
pass on the executors (or say why it cannot be used), then account for every input."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

import pandas as pd
from pyspark.broadcast import Broadcast
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, FloatType, StringType, StructField, StructType

from fruits_kedro.model import cache as model_cache
from fruits_kedro.model.engines import (
    TFLITE,
    TFLITE_INT8,
    ModelArtifact,
    artifact_of,
    check_engine,
    export_artifact,
    get_engine,
)
from fruits_kedro.model.featurize import featurize
from fruits_kedro.model.mobilenet import load_weights
from fruits_kedro.model.quantize import calibration_batches
from fruits_kedro.spark_utils import REASON, embedded, quarantined, spread

logger = logging.getLogger(__name__)

ID_COLUMNS = ["image_id", "path", "label", "split", "size_bytes"]
QUARANTINE_COLUMNS = ["path", "label", "split", "image_id", "size_bytes", REASON]


def load_model(
    ingested_images: DataFrame, image: dict[str, Any], params: dict[str, Any]
) -> ModelArtifact:
    """Load the weights once on the driver and export them for the chosen engine.

    Args:
        ingested_images: The images; read only by ``tflite_int8``, which calibrates on
            ``calibration_images`` Training images of them.
        image: ``input_size`` and ``resample`` of the model input.
        params: ``weights`` (``imagenet`` or a weights file, local or remote),
            ``engine``, ``threads_per_worker``, ``batch_size``, ``calibration_images`` and
            ``calibration_split`` (int8), and
            ``model_cache`` (a local folder that keeps converted fp32 TFLite models between
            runs, or null).
    """
    size, engine, source = int(image["input_size"]), str(params["engine"]), str(params["weights"])
    check_engine(engine)
    shape = (engine, size, int(params["threads_per_worker"]), int(params["batch_size"]))
    key = model_cache.cache_key(source, size) if engine == TFLITE else None
    cached = model_cache.read(params.get("model_cache"), key)
    if cached is not None:
        logger.info("TFLite model of %s (%d px) from the model cache", source, size)
        return artifact_of(cached, *shape)
    logger.info("loading MobileNetV2 weights from %s (%d px)", source, size)
    calibration = None
    if engine == TFLITE_INT8:
        contents = calibration_contents(
            ingested_images, str(params["calibration_split"]), int(params["calibration_images"])
        )
        calibration = calibration_batches(contents, size, str(image["resample"]))
    artifact = export_artifact(load_weights(source, size), *shape, calibration=calibration)
    if engine == TFLITE and isinstance(artifact.payload, bytes):
        model_cache.write(params.get("model_cache"), key, artifact.payload)
    logger.info("model ready for the %s engine (%s)", artifact.engine, artifact.fingerprint[:12])
    return artifact


def calibration_contents(ingested_images: DataFrame, split: str, count: int) -> Iterator[bytes]:
    """The bytes of ``count`` images of ``split``, picked by a hash of their path.

    The paths are chosen on the listing alone; only the chosen files are read, one partition
    at a time.
    """
    chosen = (
        ingested_images.filter(F.col("split") == split)
        .select("path")
        .orderBy(F.xxhash64("path"), "path")
        .limit(count)
    )
    paths = [row["path"] for row in chosen.collect()]
    logger.info("calibrating int8 on %d %s images", len(paths), split)
    picked = ingested_images.filter(F.col("path").isin(paths)).select("content")
    return (bytes(row["content"]) for row in picked.toLocalIterator())


def embed_partition(
    batches: Iterable[pd.DataFrame], artifact: Broadcast[ModelArtifact], resample: str
) -> Iterator[pd.DataFrame]:
    """Decode and embed the Arrow batches of one partition with this worker's cached engine."""
    engine = get_engine(artifact.value)
    size = artifact.value.input_size
    for batch in batches:
        features, reasons = featurize(batch["content"], engine, size, resample)
        out = batch[ID_COLUMNS].copy()
        out["features"] = features
        out[REASON] = reasons
        yield out


def embed_images(
    ingested_images: DataFrame,
    model: ModelArtifact,
    image: dict[str, Any],
    params: dict[str, Any],
) -> DataFrame:
    """One row per image read: 1280 MobileNetV2 features, or null and the ``reason``.

    The bytes are shuffled once (spread over the cores), decoded once and embedded in the
    same pass; the model artifact is broadcast once and each Python worker builds its engine
    once for all its Arrow batches.
    """
    spark = ingested_images.sparkSession
    shipped = spark.sparkContext.broadcast(model)
    resample = str(image["resample"])
    schema = StructType(
        [
            *(ingested_images.schema[c] for c in ID_COLUMNS),
            StructField("features", ArrayType(FloatType(), containsNull=False)),
            StructField(REASON, StringType()),
        ]
    )
    images = spread(ingested_images, params["partitions"], params["partitions_per_core"])
    return images.mapInPandas(lambda batches: embed_partition(batches, shipped, resample), schema)


def quarantine_images(image_embeddings: DataFrame) -> DataFrame:
    """The images that could not be used, with their path and a human-readable reason."""
    return quarantined(image_embeddings).select(*QUARANTINE_COLUMNS)


def reconcile_counts(ingested_images: DataFrame, image_embeddings: DataFrame) -> dict[str, int]:
    """Account for every input: read = embedded + quarantined, each image once, or the run fails.

    Raises:
        ValueError: Some images were neither embedded nor quarantined, or twice.
    """
    totals = image_embeddings.agg(
        F.count("*").alias("rows"),
        F.count_distinct("path").alias("paths"),
        F.count(F.col(REASON)).alias("quarantined"),
    ).collect()[0]
    rows, paths, bad = (int(totals[c]) for c in ("rows", "paths", "quarantined"))
    counts = {"read": ingested_images.count(), "embedded": rows - bad, "quarantined": bad}
    logger.info("images: %s", counts)
    if counts["read"] != counts["embedded"] + counts["quarantined"] or paths != rows:
        raise ValueError(
            f"images unaccounted for: read {counts['read']} != embedded {counts['embedded']}"
            f" + quarantined {counts['quarantined']} ({rows - paths} path(s) twice)"
        )
    first = embedded(image_embeddings).select(F.size("features").alias("n")).first()
    counts["feature_dim"] = int(first["n"]) if first else 0
    return counts
