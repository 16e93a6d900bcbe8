"""Reduction: PCA on embeddings, its variance report, the projection and the CSV rows."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.feature import PCA, StandardScaler
from pyspark.ml.functions import array_to_vector

from fruits_kedro.pipelines.reduction import nodes
from fruits_kedro.pipelines.reduction.nodes import (
    check_k_params,
    effective_k,
    fit_pca,
    k_for_variance,
    plot_pca_scatter,
    plot_variance,
    project,
    scatter_points,
    spread_classes,
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
            None,
        )
        for i in range(40)
    ]
    quarantined = ("bad", "file:/x/Test/C0/bad.jpg", "C0", "Test", None, "empty file (0 bytes)")
    return spark.createDataFrame(
        [*rows, quarantined],
        "image_id string, path string, label string, split string, features array<float>,"
        " reason string",
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
    model, report = fit_pca(embeddings, None, None, {"k": 5})

    assert report["k"] == 5
    assert report["images"] == 40
    assert report["input_dim"] == 12
    assert report["cumulative_explained_variance"][2] > 0.999
    assert report["explained_variance_ratio"] == sorted(
        report["explained_variance_ratio"], reverse=True
    )

    features = project(embeddings, model)
    assert features.count() == 40  # the quarantined image is not projected
    assert features.columns == ["image_id", "path", "label", "split", "pca"]
    pcs = np.array([r.pca for r in features.collect()])
    assert pcs.shape == (40, 5)
    assert np.allclose(pcs.mean(axis=0), 0, atol=1e-3)  # centred before projection
    assert pcs[:, 0].var() > pcs[:, 1].var() > pcs[:, 2].var() > 100 * pcs[:, 3].var()

    csv_rows = to_csv_rows(features, report)
    assert csv_rows.columns == ["path", "label", "split", *[f"pc_{i}" for i in range(1, 6)]]
    first = csv_rows.orderBy("path").first()
    assert [first[f"pc_{i}"] for i in range(1, 6)] == features.orderBy("path").first().pca


def test_one_pass_fit_is_spark_mls_own_fit_at_k(embeddings):
    """The moments' eigendecomposition gives Spark ML's PCA: same axes (up to sign), same
    explained variance, and the saved model projects like ours."""
    truncated, report = fit_pca(embeddings, None, None, {"k": 3})
    vectors = embeddings.filter("reason IS NULL").select(
        "image_id", array_to_vector("features").alias("features_vector")
    )
    direct = Pipeline(
        stages=[
            StandardScaler(inputCol="features_vector", outputCol="c", withMean=True, withStd=False),
            PCA(k=3, inputCol="c", outputCol="pca"),
        ]
    ).fit(vectors)

    ours, theirs = truncated.stages[-1], direct.stages[-1]
    assert ours.getK() == 3
    assert ours.pc.toArray().shape == (12, 3)
    np.testing.assert_allclose(np.abs(ours.pc.toArray()), np.abs(theirs.pc.toArray()), atol=1e-6)
    np.testing.assert_allclose(
        ours.explainedVariance.toArray(), theirs.explainedVariance.toArray(), atol=1e-9
    )
    assert report["explained_variance_ratio"] == pytest.approx(
        list(theirs.explainedVariance.toArray())
    )
    spark_ml = truncated.transform(vectors)
    theirs_projected = np.array([r.pca.toArray() for r in spark_ml.orderBy("image_id").collect()])
    ours_projected = np.array(
        [r.pca for r in project(embeddings, truncated).orderBy("image_id").collect()]
    )
    assert np.abs(ours_projected - theirs_projected).max() < 1e-4


def test_the_truncated_model_saves_and_loads(embeddings, tmp_path):
    model, _ = fit_pca(embeddings, None, None, {"k": 2})
    model.write().overwrite().save(str(tmp_path / "pca"))

    loaded = PipelineModel.load(str(tmp_path / "pca"))

    assert loaded.stages[-1].getK() == 2
    before = [r.pca[0] for r in project(embeddings, model).orderBy("image_id").collect()]
    after = [r.pca[0] for r in project(embeddings, loaded).orderBy("image_id").collect()]
    assert before == pytest.approx(after)


def test_variance_plot_has_bars_and_cumulative_line(embeddings):
    _, report = fit_pca(embeddings, None, None, {"k": 4})
    fig = plot_variance(report)
    bars_axis, line_axis = fig.axes
    assert len(bars_axis.patches) == 4
    assert list(line_axis.lines[0].get_ydata()) == report["full_spectrum_cumulative"]
    assert report["full_spectrum_cumulative"][:4] == report["cumulative_explained_variance"]


def test_target_variance_chooses_the_fewest_components(embeddings):
    model, report = fit_pca(embeddings, None, None, {"k": None, "target_variance": 0.999})

    assert report["k"] == 3  # three strong directions, then noise
    assert report["target_variance"] == 0.999
    assert report["total_explained_variance"] >= 0.999
    assert report["full_spectrum_cumulative"][1] < 0.999
    assert len(report["full_spectrum_cumulative"]) == 12
    assert len(project(embeddings, model).first().pca) == 3
    fig = plot_variance(report)
    assert len(fig.axes[0].patches) == 3
    assert len(fig.axes[1].lines[0].get_ydata()) == 12  # the full spectrum


@pytest.mark.parametrize(
    ("cumulative", "target", "k"),
    [([0.5, 0.9, 1.0], 0.9, 2), ([0.5, 0.9, 1.0], 0.91, 3), ([0.5, 0.8], 0.95, 2), ([1.0], 1.0, 1)],
)
def test_k_for_variance(cumulative, target, k):
    assert k_for_variance(cumulative, target) == k


def test_a_fixed_k_wins_over_the_target():
    assert check_k_params({"k": 50, "target_variance": 0.95}) == (50, None)
    assert check_k_params({"k": None, "target_variance": 0.9}) == (None, 0.9)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"k": None, "target_variance": None}, r"reduction\.k .*both are null"),
        ({"k": 0, "target_variance": None}, r"reduction\.k .*positive integer.*0"),
        ({"k": "ten", "target_variance": None}, r"reduction\.k .*'ten'"),
        ({"k": None, "target_variance": 1.5}, r"reduction\.target_variance .*1\.5"),
        ({"target_variance": 0}, r"reduction\.target_variance"),
    ],
)
def test_bad_k_parameters_name_the_key(params, message):
    with pytest.raises(ValueError, match=message):
        check_k_params(params)


def test_scatter_classes_are_spread_over_the_names():
    names = [f"Apple {i}" for i in range(10)] + ["Banana", "Cherry", "Kiwi", "Lemon", "Mango"]
    chosen = spread_classes(names, 4)
    assert chosen[0] == "Apple 0"
    assert chosen[-1] == "Mango"
    assert len(chosen) == 4
    assert spread_classes(["b", "a"], 5) == ["a", "b"]


def test_scatter_points_and_plot(embeddings):
    model, _ = fit_pca(embeddings, None, None, {"k": 2})
    features = project(embeddings, model)

    points = scatter_points(features, {"scatter_classes": 1, "scatter_points_per_class": 7})

    assert list(points.columns) == ["label", "split", "pc_1", "pc_2"]
    assert len(points) == 7
    assert points["label"].nunique() == 1
    fig = plot_pca_scatter(points)
    assert len(fig.axes[0].collections) == 1


@pytest.fixture
def fits(monkeypatch):
    """Counts the PCA fits."""
    calls: list[dict] = []
    fit = nodes._fit_pca

    def counted(image_embeddings, params):
        calls.append(params)
        return fit(image_embeddings, params)

    monkeypatch.setattr(nodes, "_fit_pca", counted)
    return calls


def other_embeddings(spark, seed: int):
    rng = np.random.default_rng(seed)
    return spark.createDataFrame(
        [(f"o{i}", [float(v) for v in rng.normal(size=12)], None) for i in range(20)],
        "image_id string, features array<float>, reason string",
    )


def test_without_refit_the_saved_pca_is_kept(spark, embeddings, fits):
    saved_model, saved_variance = fit_pca(embeddings, None, None, {"k": 3})
    saved_pc = saved_model.stages[-1].pc.toArray()
    others = other_embeddings(spark, 7)

    model, variance = fit_pca(others, saved_model, saved_variance, {"k": 5, "refit": False})

    assert len(fits) == 1  # the first fit only
    assert model is saved_model
    assert variance == saved_variance
    np.testing.assert_array_equal(model.stages[-1].pc.toArray(), saved_pc)
    refitted, report = fit_pca(others, saved_model, saved_variance, {"k": 5, "refit": True})
    assert (report["k"], report["images"]) == (5, 20)
    assert refitted.stages[-1].pc.toArray().shape == (12, 5)


@pytest.mark.parametrize("saved", ["nothing", "model only", "variance only"])
def test_without_refit_a_pca_is_fitted_when_none_is_saved(embeddings, fits, saved):
    first_model, first_variance = fit_pca(embeddings, None, None, {"k": 2})
    fits.clear()
    saved_model = first_model if saved == "model only" else None
    saved_variance = first_variance if saved == "variance only" else None

    model, report = fit_pca(embeddings, saved_model, saved_variance, {"k": 4, "refit": False})

    assert len(fits) == 1
    assert model is not first_model
    assert (report["k"], report["images"]) == (4, 40)
    assert model.stages[-1].getK() == 4


def test_refit_is_the_default(embeddings, fits):
    saved_model, saved_variance = fit_pca(embeddings, None, None, {"k": 2})

    model, report = fit_pca(embeddings, saved_model, saved_variance, {"k": 3})

    assert len(fits) == 2
    assert model is not saved_model
    assert report["k"] == 3
