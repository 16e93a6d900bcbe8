"""Spark's event logs (``spark.eventLog.dir``): read back what a run's application did."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    from pathlib import Path

APP_PREFIX = "eventlog_v2_"  # Spark's rolling event logs: one folder per application


def read_event_log(folder: Path) -> list[dict[str, Any]]:
    """The events of the one application logged under ``folder`` (rolling zstd files)."""
    apps = sorted(folder.glob(f"{APP_PREFIX}*"))
    if len(apps) != 1:
        raise ValueError(f"expected one application's event log in {folder}, found {apps}")
    events: list[dict[str, Any]] = []
    for part in sorted(apps[0].glob("events_*"), key=lambda p: int(p.name.split("_")[1])):
        with pa.CompressedInputStream(pa.OSFile(str(part)), "zstd") as stream:
            events += [json.loads(line) for line in stream.read().decode().splitlines()]
    return events


def of_kind(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The events of one kind, e.g. ``TaskEnd`` for ``SparkListenerTaskEnd``."""
    return [e for e in events if e["Event"] == f"SparkListener{kind}"]


def executor_startup_s(events: list[dict[str, Any]]) -> float:
    """Seconds from the application's start to its last executor registered."""
    start = of_kind(events, "ApplicationStart")[0]["Timestamp"]
    added = [e["Timestamp"] for e in of_kind(events, "ExecutorAdded")]
    return round((max(added) - start) / 1000, 2) if added else 0.0


def cores(events: list[dict[str, Any]]) -> int:
    """Cores of the application's executors (all of them, over the run)."""
    return sum(int(e["Executor Info"]["Total Cores"]) for e in of_kind(events, "ExecutorAdded"))


def first_task_extra_s(events: list[dict[str, Any]]) -> float:
    """In the stage that ran longest, how much longer each executor's first task took than
    the stage's median task (the broadcast fetch and the engine build), averaged."""
    tasks: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for end in of_kind(events, "TaskEnd"):
        tasks[end["Stage ID"]].append(end["Task Info"])
    if not tasks:
        return 0.0
    stage = max(tasks.values(), key=lambda infos: sum(_duration(i) for i in infos))
    median = statistics.median(_duration(i) for i in stage)
    first: dict[str, dict[str, Any]] = {}
    for info in sorted(stage, key=lambda i: i["Launch Time"]):
        first.setdefault(info["Executor ID"], info)
    return round(statistics.mean(_duration(i) - median for i in first.values()), 2)


def _duration(info: dict[str, Any]) -> float:
    return (info["Finish Time"] - info["Launch Time"]) / 1000
