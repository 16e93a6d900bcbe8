"""The model cache: converted TFLite models reused between runs, keyed by the weights' content."""

from __future__ import annotations

import pytest

from fruits_kedro.model import cache
from fruits_kedro.model import engines as engines_module
from fruits_kedro.pipelines.embedding.nodes import load_model

IMAGE = {"input_size": 32, "resample": "bilinear"}


def test_key_follows_the_weights_content_and_the_size(tmp_path):
    weights = tmp_path / "w.h5"
    weights.write_bytes(b"one")
    first = cache.cache_key(str(weights), 224)
    assert first == cache.cache_key(f"file://{weights}", 224)
    assert first != cache.cache_key(str(weights), 128)
    weights.write_bytes(b"two")
    assert first != cache.cache_key(str(weights), 224)
    assert cache.cache_key("imagenet", 224) is not None


def test_remote_or_missing_sources_are_not_cached(tmp_path):
    assert cache.cache_key("s3://bucket/models/w.h5", 224) is None
    assert cache.cache_key(str(tmp_path / "missing.h5"), 224) is None


def test_write_then_read_round_trips_and_off_means_off(tmp_path):
    cache.write(str(tmp_path / "c"), "k", b"flatbuffer")
    assert cache.read(str(tmp_path / "c"), "k") == b"flatbuffer"
    assert cache.read(str(tmp_path / "c"), "other") is None
    assert cache.read(None, "k") is None


def test_an_unwritable_cache_only_warns(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cache.write(str(blocker / "c"), "k", b"x")
    assert "not written" in caplog.text


def test_second_load_uses_the_cache_without_converting(tmp_path, random_weights, monkeypatch):
    params = {
        "weights": str(random_weights),
        "engine": "tflite",
        "threads_per_worker": 1,
        "batch_size": 4,
        "model_cache": str(tmp_path / "cache"),
    }
    first = load_model(None, IMAGE, params)  # type: ignore[arg-type]  # not read by tflite
    monkeypatch.setattr(engines_module, "_to_tflite", pytest.fail)  # any conversion fails the test

    second = load_model(None, IMAGE, params)  # type: ignore[arg-type]

    assert second.payload == first.payload
    assert second.fingerprint == first.fingerprint
