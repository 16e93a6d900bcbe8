"""Nodes of the embedding pipeline: ship the model once, read, decode and embed only the images
the embedding store lacks, a committed chunk at a time, on the executors (or say why an image
cannot be used); then this run's embeddings from the store, and every input accounted for."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from itertools import islice
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from fruits_kedro.datasets.embedding_store_dataset import EmbeddingChunk, EmbeddingStore
from fruits_kedro.datasets.image_reader_dataset import ImageReader
from fruits_kedro.model import cache as model_cache
from fruits_kedro.model.engines import (
    TFLITE,
    TFLITE_INT8,
    ModelArtifact,
    artifact_of,
    check_engine,
    export_artifact,
)
from fruits_kedro.model.mobilenet import load_weights
from fruits_kedro.model.quantize import calibration_batches
from fruits_kedro.pipelines.embedding.incremental import (
    CHANGED,
    LISTING_COLUMNS,
    NEW,
    REMOVED,
    UNCHANGED,
    RunChanges,
    chunk_results,
    current_embeddings,
    files_to_read,
    model_key,
    run_changes,
    settings,
)
from fruits_kedro.pipelines.frames import REASON, embedded, quarantined

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
        params: ``weights`` (``imagenet``, a weights file, or a ``.tflite`` model converted
            by ``make package``, read without TensorFlow; local or remote),
            ``engine``, ``threads_per_worker``, ``batch_size``, ``calibration_images`` and
            ``calibration_split`` (int8), and
            ``model_cache`` (a local folder that keeps converted fp32 TFLite models between
            runs, or null).
    """
    size, engine, source = int(image["input_size"]), str(params["engine"]), str(params["weights"])
    check_engine(engine)
    shape = (engine, size, int(params["threads_per_worker"]), int(params["batch_size"]))
    converted = model_cache.read_converted(source, engine, size)  # a .tflite: no TensorFlow
    if converted is not None:
        logger.info("TFLite model %s (%d px), converted when packaged", source, size)
        return artifact_of(converted, *shape)
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


def embed_images(
    ingested_images: DataFrame,
    image_reader: ImageReader,
    stored_embeddings: EmbeddingStore,
    *,
    model: ModelArtifact,
    image: dict[str, Any],
    params: dict[str, Any],
) -> Iterator[tuple[EmbeddingChunk, RunChanges]]:
    """Embed what the store lacks, a chunk at a time; each chunk is committed when saved.

    Only new or changed files, and files whose image has no embedding by this model, are read
    (``chunk_size`` of them per chunk, by name); an image already stored is not sent through the
    model again. Yields each chunk, then the paths present (files gone leave the store's file
    table), each with this run's :class:`RunChanges`.
    """
    key = model_key(model, str(image["resample"]))
    listing = ingested_images.select(*LISTING_COLUMNS)
    changes = run_changes(listing, stored_embeddings, key)
    # Kept, not checkpointed: if an executor is lost, the plan is recomputed, less the files
    # committed meanwhile; those sort before every file still to come.
    todo = files_to_read(listing, stored_embeddings, key).persist(StorageLevel.MEMORY_AND_DISK)
    total = todo.count()
    chunk_size, partitions, per_core = settings(params)
    chunks = max(1, math.ceil(total / chunk_size))
    logger.info("%d file(s) to read, in %d chunk(s); model %s", total, chunks, key[:12])
    if total:
        shipped = ingested_images.sparkSession.sparkContext.broadcast(model)
        cores = ingested_images.sparkSession.sparkContext.defaultParallelism
        spread = partitions or max(1, min(per_core * cores, math.ceil(total / chunks)))
        # Streamed in path order: the driver holds one chunk's names at a time.
        listed = todo.orderBy("path").toLocalIterator()
        for chunk in range(chunks):
            files = [(row["path"], int(row["size_bytes"])) for row in islice(listed, chunk_size)]
            logger.info("chunk %d/%d: %d file(s)", chunk + 1, chunks, len(files))
            results = chunk_results(
                image_reader.read(files),
                stored_embeddings,
                key=key,
                model=shipped,
                resample=str(image["resample"]),
                partitions=spread,
            )
            stamped = results.withColumn("model_key", F.lit(key)).withColumn(
                "embedded_at", F.current_timestamp()
            )
            yield EmbeddingChunk(results=stamped), changes
    yield EmbeddingChunk(present=listing.select("path")), changes
    todo.unpersist()


def select_embeddings(
    ingested_images: DataFrame,
    embedding_store: EmbeddingStore,
    model: ModelArtifact,
    image: dict[str, Any],
) -> DataFrame:
    """This run's embeddings: one row per file read and not erased, with its features from the
    store, or null and the ``reason`` it cannot be used."""
    key = model_key(model, str(image["resample"]))
    listing = ingested_images.select(*LISTING_COLUMNS)
    rows = current_embeddings(listing, embedding_store, key)
    return rows.select(*ID_COLUMNS, "features", REASON)


def quarantine_images(image_embeddings: DataFrame) -> DataFrame:
    """The images that could not be used, with their path and a human-readable reason."""
    return quarantined(image_embeddings).select(*QUARANTINE_COLUMNS)


def reconcile_counts(
    ingested_images: DataFrame, image_embeddings: DataFrame, image_changes: RunChanges
) -> dict[str, int]:
    """Account for every input: read = usable + quarantined + erased, each path once, or the
    run fails; and say what this run did (new, changed, unchanged, removed files; images
    sent through the model, reused from the store).

    Raises:
        ValueError: Some files were neither embedded, quarantined nor erased, or twice.
    """
    totals = image_embeddings.agg(
        F.count("*").alias("rows"),
        F.count_distinct("path").alias("paths"),
        F.count(F.col(REASON)).alias("quarantined"),
        F.count(F.col("features")).alias("usable"),
    ).collect()[0]
    rows, paths, bad, usable = (int(totals[c]) for c in ("rows", "paths", "quarantined", "usable"))
    read = ingested_images.count()
    changes = {
        row["change"]: int(row["n"])
        for row in image_changes.files.groupBy("change").agg(F.count("*").alias("n")).collect()
    }
    inferred = image_changes.inferred.agg(
        F.count("*").alias("all"), F.count(F.col(REASON)).alias("bad")
    ).collect()[0]
    reused = image_embeddings.join(image_changes.inferred, "image_id", "left_anti").count()
    counts = {
        "read": read,
        "usable": usable,
        "quarantined": bad,
        "erased": read - rows,
        "embedded": int(inferred["all"]) - int(inferred["bad"]),
        "reused": reused,
        **{change: changes.get(change, 0) for change in (NEW, CHANGED, UNCHANGED, REMOVED)},
    }
    logger.info("images: %s", counts)
    missing = rows - usable - bad
    if missing or paths != rows or rows > read:
        raise ValueError(
            f"images unaccounted for: read {read} = usable {usable} + quarantined {bad}"
            f" + erased {read - rows} does not hold ({missing} without features or reason,"
            f" {rows - paths} path(s) twice)"
        )
    first = embedded(image_embeddings).select(F.size("features").alias("n")).first()
    counts["feature_dim"] = int(first["n"]) if first else 0
    return counts
