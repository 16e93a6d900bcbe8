"""Folder formats of the exported models, on any fsspec filesystem (local, S3, ...).

* a model artifact: ``artifact.json`` + ``model.tflite`` (TFLite) or ``weights.npz`` (Keras);
"""

from __future__ import annotations

import io
import json
from dataclasses import fields
from typing import TYPE_CHECKING, Any

import numpy as np

from fruits_kedro.model.engines import ModelArtifact

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

ARTIFACT_JSON = "artifact.json"
TFLITE_FILE = "model.tflite"
WEIGHTS_FILE = "weights.npz"
FORMAT_VERSION = 1


def _write_npz(fs: AbstractFileSystem, path: str, arrays: dict[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    fs.pipe_file(path, buffer.getvalue())


def _read_npz(fs: AbstractFileSystem, path: str) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(fs.cat_file(path))) as npz:
        return {name: npz[name] for name in npz.files}


def _write_json(fs: AbstractFileSystem, path: str, data: dict[str, Any]) -> None:
    fs.pipe_file(path, json.dumps(data, indent=2).encode())


def _read_json(fs: AbstractFileSystem, path: str) -> dict[str, Any]:
    return json.loads(fs.cat_file(path))


def _fresh(fs: AbstractFileSystem, folder: str) -> None:
    if fs.exists(folder):
        fs.rm(folder, recursive=True)
    fs.makedirs(folder, exist_ok=True)


def save_artifact(fs: AbstractFileSystem, folder: str, artifact: ModelArtifact) -> None:
    """Write ``artifact`` to ``folder``, replacing what was there."""
    _fresh(fs, folder)
    meta = {f.name: getattr(artifact, f.name) for f in fields(artifact) if f.name != "payload"}
    if isinstance(artifact.payload, bytes):
        fs.pipe_file(f"{folder}/{TFLITE_FILE}", artifact.payload)
    else:
        _write_npz(
            fs, f"{folder}/{WEIGHTS_FILE}", {f"w{i:04d}": w for i, w in enumerate(artifact.payload)}
        )
    _write_json(fs, f"{folder}/{ARTIFACT_JSON}", {"format": FORMAT_VERSION, **meta})


def load_artifact(fs: AbstractFileSystem, folder: str) -> ModelArtifact:
    """Read the artifact written by :func:`save_artifact`."""
    meta = _read_json(fs, f"{folder}/{ARTIFACT_JSON}")
    meta.pop("format", None)
    if fs.exists(f"{folder}/{TFLITE_FILE}"):
        payload: bytes | list[np.ndarray] = bytes(fs.cat_file(f"{folder}/{TFLITE_FILE}"))
    else:
        weights = _read_npz(fs, f"{folder}/{WEIGHTS_FILE}")
        payload = [weights[name] for name in sorted(weights)]
    return ModelArtifact(payload=payload, **meta)
