"""Nodes of the preprocessing pipeline: decode check, image facts and the quarantine."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from typing import Any

import pandas as pd
from PIL import Image
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StringType, StructField, StructType

from fruits_kedro.model.imaging import ImageDecodeError, decode_image
from fruits_kedro.spark_utils import spread

CHECK_FIELDS = [
    StructField("format", StringType()),
    StructField("mode", StringType()),
    StructField("width", IntegerType()),
    StructField("height", IntegerType()),
    StructField("reason", StringType()),
]
QUARANTINE_COLUMNS = ["path", "label", "split", "image_id", "size_bytes", "reason"]


def inspect_image(content: bytes, size: int, resample: str) -> dict[str, Any]:
    """Facts about one image, or the reason it cannot be used."""
    try:
        decode_image(content, size, resample)
    except ImageDecodeError as exc:
        return {"format": None, "mode": None, "width": None, "height": None, "reason": exc.reason}
    with Image.open(io.BytesIO(content)) as img:
        return {
            "format": img.format,
            "mode": img.mode,
            "width": img.width,
            "height": img.height,
            "reason": None,
        }


def check_images(
    ingested_images: DataFrame, image: dict[str, Any], params: dict[str, Any]
) -> DataFrame:
    """Decode every image as the model will, and record its facts or its fault.

    Args:
        ingested_images: Output of ingestion, with ``content``.
        image: ``input_size`` and ``resample``, shared with the embedding stage.
        params: ``partitions`` and ``partitions_per_core``.

    Returns:
        The input columns plus ``format, mode, width, height`` and ``reason``
        (``null`` for a usable image).
    """
    size, resample = int(image["input_size"]), str(image["resample"])
    schema = StructType([*ingested_images.schema.fields, *CHECK_FIELDS])

    def check(batches: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            facts = [inspect_image(content, size, resample) for content in batch["content"]]
            yield pd.concat([batch, pd.DataFrame(facts, index=batch.index)], axis=1)

    spread_images = spread(ingested_images, params["partitions"], params["partitions_per_core"])
    return spread_images.mapInPandas(check, schema)


def usable(preprocessed_images: DataFrame) -> DataFrame:
    """The images that decode: what the embedding stage reads."""
    return preprocessed_images.filter(F.col("reason").isNull())


def quarantine_images(preprocessed_images: DataFrame) -> DataFrame:
    """The images that do not decode, with their path and a human-readable reason."""
    return preprocessed_images.filter(F.col("reason").isNotNull()).select(*QUARANTINE_COLUMNS)
