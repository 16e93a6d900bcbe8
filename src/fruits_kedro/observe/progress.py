"""Progress of the running node: done / total, rate and ETA, read from Spark's status tracker.

:class:`ProgressHooks` tags the Spark jobs of each node with the node's name; a daemon thread
polls them every ``poll_s`` until the node's outputs are saved (a generator node's, when the
next node starts) or the node fails. A live bar
shows them on a terminal; elsewhere (CI, spark-submit, EMR step logs) a log line every
``interval_s``. A node that turns the images (``images_input``) into a DataFrame counts in
images: rows written by its finished tasks against the image files Spark listed for its input
(no extra Spark job counts them); any other node counts in Spark tasks. The samples (seconds,
done) of each node stay with the hook for the run report. Nothing here is saved or read by a
node.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from kedro.framework.hooks import hook_impl
from py4j.protocol import Py4JError
from pyspark.sql import DataFrame, SparkSession

from fruits_kedro.observe import logs
from fruits_kedro.observe.spark_status import NodeJobs, Status, listed_files

if TYPE_CHECKING:
    from kedro.io import CatalogProtocol
    from kedro.pipeline.node import Node
    from rich.progress import Progress

logger = logging.getLogger(__name__)

PARAMS = "params:progress"
DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "interval_s": 5.0,
    "poll_s": 1.0,
    "images_input": "ingested_images",
    "bar": True,
}
IMAGES, TASKS = "images", "tasks"
SETTLE_S = 2.0  # at the end, how long to wait for Spark's listener to record the last tasks


@dataclass(frozen=True)
class Snapshot:
    """A node's progress at one moment; ``images`` is set when it counts in images."""

    node: str
    elapsed_s: float
    status: Status
    images: int | None = None
    pace: float | None = None  # images/s since the first ones were written: the ETA's rate

    @property
    def unit(self) -> str:
        return TASKS if self.images is None else IMAGES

    @property
    def done(self) -> int:
        return self.status.tasks_done if self.images is None else self.status.rows_written

    @property
    def total(self) -> int:
        # never below what was written, should the listing miss rows added to the scan
        return self.status.tasks if self.images is None else max(self.images, self.done)

    @property
    def rate(self) -> float | None:
        """Done per second since the node started."""
        return self.done / self.elapsed_s if self.done and self.elapsed_s > 0 else None

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the pace of the writing (the start-up left out), else at the node's
        rate so far; unknown in tasks (later jobs are unknown)."""
        rate = self.pace or self.rate
        if self.images is None or rate is None:
            return None
        return (self.total - self.done) / rate

    def line(self, ended: str = "") -> str:
        """One log line: done / total, rate and ETA (in images), or the tasks so far.

        Args:
            ended: ``done`` or ``failed`` once the node has ended, else empty.
        """
        head = f"{self.node}: {ended + ', ' if ended else ''}"
        took = f"in {clock(self.elapsed_s)}" if ended else f"elapsed {clock(self.elapsed_s)}"
        tasks = f"Spark tasks {self.status.tasks_done}/{self.status.tasks}"
        if not self.status.jobs:
            return f"{head}no Spark job, {took}"
        if self.images is None:
            return f"{head}{tasks} of {self.status.jobs} job(s) so far, {took}"
        share = f" ({100 * self.done / self.total:.0f} %)" if self.total else ""
        parts = [f"{head}{self.done}/{self.total} images{share}"]
        if self.rate is not None:
            parts.append(f"{self.rate:.1f} images/s")
        if self.eta_s is not None and not ended:
            parts.append(f"ETA {clock(self.eta_s)}")
        return ", ".join([*parts, took, tasks])


def clock(seconds: float) -> str:
    """``75.4`` -> ``1:15``."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass
class NodeProgress:
    """One node's progress thread, its samples and its display."""

    name: str
    jobs: NodeJobs
    interval_s: float
    poll_s: float
    bar: Progress | None
    started_s: float  # since the run started
    images: int | None = None  # the image files listed for its input, once it counts images
    samples: list[tuple[float, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._start = time.perf_counter()
        self._logged = self._start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name=f"progress:{self.name}")
        self._thread.daemon = True
        self._task = self.bar.add_task(self.name, total=None, line="") if self.bar else None

    def start(self) -> None:
        self._thread.start()

    def stop(self, failed: bool = False) -> None:
        """Stop the thread, take the last sample and report it."""
        self._stop.set()
        self._thread.join()
        if self.bar is not None and self.bar.live.is_started:
            self.bar.stop()
        try:
            snapshot = self.snapshot(settle=not failed)
        except Py4JError:  # the session is gone: the samples so far stay
            return
        self._sample(snapshot)
        if failed or snapshot.images is not None or snapshot.elapsed_s >= self.interval_s:
            logger.info("%s", snapshot.line("failed" if failed else "done"))

    def snapshot(self, settle: bool = False) -> Snapshot:
        """What Spark reports now; with ``settle``, once every job of the node has ended."""
        status = self.jobs.status()
        deadline = time.perf_counter() + SETTLE_S
        while settle and status.jobs_done < status.jobs and time.perf_counter() < deadline:
            time.sleep(0.05)
            status = self.jobs.status()
        elapsed = time.perf_counter() - self._start
        snapshot = Snapshot(self.name, elapsed, status, self.images)
        return replace(snapshot, pace=self._pace(snapshot))

    def _pace(self, snapshot: Snapshot) -> float | None:
        """Done per second since the first sample that had any done."""
        first = next(((t, d) for t, d in self.samples if d), None)
        if first is None or snapshot.done <= first[1] or snapshot.elapsed_s <= first[0]:
            return None
        return (snapshot.done - first[1]) / (snapshot.elapsed_s - first[0])

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                snapshot = self.snapshot()
            except Py4JError as exc:  # the session is going away: the run goes on
                logger.debug("progress of %s stops: %s", self.name, exc)
                return
            self._sample(snapshot)
            self._show(snapshot)

    def _sample(self, snapshot: Snapshot) -> None:
        if not self.samples or self.samples[-1][1] != snapshot.done:
            self.samples.append((round(snapshot.elapsed_s, 2), snapshot.done))

    def _show(self, snapshot: Snapshot) -> None:
        if self.bar is not None and self._task is not None:
            if not self.bar.live.is_started:  # from the first poll on: short nodes show none
                self.bar.start()
            total = snapshot.total or None
            self.bar.update(self._task, completed=snapshot.done, total=total, line=snapshot.line())
            self.bar.refresh()
        elif time.perf_counter() - self._logged >= self.interval_s:
            self._logged = time.perf_counter()
            logger.info("%s", snapshot.line())

    def record(self) -> dict[str, Any]:
        """The node's samples, as the run report plots them."""
        unit = TASKS if self.images is None else IMAGES
        return {"started_s": round(self.started_s, 2), "unit": unit, "samples": self.samples}


class ProgressHooks:
    """Runs a :class:`NodeProgress` for every node while a Spark session is active."""

    def __init__(self) -> None:
        self._settings: dict[str, Any] = dict(DEFAULTS)
        self._running: dict[str, NodeProgress] = {}
        self._unsaved: dict[str, set[str]] = {}
        self._records: dict[str, dict[str, Any]] = {}
        self._streaming: set[str] = set()  # generator nodes: they end when the next one starts
        self._run_start = time.perf_counter()

    @property
    def records(self) -> dict[str, dict[str, Any]]:
        """The samples of the run's nodes, by node name."""
        return dict(self._records)

    @hook_impl(tryfirst=True)  # before the Spark session logs its first line
    def after_context_created(self) -> None:
        """On a terminal, log through the console the live bar draws on."""
        logs.use_rich_on_terminal()

    @hook_impl
    def before_pipeline_run(self, catalog: CatalogProtocol) -> None:
        """Read ``params:progress`` and start the run's clock."""
        given = catalog.load(PARAMS) if PARAMS in catalog else {}
        self._settings = {**DEFAULTS, **(given or {})}
        self._records, self._run_start = {}, time.perf_counter()

    @hook_impl
    def before_node_run(self, node: Node) -> None:
        """Tag the node's Spark jobs and start polling them."""
        for name in [n for n in self._running if n in self._streaming]:
            self._finish(name)  # a generator node's last chunk was saved before this node
        spark = SparkSession.getActiveSession()
        if spark is None or not self._settings["enabled"]:
            return
        tag = f"kedro-node:{node.name}:{uuid.uuid4().hex[:12]}"  # Spark keeps old jobs' tags
        spark.sparkContext.addJobTag(tag)
        show_bar = bool(self._settings["bar"]) and logs.interactive()
        progress = NodeProgress(
            node.name,
            NodeJobs(spark.sparkContext, tag),
            float(self._settings["interval_s"]),
            float(self._settings["poll_s"]),
            _bar() if show_bar else None,
            time.perf_counter() - self._run_start,
        )
        self._running[node.name] = progress
        if inspect.isgeneratorfunction(node.func):  # saved chunk by chunk, after the node ran
            self._streaming.add(node.name)
        else:
            self._unsaved[node.name] = set(node.outputs)
        progress.start()

    @hook_impl
    def after_node_run(self, node: Node, inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
        """Count in images when the node turned them into a DataFrame (Spark writes it next)."""
        progress = self._running.get(node.name)
        if progress is None:
            return
        if any(isinstance(v, DataFrame) for v in outputs.values()):
            progress.images = listed_files(inputs.get(self._settings["images_input"]))
        if not node.outputs and node.name not in self._streaming:
            self._finish(node.name)

    @hook_impl
    def after_dataset_saved(self, node: Node, dataset_name: str) -> None:
        """The node ends when its last output is written (Spark is lazy)."""
        unsaved = self._unsaved.get(node.name)
        if unsaved is not None:
            unsaved.discard(dataset_name)
            if not unsaved:
                self._finish(node.name)

    @hook_impl
    def on_node_error(self, node: Node) -> None:
        """Stop the node's thread when the node fails."""
        self._finish(node.name, failed=True)

    @hook_impl(tryfirst=True)  # the metrics hook then saves the samples
    def on_pipeline_error(self) -> None:
        """Stop every thread when the run fails (a failed save calls no node hook)."""
        for name in list(self._running):
            self._finish(name, failed=True)

    @hook_impl(tryfirst=True)  # the metrics hook then saves the samples
    def after_pipeline_run(self) -> None:
        """No thread outlives the run."""
        for name in list(self._running):
            self._finish(name)

    def _finish(self, name: str, failed: bool = False) -> None:
        progress = self._running.pop(name, None)
        self._unsaved.pop(name, None)
        self._streaming.discard(name)
        if progress is None:
            return
        progress.stop(failed=failed)
        self._records[name] = progress.record()
        spark = SparkSession.getActiveSession()
        if spark is not None:
            spark.sparkContext.removeJobTag(progress.jobs.tag)


def _bar() -> Progress:
    """A rich progress bar on the console the log lines use."""
    import rich  # noqa: PLC0415  (only on a terminal)
    from rich.progress import BarColumn, Progress, TextColumn  # noqa: PLC0415

    return Progress(
        BarColumn(),
        TextColumn("{task.fields[line]}"),
        console=rich.get_console(),
        auto_refresh=False,
        transient=True,
    )
