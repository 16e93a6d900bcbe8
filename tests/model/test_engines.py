"""Engines: the artifact the driver ships, the engines built from it, and their cache."""

from __future__ import annotations

import numpy as np
import pytest

from fruits_kedro.model import engines
from fruits_kedro.model.engines import KERAS, TFLITE, export_artifact, get_engine
from fruits_kedro.model.mobilenet import FEATURE_DIM, build_model, preprocess

SIZE = 32


@pytest.fixture(scope="module")
def random_model():
    return build_model(SIZE, None)


@pytest.fixture(scope="module")
def pixels():
    return np.random.default_rng(0).integers(0, 256, (5, SIZE, SIZE, 3), dtype=np.uint8)


def test_keras_engine_computes_what_the_model_computes(random_model, pixels):
    artifact = export_artifact(random_model.get_weights(), KERAS, SIZE, threads=1, batch_size=2)

    features = get_engine(artifact)(pixels)

    expected = random_model.predict_on_batch(preprocess(pixels))
    assert features.shape == (5, FEATURE_DIM)
    assert features.dtype == np.float32
    np.testing.assert_allclose(features, expected, atol=1e-5)


def test_tflite_engine_matches_keras(random_model, pixels):
    artifact = export_artifact(random_model.get_weights(), TFLITE, SIZE, threads=1, batch_size=3)
    assert isinstance(artifact.payload, bytes)

    features = get_engine(artifact)(pixels)

    expected = random_model.predict_on_batch(preprocess(pixels))
    np.testing.assert_allclose(features, expected, atol=1e-4)


def test_engine_is_built_once_per_process(random_model, monkeypatch):
    artifact = export_artifact(random_model.get_weights(), KERAS, SIZE, threads=1, batch_size=4)
    built = []
    monkeypatch.setitem(engines._BUILDERS, KERAS, lambda a: built.append(a) or object())
    engines._CACHE.clear()

    first, second = get_engine(artifact), get_engine(artifact)

    assert first is second
    assert len(built) == 1


def test_fingerprint_follows_the_weights(random_model):
    weights = random_model.get_weights()
    same = export_artifact(weights, KERAS, SIZE, threads=1, batch_size=4)
    changed = export_artifact([w + 1 for w in weights], KERAS, SIZE, threads=1, batch_size=4)
    assert same.fingerprint == export_artifact(weights, KERAS, SIZE, 2, 8).fingerprint
    assert same.fingerprint != changed.fingerprint


def test_unknown_engine_is_refused(random_model):
    with pytest.raises(ValueError, match="unknown engine 'onnx'"):
        export_artifact(random_model.get_weights(), "onnx", SIZE, threads=1, batch_size=4)
