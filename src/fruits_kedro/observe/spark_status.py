"""What Spark's driver knows of a node's jobs while they run: tasks, and rows written.

Read from the status tracker (jobs by tag) and the application's status store (per stage:
status, tasks done, records written), the same data the Spark UI shows; nothing here starts
a Spark job. Both only learn of a task when it ends, so progress moves task by task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from py4j.protocol import Py4JError
from pyspark.sql import DataFrame

if TYPE_CHECKING:
    from pyspark import SparkContext

FINISHED_JOBS = ("SUCCEEDED", "FAILED")
RUNNING_STAGES = ("ACTIVE", "COMPLETE", "FAILED")  # submitted: pending or skipped ones are not


@dataclass(frozen=True)
class Status:
    """What Spark reports of a node's jobs so far (submitted stages only)."""

    jobs: int = 0
    jobs_done: int = 0
    tasks: int = 0
    tasks_done: int = 0
    rows_written: int = 0

    def __add__(self, other: Status) -> Status:
        return Status(
            self.jobs + other.jobs,
            self.jobs_done + other.jobs_done,
            self.tasks + other.tasks,
            self.tasks_done + other.tasks_done,
            self.rows_written + other.rows_written,
        )


class NodeJobs:
    """The Spark jobs tagged ``tag``; a finished job is read once."""

    def __init__(self, context: SparkContext, tag: str) -> None:
        scala = context._jsc.sc()
        self._tags = scala.statusTracker()  # the Scala tracker knows job tags
        self._jobs = context._jsc.statusTracker()  # the Java one answers null when unknown
        self._stages = scala.statusStore()  # per stage: status, tasks and records written
        self.tag = tag
        self._finished: dict[int, Status] = {}

    def status(self) -> Status:
        """The sum over the tag's jobs."""
        total = Status()
        for job_id in self._tags.getJobIdsForTag(self.tag):
            total += self._finished.get(job_id) or self._job(job_id)
        return total

    def _job(self, job_id: int) -> Status:
        info = self._jobs.getJobInfo(job_id)
        if info is None:
            return Status()
        finished = str(info.status()) in FINISHED_JOBS
        status = Status(jobs=1, jobs_done=int(finished))
        for stage_id in info.stageIds():
            status += self._stage(stage_id)
        if finished:
            self._finished[job_id] = status
        return status

    def _stage(self, stage_id: int) -> Status:
        try:
            stage = self._stages.lastStageAttempt(stage_id)
        except Py4JError:  # not recorded yet, or already forgotten
            return Status()
        if str(stage.status()) not in RUNNING_STAGES:
            return Status()
        return Status(
            tasks=stage.numTasks(),
            tasks_done=stage.numCompleteTasks(),
            rows_written=stage.outputRecords(),
        )


def listed_files(data: Any) -> int | None:
    """The files Spark listed for a DataFrame's file scans (the listing is already there)."""
    if not isinstance(data, DataFrame):
        return None
    try:
        return len(data._jdf.inputFiles())
    except Py4JError:
        return None
