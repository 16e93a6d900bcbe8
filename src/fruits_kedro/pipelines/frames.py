"""Small Spark helpers shared by the pipelines' nodes."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pyspark.sql import functions as F

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

logger = logging.getLogger(__name__)

REASON = "reason"


def spread(df: DataFrame, partitions: int | None, per_core: int) -> DataFrame:
    """Repartition ``df`` into many small partitions so that every core stays busy.

    Args:
        df: Any DataFrame.
        partitions: An explicit partition count, or ``None`` for ``per_core`` per core.
        per_core: Partitions per core of the cluster when ``partitions`` is ``None``.
    """
    count = partitions or per_core * df.sparkSession.sparkContext.defaultParallelism
    logger.info("spreading rows over %d partitions", count)
    return df.repartition(int(count))


def embedded(image_embeddings: DataFrame) -> DataFrame:
    """The images that were embedded (``reason`` is null): what PCA and the classifier see."""
    return image_embeddings.filter(F.col(REASON).isNull())


def quarantined(image_embeddings: DataFrame) -> DataFrame:
    """The images that could not be used, each with its ``reason``."""
    return image_embeddings.filter(F.col(REASON).isNotNull())
