"""Decode any image file into a fixed-size RGB ``uint8`` array, or say why it cannot be."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

RESAMPLING = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
_SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}
_BACKGROUND = (255, 255, 255)


class ImageDecodeError(ValueError):
    """An image that cannot be used; ``reason`` is meant for humans."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode_image(content: bytes, size: int, resample: str = "bilinear") -> np.ndarray:
    """Decode image bytes to a ``(size, size, 3)`` RGB ``uint8`` array.

    EXIF orientation is applied, any mode is converted to RGB (transparency is laid on
    white, 16-bit is scaled to 8-bit) and the image is resized to ``size`` x ``size``.

    Raises:
        ImageDecodeError: The bytes are empty, not an image, truncated or corrupt.
    """
    if not content:
        raise ImageDecodeError("empty file (0 bytes)")
    image_format = "unknown format"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(content)) as img:
                image_format = img.format or image_format
                img.load()
                rgb = to_rgb(ImageOps.exif_transpose(img))
    except UnidentifiedImageError as exc:
        raise ImageDecodeError("not an image: content is not a recognised image format") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(f"image too large to decode safely: {exc}") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageDecodeError(f"corrupt or truncated image ({image_format}): {exc}") from exc
    resized = rgb.resize((size, size), RESAMPLING[resample])
    return np.asarray(resized, dtype=np.uint8)


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert an image of any Pillow mode to 8-bit RGB."""
    if img.mode in _SIXTEEN_BIT_MODES:
        wide = np.asarray(img, dtype=np.float64)
        scale = 255.0 / 65535.0 if wide.max(initial=0) > 255 else 1.0  # noqa: PLR2004
        img = Image.fromarray(np.clip(wide * scale, 0, 255).astype(np.uint8), mode="L")
    elif img.mode == "F":
        img = Image.fromarray(np.clip(np.asarray(img), 0, 255).astype(np.uint8), mode="L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        background = Image.new("RGB", img.size, _BACKGROUND)
        background.paste(img.convert("RGBA"), mask=img.convert("RGBA").getchannel("A"))
        return background
    return img.convert("RGB")
