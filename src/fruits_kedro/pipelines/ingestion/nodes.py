"""Nodes of the ingestion pipeline: label and split from the path, content hash as id."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

OTHER_SPLIT = "other"


def label_from_path(path: Column) -> Column:
    """The image's label: the name of its parent folder."""
    return F.element_at(F.split(path, "/"), -2)


def split_from_path(path: Column, splits: list[str]) -> Column:
    """The first folder of ``path`` named like one of ``splits``, else ``"other"``."""
    folders = F.split(path, "/")
    match = F.filter(folders, lambda folder: folder.isin(splits))
    return F.coalesce(F.try_element_at(match, F.lit(1)), F.lit(OTHER_SPLIT))


def _normalised(path: Column) -> Column:
    """One spelling per file: listings say ``file:///x``, scans ``file:/x``."""
    return F.regexp_replace(path, "^file:/+", "file:/")


def _listed_files(raw_images: DataFrame) -> list[tuple[str]]:
    """The listing's file URIs, decoded to the scan's spelling (``%20`` -> space)."""
    return [(unquote(uri),) for uri in raw_images.inputFiles()]


def with_unscanned_files(raw_images: DataFrame) -> DataFrame:
    """Add back the files the scan skips: Spark's file scan drops zero-byte files.

    They come from the file listing with empty ``content``, so that preprocessing
    quarantines them instead of losing them.
    """
    listed = raw_images.sparkSession.createDataFrame(
        _listed_files(raw_images), "path string"
    ).select(_normalised(F.col("path")).alias("path"))
    scanned = raw_images.select(_normalised(F.col("path")).alias("path"))
    unscanned = listed.join(scanned, "path", "left_anti").select(
        "path",
        F.lit(None).cast("timestamp").alias("modificationTime"),
        F.lit(0).cast("long").alias("length"),
        F.lit(b"").cast("binary").alias("content"),
    )
    return raw_images.unionByName(unscanned)


def label_images(raw_images: DataFrame, params: dict[str, Any]) -> DataFrame:
    """Describe every image file: ``image_id, path, label, split, size, content``.

    Args:
        raw_images: Spark ``binaryFile`` rows (``path``, ``length``, ``content``...);
            zero-byte files, which the scan skips, are added back from the listing.
        params: ``splits``, the folder names that name a split.
    """
    path = F.col("path")
    return with_unscanned_files(raw_images).select(
        F.sha2(F.col("content"), 256).alias("image_id"),
        path,
        label_from_path(path).alias("label"),
        split_from_path(path, list(params["splits"])).alias("split"),
        F.col("length").alias("size_bytes"),
        F.col("content"),
    )
