"""The full-integer (int8) TFLite engine: size, outputs, agreement with fp32, and its export."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image, ImageDraw

from fruits_kedro.model.engines import TFLITE, TFLITE_INT8, export_artifact, get_engine
from fruits_kedro.model.imaging import decode_image
from fruits_kedro.model.mobilenet import FEATURE_DIM, build_model, preprocess
from fruits_kedro.model.quantize import calibration_batches, evenly_spread, to_int8_tflite
from tests.conftest import jpeg_bytes

if TYPE_CHECKING:
    from pathlib import Path

SIZE = 96


def fruit_like(seed: int) -> np.ndarray:
    """A Pillow-drawn 'fruit': a shaded coloured ellipse on white, as in Fruits-360."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (SIZE, SIZE), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    base = rng.integers(40, 230, 3)
    box = rng.integers(5, 25, 4)
    for ring in range(12):
        colour = tuple(int(c) for c in np.clip(base + 8 * ring, 0, 255))
        draw.ellipse(
            (box[0] + ring, box[1] + ring, SIZE - box[2] - ring, SIZE - box[3] - ring), fill=colour
        )
    return np.asarray(image, dtype=np.uint8)


def decoded(folder: Path) -> np.ndarray:
    return np.stack([decode_image(p.read_bytes(), SIZE) for p in sorted(folder.rglob("*.jpg"))])


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def data_scaled_random_weights(pixels: np.ndarray) -> list[np.ndarray]:
    """A seeded random MobileNetV2 whose batch-norm statistics are measured on ``pixels``.

    Keras' random initialisation shrinks the activations to ~1e-11 by the last layer, which
    int8 cannot represent; with the statistics of real inputs every layer is unit-scaled, as
    in a trained network.
    """
    import keras

    model = build_model(SIZE, None)
    rng = np.random.default_rng(0)
    kernels = [
        rng.uniform(-1, 1, w.shape).astype(w.dtype) if w.ndim > 1 else w
        for w in model.get_weights()
    ]
    model.set_weights(kernels)  # seeded kernels; batch norms as initialised until measured
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    probe = keras.Model(model.input, [layer.input for layer in norms])
    for i, layer in enumerate(norms):  # in order: each one sees its final upstream
        inputs = np.asarray(probe.predict_on_batch(preprocess(pixels))[i])
        gamma, beta, _, _ = layer.get_weights()
        layer.set_weights([gamma, beta, inputs.mean(axis=(0, 1, 2)), inputs.var(axis=(0, 1, 2))])
    return model.get_weights()


@pytest.fixture(scope="module")
def fruits():
    return np.stack([fruit_like(seed) for seed in range(32)])


@pytest.fixture(scope="module")
def weights(fruits):
    return data_scaled_random_weights(fruits[:8])


@pytest.fixture(scope="module")
def fp32(weights):
    return export_artifact(weights, TFLITE, SIZE, threads=2, batch_size=8)


@pytest.fixture(scope="module")
def int8(weights, fruits):
    calibration = [fruits[i : i + 8] for i in range(0, 24, 8)]
    return export_artifact(weights, TFLITE_INT8, SIZE, 2, 8, calibration=calibration)


def test_int8_model_is_three_to_four_times_smaller(fp32, int8):
    assert isinstance(int8.payload, bytes)
    assert 3 < len(fp32.payload) / len(int8.payload) < 4.5


def test_int8_engine_gives_float_features_close_to_fp32(fp32, int8, fruits):
    held_out = fruits[24:]

    features = get_engine(int8)(held_out)
    reference = get_engine(fp32)(held_out)

    assert features.shape == (len(held_out), FEATURE_DIM)
    assert features.dtype == np.float32
    assert np.isfinite(features).all()
    assert cosine(features, reference).mean() > 0.9


def test_int8_on_real_images_agrees_with_fp32(weights, fp32, mini_dir):
    calibration = [decoded(mini_dir / "Training")]
    test_images = decoded(mini_dir / "Test")
    int8 = export_artifact(weights, TFLITE_INT8, SIZE, 2, 8, calibration=calibration)

    similarity = cosine(get_engine(int8)(test_images), get_engine(fp32)(test_images))

    assert similarity.mean() > 0.9


def test_int8_fingerprint_differs_from_fp32(fp32, int8):
    assert int8.engine == TFLITE_INT8
    assert int8.fingerprint != fp32.fingerprint


def test_int8_export_needs_calibration(weights):
    with pytest.raises(ValueError, match="'tflite_int8' needs calibration images"):
        export_artifact(weights, TFLITE_INT8, SIZE, threads=1, batch_size=8)


@pytest.mark.parametrize(
    ("batches", "message"),
    [
        ([], "at least one calibration batch"),
        ([np.zeros((2, SIZE, SIZE, 3), np.float32)], "calibration batch 0: expected uint8"),
        ([np.zeros((2, 32, 32, 3), np.uint8)], r"got uint8 \(2, 32, 32, 3\)"),
    ],
)
def test_bad_calibration_is_refused(weights, batches, message):
    with pytest.raises(ValueError, match=message):
        to_int8_tflite(weights, SIZE, batches)


def test_calibration_batches_decode_and_skip_bad_files():
    contents = [jpeg_bytes(), b"not an image", jpeg_bytes(), jpeg_bytes()]

    batches = list(calibration_batches(contents, 24, "bilinear", batch_size=2))

    assert [b.shape for b in batches] == [(2, 24, 24, 3), (1, 24, 24, 3)]
    assert all(b.dtype == np.uint8 for b in batches)


def test_evenly_spread_is_deterministic_and_covers_the_range():
    items = list(range(100))
    assert evenly_spread(items, 5) == [0, 25, 50, 74, 99]
    assert evenly_spread(items, 500) == items
    assert evenly_spread(items, 0) == []
