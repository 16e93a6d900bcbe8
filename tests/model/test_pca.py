"""PCA from moments: merged partial moments equal the whole, the spectrum is numpy's own."""

from __future__ import annotations

import numpy as np
import pytest

from fruits_kedro.model.pca import moments_of, project, spectrum_of

RNG = np.random.default_rng(3)
ROWS = (RNG.normal(size=(300, 6)) * [5.0, 3.0, 2.0, 1.0, 0.5, 0.1]) @ np.linalg.qr(
    RNG.normal(size=(6, 6))
)[0] + 7.0


def test_partial_moments_merge_to_those_of_the_whole():
    whole = moments_of([ROWS], 6)
    merged = moments_of([ROWS[:100]], 6) + moments_of([ROWS[100:250], ROWS[250:]], 6)

    assert merged.count == whole.count == 300
    np.testing.assert_allclose(merged.total, whole.total)
    np.testing.assert_allclose(merged.gram, whole.gram)


def test_spectrum_is_the_eigendecomposition_of_the_covariance():
    spectrum = spectrum_of(moments_of([ROWS], 6))

    variances, axes = np.linalg.eigh(np.cov(ROWS, rowvar=False))
    order = np.argsort(variances)[::-1]
    np.testing.assert_allclose(spectrum.mean, ROWS.mean(axis=0))
    np.testing.assert_allclose(
        spectrum.explained_variance_ratio, variances[order] / variances.sum(), atol=1e-12
    )
    np.testing.assert_allclose(np.abs(spectrum.components), np.abs(axes[:, order]), atol=1e-8)
    assert (spectrum.components[np.abs(spectrum.components).argmax(axis=0), range(6)] > 0).all()


def test_projection_is_centred_and_decorrelated():
    spectrum = spectrum_of(moments_of([ROWS], 6))

    projected = project(ROWS, spectrum.mean, spectrum.components[:, :3])

    assert projected.dtype == np.float32
    np.testing.assert_allclose(projected.mean(axis=0), 0, atol=1e-4)
    covariance = np.cov(projected, rowvar=False)
    np.testing.assert_allclose(covariance - np.diag(np.diag(covariance)), 0, atol=1e-3)


def test_one_image_is_not_enough():
    with pytest.raises(ValueError, match="at least two images"):
        spectrum_of(moments_of([ROWS[:1]], 6))
