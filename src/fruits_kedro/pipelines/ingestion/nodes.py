"""Nodes of the ingestion pipeline: label and split from the path."""

from __future__ import annotations

from typing import Any

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


def label_images(raw_images: DataFrame, params: dict[str, Any]) -> DataFrame:
    """Describe every image file: ``path, label, split, size_bytes, modified, content``.

    Lazy: the embedding stage reads the bytes of only the files it has to (new or changed).

    Args:
        raw_images: Spark ``binaryFile`` rows (``path``, ``length``, ``content``), zero-byte
            files included (the catalog's ``ImageFilesDataset`` adds them back).
        params: ``splits``, the folder names that name a split.
    """
    path = F.col("path")
    return raw_images.select(
        path,
        label_from_path(path).alias("label"),
        split_from_path(path, list(params["splits"])).alias("split"),
        F.col("length").alias("size_bytes"),
        F.col("modificationTime").alias("modified"),
        F.col("content"),
    )
