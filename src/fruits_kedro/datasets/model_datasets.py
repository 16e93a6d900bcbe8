"""Datasets of the exported models: the embedding model artifact and the app's model files."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

import fsspec
from kedro.io import AbstractDataset, DatasetError

from fruits_kedro.model import bundle
from fruits_kedro.model.engines import ModelArtifact

if TYPE_CHECKING:
    from collections.abc import Callable

    from fsspec import AbstractFileSystem


T = TypeVar("T")


class _OnFilesystem(AbstractDataset[T, T], Generic[T]):
    """A path on any fsspec filesystem (local, S3, ...)."""

    def __init__(
        self,
        *,
        filepath: str,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Create a dataset for ``filepath`` (a path or any fsspec URL)."""
        self._filepath = filepath
        self._fs, self._path = fsspec.core.url_to_fs(
            filepath, **(credentials or {}), **(fs_args or {})
        )
        self.metadata = metadata

    def _exists(self) -> bool:
        return bool(self._fs.exists(self._path))

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath}


class _FolderDataset(_OnFilesystem[T]):
    """A model written as a folder of files by ``bundle``."""

    _save_fn: Callable[[AbstractFileSystem, str, Any], None]
    _load_fn: Callable[[AbstractFileSystem, str], Any]

    def load(self) -> T:
        """Load the model; fails with the path when there is none."""
        try:
            return type(self)._load_fn(self._fs, self._path)
        except (OSError, KeyError, ValueError) as exc:
            raise DatasetError(f"cannot load model from {self._filepath}: {exc}") from exc

    def save(self, data: T) -> None:
        """Save the model, replacing any previous one."""
        type(self)._save_fn(self._fs, self._path, data)


class ModelArtifactDataset(_FolderDataset[ModelArtifact]):
    """The embedding model the workers run (TFLite flatbuffer or Keras weights)."""

    _save_fn = staticmethod(bundle.save_artifact)
    _load_fn = staticmethod(bundle.load_artifact)


class BytesDataset(_OnFilesystem[bytes]):
    """One file's bytes; empty bytes mean no file (it is removed)."""

    def load(self) -> bytes:
        """The file's bytes (empty when there is no file)."""
        return bytes(self._fs.cat_file(self._path)) if self._fs.exists(self._path) else b""

    def save(self, data: bytes) -> None:
        """Write the file (its folder made), or remove it when ``data`` is empty."""
        if not data:
            if self._fs.exists(self._path):
                self._fs.rm(self._path)
            return
        self._fs.makedirs(self._fs._parent(self._path), exist_ok=True)
        self._fs.pipe_file(self._path, data)
