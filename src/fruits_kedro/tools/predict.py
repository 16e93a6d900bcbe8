"""``fruits-predict IMAGE [IMAGE ...]``: the top labels of each photo, one JSON line each.

Runs the predictor a pipeline run exported (``06_models/predictor``: TFLite engine, PCA
and classifier as arrays) in this process: no Spark, no TensorFlow.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from typing import TYPE_CHECKING, Any

import fsspec

from fruits_kedro.model.bundle import load_predictor
from fruits_kedro.model.imaging import ImageDecodeError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from fruits_kedro.model.predictor import Predictor

DEFAULT_MODEL = "data/06_models/predictor"
EXIT_ALL_FAILED = 1
EXIT_NO_MODEL = 2


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="fruits-predict", description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+", help="image files (paths or fsspec URLs)")
    parser.add_argument(
        "--model", default=DEFAULT_MODEL, help="predictor folder (default: %(default)s)"
    )
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
        "--repeat",
        type=int,
        default=0,
        help="predict each image this many more times and report latency",
    )
    return parser.parse_args(argv)


def load(model: str, threads: int) -> Predictor:
    """The predictor in ``model``, with the engine set to ``threads`` and one image per call."""
    fs, path = fsspec.core.url_to_fs(model)
    predictor = load_predictor(fs, path)
    artifact = dataclasses.replace(predictor.artifact, threads=threads, batch_size=1)
    return dataclasses.replace(predictor, artifact=artifact)


def predict_one(predictor: Predictor, image: str, top: int) -> dict[str, Any]:
    """One JSON-ready result: ``path`` and ``top`` labels, or ``path`` and ``error``."""
    try:
        with fsspec.open(image, "rb") as handle:
            content = handle.read()
        pixels = predictor.decode(content)
    except FileNotFoundError:
        return {"path": image, "error": "file not found"}
    except IsADirectoryError:
        return {"path": image, "error": "is a directory, not an image file"}
    except OSError as exc:
        return {"path": image, "error": f"cannot read file: {exc}"}
    except ImageDecodeError as exc:
        return {"path": image, "error": exc.reason}
    probabilities = predictor.probabilities(predictor.embed(pixels[None]))[0]
    return {"path": image, "top": predictor.top(probabilities, top)}


def main(argv: Sequence[str] | None = None) -> int:
    """Print one JSON line per image; exit 1 only when every image failed."""
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        predictor = load(args.model, args.threads)
    except FileNotFoundError as exc:
        sys.stderr.write(
            f"fruits-predict: no predictor at {args.model} ({exc}); "
            "run `kedro run` first or pass --model\n"
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
