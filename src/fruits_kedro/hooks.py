"""Project hooks: the one owner of the SparkSession, and the end-of-run metrics."""

from __future__ import annotations

import logging
import os
import platform
import sys
import time
from importlib import metadata
from typing import TYPE_CHECKING, Any

from kedro.framework.hooks import hook_impl
from pyspark import SparkConf
from pyspark.sql import SparkSession

if TYPE_CHECKING:
    from kedro.framework.context import KedroContext
    from kedro.io import CatalogProtocol
    from kedro.pipeline import Pipeline
    from kedro.pipeline.node import Node

logger = logging.getLogger(__name__)

COUNTS_DATASET = "image_counts"
METRICS_DATASET = "run_metrics"
EMBEDDING_NODE = "embed_images"
_PACKAGES = (
    "kedro",
    "kedro-datasets",
    "pyspark",
    "tensorflow-cpu",
    "tensorflow",
    "keras",
    "ai-edge-litert",
    "pillow",
    "numpy",
    "pandas",
    "pyarrow",
)
_SECRET_WORDS = ("secret", "password", "token", "access.key", "credential")


class SparkHooks:
    """Builds the SparkSession from ``conf/<env>/spark.yml`` when the context is created."""

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        """Start (or join, under spark-submit) the session with the environment's settings."""
        settings = {key: str(value) for key, value in context.config_loader["spark"].items()}
        # Python workers must run this interpreter, which has the project's packages. A
        # session started in-process takes the workers' interpreter from the environment.
        settings.setdefault("spark.pyspark.python", sys.executable)
        os.environ.setdefault("PYSPARK_PYTHON", settings["spark.pyspark.python"])
        builder = SparkSession.builder.appName(settings.pop("spark.app.name", "fruits-kedro"))
        spark = builder.config(conf=SparkConf().setAll(list(settings.items()))).getOrCreate()
        spark.sparkContext.setLogLevel(settings.get("spark.log.level", "WARN"))
        logger.info(
            "Spark %s session %s on %s",
            spark.version,
            spark.sparkContext.appName,
            spark.sparkContext.master,
        )


class RunMetricsHooks:
    """Times every node and writes ``run_metrics`` at the end of each run."""

    def __init__(self) -> None:
        self._started: dict[str, float] = {}
        self._timings: dict[str, float] = {}
        self._counts: dict[str, Any] = {}
        self._run_start = 0.0

    @hook_impl
    def before_pipeline_run(self) -> None:
        """Start the run clock."""
        self._started, self._timings, self._counts = {}, {}, {}
        self._run_start = time.perf_counter()

    @hook_impl
    def before_node_run(self, node: Node) -> None:
        """Start the node's clock."""
        logger.info("node %s: started", node.name)
        self._started[node.name] = time.perf_counter()

    @hook_impl
    def after_node_run(self, node: Node, outputs: dict[str, Any]) -> None:
        """Keep the image counts when the node that reconciles them has run."""
        if COUNTS_DATASET in outputs:
            self._counts = dict(outputs[COUNTS_DATASET])

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, node: Node) -> None:
        """A node's wall time runs until its last output is written (Spark is lazy)."""
        self._stop_clock(node)

    @hook_impl
    def after_pipeline_run(self, pipeline: Pipeline, catalog: CatalogProtocol) -> None:
        """Assemble the run's metrics and save them through the catalog."""
        for node in pipeline.nodes:
            self._stop_clock(node, only_if_unset=True)
        if METRICS_DATASET not in catalog:
            return
        metrics = self.metrics()
        catalog.save(METRICS_DATASET, metrics)
        logger.info("run metrics: %s", {k: metrics[k] for k in ("images", "wall_time_s")})

    def _stop_clock(self, node: Node, only_if_unset: bool = False) -> None:
        if node.name in self._started and not (only_if_unset and node.name in self._timings):
            self._timings[node.name] = round(time.perf_counter() - self._started[node.name], 3)

    def metrics(self) -> dict[str, Any]:
        """The metrics of the current run: counts, timings, throughput, versions, Spark."""
        embedded = self._counts.get("embedded")
        embed_time = self._timings.get(EMBEDDING_NODE)
        return {
            "images": self._counts,
            "wall_time_s": round(time.perf_counter() - self._run_start, 3),
            "node_wall_time_s": self._timings,
            "embedding_images_per_s": round(embedded / embed_time, 2)
            if embedded and embed_time
            else None,
            "versions": _versions(),
            "spark_conf": _spark_conf(),
        }


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _spark_conf() -> dict[str, str]:
    spark = SparkSession.getActiveSession()
    if spark is None:
        return {}
    return {
        key: value
        for key, value in sorted(spark.sparkContext.getConf().getAll())
        if not any(word in key.lower() for word in _SECRET_WORDS)
    }
