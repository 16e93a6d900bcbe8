"""Reduction: PCA on embeddings, its variance report, the projection and the CSV rows."""

from __future__ import annotations

import numpy as np
import pytest

from fruits_kedro.pipelines.reduction.nodes import (
    effective_k,
    fit_pca,
    plot_variance,
    project,
    to_csv_rows,
)


@pytest.fixture
def embeddings(spark):
    rng = np.random.default_rng(0)
    # 3 strong directions + noise in 12 dimensions, 40 images
    basis = rng.normal(size=(3, 12))
    data = rng.normal(size=(40, 3)) * [10.0, 5.0, 2.0] @ basis + rng.normal(
        scale=0.01, size=(40, 12)
    )
    rows = [
        (
            f"id{i}",
            f"file:/x/Test/C{i % 2}/{i}.jpg",
            f"C{i % 2}",
            "Test",
            [float(v) for v in data[i]],
        )
        for i in range(40)
    ]
    return spark.createDataFrame(
        rows, "image_id string, path string, label string, split string, features array<float>"
    )


@pytest.mark.parametrize(
    ("requested", "rows", "dims", "k"), [(100, 72, 1280, 72), (100, 8240, 1280, 100), (5, 3, 2, 2)]
)
def test_effective_k_is_capped(requested, rows, dims, k):
    assert effective_k(requested, rows, dims) == k


def test_effective_k_needs_images():
    with pytest.raises(ValueError, match="at least one image"):
        effective_k(10, 0, 1280)


def test_pca_finds_the_strong_directions(embeddings):
    model, report = fit_pca(embeddings, {"k": 5})

    assert report["k"] == 5
    assert report["images"] == 40
    assert report["input_dim"] == 12
    assert report["cumulative_explained_variance"][2] > 0.999
    assert report["explained_variance_ratio"] == sorted(
        report["explained_variance_ratio"], reverse=True
    )

    features = project(embeddings, model)
    assert features.columns == [
        "image_id",
        "path",
        "label",
        "split",
        *[f"pc_{i}" for i in range(1, 6)],
    ]
    pcs = np.array([[r[f"pc_{i}"] for i in range(1, 6)] for r in features.collect()])
    assert np.allclose(pcs.mean(axis=0), 0, atol=1e-3)  # centred before projection
    assert pcs[:, 0].var() > pcs[:, 1].var() > pcs[:, 2].var() > 100 * pcs[:, 3].var()

    csv_rows = to_csv_rows(features)
    assert csv_rows.columns[:3] == ["path", "label", "split"]
    assert csv_rows.rdd.getNumPartitions() == 1


def test_variance_plot_has_bars_and_cumulative_line(embeddings):
    _, report = fit_pca(embeddings, {"k": 4})
    fig = plot_variance(report)
    bars_axis, line_axis = fig.axes
    assert len(bars_axis.patches) == 4
    assert list(line_axis.lines[0].get_ydata()) == report["cumulative_explained_variance"]
