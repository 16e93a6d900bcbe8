"""featurize: each file decoded once, the usable ones embedded together, the others explained."""

from __future__ import annotations

import numpy as np

from fruits_kedro.model.featurize import featurize
from tests.conftest import jpeg_bytes


class CountingEngine:
    """A stand-in engine that records its calls: features = mean pixel per image."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        self.calls.append(len(pixels))
        return np.repeat(pixels.mean(axis=(1, 2, 3))[:, None], 4, axis=1).astype(np.float32)


def test_features_and_reasons_keep_the_input_order():
    engine = CountingEngine()
    contents = [jpeg_bytes((10, 10, 10)), b"", jpeg_bytes((200, 200, 200)), b"text"]

    features, reasons = featurize(contents, engine, 8, "bilinear")

    assert engine.calls == [2]  # one call for the usable images together
    assert reasons[0] is None and reasons[2] is None
    assert reasons[1] == "empty file (0 bytes)"
    assert reasons[3].startswith("not an image")
    assert features[1] is None and features[3] is None
    assert features[0][0] < 50 < features[2][0]  # each image got its own features


def test_a_batch_without_usable_images_does_not_call_the_engine():
    engine = CountingEngine()

    features, reasons = featurize([b"", b"x"], engine, 8, "bilinear")

    assert engine.calls == []
    assert features == [None, None]
    assert all(reasons)
