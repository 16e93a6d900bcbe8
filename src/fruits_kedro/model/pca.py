"""PCA from the moments of the data: count, sum and Gram matrix, merged across partitions.

The Gram matrix ``X^T X`` of a batch is one matrix product (level-3 BLAS), so one pass over
the embeddings fits the whole spectrum; the eigendecomposition of the 1280 x 1280 covariance is
done once. Pure numpy: the Spark wiring is in the reduction pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterable


@dataclass(frozen=True)
class Moments:
    """Count, column sums and Gram matrix of a set of row vectors (float64)."""

    count: int
    total: np.ndarray
    gram: np.ndarray

    def __add__(self, other: Moments) -> Moments:
        return Moments(self.count + other.count, self.total + other.total, self.gram + other.gram)


def moments_of(batches: Iterable[np.ndarray], dims: int) -> Moments:
    """The moments of every row of ``batches`` (each an ``(n, dims)`` array)."""
    total, gram, count = np.zeros(dims), np.zeros((dims, dims)), 0
    for batch in batches:
        rows = np.asarray(batch, dtype=np.float64)
        count += len(rows)
        total += rows.sum(axis=0)
        gram += rows.T @ rows
    return Moments(count, total, gram)


@dataclass(frozen=True)
class Spectrum:
    """Mean, principal axes (columns, by falling variance) and explained-variance ratios."""

    mean: np.ndarray
    components: np.ndarray
    explained_variance_ratio: np.ndarray


def spectrum_of(moments: Moments) -> Spectrum:
    """The principal components of the covariance of the rows the moments describe.

    Each axis's sign is fixed so that its largest coordinate is positive (deterministic).
    """
    if moments.count < 2:  # noqa: PLR2004
        raise ValueError(f"PCA needs at least two images, got {moments.count}")
    mean = moments.total / moments.count
    covariance = (moments.gram - moments.count * np.outer(mean, mean)) / (moments.count - 1)
    variances, axes = np.linalg.eigh((covariance + covariance.T) / 2)
    order = np.argsort(variances)[::-1]
    variances, axes = np.clip(variances[order], 0.0, None), axes[:, order]
    signs = np.sign(axes[np.abs(axes).argmax(axis=0), np.arange(axes.shape[1])])
    axes = axes * np.where(signs == 0, 1.0, signs)
    ratios = variances / variances.sum() if variances.sum() > 0 else variances
    return Spectrum(mean, axes, ratios)


def project(rows: np.ndarray, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
    """``rows`` centred and projected on ``components`` (``(dims, k)``), as float32."""
    return ((np.asarray(rows, dtype=np.float64) - mean) @ components).astype(np.float32)
