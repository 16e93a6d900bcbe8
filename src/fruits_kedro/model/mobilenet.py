"""MobileNetV2 feature extractor: weights from a source, a model from weights."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

import fsspec
import numpy as np

from fruits_kedro.model.native_logs import quiet_native_logs

if TYPE_CHECKING:
    from collections.abc import Iterator

    import keras

FEATURE_DIM = 1280
IMAGENET = "imagenet"
# Keras' own name for the ImageNet MobileNetV2 (alpha 1.0, 224 px, no top) weights file.
WEIGHTS_FILE_NAME = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"


def preprocess(pixels: np.ndarray) -> np.ndarray:
    """Scale ``uint8`` RGB pixels to MobileNetV2's ``[-1, 1]`` float32 input."""
    return pixels.astype(np.float32) / np.float32(127.5) - np.float32(1.0)


def build_model(input_size: int, weights: str | None = None) -> keras.Model:
    """MobileNetV2 (alpha 1.0, no top) with global average pooling: 1280 floats per image.

    Args:
        input_size: Side of the square RGB input.
        weights: ``"imagenet"`` (downloaded by Keras once), a local weights file, or
            ``None`` for random weights.
    """
    with quiet_native_logs():
        import keras  # noqa: PLC0415  (TensorFlow is heavy: load only where a model is built)

        return keras.applications.MobileNetV2(
            input_shape=(input_size, input_size, 3),
            alpha=1.0,
            include_top=False,
            weights=weights,
            pooling="avg",
        )


def load_weights(source: str, input_size: int) -> list[np.ndarray]:
    """Load ImageNet MobileNetV2 weights on the driver, as plain arrays to broadcast.

    Args:
        source: ``"imagenet"`` or the path of a Keras ``.h5`` weights file, local or
            remote (any fsspec URL such as ``s3://bucket/key.h5``).
        input_size: Side of the square RGB input the model will see.
    """
    if source == IMAGENET:
        return build_model(input_size, IMAGENET).get_weights()
    protocol, _ = fsspec.core.split_protocol(source)
    if protocol in (None, "file"):
        if not os.path.isfile(source.removeprefix("file://")):
            raise FileNotFoundError(f"weights file not found: {source}")
        return build_model(input_size, source.removeprefix("file://")).get_weights()
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, PurePosixPath(source).name)
        fsspec.open(source).fs.get(source, local)
        return build_model(input_size, local).get_weights()


def model_from_weights(weights: list[np.ndarray], input_size: int) -> keras.Model:
    """Rebuild the network from broadcast arrays, without any download."""
    model = build_model(input_size, None)
    model.set_weights(weights)
    return model


def fresh_model_from_weights(weights: list[np.ndarray], input_size: int) -> keras.Model:
    """:func:`model_from_weights` with Keras' name counters reset first: the same weights then
    give the same graph, tensor names included, whatever was built before in the process, so
    that a conversion is reproducible byte for byte (and so is its fingerprint)."""
    with quiet_native_logs():
        import keras  # noqa: PLC0415

        keras.backend.clear_session()
    return model_from_weights(weights, input_size)


@contextlib.contextmanager
def keras_messages_logged() -> Iterator[None]:
    """Keras' messages (e.g. the "Saved artifact at ..." of a TFLite conversion) go to the
    ``absl`` logger instead of being printed, for as long as the block runs."""
    import keras  # noqa: PLC0415

    interactive = keras.config.is_interactive_logging_enabled()
    keras.config.disable_interactive_logging()
    try:
        yield
    finally:
        if interactive:
            keras.config.enable_interactive_logging()
