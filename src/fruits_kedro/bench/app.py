"""The app's model files of a whole run, checked (``bench app``): size, top-1 accuracy on the
Test split, single-thread latency per image in LiteRT, parity of the folded fp32 file with the
pipeline's own (unfolded) predictions, and MediaPipe's ImageClassifier against ``fruits-predict``.

Runs the default ``kedro run`` in a scratch copy of the project (or reads the finished run of
``--run-dir``), then every Test image through both files in this process. MediaPipe (a test
dependency) gets the photo as it is and resizes it itself.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fruits_kedro.bench.workspace import (
    project_context,
    run_pipelines,
    runtime_params,
    scratch_project,
    workspace,
)
from fruits_kedro.model.app_model import AppModel
from fruits_kedro.model.imaging import ImageDecodeError, decode_image
from fruits_kedro.model.tflite_metadata import read_labels

if TYPE_CHECKING:
    import argparse

FILES = {"fp32": "fruits_classifier.tflite", "int8": "fruits_classifier_int8.tflite"}
LATENCY_IMAGES = 200


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``bench app``, besides the shared ones."""
    parser.add_argument(
        "--run-dir", type=Path, help="a finished run's project folder (default: run one)"
    )


def run(files: list[Path], args: argparse.Namespace) -> dict[str, Any]:
    """A whole run (or ``--run-dir``'s), then its app files on every Test image."""
    tests = [f.resolve() for f in files if f.parent.parent.name == "Test"]
    if args.run_dir is not None:
        return measure(args.run_dir.resolve(), tests, _pipeline_predictions(args.run_dir, args))
    params = runtime_params(args)
    with workspace(args.keep) as tmp:
        project = scratch_project(args.project_dir.resolve(), tmp / "project")
        run_pipelines(project, params, ["__default__"])
        return measure(project, tests, _pipeline_predictions(project, args))


def _pipeline_predictions(project: Path, args: argparse.Namespace) -> dict[str, tuple[str, float]]:
    """The pipeline's (unfolded) ``predicted_label`` and ``confidence`` by local path."""
    with project_context(project, runtime_params(args)) as context:
        table = context.catalog.load("test_predictions").select(
            "path", "predicted_label", "confidence"
        )
        return {
            row["path"].removeprefix("file:"): (row["predicted_label"], float(row["confidence"]))
            for row in table.toLocalIterator()
        }


def measure(
    project: Path, tests: list[Path], pipeline: dict[str, tuple[str, float]]
) -> dict[str, Any]:
    """Sizes, accuracies, latencies, parity and MediaPipe's agreement."""
    folder = project / "data/06_models/app"
    contents = {name: (folder / file).read_bytes() for name, file in FILES.items()}
    labels = read_labels(contents["fp32"])
    apps = {name: AppModel(content, threads=1) for name, content in contents.items()}
    size = apps["fp32"].input_size
    decoded, truth = [], []
    for path in tests:
        try:
            decoded.append((path, decode_image(path.read_bytes(), size, "bilinear")))
            truth.append(path.parent.name)
        except ImageDecodeError:
            continue
    top: dict[str, list[str]] = {name: [] for name in apps}
    best: list[float] = []
    for _, pixels in decoded:
        for name, app in apps.items():
            probabilities = app(pixels[None])[0]
            top[name].append(labels[int(np.argmax(probabilities))])
            if name == "fp32":
                best.append(float(probabilities.max()))
    paths = [str(path) for path, _ in decoded]
    unfolded = [pipeline.get(p, ("", 0.0)) for p in paths]
    result: dict[str, Any] = {
        "test_images": len(decoded),
        "classes": len(labels),
        "files": {
            name: {
                "bytes": len(contents[name]),
                "mb": round(len(contents[name]) / 1e6, 2),
                "top1_accuracy": _share(top[name], truth),
                "latency_ms_1_thread": _latency_ms(apps[name], [p for _, p in decoded]),
            }
            for name in apps
        },
        "fp32_top1_identical_to_pipeline": _share(top["fp32"], [u[0] for u in unfolded]),
        "fp32_max_probability_difference": max(
            (abs(b - u[1]) for b, u in zip(best, unfolded, strict=True) if u[0]), default=None
        ),
        "int8_top1_agreement_with_fp32": _share(top["int8"], top["fp32"]),
    }
    result["mediapipe"] = _mediapipe(contents, [path for path, _ in decoded], top)
    return result


def _share(ours: list[str], theirs: list[str]) -> float:
    return round(sum(a == b for a, b in zip(ours, theirs, strict=True)) / max(len(ours), 1), 6)


def _latency_ms(app: AppModel, images: list[np.ndarray]) -> float:
    """Median wall time of one image through ``app`` on one thread, after a warm-up."""
    chosen = images[:: max(1, len(images) // LATENCY_IMAGES)]
    app(chosen[0][None])
    times = []
    for pixels in chosen:
        start = time.perf_counter()
        app(pixels[None])
        times.append(1000 * (time.perf_counter() - start))
    return round(statistics.median(times), 2)


def _mediapipe(
    contents: dict[str, bytes], paths: list[Path], top: dict[str, list[str]]
) -> dict[str, Any]:
    """MediaPipe's ImageClassifier on the photos as they are: its top-1 against ours."""
    import mediapipe as mp  # noqa: PLC0415  (a test dependency)
    from mediapipe.tasks.python import vision  # noqa: PLC0415
    from mediapipe.tasks.python.core import base_options  # noqa: PLC0415

    found: dict[str, Any] = {}
    for name, content in contents.items():
        options = vision.ImageClassifierOptions(
            base_options=base_options.BaseOptions(model_asset_buffer=content), max_results=3
        )
        theirs: list[str] = []
        examples: list[dict[str, Any]] = []
        every = max(1, len(paths) // 3)  # examples from across the split
        with vision.ImageClassifier.create_from_options(options) as classifier:
            for i, path in enumerate(paths):
                photo = decode_image(path.read_bytes(), _side(path), "bilinear")
                image = mp.Image(image_format=mp.ImageFormat.SRGB, data=photo)
                categories = classifier.classify(image).classifications[0].categories
                theirs.append(categories[0].category_name)
                if i % every == 0 and len(examples) < 3:  # noqa: PLR2004
                    examples.append(
                        {
                            "photo": path.name,
                            "top": [(c.category_name, round(c.score, 4)) for c in categories],
                        }
                    )
        found[name] = {
            "top1_agreement_with_fruits_predict": _share(theirs, top[name]),
            "examples": examples,
        }
    return found


def _side(path: Path) -> int:
    from PIL import Image  # noqa: PLC0415

    with Image.open(path) as image:
        return max(image.size)
