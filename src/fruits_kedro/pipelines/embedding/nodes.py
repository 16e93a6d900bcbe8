"""Nodes of the embedding pipeline: ship the model once, embed in Arrow batches, reconcile."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pandas as pd
from pyspark.broadcast import Broadcast
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, FloatType, StructField, StructType

from fruits_kedro.model import cache as model_cache
from fruits_kedro.model.engines import (
    TFLITE,
    ModelArtifact,
    artifact_of,
    check_engine,
    export_artifact,
    get_engine,
)
from fruits_kedro.model.imaging import decode_image
from fruits_kedro.model.mobilenet import load_weights
from fruits_kedro.pipelines.preprocessing.nodes import usable
from fruits_kedro.spark_utils import spread

logger = logging.getLogger(__name__)

ID_COLUMNS = ["image_id", "path", "label", "split"]


def load_model(image: dict[str, Any], params: dict[str, Any]) -> ModelArtifact:
    """Load the weights once on the driver and export them for the chosen engine.

    Args:
        image: ``input_size`` of the model.
        params: ``weights`` (``imagenet`` or a weights file, local or remote),
            ``engine``, ``threads_per_worker``, ``batch_size`` and ``model_cache`` (a local
            folder that keeps converted TFLite models between runs, or null).
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
    artifact = export_artifact(load_weights(source, size), *shape)
    if isinstance(artifact.payload, bytes):
        model_cache.write(params.get("model_cache"), key, artifact.payload)
    logger.info("model ready for the %s engine (%s)", artifact.engine, artifact.fingerprint[:12])
    return artifact


def embed_partition(
    batches: Iterable[pd.DataFrame], artifact: Broadcast[ModelArtifact], resample: str
) -> Iterator[pd.DataFrame]:
    """Embed the Arrow batches of one partition with this worker's cached engine."""
    engine = get_engine(artifact.value)
    size = artifact.value.input_size
    for batch in batches:
        pixels = np.stack([decode_image(c, size, resample) for c in batch["content"]])
        features = engine(pixels)
        out = batch[ID_COLUMNS].copy()
        out["features"] = list(features)
        yield out


def embed_images(
    preprocessed_images: DataFrame,
    model: ModelArtifact,
    image: dict[str, Any],
    params: dict[str, Any],
) -> DataFrame:
    """1280 MobileNetV2 features per usable image, computed on the executors.

    The model artifact is broadcast once; each Python worker builds its engine once
    and reuses it for all its Arrow batches.
    """
    spark = preprocessed_images.sparkSession
    shipped = spark.sparkContext.broadcast(model)
    resample = str(image["resample"])
    schema = StructType(
        [
            *(preprocessed_images.schema[c] for c in ID_COLUMNS),
            StructField("features", ArrayType(FloatType(), containsNull=False), nullable=False),
        ]
    )
    images = usable(preprocessed_images).select(*ID_COLUMNS, "content")
    images = spread(images, params["partitions"], params["partitions_per_core"])
    return images.mapInPandas(lambda batches: embed_partition(batches, shipped, resample), schema)


def reconcile_counts(
    ingested_images: DataFrame, image_embeddings: DataFrame, image_quarantine: DataFrame
) -> dict[str, int]:
    """Account for every input: read = embedded + quarantined, or the run fails.

    Raises:
        ValueError: Some images were neither embedded nor quarantined (or twice).
    """
    counts = {
        "read": ingested_images.count(),
        "embedded": image_embeddings.count(),
        "quarantined": image_quarantine.count(),
    }
    logger.info("images: %s", counts)
    if counts["read"] != counts["embedded"] + counts["quarantined"]:
        raise ValueError(
            f"images unaccounted for: read {counts['read']} != embedded {counts['embedded']}"
            f" + quarantined {counts['quarantined']}"
        )
    dims = image_embeddings.select(F.size("features").alias("n")).distinct().collect()
    counts["feature_dim"] = dims[0]["n"] if dims else 0
    return counts
