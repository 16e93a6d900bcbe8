"""Full-integer (int8) post-training quantization of MobileNetV2 to a TensorFlow Lite flatbuffer.

Weights and activations are int8; the calibration images fix the activation ranges. The model's
input and output tensors stay float32 (a QUANTIZE op after the input, a DEQUANTIZE op before the
output): measured on the Fruits-360 sample, int8 I/O was no faster and the features are the same,
so the worker runs the flatbuffer exactly like the fp32 one (``preprocess`` in, 1280 floats out).
"""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from fruits_kedro.model.imaging import ImageDecodeError, decode_image
from fruits_kedro.model.mobilenet import keras_messages_logged, model_from_weights, preprocess
from fruits_kedro.model.native_logs import quiet_native_logs

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

T = TypeVar("T")

logger = logging.getLogger(__name__)


def to_int8_tflite(
    weights: list[np.ndarray], input_size: int, calibration: Iterable[np.ndarray]
) -> bytes:
    """Convert MobileNetV2 weights to a full-integer TFLite model with float32 input/output.

    Args:
        weights: The network's arrays, as :func:`~fruits_kedro.model.mobilenet.load_weights`
            returns them.
        input_size: Side of the square RGB input.
        calibration: Batches of ``uint8`` RGB pixels of shape ``(n, input_size, input_size, 3)``
            (decoded as the embedding stage decodes them), read once.

    Raises:
        ValueError: ``calibration`` is empty or a batch has the wrong shape or dtype.
    """
    import tensorflow as tf  # noqa: PLC0415  (only the driver converts)

    batches = [_checked(batch, input_size, i) for i, batch in enumerate(calibration)]
    if not batches:
        raise ValueError("int8 quantization needs at least one calibration batch, got none")

    def representative_dataset() -> Iterator[list[np.ndarray]]:
        for batch in batches:
            yield [preprocess(batch)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model_from_weights(weights, input_size))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with warnings.catch_warnings(), keras_messages_logged():
        # about int8 I/O, which this model does not have
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        return bytes(converter.convert())


def _checked(batch: np.ndarray, input_size: int, index: int) -> np.ndarray:
    pixels = np.asarray(batch)
    expected = (input_size, input_size, 3)
    if pixels.dtype != np.uint8 or pixels.shape[1:] != expected:
        raise ValueError(
            f"calibration batch {index}: expected uint8 pixels of shape (n, {input_size},"
            f" {input_size}, 3), got {pixels.dtype} {pixels.shape}"
        )
    return pixels


def evenly_spread(items: Sequence[T], count: int) -> list[T]:
    """``count`` items spread evenly over ``items`` (all of them if fewer), deterministically.

    On a list sorted by class, this takes about as many images from every class.
    """
    if count <= 0 or not items:
        return []
    if count >= len(items):
        return list(items)
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, count).round()]


def calibration_batches(
    contents: Iterable[bytes], size: int, resample: str, batch_size: int = 8
) -> Iterator[np.ndarray]:
    """Image files decoded as the embedding stage decodes them, ``batch_size`` at a time.

    A file that does not decode is skipped (the embedding stage quarantines it anyway).
    """
    pixels: list[np.ndarray] = []
    for content in contents:
        try:
            pixels.append(decode_image(content, size, resample))
        except ImageDecodeError as exc:
            logger.warning("calibration image skipped: %s", exc.reason)
        if len(pixels) == batch_size:
            yield np.stack(pixels)
            pixels = []
    if pixels:
        yield np.stack(pixels)


def to_weight_int8_tflite(weights: list[np.ndarray], input_size: int) -> bytes:
    """Convert MobileNetV2 weights to a TFLite model whose weights are int8 and whose
    activations stay float (dynamic-range quantization): a third of the size, features close to
    fp32's, so a head trained on fp32 features keeps its accuracy; no calibration images."""
    import tensorflow as tf  # noqa: PLC0415  (only the driver converts)

    converter = tf.lite.TFLiteConverter.from_keras_model(model_from_weights(weights, input_size))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    with keras_messages_logged(), quiet_native_logs():
        return bytes(converter.convert())
