"""Golden: the Spark stage's features equal plain Keras ``predict`` on the same real images."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from fruits_kedro.datasets import EmbeddingStoreDataset
from fruits_kedro.model.engines import KERAS, TFLITE
from fruits_kedro.pipelines.embedding.nodes import load_model
from tests.conftest import embed_folder

pytestmark = pytest.mark.shared

IMAGE = {"input_size": 224, "resample": "bilinear"}


@pytest.fixture(scope="module")
def mini_images(mini_dir):
    return sorted(mini_dir.glob("Test/*/*.jpg"))[::3]  # one image per class


@pytest.fixture(scope="module")
def reference(mini_images, weights_file):
    """Plain Keras, independent of the project's code: Pillow, preprocess_input, predict."""
    import keras

    model = keras.applications.MobileNetV2(
        input_shape=(224, 224, 3), include_top=False, weights=str(weights_file), pooling="avg"
    )
    batch = np.stack(
        [
            np.asarray(
                Image.open(p).convert("RGB").resize((224, 224), Image.Resampling.BILINEAR),
                dtype=np.float32,
            )
            for p in mini_images
        ]
    )
    return model.predict(keras.applications.mobilenet_v2.preprocess_input(batch), verbose=0)


@pytest.mark.parametrize("engine", [KERAS, TFLITE])
def test_spark_features_equal_keras_predict(
    spark, mini_images, weights_file, reference, engine, tmp_path
):
    params = {
        "weights": str(weights_file),
        "engine": engine,
        "threads_per_worker": 1,
        "batch_size": 4,
        "chunk_size": 5000,
        "partitions": 2,
        "partitions_per_core": 1,
    }
    for p in mini_images:  # the chosen images, in the same layout
        target = tmp_path / "images" / p.parent.parent.name / p.parent.name / p.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, target)
    store = EmbeddingStoreDataset(filepath=str(tmp_path / "store"))

    artifact = load_model(spark.range(0), IMAGE, params)
    embeddings, _ = embed_folder(tmp_path / "images", store, artifact, image=IMAGE, params=params)

    order = {f"{p.parent.name}/{p.name}": i for i, p in enumerate(mini_images)}
    rows = sorted(embeddings.collect(), key=lambda r: order["/".join(r.path.split("/")[-2:])])
    features = np.array([r.features for r in rows])
    assert features.shape == (len(mini_images), 1280)
    np.testing.assert_allclose(features, reference, atol=1e-4)
    cosine = (
        (features * reference).sum(1)
        / np.linalg.norm(features, axis=1)
        / np.linalg.norm(reference, axis=1)
    )
    assert cosine.min() > 0.9999
