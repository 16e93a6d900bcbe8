"""``SparkMLModelDataset``: save and load a fitted Spark ML ``PipelineModel`` (a failed save
keeps the previous one)."""

from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset, DatasetError
from pyspark.ml import PipelineModel

from fruits_kedro.datasets.swap import folder_exists, readable_path, swap_write


class SparkMLModelDataset(AbstractDataset[PipelineModel, PipelineModel]):
    """A fitted ``pyspark.ml.PipelineModel`` in Spark ML's own folder format.

    Example:
        .. code-block:: yaml

            pca_model:
              type: fruits_kedro.datasets.SparkMLModelDataset
              filepath: data/06_models/pca_model
    """

    def __init__(self, *, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        """Create a dataset for the model folder at ``filepath`` (any Hadoop URI)."""
        self._filepath = filepath
        self.metadata = metadata

    def load(self) -> PipelineModel:
        """Load the model; fails with the path when there is none."""
        try:
            return PipelineModel.load(readable_path(self._filepath))
        except Exception as exc:
            raise DatasetError(f"cannot load Spark ML model from {self._filepath}: {exc}") from exc

    def save(self, data: PipelineModel) -> None:
        """Save the model, then swap it in place of the previous one (kept if the save fails)."""
        swap_write(self._filepath, data.write().save)

    def _exists(self) -> bool:
        return folder_exists(self._filepath)

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath}
