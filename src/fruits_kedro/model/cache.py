"""A local cache of converted models, so the driver converts a weights file once, not every run.

Only the TensorFlow Lite flatbuffer is cached (the ``keras`` reference is rebuilt each time). The
key covers the weights' content, the input size and the versions that shape the conversion; a
remote weights source is not cached. A cache that cannot be written is skipped with a warning.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from importlib import metadata
from pathlib import Path

from fruits_kedro import __version__
from fruits_kedro.model.mobilenet import IMAGENET

logger = logging.getLogger(__name__)

_CONVERTERS = ("tensorflow-cpu", "tensorflow", "keras")


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
