"""What a pipeline is measured against: the engine alone in one process, and a quick quality
check of the features (cosine 1-nearest-neighbour)."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from fruits_kedro.model.engines import export_artifact, get_engine
from fruits_kedro.model.featurize import featurize

if TYPE_CHECKING:
    from pathlib import Path


def single_process_img_s(files: list[Path], artifact: Any, size: int, resample: str) -> float:
    """Images/s of read + decode + resize + engine in this one process, all cores."""
    engine = get_engine(artifact)
    engine(np.zeros((1, size, size, 3), np.uint8))  # warm-up: allocation, kernels
    start = time.perf_counter()
    for i in range(0, len(files), artifact.batch_size):
        chunk = files[i : i + artifact.batch_size]
        featurize([p.read_bytes() for p in chunk], engine, size, resample)
    return len(files) / (time.perf_counter() - start)


def engine_alone_img_s(
    files: list[Path], weights: list[np.ndarray], settings: dict[str, Any], engine: str = ""
) -> float:
    """Images/s of ``engine`` (default: the project's) alone, one process, all cores.

    Args:
        files: The images to time.
        weights: MobileNetV2's weights.
        settings: The run's ``image`` and ``embedding`` parameters.
        engine: An engine name other than the project's.
    """
    embedding, image = settings["embedding"], settings["image"]
    size, resample = int(image["input_size"]), str(image["resample"])
    artifact = export_artifact(
        weights,
        engine or embedding["engine"],
        size,
        os.cpu_count() or 1,
        int(embedding["batch_size"]),
    )
    return single_process_img_s(files, artifact, size, resample)


def run_settings(parameters: dict[str, Any]) -> dict[str, Any]:
    """The parameters the engine alone is built from."""
    return {"image": parameters["image"], "embedding": parameters["embedding"]}


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length."""
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def knn_accuracy(
    train: np.ndarray, y_train: np.ndarray, test: np.ndarray, y_test: np.ndarray
) -> float:
    """Test accuracy of a cosine 1-nearest-neighbour on the Training features."""
    nearest = y_train[(unit_rows(test) @ unit_rows(train).T).argmax(axis=1)]
    return float((nearest == y_test).mean())
