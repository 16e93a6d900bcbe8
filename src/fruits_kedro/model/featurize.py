"""One batch of image files to features or reasons: decode once, embed what decodes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fruits_kedro.model.imaging import ImageDecodeError, decode_image

if TYPE_CHECKING:
    from collections.abc import Iterable

    from fruits_kedro.model.engines import Engine


def featurize(
    contents: Iterable[bytes], engine: Engine, size: int, resample: str
) -> tuple[list[np.ndarray | None], list[str | None]]:
    """Features of every image that decodes, the reason of every one that does not.

    Each file is decoded and resized once; the usable ones go through ``engine`` together.

    Returns:
        ``(features, reasons)``, one entry per input in order: a ``(1280,)`` float32 array and
        ``None``, or ``None`` and a human-readable reason.
    """
    pixels: list[np.ndarray] = []
    reasons: list[str | None] = []
    for content in contents:
        try:
            pixels.append(decode_image(content, size, resample))
            reasons.append(None)
        except ImageDecodeError as exc:
            reasons.append(exc.reason)
    vectors = iter(engine(np.stack(pixels)) if pixels else ())
    features = [None if reason else next(vectors) for reason in reasons]
    return features, reasons
