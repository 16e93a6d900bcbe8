"""Inference engines for the 1280-d MobileNetV2 features, and their per-process cache.

The driver turns weights into a small, picklable :class:`ModelArtifact` (weights arrays
for Keras, a TensorFlow Lite flatbuffer, fp32 or full-integer int8, for TFLite). Workers turn
an artifact into an :class:`Engine` once per Python process and reuse it for every batch.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from fruits_kedro.model.mobilenet import (
    FEATURE_DIM,
    fresh_model_from_weights,
    keras_messages_logged,
    model_from_weights,
    preprocess,
)
from fruits_kedro.model.native_logs import quiet_native_logs
from fruits_kedro.model.quantize import to_int8_tflite

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

logger = logging.getLogger(__name__)

KERAS = "keras"
TFLITE = "tflite"
TFLITE_INT8 = "tflite_int8"  # full-integer quantized: needs calibration images to export


class Engine(Protocol):
    """Maps a ``(n, size, size, 3)`` uint8 batch to ``(n, 1280)`` float32 features."""

    def __call__(self, pixels: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class ModelArtifact:
    """What the driver ships to the workers: everything needed to build an engine."""

    engine: str
    input_size: int
    payload: bytes | list[np.ndarray] = field(repr=False)
    threads: int
    batch_size: int
    fingerprint: str  # content hash: a worker rebuilds its engine only for a new model


def export_artifact(
    weights: list[np.ndarray],
    engine: str,
    input_size: int,
    threads: int,
    batch_size: int,
    *,
    calibration: Iterable[np.ndarray] | None = None,
) -> ModelArtifact:
    """Turn weights into the artifact of ``engine`` (converts once, on the driver).

    Args:
        calibration: For ``tflite_int8`` only: batches of ``uint8`` pixels of shape
            ``(n, input_size, input_size, 3)`` (e.g. a few hundred Training images) that fix
            the int8 activation ranges.

    Raises:
        ValueError: The engine is unknown, or ``tflite_int8`` is asked for without calibration.
    """
    check_engine(engine)
    payload: bytes | list[np.ndarray]
    if engine == KERAS:
        payload = weights
    elif engine == TFLITE:
        with quiet_native_logs():
            payload = _to_tflite(weights, input_size)
    elif calibration is None:
        raise ValueError(
            f"engine {engine!r} needs calibration images: pass calibration= batches of uint8"
            f" pixels of shape (n, {input_size}, {input_size}, 3)"
        )
    else:
        with quiet_native_logs():
            payload = to_int8_tflite(weights, input_size, calibration)
    return artifact_of(payload, engine, input_size, threads, batch_size)


def artifact_of(
    payload: bytes | list[np.ndarray], engine: str, input_size: int, threads: int, batch_size: int
) -> ModelArtifact:
    """The artifact of an already exported ``payload`` (e.g. a cached TFLite flatbuffer)."""
    fingerprint = _fingerprint(engine, input_size, payload)
    return ModelArtifact(engine, input_size, payload, threads, batch_size, fingerprint)


def check_engine(engine: str) -> None:
    """Fail with the known names when ``engine`` is not one of them."""
    if engine not in _BUILDERS:
        raise ValueError(f"unknown engine {engine!r}: expected one of {sorted(_BUILDERS)}")


def _fingerprint(engine: str, input_size: int, payload: bytes | list[np.ndarray]) -> str:
    digest = hashlib.sha256(f"{engine}/{input_size}".encode())
    for chunk in [payload] if isinstance(payload, bytes) else payload:
        digest.update(
            np.ascontiguousarray(chunk).tobytes() if isinstance(chunk, np.ndarray) else chunk
        )
    return digest.hexdigest()


def _to_tflite(weights: list[np.ndarray], input_size: int) -> bytes:
    import tensorflow as tf  # noqa: PLC0415

    model = fresh_model_from_weights(weights, input_size)
    with keras_messages_logged():
        return bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())


class KerasEngine:
    """The reference: Keras' own ``predict_on_batch``."""

    def __init__(self, artifact: ModelArtifact) -> None:
        import tensorflow as tf  # noqa: PLC0415

        if not tf.config.threading.get_intra_op_parallelism_threads():
            try:
                tf.config.threading.set_intra_op_parallelism_threads(artifact.threads)
                tf.config.threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:  # TensorFlow already initialised in this process
                logger.debug("TensorFlow threads already set")
        assert isinstance(artifact.payload, list)
        self._model = model_from_weights(artifact.payload, artifact.input_size)
        self._batch_size = artifact.batch_size

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        return _in_batches(pixels, self._batch_size, self._predict)

    def _predict(self, pixels: np.ndarray) -> np.ndarray:
        return np.asarray(self._model.predict_on_batch(preprocess(pixels)), dtype=np.float32)


class TFLiteEngine:
    """The same network run by the TensorFlow Lite interpreter with XNNPACK.

    Serves the fp32 and the int8 flatbuffers alike: both take the preprocessed float32 batch
    and return float32 features (the int8 model quantizes and dequantizes inside its graph).
    """

    def __init__(self, artifact: ModelArtifact) -> None:
        from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415

        assert isinstance(artifact.payload, bytes)
        self._interpreter = Interpreter(
            model_content=artifact.payload, num_threads=artifact.threads
        )
        self._interpreter.allocate_tensors()  # applies XNNPACK now, inside quiet_native_logs
        details = self._interpreter.get_input_details()[0]
        if details["dtype"] != np.float32:
            raise ValueError(
                f"{artifact.engine} model: float32 input expected, got {details['dtype']}"
            )
        self._input = details["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._batch_size = artifact.batch_size
        self._shape: tuple[int, ...] = ()

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        return _in_batches(pixels, self._batch_size, self._invoke)

    def _invoke(self, pixels: np.ndarray) -> np.ndarray:
        if pixels.shape != self._shape:
            self._interpreter.resize_tensor_input(self._input, list(pixels.shape))
            self._interpreter.allocate_tensors()
            self._shape = pixels.shape
        self._interpreter.set_tensor(self._input, preprocess(pixels))
        self._interpreter.invoke()
        return np.array(self._interpreter.get_tensor(self._output), dtype=np.float32)


def _in_batches(
    pixels: np.ndarray, batch_size: int, run: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    outputs = [run(pixels[i : i + batch_size]) for i in range(0, len(pixels), batch_size)]
    return np.concatenate(outputs) if outputs else np.empty((0, FEATURE_DIM), np.float32)


_BUILDERS: dict[str, Callable[[ModelArtifact], Engine]] = {
    KERAS: KerasEngine,
    TFLITE: TFLiteEngine,
    TFLITE_INT8: TFLiteEngine,
}
_CACHE: dict[str, Engine] = {}


def get_engine(artifact: ModelArtifact) -> Engine:
    """The engine of ``artifact``, built once per process and then reused."""
    key = f"{artifact.fingerprint}/{artifact.threads}/{artifact.batch_size}"
    if key not in _CACHE:
        _CACHE.clear()
        logger.info(
            "building %s engine (%d px) in this worker", artifact.engine, artifact.input_size
        )
        with quiet_native_logs():
            _CACHE[key] = _BUILDERS[artifact.engine](artifact)
    return _CACHE[key]
