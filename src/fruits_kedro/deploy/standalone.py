"""A Spark standalone cluster on this machine: one master and N workers, on 127.0.0.1 only::

    fruits-cluster up [--workers 2] [--cores 1] [--memory 2g] [--dir .cluster] [--dist dist]
    fruits-cluster status [--dir .cluster]
    fruits-cluster down [--dir .cluster]

Every process is a separate JVM started from the pyspark wheel's own ``bin/spark-class``.
``--dir`` holds the PIDs (``cluster.json``), the logs and the workers' folders, and the
executors' Python: a virtual environment built by the packaged ``bootstrap.sh`` from ``--dist``
(``make package``), as on EMR. ``up`` on a running cluster starts only the workers it lacks
(e.g. after one was lost); ``down`` stops exactly the recorded processes and is safe to repeat.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyspark

if TYPE_CHECKING:
    from collections.abc import Callable

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
STATE_FILE = "cluster.json"
EXECUTOR_PYTHON = "python/bin/python"
# Workers honour Spark's decommissioning (SIGPWR, as EMR sends on a spot interruption notice).
WORKER_OPTS = "-Dspark.decommission.enabled=true -Dspark.worker.cleanup.enabled=true"
# Fail clearly on a port in use rather than silently taking the next one.
DAEMON_OPTS = "-Dspark.port.maxRetries=0 -Dspark.master.rest.enabled=false"
STOP_TIMEOUT_S = 20.0


class ClusterError(RuntimeError):
    """The cluster could not be started or reached."""


@dataclass
class Process:
    """One recorded JVM of the cluster."""

    name: str
    pid: int
    port: int
    log: str


@dataclass
class ClusterState:
    """What ``up`` started: read back by ``status``, ``down`` and the next ``up``."""

    master_url: str
    web_ui: str
    executor_python: str
    master: Process
    workers: list[Process] = field(default_factory=list)

    @classmethod
    def read(cls, folder: Path) -> ClusterState | None:
        path = folder / STATE_FILE
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        master = Process(**data.pop("master"))
        workers = [Process(**w) for w in data.pop("workers")]
        return cls(master=master, workers=workers, **data)

    def write(self, folder: Path) -> None:
        (folder / STATE_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n")


def spark_home() -> Path:
    """The Spark distribution inside the pyspark wheel."""
    return Path(pyspark.__file__).parent


def free_port() -> int:
    """A TCP port free on the loopback interface now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def is_running(pid: int, main_class: str) -> bool:
    """Whether ``pid`` is alive and still the JVM of ``main_class`` (not a reused PID)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return main_class.encode() in cmdline.split(b"\0")


def master_json(web_ui: str, timeout_s: float = 2.0) -> dict[str, Any]:
    """The master's state (workers, applications) from its web UI's JSON endpoint."""
    with urllib.request.urlopen(f"{web_ui}/json/", timeout=timeout_s) as response:
        return dict(json.load(response))


def _daemon_env(folder: Path, extra_opts: str) -> dict[str, str]:
    return {
        **os.environ,
        "SPARK_HOME": str(spark_home()),
        "SPARK_LOCAL_IP": HOST,
        "SPARK_DAEMON_MEMORY": "512m",
        "SPARK_DAEMON_JAVA_OPTS": f"{DAEMON_OPTS} {extra_opts}".strip(),
        "SPARK_CONF_DIR": str(folder / "conf"),
    }


def _start(folder: Path, name: str, main_class: str, args: list[str], opts: str) -> int:
    log = folder / "logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    (folder / "conf").mkdir(exist_ok=True)  # no spark-defaults: everything is explicit
    command = [str(spark_home() / "bin" / "spark-class"), main_class, *args]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_daemon_env(folder, opts),
            start_new_session=True,  # outlives the command that started it; not hit by Ctrl-C
        )
    return process.pid


def _wait(what: str, ready: Callable[[], bool], processes: list[Process], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            if ready():
                return
        for process in processes:
            if not Path(f"/proc/{process.pid}").exists():
                raise ClusterError(
                    f"{process.name} exited: see {process.log}\n{_tail(process.log)}"
                )
        time.sleep(0.3)
    raise ClusterError(f"{what} not ready after {timeout_s:.0f} s: see the logs in {processes}")


def _tail(log: str, lines: int = 15) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(Path(log).read_text(errors="replace").splitlines()[-lines:])
    return ""


def executor_fingerprint(dist: Path) -> str:
    """What the executors' environment is built from: the pinned requirements and the wheel's
    files (their content, not the build's timestamps)."""
    digest = hashlib.sha256((dist / "requirements-executor.txt").read_bytes())
    for wheel in sorted(dist.glob("fruits_kedro-*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            for name in sorted(archive.namelist()):
                digest.update(name.encode() + archive.read(name))
    return digest.hexdigest()


def ensure_executor_python(dist: Path, folder: Path) -> Path:
    """The executors' interpreter, built by ``dist/bootstrap.sh`` into ``folder/python`` (kept
    while ``dist`` is unchanged)."""
    python = folder / EXECUTOR_PYTHON
    stamp = folder / "python" / ".fingerprint"
    missing = [p for p in ("bootstrap.sh", "requirements-executor.txt") if not (dist / p).exists()]
    if missing or not list(dist.glob("fruits_kedro-*.whl")):
        raise ClusterError(
            f"{dist} lacks the packaged project ({missing or 'wheel'}): make package"
        )
    fingerprint = executor_fingerprint(dist)
    if python.exists() and stamp.exists() and stamp.read_text() == fingerprint:
        return python
    logger.info("building the executors' Python in %s with %s", python.parent.parent, dist)
    env = {**os.environ, "FRUITS_ROLE": "executor", "FRUITS_VENV": str(folder / "python")}
    subprocess.run(["bash", str(dist / "bootstrap.sh"), str(dist)], env=env, check=True)
    stamp.write_text(fingerprint)
    return python


def up(
    folder: Path,
    *,
    workers: int = 2,
    cores: int = 1,
    memory: str = "2g",
    port: int = 7077,
    webui_port: int = 8080,
    dist: Path | None = Path("dist"),
    timeout_s: float = 90.0,
) -> ClusterState:
    """Start the master (unless running) and the workers it lacks; wait until they are alive."""
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    python = ensure_executor_python(dist, folder) if dist is not None else folder / EXECUTOR_PYTHON
    state = ClusterState.read(folder)
    if state is None or not is_running(state.master.pid, MASTER_CLASS):
        log = str(folder / "logs" / "master.log")
        args = ["--host", HOST, "--port", str(port), "--webui-port", str(webui_port)]
        master = Process("master", _start(folder, "master", MASTER_CLASS, args, ""), port, log)
        web_ui = f"http://{HOST}:{webui_port}"
        state = ClusterState(f"spark://{HOST}:{port}", web_ui, str(python), master)
        state.write(folder)
        _wait("master", lambda: master_json(web_ui)["status"] == "ALIVE", [master], timeout_s)
    state.executor_python = str(python)
    alive = _alive_worker_ports(state)
    state.workers = [w for w in state.workers if w.port in alive]
    number = max((int(w.name.split("-")[1]) for w in state.workers), default=0)
    for _ in range(workers - len(state.workers)):
        number += 1
        name, worker_port = f"worker-{number}", free_port()
        args = [
            "--host", HOST, "--port", str(worker_port), "--webui-port", "0",
            "--cores", str(cores), "--memory", memory,
            "--work-dir", str(folder / "work" / name),
            state.master_url,
        ]  # fmt: skip
        pid = _start(folder, name, WORKER_CLASS, args, WORKER_OPTS)
        state.workers.append(Process(name, pid, worker_port, str(folder / "logs" / f"{name}.log")))
        state.write(folder)
    wanted = {w.port for w in state.workers}
    _wait(
        f"{len(wanted)} workers",
        lambda: wanted <= _alive_worker_ports(state),
        [state.master, *state.workers],
        timeout_s,
    )
    return state


def _alive_worker_ports(state: ClusterState) -> set[int]:
    """Ports of the recorded workers that run and that the master counts as ALIVE."""
    try:
        registered = master_json(state.web_ui)["workers"]
    except (OSError, ValueError):
        return set()
    alive = {int(w["port"]) for w in registered if w["state"] == "ALIVE"}
    return {w.port for w in state.workers if w.port in alive and is_running(w.pid, WORKER_CLASS)}


def stop_pid(pid: int, main_class: str, timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """SIGTERM ``pid`` if it is still ``main_class``'s JVM, SIGKILL after ``timeout_s``."""
    if not is_running(pid, main_class):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while is_running(pid, main_class) and time.monotonic() < deadline:
        time.sleep(0.2)
    if is_running(pid, main_class):
        os.kill(pid, signal.SIGKILL)
    return True


def down(folder: Path) -> list[int]:
    """Stop the recorded workers (their executors with them), then the master; returns the
    PIDs that were stopped. The logs stay."""
    folder = folder.resolve()
    state = ClusterState.read(folder)
    if state is None:
        return []
    stopped = [w.pid for w in state.workers if stop_pid(w.pid, WORKER_CLASS)]
    if stop_pid(state.master.pid, MASTER_CLASS):
        stopped.append(state.master.pid)
    (folder / STATE_FILE).unlink()
    return stopped


def describe(state: ClusterState) -> str:
    """What a user needs: the master URL, the web UI, the workers, how to run and stop."""
    lines = [
        f"Spark master  {state.master_url}  (pid {state.master.pid})",
        f"Master web UI {state.web_ui}",
        *(f"  {w.name}  127.0.0.1:{w.port}  (pid {w.pid}, log {w.log})" for w in state.workers),
        f"Executors' Python {state.executor_python}",
        f"Run:  FRUITS_SPARK_MASTER={state.master_url} kedro run --env=cluster",
    ]
    return "\n".join(lines)


def say(text: str) -> None:
    """The command's output, on stdout."""
    sys.stdout.write(text + "\n")


def main(argv: list[str] | None = None) -> int:
    """Command line: ``up``, ``status`` or ``down``."""
    parser = argparse.ArgumentParser(prog="fruits-cluster", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("up", "status", "down"))
    parser.add_argument("--dir", type=Path, default=Path(".cluster"), help="PIDs, logs, Python")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cores", type=int, default=1, help="cores per worker")
    parser.add_argument("--memory", default="2g", help="memory per worker")
    parser.add_argument("--port", type=int, default=7077, help="master port")
    parser.add_argument("--webui-port", type=int, default=8080, help="master web UI port")
    parser.add_argument("--dist", type=Path, default=Path("dist"), help="make package output")
    args = parser.parse_args(argv)
    if args.command == "down":
        stopped = down(args.dir)
        say(f"stopped {stopped}" if stopped else f"no cluster running from {args.dir}")
        return 0
    if args.command == "status":
        state = ClusterState.read(args.dir.resolve())
        if state is None or not is_running(state.master.pid, MASTER_CLASS):
            say(f"no cluster running from {args.dir}")
            return 1
        alive = _alive_worker_ports(state)
        say(describe(state))
        say(f"{len(alive)} of {len(state.workers)} workers alive")
        return 0
    try:
        state = up(
            args.dir,
            workers=args.workers,
            cores=args.cores,
            memory=args.memory,
            port=args.port,
            webui_port=args.webui_port,
            dist=args.dist,
        )
    except ClusterError as exc:
        say(f"fruits-cluster: {exc}")
        return 1
    say(describe(state))
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    raise SystemExit(main())
