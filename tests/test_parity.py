"""Parity: every engine gives Keras' features on real images, and the same results downstream."""

from __future__ import annotations

import numpy as np
import pytest

from fruits_kedro.model.engines import KERAS, TFLITE, TFLITE_INT8
from fruits_kedro.pipelines.embedding.nodes import embed_images, load_model
from fruits_kedro.pipelines.reduction.nodes import fit_pca, project

pytestmark = pytest.mark.shared

IMAGE = {"input_size": 224, "resample": "bilinear"}
K = 20


@pytest.fixture(scope="module")
def mini_images(spark, mini_dir):
    rows = [
        (
            str(i),
            str(p),
            p.parent.name,
            p.parent.parent.name,
            p.stat().st_size,
            bytearray(p.read_bytes()),
        )
        for i, p in enumerate(sorted(mini_dir.glob("*/*/*.jpg")))
    ]
    return spark.createDataFrame(
        rows,
        "image_id string, path string, label string, split string, size_bytes long, content binary",
    )


@pytest.fixture(scope="module")
def embeddings(mini_images, weights_file):
    """Each engine's embeddings of the 72 mini images, through the Spark stage."""
    found = {}
    for engine in (KERAS, TFLITE):
        params = {
            "weights": str(weights_file),
            "engine": engine,
            "threads_per_worker": 1,
            "batch_size": 8,
            "partitions": 4,
            "partitions_per_core": 1,
        }
        found[engine] = embed_images(
            mini_images, load_model(mini_images, IMAGE, params), IMAGE, params
        ).cache()
    return found


def matrix(df):
    rows = sorted(df.collect(), key=lambda r: int(r.image_id))
    return (
        np.array([r.features for r in rows]),
        np.array([r.label for r in rows]),
        np.array([r.split for r in rows]),
    )


def nearest_neighbour_predictions(features, splits, labels):
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    test, train = splits == "Test", splits == "Training"
    return labels[train][(unit[test] @ unit[train].T).argmax(axis=1)]


def test_tflite_features_equal_keras_features(embeddings, record_property):
    keras_features, _, _ = matrix(embeddings[KERAS])
    tflite_features, _, _ = matrix(embeddings[TFLITE])

    cosine = (keras_features * tflite_features).sum(1) / (
        np.linalg.norm(keras_features, axis=1) * np.linalg.norm(tflite_features, axis=1)
    )
    max_abs = float(np.abs(keras_features - tflite_features).max())
    record_property("min_cosine", float(cosine.min()))
    record_property("max_abs_difference", max_abs)

    assert keras_features.shape == (72, 1280)
    assert cosine.min() >= 0.9999
    assert max_abs < 1e-3


def test_pca_and_nearest_neighbours_do_not_change(embeddings):
    results = {}
    for engine, df in embeddings.items():
        model, report = fit_pca(df, {"k": K})
        pcs = project(df, model)
        rows = sorted(pcs.collect(), key=lambda r: int(r.image_id))
        features = np.array([r.pca for r in rows])
        labels, splits = np.array([r.label for r in rows]), np.array([r.split for r in rows])
        results[engine] = (report, nearest_neighbour_predictions(features, splits, labels))

    (keras_report, keras_pred), (tflite_report, tflite_pred) = results[KERAS], results[TFLITE]
    np.testing.assert_allclose(
        tflite_report["cumulative_explained_variance"],
        keras_report["cumulative_explained_variance"],
        atol=1e-4,
    )
    assert (keras_pred == tflite_pred).all()


def test_int8_engine_is_calibrated_on_training_images_and_stays_close(
    mini_images, weights_file, embeddings
):
    """``tflite_int8`` through the Spark stage: calibrated on the run's own Training images,
    features close to fp32's and the same nearest-neighbour classes for most test images."""
    params = {
        "weights": str(weights_file),
        "engine": TFLITE_INT8,
        "calibration_images": 16,
        "calibration_split": "Training",
        "threads_per_worker": 1,
        "batch_size": 8,
        "partitions": 2,
        "partitions_per_core": 1,
    }
    artifact = load_model(mini_images, IMAGE, params)
    int8 = embed_images(mini_images, artifact, IMAGE, params)

    int8_features, labels, splits = matrix(int8)
    fp32_features, _, _ = matrix(embeddings[TFLITE])
    cosine = (int8_features * fp32_features).sum(1) / (
        np.linalg.norm(int8_features, axis=1) * np.linalg.norm(fp32_features, axis=1)
    )
    assert artifact.engine == TFLITE_INT8
    assert len(artifact.payload) < 4_000_000  # the fp32 flatbuffer is 8.9 MB
    assert cosine.mean() > 0.9
    same = nearest_neighbour_predictions(int8_features, splits, labels) == (
        nearest_neighbour_predictions(fp32_features, splits, labels)
    )
    assert same.mean() >= 0.9
