"""One photo -> top labels without Spark: engine, PCA and classifier as plain arrays."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fruits_kedro.model.engines import ModelArtifact, get_engine
from fruits_kedro.model.imaging import decode_image


@dataclass(frozen=True)
class Dense:
    """One fully connected layer: ``outputs = inputs @ weights + bias``."""

    weights: np.ndarray  # (inputs, outputs)
    bias: np.ndarray  # (outputs,)


@dataclass(frozen=True)
class Predictor:
    """Everything inference needs, as exported from a pipeline run.

    Features are centred and projected on the principal components, standardised, then
    go through the classifier's dense layers (sigmoid between layers, softmax at the end:
    one layer for logistic regression, several for a multilayer perceptron).
    """

    artifact: ModelArtifact
    resample: str
    pca_mean: np.ndarray  # (feature_dim,)
    pca_components: np.ndarray  # (feature_dim, k)
    scaler_mean: np.ndarray  # (k,)
    scaler_std: np.ndarray  # (k,)
    layers: tuple[Dense, ...]
    labels: tuple[str, ...]
    info: dict[str, Any] = field(default_factory=dict)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, classes)`` of ``(n, feature_dim)`` embeddings."""
        components = (features.astype(np.float64) - self.pca_mean) @ self.pca_components
        std = np.where(self.scaler_std > 0, self.scaler_std, 1.0)
        hidden = np.where(self.scaler_std > 0, (components - self.scaler_mean) / std, 0.0)
        for i, layer in enumerate(self.layers):
            hidden = hidden @ layer.weights + layer.bias
            if i < len(self.layers) - 1:
                hidden = 1.0 / (1.0 + np.exp(-hidden))
        shifted = np.exp(hidden - hidden.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        """MobileNetV2 features of ``(n, size, size, 3)`` RGB pixels."""
        return get_engine(self.artifact)(pixels)

    def decode(self, content: bytes) -> np.ndarray:
        """The model's input for one image file's bytes (raises ``ImageDecodeError``)."""
        return decode_image(content, self.artifact.input_size, self.resample)

    def top(self, probabilities: np.ndarray, n: int) -> list[dict[str, Any]]:
        """The ``n`` most likely labels of one image, most likely first."""
        best = np.argsort(-probabilities, kind="stable")[:n]
        return [
            {"label": self.labels[i], "probability": float(f"{probabilities[i]:.4g}")} for i in best
        ]
