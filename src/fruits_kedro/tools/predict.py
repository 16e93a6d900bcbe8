"""``fruits-predict IMAGE [IMAGE ...]``: the top labels of each photo, one JSON line each.

Runs the app's model file a pipeline run exported (``06_models/app/fruits_classifier.tflite``:
MobileNetV2 and the folded head in one TFLite graph, its labels in the file) with LiteRT in this
process: no Spark, no TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import fsspec
import numpy as np

from fruits_kedro.model.app_model import AppModel
from fruits_kedro.model.imaging import ImageDecodeError, decode_image
from fruits_kedro.model.tflite_metadata import read_labels

if TYPE_CHECKING:
    from collections.abc import Sequence

APP_FOLDER = "data/06_models/app"
DEFAULT_MODEL = f"{APP_FOLDER}/fruits_classifier.tflite"
INT8_MODEL = f"{APP_FOLDER}/fruits_classifier_int8.tflite"
EXIT_ALL_FAILED = 1
EXIT_NO_MODEL = 2


@dataclass
class Predictor:
    """An app file, its labels and the photo's resize filter."""

    model: AppModel
    labels: list[str]
    resample: str

    def predict(self, content: bytes, top: int) -> list[dict[str, Any]]:
        """The ``top`` most likely labels of one photo's bytes (raises ``ImageDecodeError``)."""
        pixels = decode_image(content, self.model.input_size, self.resample)
        probabilities = self.model(pixels[None])[0]
        best = np.argsort(-probabilities, kind="stable")[:top]
        return [
            {"label": self.labels[i], "probability": float(f"{probabilities[i]:.4g}")} for i in best
        ]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="fruits-predict", description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+", help="image files (paths or fsspec URLs)")
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument(
        "--model", default=DEFAULT_MODEL, help="app model file (default: %(default)s)"
    )
    chosen.add_argument("--int8", action="store_true", help=f"run the int8 file ({INT8_MODEL})")
    parser.add_argument(
        "--top", type=int, default=3, help="labels per image (default: %(default)s)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="inference threads (default: all cores)",
    )
    parser.add_argument(
        "--resample",
        default="bilinear",
        help="resize filter of the photo (the run's image.resample)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=0,
        help="predict each image this many more times and report latency",
    )
    return parser.parse_args(argv)


def load(model: str, threads: int, resample: str) -> Predictor:
    """The app file ``model`` (a path or fsspec URL) ready to run."""
    with fsspec.open(model, "rb") as handle:
        content = handle.read()
    return Predictor(AppModel(content, threads), read_labels(content), resample)


def predict_one(predictor: Predictor, image: str, top: int) -> dict[str, Any]:
    """One JSON-ready result: ``path`` and ``top`` labels, or ``path`` and ``error``."""
    try:
        with fsspec.open(image, "rb") as handle:
            content = handle.read()
        return {"path": image, "top": predictor.predict(content, top)}
    except FileNotFoundError:
        return {"path": image, "error": "file not found"}
    except IsADirectoryError:
        return {"path": image, "error": "is a directory, not an image file"}
    except ImageDecodeError as exc:
        return {"path": image, "error": exc.reason}
    except OSError as exc:
        return {"path": image, "error": f"cannot read file: {exc}"}


def main(argv: Sequence[str] | None = None) -> int:
    """Print one JSON line per image; exit 1 only when every image failed."""
    args = parse_args(argv)
    model = INT8_MODEL if args.int8 else args.model
    start = time.perf_counter()
    try:
        predictor = load(model, args.threads, args.resample)
    except FileNotFoundError as exc:
        sys.stderr.write(
            f"fruits-predict: no model at {model} ({exc}); run `kedro run` first or pass --model\n"
        )
        return EXIT_NO_MODEL
    loaded = time.perf_counter()
    readable, first_s = [], 0.0
    for image in args.images:
        result, seconds = _timed(predictor, image, args.top)
        first_s = first_s or seconds
        if "error" not in result:
            readable.append(image)
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()
    first_done = time.perf_counter()
    warm = [_timed(predictor, image, args.top)[1] for _ in range(args.repeat) for image in readable]
    summary = (
        f"fruits-predict: model loaded in {loaded - start:.2f} s, "
        f"{len(args.images)} image(s) in {first_done - loaded:.2f} s "
        f"(first {1000 * first_s:.0f} ms)"
    )
    if warm:
        summary += f"; after warm-up {1000 * statistics.median(warm):.1f} ms per image (median of {len(warm)})"
    sys.stderr.write(summary + "\n")
    return 0 if readable else EXIT_ALL_FAILED


def _timed(predictor: Predictor, image: str, top: int) -> tuple[dict[str, Any], float]:
    began = time.perf_counter()
    result = predict_one(predictor, image, top)
    return result, time.perf_counter() - began


if __name__ == "__main__":
    sys.exit(main())
