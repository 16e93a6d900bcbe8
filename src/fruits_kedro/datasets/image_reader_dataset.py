"""``ImageReaderDataset``: reads the bytes of named image files, and only those.

Spark's ``binaryFile`` scan of a folder reads every file it lists; filtering its rows on
``path`` afterwards does not spare the reads. An incremental run reads only the files it has to
embed, a chunk at a time, by naming them: this dataset loads a reader that does that, as
``PartitionedDataset`` loads one loader per partition.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kedro.io import AbstractDataset
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from fruits_kedro.datasets.image_files_dataset import zero_byte_rows

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pyspark.sql import DataFrame

# Hadoop reads a load path as a glob: these characters are escaped to name one file.
_GLOB = re.compile(r"([\\\[\]{}*?])")


def literal_path(path: str) -> str:
    """``path`` with Hadoop's glob characters escaped, so that it names exactly one file."""
    return _GLOB.sub(r"\\\1", path)


@dataclass(frozen=True)
class ImageReader:
    """Reads named files with Spark's ``binaryFile`` source (rows as ``ImageFilesDataset``)."""

    def read(self, files: Sequence[tuple[str, int]]) -> DataFrame:
        """The ``binaryFile`` rows of ``files`` (``(path, size_bytes)`` pairs, paths as Spark
        spells them); zero-byte files, which Spark's scan skips, come back with empty content."""
        spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
        rows = zero_byte_rows(spark, [path for path, size in files if size == 0])
        named = [literal_path(path) for path, size in files if size != 0]
        if named:
            scanned = spark.read.format("binaryFile").load(named)
            rows = scanned.unionByName(rows)
        return rows.withColumn("length", F.col("length").cast("long"))


class ImageReaderDataset(AbstractDataset[None, ImageReader]):
    """Loads an :class:`ImageReader`; read-only.

    Example:
        .. code-block:: yaml

            image_reader:
              type: fruits_kedro.datasets.ImageReaderDataset
    """

    def __init__(self, *, metadata: dict[str, Any] | None = None) -> None:
        """A reader of the paths a node names (Spark's Hadoop connectors resolve them)."""
        self.metadata = metadata

    def load(self) -> ImageReader:
        return ImageReader()

    def save(self, data: None) -> None:
        raise NotImplementedError(f"{type(self).__name__} is read-only")

    def _describe(self) -> dict[str, Any]:
        return {}
