"""Column logic of incremental embedding: what a run must read, what it must send through the
model, and how this run's files compare with the store's."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pyspark.broadcast import Broadcast
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    FloatType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from fruits_kedro.datasets.embedding_store_dataset import EmbeddingStore
from fruits_kedro.model.engines import ModelArtifact, get_engine
from fruits_kedro.model.featurize import featurize
from fruits_kedro.pipelines.frames import REASON

LISTING_COLUMNS = ["path", "label", "split", "size_bytes", "modified"]
FILE_KEY = ["path", "size_bytes", "modified"]
RESULT_SCHEMA = StructType(
    [
        StructField("path", StringType()),
        StructField("size_bytes", LongType()),
        StructField("modified", TimestampType()),
        StructField("image_id", StringType()),
        StructField("features", ArrayType(FloatType(), containsNull=False)),
        StructField(REASON, StringType()),
        StructField("inferred", BooleanType()),
    ]
)
NEW, CHANGED, UNCHANGED, REMOVED = "new", "changed", "unchanged", "removed"


@dataclass(frozen=True)
class RunChanges:
    """What a run found, as lazy DataFrames: ``files`` (``path, change``: new, changed,
    unchanged or removed since the store's last run) and ``inferred`` (``image_id, reason`` of
    each image this run tried to embed)."""

    files: DataFrame
    inferred: DataFrame


def model_key(model: ModelArtifact, resample: str) -> str:
    """The fingerprint of the embeddings a model makes: its weights, engine and input size (the
    artifact's fingerprint) and the resize filter."""
    return hashlib.sha256(f"{model.fingerprint}/{resample}".encode()).hexdigest()


def known_files(listing: DataFrame, store: EmbeddingStore) -> DataFrame:
    """``listing`` with the ``image_id`` of each file the store has seen unchanged (else null):
    the same path, size and modification time (null times match)."""
    files = store.files.select(
        F.col("path").alias("_path"),
        F.col("size_bytes").alias("_size"),
        F.col("modified").alias("_modified"),
        "image_id",
    )
    same = (
        (listing["path"] == files["_path"])
        & (listing["size_bytes"] == files["_size"])
        & listing["modified"].eqNullSafe(files["_modified"])
    )
    return listing.join(files, same, "left").drop("_path", "_size", "_modified")


def settled_ids(store: EmbeddingStore, key: str) -> DataFrame:
    """The ``image_id`` of each image never to send through the model again: stored under
    ``key`` (features or reason), or erased. An id may appear twice."""
    stored = store.embeddings.filter(F.col("model_key") == key).select("image_id")
    return stored.unionByName(store.erasures.select("image_id"))


def files_to_read(listing: DataFrame, store: EmbeddingStore, key: str) -> DataFrame:
    """The files whose bytes this run needs: new or changed, or whose image lacks an
    embedding by this model (and was not erased)."""
    known = known_files(listing, store)
    return known.join(settled_ids(store, key), "image_id", "left_anti").select(*FILE_KEY)


def chunk_results(
    read: DataFrame,
    store: EmbeddingStore,
    *,
    key: str,
    model: Broadcast[ModelArtifact],
    resample: str,
    partitions: int,
) -> DataFrame:
    """One row per file read: its ``image_id`` and, for the one path per new image that goes
    through the model, its features or reason.

    The bytes are shuffled once, by ``image_id``: the lookup in the store and the choice of one
    path per image use that partitioning. An image already stored (the same bytes under another
    path, or committed by an earlier chunk) or erased is not sent through the model.
    """
    hashed = read.select(
        "path",
        F.col("length").alias("size_bytes"),
        F.col("modificationTime").alias("modified"),
        F.sha2("content", 256).alias("image_id"),
        "content",
    ).repartition(partitions, "image_id")
    done = settled_ids(store, key).distinct()
    first = F.row_number().over(Window.partitionBy("image_id").orderBy("path")) == 1
    flagged = (
        hashed.join(done.withColumn("done", F.lit(True)), "image_id", "left")
        .withColumn("inferred", first & F.col("done").isNull())
        .drop("done")
    )
    return flagged.mapInPandas(
        lambda batches: embed_batches(batches, model, resample), RESULT_SCHEMA
    )


def embed_batches(
    batches: Iterable[pd.DataFrame], artifact: Broadcast[ModelArtifact], resample: str
) -> Iterator[pd.DataFrame]:
    """Decode and embed the rows marked ``inferred`` with this worker's cached engine; the
    others pass without features."""
    for batch in batches:
        out = batch[["path", "size_bytes", "modified", "image_id", "inferred"]].copy()
        features: list[Any] = [None] * len(batch)
        reasons: list[str | None] = [None] * len(batch)
        todo = np.flatnonzero(batch["inferred"].to_numpy(dtype=bool))
        if len(todo):
            engine = get_engine(artifact.value)
            contents = batch["content"].iloc[todo]
            found = featurize(contents, engine, artifact.value.input_size, resample)
            for i, vector, reason in zip(todo, *found, strict=True):
                features[i], reasons[i] = vector, reason
        out["features"], out[REASON] = features, reasons
        yield out[RESULT_SCHEMA.names]


def run_changes(listing: DataFrame, store: EmbeddingStore, key: str) -> RunChanges:
    """How this run's files compare with the store at the start of the run (lazy)."""
    before = store.files_at_load
    paths = (
        listing.select(*FILE_KEY)
        .alias("l")
        .join(before.alias("b"), F.col("l.path") == F.col("b.path"), "full_outer")
    )
    same = (F.col("l.size_bytes") == F.col("b.size_bytes")) & F.col("l.modified").eqNullSafe(
        F.col("b.modified")
    )
    change = (
        F.when(F.col("l.path").isNull(), REMOVED)
        .when(F.col("b.path").isNull(), NEW)
        .when(same, UNCHANGED)
        .otherwise(CHANGED)
    )
    files = paths.select(F.coalesce("l.path", "b.path").alias("path"), change.alias("change"))
    now = store.embeddings.filter(F.col("model_key") == key).select("image_id", REASON)
    then = store.embeddings_at_load.filter(F.col("model_key") == key).select("image_id")
    return RunChanges(files=files, inferred=now.join(then, "image_id", "left_anti"))


def current_embeddings(listing: DataFrame, store: EmbeddingStore, key: str) -> DataFrame:
    """One row per listed file not erased: ``image_id``, features or reason (null both when the
    store lacks the file: the accounting then fails the run)."""
    known = known_files(listing, store)
    rows = store.embeddings.filter(F.col("model_key") == key).select("image_id", "features", REASON)
    return known.join(store.erasures.select("image_id"), "image_id", "left_anti").join(
        rows, "image_id", "left"
    )


def erased_files(listing: DataFrame, store: EmbeddingStore) -> DataFrame:
    """The listed files whose image was erased."""
    known = known_files(listing, store)
    return known.join(store.erasures.select("image_id"), "image_id", "left_semi")


def settings(params: dict[str, Any]) -> tuple[int, int | None, int]:
    """``chunk_size``, ``partitions`` and ``partitions_per_core`` of ``params:embedding``."""
    partitions = params.get("partitions")
    return (
        int(params["chunk_size"]),
        int(partitions) if partitions else None,
        int(params["partitions_per_core"]),
    )
