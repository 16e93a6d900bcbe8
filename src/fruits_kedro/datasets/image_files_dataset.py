"""``ImageFilesDataset``: every image file below a folder as a Spark ``binaryFile`` DataFrame,
zero-byte files included."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import fsspec
from kedro_datasets._utils.databricks_utils import to_spark_path
from kedro_datasets.spark import SparkDatasetV2
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    BinaryType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

BINARY_FILE_SCHEMA = StructType(
    [
        StructField("path", StringType()),
        StructField("modificationTime", TimestampType()),
        StructField("length", LongType()),
        StructField("content", BinaryType()),
    ]
)
# fsspec's name for the protocols Spark's Hadoop connectors use.
_FSSPEC_PROTOCOL = {"s3a": "s3", "s3n": "s3", "file": "file", "": "file"}


# A zero-byte file's ``binaryFile`` row, but its path.
_EMPTY_FILE: dict[str, Any] = {"modificationTime": None, "length": 0, "content": ""}


def zero_byte_rows(spark: SparkSession, paths: Sequence[str]) -> DataFrame:
    """``binaryFile`` rows with empty content for ``paths``, built in the JVM (rows from a
    Python list would start Python workers for their tasks)."""
    listed = F.array(*(F.lit(p) for p in paths)) if paths else F.array().cast("array<string>")
    exploded = spark.range(1).select(F.explode(listed).alias("path"))
    return exploded.select(
        *(
            (F.col("path") if field.name == "path" else F.lit(_EMPTY_FILE[field.name]))
            .cast(field.dataType)
            .alias(field.name)
            for field in BINARY_FILE_SCHEMA.fields
        )
    )


def glob_filter(suffixes: Sequence[str]) -> str:
    """A Hadoop glob matching any of ``suffixes`` in any case, e.g. ``*.{[jJ][pP][gG]}``."""
    cased = (
        "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in s) for s in suffixes
    )
    return "*.{" + ",".join(cased) + "}"


class ImageFilesDataset(SparkDatasetV2):
    """Image files below ``filepath`` (recursively), read with Spark's ``binaryFile`` source.

    Spark's file scan skips zero-byte files; they are found by a walk of the folder that keeps
    only them (one directory listing in memory at a time) and added back with empty
    ``content``, so that a run can quarantine them instead of losing them. Nothing else of the
    listing reaches the driver.

    Example:
        .. code-block:: yaml

            raw_images:
              type: fruits_kedro.datasets.ImageFilesDataset
              filepath: data/01_raw
              suffixes: [jpg, jpeg, png]
    """

    def __init__(
        self,
        *,
        filepath: str,
        suffixes: Sequence[str],
        credentials: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Read the files named ``*.<suffix>`` (any case) below ``filepath``."""
        self._suffixes = tuple(f".{s.lower().lstrip('.')}" for s in suffixes)
        super().__init__(
            filepath=filepath,
            file_format="binaryFile",
            load_args={"recursiveFileLookup": True, "pathGlobFilter": glob_filter(suffixes)},
            credentials=credentials,
            metadata=metadata,
        )

    def _load(self) -> DataFrame:
        """The scanned files plus the zero-byte ones the scan skipped."""
        scanned = super()._load()
        empty = list(self.empty_files())
        if not empty:
            return scanned
        spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
        return scanned.unionByName(zero_byte_rows(spark, empty))

    def empty_files(self) -> Iterator[str]:
        """The zero-byte image files, spelt as Spark's scan spells paths."""
        protocol = _FSSPEC_PROTOCOL.get(self._protocol, self._protocol)
        fs = fsspec.filesystem(protocol, **self._credentials)
        for _, _, files in fs.walk(self._path, detail=True):
            for info in files.values():
                name = str(info["name"])
                if info.get("size") == 0 and name.lower().endswith(self._suffixes):
                    yield self._spark_uri(name)

    def _spark_uri(self, path: str) -> str:
        if self._protocol in ("file", ""):
            return "file:" + path
        return to_spark_path(self._protocol, path)

    def _save(self, data: DataFrame) -> None:
        """Input images are read, never written."""
        raise NotImplementedError(f"{type(self).__name__} is read-only")

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._original_filepath, "suffixes": self._suffixes}
