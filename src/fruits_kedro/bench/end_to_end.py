"""The whole default ``kedro run`` against the engine alone on the same images
(``bench end-to-end``).

Gives ``wall_s``, ``embed_s``, ``ceiling_img_s``, ``overhead_ratio`` =
``wall_s / (images / ceiling_img_s)``, the wall time of every node, the peak RSS of the driver
(Python and JVM) and of the largest Python worker, and the bytes written per dataset.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fruits_kedro.bench.memory import WorkerPeakRss
from fruits_kedro.bench.reference import engine_alone_img_s, run_settings
from fruits_kedro.bench.workspace import (
    bytes_written,
    project_context,
    run_pipelines,
    runtime_params,
    scratch_project,
    workspace,
)
from fruits_kedro.model.mobilenet import load_weights
from fruits_kedro.observe.run_metrics import EMBEDDING_NODE

if TYPE_CHECKING:
    import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``bench end-to-end``, besides the shared ones."""
    parser.add_argument(
        "--ceiling-images",
        type=int,
        default=4000,
        help="images (evenly spread) timed for the engine alone (0: all)",
    )


def run(files: list[Path], args: argparse.Namespace) -> dict[str, Any]:
    """The whole default run, then the engine alone on (a spread subset of) the same images."""
    params = runtime_params(args)
    with workspace(args.keep) as tmp:
        project = scratch_project(args.project_dir.resolve(), tmp / "project")
        start = time.perf_counter()
        with WorkerPeakRss() as rss:
            run_pipelines(project, params, ["__default__"])
        wall_s = time.perf_counter() - start
        with project_context(project, params) as context:
            metrics = context.catalog.load("run_metrics")
            written = bytes_written(project, context.config_loader["catalog"])
            settings = run_settings(context.params)
    timed = files[:: max(1, len(files) // args.ceiling_images)] if args.ceiling_images else files
    size = int(settings["image"]["input_size"])
    weights = load_weights(str(Path(args.weights).resolve()), size)
    ceiling = engine_alone_img_s(timed, weights, settings)
    images = int(metrics["images"]["read"])
    return {
        "images": images,
        "embedded": metrics["images"]["embedded"],
        "wall_s": round(wall_s, 1),
        "embed_s": metrics["node_wall_time_s"].get(EMBEDDING_NODE),
        "ceiling_img_s": round(ceiling, 2),
        "ceiling_images": len(timed),
        "overhead_ratio": round(wall_s / (images / ceiling), 3),
        "wall_ms_per_image": round(1000 * wall_s / images, 3),
        "node_wall_time_s": metrics["node_wall_time_s"],
        "driver_python_rss_mb": round(rss.self_peak_kb / 1024, 1),
        "driver_jvm_rss_mb": round(rss.jvm_peak_kb / 1024, 1),
        "worker_rss_mb": round(rss.peak_kb / 1024, 1),
        "input_bytes": sum(f.stat().st_size for f in files),
        "bytes_written": written,
        "bytes_written_total": sum(written.values()),
        "engine": settings["embedding"]["engine"],
        "input_size": settings["image"]["input_size"],
        "cores": os.cpu_count(),
    }
