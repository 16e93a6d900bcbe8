"""Golden: the Spark stage's features equal plain Keras ``predict`` on the same real images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fruits_kedro.model.engines import KERAS, TFLITE
from fruits_kedro.pipelines.embedding.nodes import embed_images, load_model

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
def test_spark_features_equal_keras_predict(spark, mini_images, weights_file, reference, engine):
    params = {
        "weights": str(weights_file),
        "engine": engine,
        "threads_per_worker": 1,
        "batch_size": 4,
        "partitions": 2,
        "partitions_per_core": 1,
    }
    rows = [
        (str(i), str(p), p.parent.name, "Test", p.stat().st_size, bytearray(p.read_bytes()))
        for i, p in enumerate(mini_images)
    ]
    images = spark.createDataFrame(
        rows,
        "image_id string, path string, label string, split string, size_bytes long, content binary",
    )

    artifact = load_model(images, IMAGE, params)
    embedded = embed_images(images, artifact, IMAGE, params).collect()

    features = np.array([r.features for r in sorted(embedded, key=lambda r: int(r.image_id))])
    assert features.shape == (len(mini_images), 1280)
    np.testing.assert_allclose(features, reference, atol=1e-4)
    cosine = (
        (features * reference).sum(1)
        / np.linalg.norm(features, axis=1)
        / np.linalg.norm(reference, axis=1)
    )
    assert cosine.min() > 0.9999
