"""Datasets of the exported models: the embedding model artifact and the predictor."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

import fsspec
from kedro.io import AbstractDataset, DatasetError

from fruits_kedro.model import bundle
from fruits_kedro.model.engines import ModelArtifact
from fruits_kedro.model.predictor import Predictor

if TYPE_CHECKING:
    from collections.abc import Callable

    from fsspec import AbstractFileSystem


T = TypeVar("T")


class _FolderDataset(AbstractDataset[T, T], Generic[T]):
    """A model written as a folder of files by ``bundle``, local or remote (fsspec)."""

    _save_fn: Callable[[AbstractFileSystem, str, Any], None]
    _load_fn: Callable[[AbstractFileSystem, str], Any]

    def __init__(
        self,
        *,
        filepath: str,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Create a dataset for the folder ``filepath`` (a path or any fsspec URL)."""
        self._filepath = filepath
        self._fs, self._path = fsspec.core.url_to_fs(
            filepath, **(credentials or {}), **(fs_args or {})
        )
        self.metadata = metadata

    def load(self) -> T:
        """Load the model; fails with the path when there is none."""
        try:
            return type(self)._load_fn(self._fs, self._path)
        except (OSError, KeyError, ValueError) as exc:
            raise DatasetError(f"cannot load model from {self._filepath}: {exc}") from exc

    def save(self, data: T) -> None:
        """Save the model, replacing any previous one."""
        type(self)._save_fn(self._fs, self._path, data)

    def _exists(self) -> bool:
        return bool(self._fs.exists(self._path))

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath}


class ModelArtifactDataset(_FolderDataset[ModelArtifact]):
    """The embedding model the workers run (TFLite flatbuffer or Keras weights)."""

    _save_fn = staticmethod(bundle.save_artifact)
    _load_fn = staticmethod(bundle.load_artifact)


class PredictorDataset(_FolderDataset[Predictor]):
    """Embedding model + PCA + classifier as plain arrays, for ``fruits-predict``."""

    _save_fn = staticmethod(bundle.save_predictor)
    _load_fn = staticmethod(bundle.load_predictor)
