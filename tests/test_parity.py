"""Parity: every engine gives Keras' features on real images, and the same results downstream."""

from __future__ import annotations

import numpy as np
import pytest

from fruits_kedro.datasets import EmbeddingStoreDataset, ImageFilesDataset
from fruits_kedro.model.engines import KERAS, TFLITE, TFLITE_INT8
from fruits_kedro.pipelines.embedding.nodes import load_model
from fruits_kedro.pipelines.ingestion.nodes import label_images
from fruits_kedro.pipelines.reduction.nodes import fit_pca, project
from tests.conftest import embed_folder

pytestmark = pytest.mark.shared

IMAGE = {"input_size": 224, "resample": "bilinear"}
K = 20


@pytest.fixture(scope="module")
def mini_images(spark, mini_dir):
    """The listing of the 72 mini images (``tflite_int8`` calibrates on it)."""
    raw = ImageFilesDataset(filepath=str(mini_dir), suffixes=["jpg"]).load()
    return label_images(raw, {"splits": ["Training", "Test"]})


def stage(mini_dir, store_dir, artifact, params):
    """The Spark stage's embeddings of the mini images with ``artifact``, in a fresh store."""
    store = EmbeddingStoreDataset(filepath=str(store_dir))
    embeddings, _ = embed_folder(mini_dir, store, artifact, image=IMAGE, params=params)
    return embeddings


@pytest.fixture(scope="module")
def embeddings(mini_dir, mini_images, weights_file, tmp_path_factory):
    """Each engine's embeddings of the 72 mini images, through the Spark stage."""
    found = {}
    for engine in (KERAS, TFLITE):
        params = {
            "weights": str(weights_file),
            "engine": engine,
            "threads_per_worker": 1,
            "batch_size": 8,
            "chunk_size": 5000,
            "partitions": 4,
            "partitions_per_core": 1,
        }
        artifact = load_model(mini_images, IMAGE, params)
        found[engine] = stage(mini_dir, tmp_path_factory.mktemp(engine), artifact, params)
    return found


def matrix(df):
    rows = sorted(df.collect(), key=lambda r: r.path)
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
        model, report = fit_pca(df, None, None, {"k": K})
        pcs = project(df, model)
        rows = sorted(pcs.collect(), key=lambda r: r.path)
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
    mini_dir, mini_images, weights_file, embeddings, tmp_path
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
        "chunk_size": 5000,
        "partitions": 2,
        "partitions_per_core": 1,
    }
    artifact = load_model(mini_images, IMAGE, params)
    int8 = stage(mini_dir, tmp_path / "store", artifact, params)

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
