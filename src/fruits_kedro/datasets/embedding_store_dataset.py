"""``EmbeddingStoreDataset``: every embedding ever computed, as Delta Lake tables.

Three tables below one folder:

- ``embeddings``: one row per ``(image_id, model_key)``: the image's features, or the reason it
  cannot be used. ``image_id`` is the SHA-256 of the bytes, ``model_key`` the fingerprint of the
  model and its input; rows are only added (and erased, below).
- ``files``: one row per path seen: its size, modification time and ``image_id``. A file whose
  size and time are unchanged is not read again.
- ``erasures``: the ids erased on request (GDPR); a run never embeds them again.

Each saved chunk is one commit to ``embeddings`` then one to ``files``: a run killed between
chunks keeps what it committed, and the next run starts from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from delta.tables import DeltaTable
from kedro.io import AbstractDataset
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    FloatType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from fruits_kedro.datasets.swap import delete_folder

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

EMBEDDINGS_SCHEMA = StructType(
    [
        StructField("image_id", StringType(), False),
        StructField("model_key", StringType(), False),
        # elements nullable: a staged chunk read back from Parquet says so (none is null)
        StructField("features", ArrayType(FloatType(), containsNull=True)),
        StructField("reason", StringType()),
        StructField("embedded_at", TimestampType()),
    ]
)
FILES_SCHEMA = StructType(
    [
        StructField("path", StringType(), False),
        StructField("size_bytes", LongType()),
        StructField("modified", TimestampType()),
        StructField("image_id", StringType(), False),
    ]
)
ERASURES_SCHEMA = StructType(
    [
        StructField("image_id", StringType(), False),
        StructField("erased_at", TimestampType()),
    ]
)
_TABLES = {"embeddings": EMBEDDINGS_SCHEMA, "files": FILES_SCHEMA, "erasures": ERASURES_SCHEMA}
STAGING = "staging"  # the chunk being committed (a hidden name would be skipped on read)


@dataclass(frozen=True)
class EmbeddingStore:
    """The store's tables as lazy DataFrames, read at their latest version when a job runs.

    ``embeddings_at_load`` and ``files_at_load`` stay at the versions of the load, so that a run
    can tell what it added and what changed since the last run.
    """

    embeddings: DataFrame
    files: DataFrame
    erasures: DataFrame
    embeddings_at_load: DataFrame
    files_at_load: DataFrame


@dataclass(frozen=True)
class EmbeddingChunk:
    """What a run commits: a chunk of ``results``, one row per file read (``path, size_bytes,
    modified, image_id``) with, for the images sent through the model, ``model_key, features,
    reason`` and ``inferred`` true; or, once every chunk is in, the ``present`` paths (the
    rows of files no longer present are dropped)."""

    results: DataFrame | None = None
    present: DataFrame | None = None


class EmbeddingStoreDataset(AbstractDataset[EmbeddingChunk, EmbeddingStore]):
    """Delta tables of embeddings, files seen and erasures below ``filepath`` (any Hadoop URI).

    Example:
        .. code-block:: yaml

            embedding_store:
              type: fruits_kedro.datasets.EmbeddingStoreDataset
              filepath: data/04_feature/embedding_store
    """

    def __init__(self, *, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        """The store in the folder ``filepath``; its tables are created on first use."""
        self._filepath = filepath.rstrip("/")
        self.metadata = metadata
        self._tables: dict[str, DeltaTable] = {}

    def table_path(self, name: str) -> str:
        """Where the table ``name`` lives."""
        return f"{self._filepath}/{name}"

    def table(self, name: str) -> DeltaTable:
        """The Delta table ``name``, created empty if missing (its operations act on its latest
        version)."""
        if name not in self._tables:
            self._tables[name] = (
                DeltaTable.createIfNotExists(_spark())
                .location(self.table_path(name))
                .addColumns(_TABLES[name])
                .execute()
            )
        return self._tables[name]

    def load(self) -> EmbeddingStore:
        """The tables (created empty on first use)."""
        spark = _spark()
        tables = {name: self.table(name) for name in _TABLES}
        pinned = {}
        for name in ("embeddings", "files"):
            version = tables[name].history(1).select("version").first()
            pinned[name] = (
                spark.read.format("delta")
                .option("versionAsOf", int(version["version"]) if version else 0)
                .load(self.table_path(name))
            )
        return EmbeddingStore(
            embeddings=tables["embeddings"].toDF(),
            files=tables["files"].toDF(),
            erasures=tables["erasures"].toDF(),
            embeddings_at_load=pinned["embeddings"],
            files_at_load=pinned["files"],
        )

    def save(self, data: EmbeddingChunk) -> None:
        """Commit one chunk: its new embeddings first, then the files it read; or drop the rows
        of the files no longer present.

        The chunk is computed once (staged for both commits). Embeddings are inserted only
        where ``(image_id, model_key)`` is absent; a file's row is replaced.
        """
        if data.present is not None:
            files = self.table("files")
            gone = files.toDF().join(data.present, "path", "left_anti")
            if not gone.isEmpty():  # a commit only when files were removed
                files.alias("t").merge(
                    data.present.select("path").alias("s"), "t.path = s.path"
                ).whenNotMatchedBySourceDelete().execute()
        if data.results is None:
            return
        # Staged as Parquet (features, no bytes): both commits read it, so the chunk goes
        # through the model once, and a lost executor loses nothing staged.
        staging = self.table_path(STAGING)
        data.results.write.mode("overwrite").parquet(staging)
        results = _spark().read.parquet(staging)
        inferred = results.filter(F.col("inferred")).select(*EMBEDDINGS_SCHEMA.names)
        self._merge("embeddings", inferred, "t.image_id = s.image_id AND t.model_key = s.model_key")
        (
            self.table("files")
            .alias("t")
            .merge(results.select(*FILES_SCHEMA.names).alias("s"), "t.path = s.path")
            .whenMatchedUpdateAll()
            .whenNotMatchedInsertAll()
            .execute()
        )
        delete_folder(staging)

    def _merge(self, name: str, rows: DataFrame, condition: str) -> None:
        (
            self.table(name)
            .alias("t")
            .merge(rows.alias("s"), condition)
            .whenNotMatchedInsertAll()
            .execute()
        )

    def erase(self, image_ids: DataFrame) -> None:
        """Erase the images of ``image_ids`` (one ``image_id`` column) from the current tables
        and record them in ``erasures``; their old files remain until :meth:`vacuum`."""
        ids = image_ids.select("image_id").distinct()
        for name in ("embeddings", "files"):
            self.table(name).alias("t").merge(
                ids.alias("s"), "t.image_id = s.image_id"
            ).whenMatchedDelete().execute()
        self._merge(
            "erasures",
            ids.withColumn("erased_at", F.current_timestamp()),
            "t.image_id = s.image_id",
        )

    def vacuum(self, retention_hours: float) -> None:
        """Delete the data files no version younger than ``retention_hours`` needs."""
        for name in _TABLES:
            self.table(name).vacuum(retention_hours)

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath}


def _spark() -> SparkSession:
    return SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
