"""Process trees and Spark event logs, for tests that kill what they started (by PID)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

EXECUTOR_CLASS = b"org.apache.spark.executor.CoarseGrainedExecutorBackend"
PYTHON_DAEMON = b"pyspark.daemon"


def cmdline(pid: int) -> list[bytes]:
    """The command line of ``pid`` (empty once it has exited)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def children(pid: int) -> list[int]:
    """The direct children of ``pid``."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, parents before children."""
    found, pending = [], children(pid)
    while pending:
        child = pending.pop(0)
        found.append(child)
        pending += children(child)
    return found


def alive(pid: int) -> bool:
    return bool(cmdline(pid)) and not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        return " Z " in Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1][:4]
    except OSError:
        return True


def executors_of(worker_pid: int) -> list[int]:
    """The executor JVMs a standalone Worker JVM launched."""
    return [c for c in children(worker_pid) if EXECUTOR_CLASS in cmdline(c)]


def python_workers(root_pid: int) -> list[int]:
    """The PySpark Python workers below ``root_pid``: the processes a ``pyspark.daemon`` forked
    (they carry its command line; the daemon itself only forks)."""
    daemons = [
        child
        for parent in [root_pid, *descendants(root_pid)]
        if not _is_daemon(parent)
        for child in children(parent)
        if _is_daemon(child)
    ]
    return [worker for daemon in daemons for worker in children(daemon) if _is_daemon(worker)]


def _is_daemon(pid: int) -> bool:
    return PYTHON_DAEMON in b" ".join(cmdline(pid))


def has_loaded(pid: int, *libraries: bytes) -> bool:
    """Whether ``pid`` has mapped a file whose path contains one of ``libraries``."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_bytes()
    except OSError:
        return False
    return any(library in maps for library in libraries)


def cpu_ticks(pid: int) -> int:
    """User + system CPU time of ``pid`` so far, in clock ticks (0 once it has exited)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def busiest(pids: list[int], interval_s: float = 0.3) -> int | None:
    """The one of ``pids`` that used the most CPU over ``interval_s`` (None if all idle)."""
    before = {pid: cpu_ticks(pid) for pid in pids}
    time.sleep(interval_s)
    used = {pid: cpu_ticks(pid) - start for pid, start in before.items()}
    pid = max(used, key=lambda p: used[p], default=None)
    return pid if pid is not None and used[pid] > 0 else None


def wait_for(what: str, probe: Callable[[], Any], timeout_s: float = 300.0) -> Any:
    """Poll ``probe`` until it returns something truthy; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def failed_tasks(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The task attempts that did not succeed, each with its ``Reason`` (and description)."""
    return [
        e["Task End Reason"]
        for e in events
        if e["Event"] == "SparkListenerTaskEnd" and e["Task End Reason"]["Reason"] != "Success"
    ]


def removed_executors(events: list[dict[str, Any]]) -> list[str]:
    """Why each executor that left during the run was removed."""
    return [e["Removed Reason"] for e in events if e["Event"] == "SparkListenerExecutorRemoved"]
