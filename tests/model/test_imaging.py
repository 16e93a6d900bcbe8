"""Decoding of every kind of good and bad image file."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from fruits_kedro.model.imaging import ImageDecodeError, decode_image, to_rgb
from tests.conftest import jpeg_bytes, noisy_jpeg_bytes


def encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def test_jpeg_is_resized_to_square_rgb():
    pixels = decode_image(jpeg_bytes((10, 200, 30), (40, 30)), 32)
    assert pixels.shape == (32, 32, 3)
    assert pixels.dtype == np.uint8
    assert np.allclose(pixels.reshape(-1, 3).mean(axis=0), (10, 200, 30), atol=3)


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [
        ("L", 128, (128, 128, 128)),
        ("CMYK", (0, 255, 255, 0), (255, 0, 0)),
        ("P", None, (0, 0, 255)),
        ("1", 1, (255, 255, 255)),
    ],
)
def test_any_mode_becomes_rgb(mode, value, expected):
    if mode == "P":
        img = Image.new("RGB", (8, 8), (0, 0, 255)).convert("P")
    else:
        img = Image.new(mode, (8, 8), value)
    fmt = "TIFF" if mode == "CMYK" else "PNG"
    pixels = decode_image(encode(img, fmt), 8)
    assert tuple(pixels[4, 4]) == pytest.approx(expected, abs=2)


def test_transparency_is_laid_on_white():
    img = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    img.putpixel((0, 0), (255, 0, 0, 255))
    pixels = decode_image(encode(img, "PNG"), 8, "nearest")
    assert tuple(pixels[7, 7]) == (255, 255, 255)
    assert tuple(pixels[0, 0]) == (255, 0, 0)


def test_sixteen_bit_grey_is_scaled_not_clipped():
    wide = Image.fromarray(np.full((8, 8), 32768, dtype=np.uint16))
    assert wide.mode.startswith("I")
    pixels = decode_image(encode(wide, "PNG"), 8)
    assert pixels[0, 0, 0] == pytest.approx(127, abs=1)


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (40, 20), (255, 255, 255))
    img.paste((0, 0, 0), (0, 0, 20, 20))  # left half black
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    pixels = decode_image(encode(img, "JPEG", exif=exif), 20, "nearest")
    assert pixels[2, 10].mean() < 60  # black on top once rotated
    assert pixels[17, 10].mean() > 200


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file (0 bytes)"),
        (b"just some text, with a .jpg name", "not an image"),
        (noisy_jpeg_bytes(1)[:500], "corrupt or truncated image"),
        (noisy_jpeg_bytes(1)[:2000], "corrupt or truncated image (JPEG)"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not an image"),
    ],
    ids=["empty", "text", "truncated-header", "truncated-jpeg", "png-header-only"],
)
def test_bad_bytes_raise_a_readable_reason(content, reason):
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(content, 16)
    assert reason in caught.value.reason


def test_to_rgb_keeps_rgb():
    img = Image.new("RGB", (2, 2), (1, 2, 3))
    assert to_rgb(img).getpixel((0, 0)) == (1, 2, 3)
