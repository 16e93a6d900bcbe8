"""A local cache of converted models, so the driver converts a weights file once, not every run.

Only the TensorFlow Lite flatbuffer is cached (the ``keras`` reference is rebuilt each time). The
key covers the weights' content, the input size and the versions that shape the conversion; a
remote weights source is not cached. A cache that cannot be written is skipped with a warning.

A flatbuffer converted ahead of time (``make package``: ``mobilenet_v2_<size>.tflite``) is read
as it is, local or remote, without TensorFlow: what a cluster without TensorFlow runs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from importlib import metadata
from pathlib import Path

import fsspec

from fruits_kedro import __version__
from fruits_kedro.model.mobilenet import IMAGENET
from fruits_kedro.model.native_logs import quiet_native_logs

logger = logging.getLogger(__name__)

_CONVERTERS = ("tensorflow-cpu", "tensorflow", "keras")
FLATBUFFER_SUFFIX = ".tflite"
# The engine a converted fp32 flatbuffer serves (engines.TFLITE; int8 is calibrated per run).
FLATBUFFER_ENGINE = "tflite"


def cache_key(source: str, input_size: int) -> str | None:
    """A key for the flatbuffer converted from ``source``, or ``None`` when not cacheable."""
    local = Path(source.removeprefix("file://"))
    if source == IMAGENET:
        identity = IMAGENET
    elif "://" not in source.removeprefix("file://") and local.is_file():
        identity = hashlib.sha256(local.read_bytes()).hexdigest()
    else:
        return None
    parts = [identity, str(input_size), __version__, *map(_version, _CONVERTERS)]
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"


def read(cache_dir: str | None, key: str | None) -> bytes | None:
    """The cached flatbuffer of ``key``, if any."""
    if not cache_dir or not key:
        return None
    path = Path(cache_dir).expanduser() / f"{key}.tflite"
    return path.read_bytes() if path.is_file() else None


def write(cache_dir: str | None, key: str | None, payload: bytes) -> None:
    """Store ``payload`` under ``key`` (atomically); a failure only costs a later conversion."""
    if not cache_dir or not key:
        return
    folder = Path(cache_dir).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, delete=False, suffix=".part") as part:
            part.write(payload)
        os.replace(part.name, folder / f"{key}.tflite")
    except OSError as exc:
        logger.warning("model cache %s not written: %s", folder, exc)


def read_converted(source: str, engine: str, input_size: int) -> bytes | None:
    """The flatbuffer ``source`` names when it is a converted ``.tflite`` file (local or any
    fsspec URL), checked against ``engine`` and ``input_size``; ``None`` for weights.

    Raises:
        FileNotFoundError: ``source`` does not exist.
        ValueError: ``engine`` is not ``tflite``, or the model's input is not ``input_size``.
    """
    if not source.lower().endswith(FLATBUFFER_SUFFIX):
        return None
    if engine != FLATBUFFER_ENGINE:
        raise ValueError(
            f"embedding.weights {source} is a converted {FLATBUFFER_ENGINE} model: set "
            f"embedding.engine to {FLATBUFFER_ENGINE!r} (not {engine!r}), or name a weights file"
        )
    try:
        with fsspec.open(source, "rb") as stream:
            payload = bytes(stream.read())
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"converted model not found: {source}") from exc
    found = flatbuffer_input_size(payload)
    if found != input_size:
        raise ValueError(
            f"{source} takes {found} px images but image.input_size is {input_size}: "
            f"package the model for {input_size} px"
        )
    return payload


def flatbuffer_input_size(payload: bytes) -> int:
    """The side of the square input of a TFLite image model (read by LiteRT, no TensorFlow)."""
    from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415

    with quiet_native_logs():
        shape = Interpreter(model_content=payload).get_input_details()[0]["shape"]
    return int(shape[1])
