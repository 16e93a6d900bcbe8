"""Peak memory of a run's processes, polled from ``/proc`` while it runs."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

SPARK_WORKER_MARKS = (b"pyspark.daemon", b"pyspark.worker")
JVM_MARK = b"org.apache.spark.deploy.SparkSubmit"


class WorkerPeakRss:
    """Largest peak RSS (``VmHWM``) of the Spark Python workers, polled from ``/proc``;
    also the peaks of the Spark JVM started by this process (``jvm_peak_kb``) and of this
    process while polled (``self_peak_kb``: the driver's Python during the run)."""

    def __init__(self, interval_s: float = 0.5) -> None:
        self.peak_kb = 0
        self.jvm_peak_kb = 0
        self.self_peak_kb = 0
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> WorkerPeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        while not self._stop.wait(self._interval):
            self.self_peak_kb = max(self.self_peak_kb, _vm_rss_kb(Path("/proc/self/status")))
            for status, is_jvm in _spark_status_files():
                if is_jvm:
                    self.jvm_peak_kb = max(self.jvm_peak_kb, _vm_hwm_kb(status))
                else:
                    self.peak_kb = max(self.peak_kb, _vm_hwm_kb(status))


def _spark_status_files() -> Iterator[tuple[Path, bool]]:
    """``/proc/<pid>/status`` of the Spark processes: (path, is the JVM of this process)."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            command = (proc / "cmdline").read_bytes()
            if any(mark in command for mark in SPARK_WORKER_MARKS):
                yield proc / "status", False
            elif JVM_MARK in command and _parent(proc) == os.getpid():
                yield proc / "status", True
        except OSError:
            continue


def _parent(proc: Path) -> int:
    for line in (proc / "status").read_text().splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    return -1


def _vm_hwm_kb(status: Path) -> int:
    return _status_kb(status, "VmHWM:")


def _vm_rss_kb(status: Path) -> int:
    return _status_kb(status, "VmRSS:")


def _status_kb(status: Path, field: str) -> int:
    try:
        for line in status.read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
