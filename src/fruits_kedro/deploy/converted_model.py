"""The TFLite MobileNetV2 converted where the project is packaged, for a cluster without TensorFlow.

``mobilenet_v2_<size>.tflite`` is the fp32 flatbuffer of the ``tflite`` engine, the same bytes
a run's driver would convert from the same weights (and keep in its model cache), and
``mobilenet_v2_<size>.json`` says what it is: its source weights and their hash, the input size,
the flatbuffer's hash and the fingerprint of the model artifact it becomes. Naming the
``.tflite`` as ``embedding.weights`` runs it as it is, with the same fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import logging
from importlib import metadata
from typing import TYPE_CHECKING

import fsspec

from fruits_kedro import __version__
from fruits_kedro.model import cache as model_cache
from fruits_kedro.model.engines import TFLITE, artifact_of, export_artifact
from fruits_kedro.model.mobilenet import IMAGENET, load_weights

if TYPE_CHECKING:
    from pathlib import Path

logger = logging.getLogger(__name__)


def model_name(input_size: int) -> str:
    """``mobilenet_v2_<size>``: the stem of the model's two files."""
    return f"mobilenet_v2_{input_size}"


def convert(weights: str, input_size: int, cache_dir: str | None) -> bytes:
    """The fp32 TFLite flatbuffer of ``weights``, from the model cache or converted (TensorFlow)."""
    key = model_cache.cache_key(weights, input_size)
    payload = model_cache.read(cache_dir, key)
    if payload is None:
        logger.info("converting MobileNetV2 %s (%d px) to TFLite", weights, input_size)
        artifact = export_artifact(load_weights(weights, input_size), TFLITE, input_size, 1, 1)
        assert isinstance(artifact.payload, bytes)
        payload = artifact.payload
        model_cache.write(cache_dir, key, payload)
    return payload


def weights_sha256(weights: str) -> str | None:
    """The SHA-256 of a weights file, local or remote; ``None`` for Keras' ``imagenet``."""
    if weights == IMAGENET:
        return None
    digest = hashlib.sha256()
    with fsspec.open(weights, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe(weights: str, input_size: int, payload: bytes) -> dict[str, object]:
    """What the flatbuffer is and where it comes from."""
    return {
        "engine": TFLITE,
        "input_size": input_size,
        "weights": weights,
        "weights_sha256": weights_sha256(weights),
        "tflite_sha256": hashlib.sha256(payload).hexdigest(),
        "fingerprint": artifact_of(payload, TFLITE, input_size, 1, 1).fingerprint,
        "fruits_kedro": __version__,
        "tensorflow": _version("tensorflow-cpu") or _version("tensorflow"),
    }


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def write(weights: str, input_size: int, dist: Path, cache_dir: str | None) -> list[Path]:
    """``dist/mobilenet_v2_<size>.tflite`` and its ``.json``; returns their paths."""
    payload = convert(weights, input_size, cache_dir)
    model, card = dist / f"{model_name(input_size)}.tflite", dist / f"{model_name(input_size)}.json"
    model.write_bytes(payload)
    card.write_text(json.dumps(describe(weights, input_size, payload), indent=2) + "\n")
    logger.info("%s: %.1f MB, from %s", model.name, len(payload) / 1e6, weights)
    return [model, card]
