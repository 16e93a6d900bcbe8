"""int8 against fp32 TensorFlow Lite MobileNetV2: speed, test accuracy and feature agreement.

Converts the genuine weights twice (fp32, and full-integer int8 calibrated on an evenly spread,
deterministic subset of the Training images), embeds every image of ``--input-dir`` with both
engines in this one process, then compares the Test-split accuracy of two classifiers fitted on
the Training features of each engine::

    python -m fruits_kedro.bench int8 [--input-dir DIR] [--weights FILE]
        [--calibration-images 200] [--input-size 224]

Inference is timed interleaved (alternating chunks of images between the engines, each chunk
decoded once), so that a noisy, shared CPU slows both engines alike. The last line printed is
one JSON object.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fruits_kedro.bench.reference import knn_accuracy, unit_rows
from fruits_kedro.model.engines import TFLITE, TFLITE_INT8, export_artifact, get_engine
from fruits_kedro.model.imaging import decode_image
from fruits_kedro.model.mobilenet import load_weights
from fruits_kedro.model.quantize import calibration_batches, evenly_spread

if TYPE_CHECKING:
    import argparse

    from fruits_kedro.model.engines import Engine, ModelArtifact

logger = logging.getLogger(__name__)

TRAINING, TEST = "Training", "Test"
PCA_VARIANCE = 0.95


@dataclass(frozen=True)
class Dataset:
    """The images of a Fruits-360 folder (``<split>/<class>/<file>``), sorted by path."""

    files: list[Path]
    labels: np.ndarray
    splits: np.ndarray

    @classmethod
    def of(cls, files: list[Path]) -> Dataset:
        """``files``, each one's class and split read from its folders."""
        labels = np.array([p.parent.name for p in files])
        splits = np.array([p.parent.parent.name for p in files])
        return cls(files, labels, splits)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``bench int8``, besides the shared ones."""
    parser.add_argument("--calibration-images", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--chunk", type=int, default=256, help="images per timed turn")
    parser.add_argument("--resample", default="bilinear")


def decoded(files: list[Path], size: int, resample: str) -> np.ndarray:
    """The ``(n, size, size, 3)`` uint8 pixels of ``files``."""
    return np.stack([decode_image(p.read_bytes(), size, resample) for p in files])


def embed_interleaved(
    files: list[Path], engines: dict[str, Engine], args: argparse.Namespace
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Features of ``files`` from each engine and each engine's inference seconds.

    Each chunk is decoded once and run by every engine in turn, the order alternating
    from chunk to chunk; only the engine calls are timed.
    """
    names = list(engines)
    features: dict[str, list[np.ndarray]] = {name: [] for name in names}
    seconds = dict.fromkeys(names, 0.0)
    for turn, start in enumerate(range(0, len(files), args.chunk)):
        pixels = decoded(files[start : start + args.chunk], args.input_size, args.resample)
        for name in names if turn % 2 == 0 else names[::-1]:
            began = time.perf_counter()
            features[name].append(engines[name](pixels))
            seconds[name] += time.perf_counter() - began
        logger.info("embedded %d / %d images", start + len(pixels), len(files))
    return {name: np.concatenate(parts) for name, parts in features.items()}, seconds


def pca_standardize(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project on the Training principal components keeping 95 % of the variance, standardized."""
    mean = train.mean(axis=0)
    covariance = np.cov(train - mean, rowvar=False)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues, eigenvectors = eigenvalues[order], eigenvectors[:, order]
    explained = np.cumsum(eigenvalues) / max(float(eigenvalues.sum()), 1e-12)
    k = min(int(np.searchsorted(explained, PCA_VARIANCE)) + 1, len(eigenvalues))
    scale = np.sqrt(np.maximum(eigenvalues[:k], 1e-12))
    return ((train - mean) @ eigenvectors[:, :k]) / scale, (
        (test - mean) @ eigenvectors[:, :k]
    ) / scale


def softmax_regression(
    x: np.ndarray, y: np.ndarray, classes: int, l2: float = 1e-3, iterations: int = 3000
) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression (L2-penalised mean cross-entropy) by full-batch
    Nesterov-accelerated gradient descent, stopped when the gradient is ~0.

    On standardized PCA features the covariance is the identity, so the loss is
    ``(0.5 + l2)``-smooth and a step of ``1 / (0.5 + l2)`` is safe.
    """
    onehot = np.eye(classes)[y]
    weights, bias = np.zeros((x.shape[1], classes)), np.zeros(classes)
    previous = (weights, bias)
    step = 1.0 / (0.5 + l2)
    for i in range(1, iterations + 1):
        momentum = (i - 1) / (i + 2)
        w = weights + momentum * (weights - previous[0])
        b = bias + momentum * (bias - previous[1])
        logits = x @ w + b
        probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
        error = probabilities / probabilities.sum(axis=1, keepdims=True) - onehot
        grad_w, grad_b = x.T @ error / len(x) + l2 * w, error.mean(axis=0)
        previous, weights, bias = (weights, bias), w - step * grad_w, b - step * grad_b
        if np.sqrt((grad_w**2).sum() + (grad_b**2).sum()) < 1e-5:  # noqa: PLR2004
            break
    logger.info("softmax regression: %d iterations", i)
    return weights, bias


def lr_accuracy(
    train: np.ndarray, y_train: np.ndarray, test: np.ndarray, y_test: np.ndarray
) -> float:
    """Test accuracy of a softmax regression on standardized PCA features."""
    x_train, x_test = pca_standardize(train.astype(np.float64), test.astype(np.float64))
    weights, bias = softmax_regression(x_train, y_train, int(max(y_train.max(), y_test.max())) + 1)
    return float(((x_test @ weights + bias).argmax(axis=1) == y_test).mean())


def quality(features: np.ndarray, data: Dataset) -> dict[str, float]:
    """Test-split accuracies of the 1-NN and of the PCA + softmax regression."""
    _, codes = np.unique(data.labels, return_inverse=True)
    train, test = data.splits == TRAINING, data.splits == TEST
    parts = (features[train], codes[train], features[test], codes[test])
    return {"knn": knn_accuracy(*parts), "lr": lr_accuracy(*parts)}


def export_both(
    args: argparse.Namespace, data: Dataset
) -> tuple[ModelArtifact, ModelArtifact, int]:
    """The fp32 and int8 artifacts, and how many Training images calibrated the int8 one."""
    cores = os.cpu_count() or 1
    weights = load_weights(str(Path(args.weights).resolve()), args.input_size)
    fp32 = export_artifact(weights, TFLITE, args.input_size, cores, args.batch_size)
    training = [f for f, s in zip(data.files, data.splits, strict=True) if s == TRAINING]
    chosen = evenly_spread(training, args.calibration_images)
    logger.info("calibrating int8 on %d of %d Training images", len(chosen), len(training))
    contents = (path.read_bytes() for path in chosen)
    batches = calibration_batches(contents, args.input_size, args.resample, args.batch_size)
    int8 = export_artifact(
        weights, TFLITE_INT8, args.input_size, cores, args.batch_size, calibration=batches
    )
    return fp32, int8, len(chosen)


def run(files: list[Path], args: argparse.Namespace) -> dict[str, Any]:
    """Both engines on every image, timed interleaved, and their Test-split accuracies."""
    data = Dataset.of(files)
    fp32, int8, calibrated = export_both(args, data)
    engines = {"fp32": get_engine(fp32), "int8": get_engine(int8)}
    for engine in engines.values():  # warm-up: allocation, kernels
        engine(np.zeros((args.batch_size, args.input_size, args.input_size, 3), np.uint8))
    features, seconds = embed_interleaved(data.files, engines, args)
    return _report(
        data, features=features, seconds=seconds, fp32=fp32, int8=int8, calibrated=calibrated
    )


def _report(
    data: Dataset,
    *,
    features: dict[str, np.ndarray],
    seconds: dict[str, float],
    fp32: ModelArtifact,
    int8: ModelArtifact,
    calibrated: int,
) -> dict[str, Any]:
    scores = {name: quality(values, data) for name, values in features.items()}
    cosine = (unit_rows(features["int8"]) * unit_rows(features["fp32"])).sum(axis=1)
    speed = {name: len(data.files) / seconds[name] for name in seconds}
    return {
        "images": len(data.files),
        "fp32_img_s": round(speed["fp32"], 2),
        "int8_img_s": round(speed["int8"], 2),
        "speedup": round(speed["int8"] / speed["fp32"], 3),
        "fp32_knn_accuracy": round(scores["fp32"]["knn"], 4),
        "int8_knn_accuracy": round(scores["int8"]["knn"], 4),
        "fp32_lr_accuracy": round(scores["fp32"]["lr"], 4),
        "int8_lr_accuracy": round(scores["int8"]["lr"], 4),
        "lr_accuracy_delta_points": round(100 * (scores["int8"]["lr"] - scores["fp32"]["lr"]), 2),
        "mean_cosine": round(float(cosine.mean()), 4),
        "max_abs_diff": round(float(np.abs(features["int8"] - features["fp32"]).max()), 4),
        "calibration_images": calibrated,
        "int8_model_bytes": len(int8.payload),
        "fp32_model_bytes": len(fp32.payload),
    }
