"""The embedding pipeline on a standalone cluster against local Spark, on the same images
(``bench cluster --master spark://…``).

The embedding pipeline runs on that standalone cluster (``cluster`` environment, the executors'
Python of ``--cluster-dir``), then on local Spark with as many cores as the cluster's executors:
``cluster_img_s``, ``local_img_s``, ``ratio``, the executors' start-up (application start to
executor registered) and the first embedding task of each executor against the median task (the
broadcast and engine build).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyspark.sql import SparkSession

from fruits_kedro.bench.workspace import (
    bytes_written,
    environment,
    project_context,
    run_pipelines,
    runtime_params,
    scratch_project,
    workspace,
)
from fruits_kedro.deploy.standalone import ClusterState
from fruits_kedro.observe import spark_events
from fruits_kedro.observe.run_metrics import EMBEDDING_NODE

if TYPE_CHECKING:
    import argparse

EVENTS = "logs/spark-events"


def timed_run(project: Path, params: dict[str, Any], env: str) -> dict[str, Any]:
    """Run the embedding pipeline in ``env``; its metrics, event-log figures and wall time."""
    start = time.perf_counter()
    run_pipelines(project, params, ["embedding"], env)
    wall_s = time.perf_counter() - start
    with project_context(project, params, env) as context:
        metrics = context.catalog.load("run_metrics")
        written = bytes_written(project, context.config_loader["catalog"])
    session = SparkSession.getActiveSession()
    if session is not None:  # the next run starts its own application, on its own master
        session.stop()
    events = spark_events.read_event_log(project / EVENTS)
    return {
        "img_s": metrics["embedding_images_per_s"],
        "embed_s": metrics["node_wall_time_s"].get(EMBEDDING_NODE),
        "wall_s": round(wall_s, 1),
        "cores": spark_events.cores(events) or os.cpu_count(),
        "executor_startup_s": spark_events.executor_startup_s(events),
        "first_task_extra_s": spark_events.first_task_extra_s(events),
        "model_mb": round(written.get("model_artifact", 0) / 2**20, 1),
        "images": metrics["images"],
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``bench cluster``, besides the shared ones."""
    parser.add_argument("--master", required=True, help="the standalone master's URL")
    parser.add_argument(
        "--cluster-dir", type=Path, default=Path(".cluster"), help="of fruits-cluster up"
    )


def run(files: list[Path], args: argparse.Namespace) -> dict[str, Any]:
    """The cluster at ``args.master``, then local Spark, on the same images."""
    del files  # both runs list the input folder themselves
    state = ClusterState.read(args.cluster_dir.resolve())
    if state is None:
        raise SystemExit(f"no cluster recorded in {args.cluster_dir}: run make cluster-up")
    params = runtime_params(args)
    with workspace(args.keep) as tmp:
        variables = {
            "FRUITS_SPARK_MASTER": args.master,
            "FRUITS_EXECUTOR_PYTHON": state.executor_python,
        }
        with environment(**variables):
            cluster = timed_run(
                scratch_project(args.project_dir.resolve(), tmp / "cluster"), params, "cluster"
            )
        with environment():
            local = timed_run(
                scratch_project(args.project_dir.resolve(), tmp / "local"), params, "local"
            )
    return {
        "master": args.master,
        "cluster_img_s": cluster["img_s"],
        "local_img_s": local["img_s"],
        "ratio": round(cluster["img_s"] / local["img_s"], 3),
        "cluster": cluster,
        "local": local,
    }
