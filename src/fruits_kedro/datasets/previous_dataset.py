"""``PreviousDataset``: what an earlier run saved, or ``None`` when there is none yet."""

from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset


class PreviousDataset(AbstractDataset[None, Any]):
    """Loads another dataset's data if it exists, else ``None``; read-only.

    A node that may keep an earlier run's output (a PCA model not refitted) reads it through
    this alias: the output itself stays the node's, so the pipeline has no cycle.

    Example:
        .. code-block:: yaml

            saved_pca_model:
              type: fruits_kedro.datasets.PreviousDataset
              dataset:
                type: fruits_kedro.datasets.SparkMLModelDataset
                filepath: data/06_models/pca_model
    """

    def __init__(self, *, dataset: dict[str, Any], metadata: dict[str, Any] | None = None) -> None:
        """Wrap the dataset described by ``dataset`` (a catalog entry)."""
        self._dataset = AbstractDataset.from_config("previous", dict(dataset))
        self.metadata = metadata

    def load(self) -> Any:
        """The wrapped dataset's data, or ``None`` when it has not been saved yet."""
        return self._dataset.load() if self._dataset.exists() else None

    def save(self, data: None) -> None:
        raise NotImplementedError(f"{type(self).__name__} is read-only")

    def _describe(self) -> dict[str, Any]:
        return {"dataset": self._dataset._describe()}
