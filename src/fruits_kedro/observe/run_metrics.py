"""End-of-run metrics and report: counts, wall time per node, throughput, versions, Spark.

``run_metrics`` is also the run's completion marker: ``"status"`` is ``running`` from the
start, then ``complete`` or ``failed``, so a failed run never leaves a result that looks
complete. Hooks only observe: no node reads what they write. When the run ends, the run
report is written from the run's saved outputs and these metrics (with the plots of the
nodes' wall times and of the embedding's throughput), and one summary line is logged.
"""

from __future__ import annotations

import logging
import platform
import time
from importlib import metadata
from typing import TYPE_CHECKING, Any

from kedro.framework.hooks import hook_impl
from pyspark.sql import SparkSession

from fruits_kedro.reporting import plots, report

if TYPE_CHECKING:
    from kedro.io import CatalogProtocol
    from kedro.pipeline import Pipeline
    from kedro.pipeline.node import Node
    from matplotlib.figure import Figure

    from fruits_kedro.observe.progress import ProgressHooks

logger = logging.getLogger(__name__)

COUNTS_DATASET = "image_counts"
METRICS_DATASET = "run_metrics"
REPORT_DATASET = "run_report"
EMBEDDING_NODE = "embedding.embed_images"
# Plots of the run itself, drawn when it ends: key in the report -> catalog name.
RUN_PLOTS = {"node_times": "node_time_plot", "throughput": "embedding_throughput_plot"}
PACKAGES = (
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
SECRET_WORDS = ("secret", "password", "token", "access.key", "credential")


class RunMetricsHooks:
    """Times every node and writes ``run_metrics`` at the start and the end of each run.

    Args:
        progress: The hook whose progress samples go into the metrics, if any.
    """

    def __init__(self, progress: ProgressHooks | None = None) -> None:
        self._progress = progress
        self._started: dict[str, float] = {}
        self._timings: dict[str, float] = {}
        self._counts: dict[str, Any] = {}
        self._run_start = 0.0

    @hook_impl
    def before_pipeline_run(self, catalog: CatalogProtocol) -> None:
        """Start the run clock and mark the run as running."""
        self._started, self._timings, self._counts = {}, {}, {}
        self._run_start = time.perf_counter()
        self._save(catalog, "running")

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
    def after_dataset_saved(self, node: Node) -> None:
        """A node's wall time runs until its last output is written (Spark is lazy)."""
        self._stop_clock(node)

    @hook_impl
    def after_pipeline_run(self, pipeline: Pipeline, catalog: CatalogProtocol) -> None:
        """Write the run report, then save the run's metrics as complete."""
        for node in pipeline.nodes:
            self._stop_clock(node, only_if_unset=True)
        try:
            written = write_report(catalog, {"status": "complete", **self.metrics()})
        except Exception as exc:
            self._save(catalog, "failed", error=f"run report: {type(exc).__name__}: {exc}")
            raise
        metrics = self._save(catalog, "complete")
        report_at = location(catalog, REPORT_DATASET) if written else None
        logger.info("%s", summary(metrics, report_at))

    @hook_impl
    def on_pipeline_error(self, error: Exception, catalog: CatalogProtocol) -> None:
        """Save the run's metrics as failed, with the error."""
        self._save(catalog, "failed", error=f"{type(error).__name__}: {error}")

    def _stop_clock(self, node: Node, only_if_unset: bool = False) -> None:
        if node.name in self._started and not (only_if_unset and node.name in self._timings):
            self._timings[node.name] = round(time.perf_counter() - self._started[node.name], 3)

    def _save(self, catalog: CatalogProtocol, status: str, **extra: str) -> dict[str, Any]:
        metrics = {"status": status, **extra, **self.metrics()}
        if METRICS_DATASET in catalog:
            catalog.save(METRICS_DATASET, metrics)
        return metrics

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
            "progress": self._progress.records if self._progress else {},
            "versions": versions(),
            "spark_conf": spark_conf(),
        }


def write_report(catalog: CatalogProtocol, metrics: dict[str, Any]) -> bool:
    """Render ``run_report`` from the run's saved outputs, when they all exist.

    Returns:
        Whether the report was written.
    """
    names = [*report.INPUTS, *report.PLOTS.values()]
    missing = [name for name in names if name not in catalog or not catalog.exists(name)]
    if REPORT_DATASET not in catalog or missing:
        logger.info("run report not written: no %s yet", ", ".join(missing) or REPORT_DATASET)
        return False
    outputs = {name: catalog.load(name) for name in report.INPUTS}
    pictures = {key: catalog.load(name) for key, name in report.PLOTS.items()}
    pictures.update(save_run_plots(catalog, metrics))
    catalog.save(REPORT_DATASET, report.render_report(outputs, pictures, metrics))
    logger.info("run report written: %s", REPORT_DATASET)
    return True


def save_run_plots(catalog: CatalogProtocol, metrics: dict[str, Any]) -> dict[str, bytes]:
    """Draw and save the plots of :data:`RUN_PLOTS` the catalog declares; their PNG bytes."""
    draw: dict[str, Any] = {
        "node_times": lambda: plots.node_times_figure(metrics.get("node_wall_time_s", {})),
        "throughput": lambda: plots.throughput_figure(
            metrics.get("progress", {}).get(EMBEDDING_NODE), EMBEDDING_NODE
        ),
    }
    saved = {}
    for key, name in RUN_PLOTS.items():
        if name in catalog:
            figure: Figure = draw[key]()
            catalog.save(name, figure)
            saved[key] = catalog.load(name)
    return saved


def location(catalog: CatalogProtocol, name: str) -> str | None:
    """Where a file dataset is written: its path, or URL off the local file system."""
    dataset = catalog.get(name)
    described = dataset._describe() if dataset is not None else {}
    path, protocol = described.get("filepath"), described.get("protocol")
    if path is None:
        return None
    return str(path) if protocol in (None, "file") else f"{protocol}://{path}"


def summary(metrics: dict[str, Any], report_at: str | None) -> str:
    """The run's last log line: counts, wall time, throughput, where the report is."""
    counts = metrics.get("images") or {}
    images = (
        f"{counts.get('read')} images read, {counts.get('embedded')} embedded,"
        f" {counts.get('reused')} reused, {counts.get('quarantined')} quarantined"
        if counts
        else "no images embedded"
    )
    rate = metrics.get("embedding_images_per_s")
    throughput = f", embedding {rate:.1f} images/s" if rate else ""
    report_text = report_at or "not written"
    return (
        f"run complete in {metrics['wall_time_s']:.1f} s: {images}{throughput};"
        f" report: {report_text}"
    )


def versions() -> dict[str, str]:
    """Python's and the main packages' versions."""
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def spark_conf() -> dict[str, str]:
    """The Spark settings in force, secrets left out."""
    spark = SparkSession.getActiveSession()
    if spark is None:
        return {}
    return {
        key: value
        for key, value in sorted(spark.sparkContext.getConf().getAll())
        if not any(word in key.lower() for word in SECRET_WORDS)
    }
