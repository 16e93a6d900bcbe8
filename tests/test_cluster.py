"""A real Spark standalone cluster on this machine, and runs that survive lost workers.

One master and two 1-core workers (separate JVMs, from the pyspark wheel) are started with
``fruits-cluster up`` for this module and always stopped at its end, by the PIDs they
recorded. Their executors run the Python environment that the packaged ``bootstrap.sh``
builds from ``dist/``. A clean run through ``spark-submit`` (as an EMR step runs) is the
reference; each fault run must produce the same outputs: the same images, no duplicates,
features within 1e-6, the same quarantine and counts. Faults are real: processes are killed
by PID while ``embed_images`` runs, and Spark's own event logs say what it retried.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyspark
import pytest

from fruits_kedro.deploy.package import build
from fruits_kedro.deploy.standalone import ClusterState, free_port, master_json
from fruits_kedro.observe.spark_events import read_event_log
from fruits_kedro.tools.corpus import main as corpus_main
from tests.conftest import (
    PROJECT_ROOT,
    copy_project,
    delta_conf,
    read_delta,
    run_command,
    write_bad_files,
)
from tests.processes import (
    alive,
    busiest,
    children,
    cmdline,
    executors_of,
    failed_tasks,
    has_loaded,
    python_workers,
    removed_executors,
    wait_for,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

pytestmark = [pytest.mark.shared, pytest.mark.e2e, pytest.mark.cluster]

IMAGES = 400  # the mini set and augmented variants of it: a few seconds of embedding per run
MIN_EMBED_S = 1.0  # how long into the model's work a fault strikes
MODEL_RUNTIMES = (b"ai_edge_litert", b"tensorflow")  # a Python worker running the model maps one
RUN_TIMEOUT_S = 600
# Fault runs embed in 2 long tasks (one per core), so that a fault strikes a running task; the
# clean run keeps the default partitioning: the outputs do not depend on it.
FAULT_PARTITIONS = "embedding.partitions=2"


@dataclass
class Cluster:
    folder: Path
    up_output: str
    up_command: list[str]

    @property
    def state(self) -> ClusterState:
        state = ClusterState.read(self.folder)
        assert state is not None
        return state

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KEDRO_DISABLE_TELEMETRY": "true",
            "FRUITS_SPARK_MASTER": self.state.master_url,
            "FRUITS_EXECUTOR_PYTHON": self.state.executor_python,
        }

    def top_up(self) -> None:
        """Start the workers the cluster lacks (after a test took one away)."""
        result = run_command(self.up_command, None, dict(os.environ), 600)
        assert result.returncode == 0, result.stdout + result.stderr

    def wait_idle(self) -> None:
        """Wait until no application holds the cluster's cores and no executor is left."""
        wait_for("no active application", lambda: not master_json(self.state.web_ui)["activeapps"])
        workers = [w.pid for w in self.state.workers]
        wait_for("the executors to exit", lambda: not any(executors_of(w) for w in workers), 60)


@dataclass(frozen=True)
class Outputs:
    embeddings: pd.DataFrame
    quarantine: pd.DataFrame
    counts: dict[str, Any]
    metrics: dict[str, Any]

    @classmethod
    def of(cls, data: Path) -> Outputs:
        return cls(
            read_delta(data / "04_feature/image_embeddings"),
            pd.concat(
                pd.read_csv(part)
                for part in (data / "03_primary/image_quarantine.csv").glob("*.csv")
            ),
            json.loads((data / "08_reporting/image_counts.json").read_text()),
            json.loads((data / "08_reporting/run_metrics.json").read_text()),
        )


@pytest.fixture(scope="module")
def images(tmp_path_factory, mini_dir: Path) -> tuple[Path, dict[str, str]]:
    """400 real images (the mini set and variants of it) and one file of each bad kind."""
    folder = tmp_path_factory.mktemp("cluster_images") / "images"
    argv = ["--source", str(mini_dir), "--dest", str(folder), "--images", str(IMAGES)]
    assert corpus_main([*argv, "--workers", "1"]) == 0
    (folder / ".fruits-corpus.json").unlink()
    return folder, write_bad_files(folder)


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """The packaged project, as ``make package`` builds it."""
    folder = tmp_path_factory.mktemp("cluster_dist") / "dist"
    build(PROJECT_ROOT, folder)
    return folder


@pytest.fixture(scope="module")
def cluster(dist: Path, tmp_path_factory) -> Iterator[Cluster]:
    """``fruits-cluster up`` with two 1-core workers on free ports; ``down`` twice at the end."""
    folder = tmp_path_factory.mktemp("cluster") / ".cluster"
    command = [sys.executable, "-m", "fruits_kedro.deploy.standalone"]
    options = ["--dir", str(folder), "--dist", str(dist), "--workers", "2", "--memory", "2g"]
    ports = ["--port", str(free_port()), "--webui-port", str(free_port())]
    up = [*command, "up", *options, *ports]
    started = run_command(up, None, dict(os.environ), 600)
    recorded = ClusterState.read(folder)
    pids = [] if recorded is None else [recorded.master.pid, *(w.pid for w in recorded.workers)]
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        yield Cluster(folder, started.stdout, up)
    finally:
        state = ClusterState.read(folder)
        if state is not None:
            pids += [state.master.pid, *(w.pid for w in state.workers)]
        down = [*command, "down", "--dir", str(folder)]
        first = run_command(down, None, dict(os.environ), 120)
        second = run_command(down, None, dict(os.environ), 120)
        leftover = [p for p in pids if alive(p)]
        for pid in leftover:  # never leave a JVM behind, even if `down` failed
            os.kill(pid, signal.SIGKILL)
        assert first.returncode == 0, first.stdout + first.stderr
        assert second.returncode == 0 and "no cluster running" in second.stdout
        assert not leftover, f"still running after cluster down: {leftover}"


def weights_params(images: Path, weights: Path, *more: str) -> list[str]:
    return ["--params", ",".join([f"input_dir={images}", f"weights={weights}", *more])]


@pytest.fixture(scope="module")
def clean(cluster: Cluster, dist: Path, images, weights_file: Path, tmp_path_factory) -> Path:
    """The reference: the whole project through ``spark-submit --master spark://…`` with the
    packaged entry point and configuration, exactly as an EMR step runs it."""
    workdir = tmp_path_factory.mktemp("cluster_clean")
    spark_submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    command = [
        str(spark_submit),
        "--master",
        cluster.state.master_url,
        "--packages",  # as EMR's delta-defaults puts Delta on the classpath
        delta_conf()["spark.jars.packages"],
        "--exclude-packages",
        delta_conf()["spark.jars.excludes"],
        str(dist / "spark_entrypoint.py"),
        "--env",
        "cluster",
        "--conf-source",
        str(dist / "conf-fruits_kedro.tar.gz"),
        *weights_params(images[0], weights_file, "reduction.k=20"),
    ]
    env = {**cluster.env(), "PYSPARK_DRIVER_PYTHON": sys.executable}
    result = run_command(command, workdir, env, RUN_TIMEOUT_S)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (workdir / "spark-submit.log").write_text(result.stdout + result.stderr)
    cluster.wait_idle()
    return workdir


def start_run(project: Path, env: dict[str, str], *args: str) -> subprocess.Popen:
    """``kedro run`` in ``project``, its output going to ``project/run.log``."""
    command = [sys.executable, "-m", "kedro", "run", *args]
    with (project / "run.log").open("w") as log:
        return subprocess.Popen(
            command, cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT, text=True
        )


def finish(run: subprocess.Popen, project: Path) -> str:
    """Wait for the run; its log (the run must have succeeded)."""
    run.wait(timeout=RUN_TIMEOUT_S)
    output = (project / "run.log").read_text()
    assert run.returncode == 0, output[-4000:]
    return output


def embedding_in(*roots: int) -> int:
    """A Python worker busy embedding images below the ``roots`` processes, once it has run
    the model for ``MIN_EMBED_S`` (a worker that loaded the model's runtime)."""

    def workers() -> list[int]:
        found = [worker for root in roots for worker in python_workers(root)]
        return [worker for worker in found if has_loaded(worker, *MODEL_RUNTIMES)]

    wait_for("a Python worker embedding images", workers)
    time.sleep(MIN_EMBED_S)
    return int(wait_for("a busy Python worker", lambda: busiest(workers()), 60))


def faulty_run(
    cluster: Cluster, images, weights: Path, target: Path, fault: Callable[[int], Any]
) -> tuple[Path, str, Any]:
    """``kedro run --env=cluster --pipelines embedding`` in a fresh project, with ``fault``
    applied (given the run's PID) while it embeds; returns the project, the log, the fault."""
    project = copy_project(target)
    cluster.wait_idle()  # the executors found below are this run's
    run = start_run(
        project,
        cluster.env(),
        "--env=cluster",
        "--pipelines=embedding",
        *weights_params(images[0], weights, FAULT_PARTITIONS),
    )
    try:
        struck = fault(run.pid)
        output = finish(run, project)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert not list((project / "data/04_feature").rglob("_temporary"))
    return project, output, struck


def assert_same_outputs(data: Path, reference: Path) -> None:
    """Same images, no duplicates, features within 1e-6, same quarantine and counts."""
    got, want = Outputs.of(data), Outputs.of(reference)
    assert got.metrics["status"] == "complete"
    assert not got.embeddings["path"].duplicated().any()
    assert set(got.embeddings["image_id"]) == set(want.embeddings["image_id"])
    assert len(got.embeddings) == len(want.embeddings) == IMAGES + len(got.quarantine)
    left = got.embeddings.set_index("path").sort_index()
    right = want.embeddings.set_index("path").sort_index()
    assert left["reason"].fillna("").tolist() == right["reason"].fillna("").tolist()
    good = left["reason"].isna()
    np.testing.assert_allclose(
        np.stack(left["features"][good].to_numpy()),
        np.stack(right["features"][good].to_numpy()),
        atol=1e-6,
    )
    columns = ["path", "reason"]
    assert (
        got.quarantine[columns].sort_values("path").values.tolist()
        == want.quarantine[columns].sort_values("path").values.tolist()
    )
    assert got.counts == want.counts


def test_up_starts_a_master_and_two_workers_of_one_core_each(cluster: Cluster):
    state = cluster.state
    assert state.master_url in cluster.up_output and state.web_ui in cluster.up_output
    master = master_json(state.web_ui)
    assert master["url"] == state.master_url and master["aliveworkers"] == 2
    assert {(w["host"], w["cores"], w["state"]) for w in master["workers"]} == {
        ("127.0.0.1", 1, "ALIVE")
    }
    pids = {state.master.pid, *(w.pid for w in state.workers)}
    assert len(pids) == 3 and all(b"java" in cmdline(p)[0] for p in pids)  # separate JVMs
    assert Path(state.executor_python).is_relative_to(cluster.folder)


def test_spark_submit_runs_the_whole_project_on_two_executors(clean: Path, images):
    metrics = json.loads((clean / "data/08_reporting/run_metrics.json").read_text())
    assert metrics["status"] == "complete"
    assert metrics["spark_conf"]["spark.master"].startswith("spark://127.0.0.1:")
    assert metrics["images"]["embedded"] == IMAGES
    assert metrics["images"]["quarantined"] == len(images[1])
    assert (clean / "data/08_reporting/run_report.html").exists()
    events = read_event_log(clean / "logs/spark-events")
    executors = {e["Executor ID"] for e in events if e["Event"] == "SparkListenerExecutorAdded"}
    assert len(executors) == 2
    ran = {e["Task Info"]["Executor ID"] for e in events if e["Event"] == "SparkListenerTaskEnd"}
    assert ran == executors  # the broadcast model reached both executor JVMs
    assert failed_tasks(events) == []
    # the packaged logging configuration: plain lines, the summary line at the end
    log = (clean / "spark-submit.log").read_text()
    assert " INFO fruits_kedro.observe.run_metrics: run complete in " in log


def test_a_killed_python_worker_costs_a_retry(cluster, clean, images, weights_file, tmp_path):
    def kill_python_worker(run_pid: int) -> list[bytes]:
        worker = embedding_in(*(w.pid for w in cluster.state.workers))
        argv = cmdline(worker)
        os.kill(worker, signal.SIGKILL)
        return argv

    project, _, argv = faulty_run(
        cluster, images, weights_file, tmp_path / "project", kill_python_worker
    )

    assert argv[0].decode() == cluster.state.executor_python  # the executors' own Python
    failures = failed_tasks(read_event_log(project / "logs/spark-events"))
    assert failures and all(f["Reason"] == "ExceptionFailure" for f in failures)
    assert "Python worker exited unexpectedly" in failures[0]["Description"]
    assert_same_outputs(project / "data", clean / "data")


def test_a_worker_killed_with_sigkill_costs_its_tasks(
    cluster, clean, images, weights_file, tmp_path
):
    worker = cluster.state.workers[0]

    def kill_worker(run_pid: int) -> list[int]:
        executor = wait_for("worker-1's executor", lambda: executors_of(worker.pid))[0]
        embedding_in(executor)
        daemon_tree = children(executor)
        for pid in (worker.pid, executor):
            os.kill(pid, signal.SIGKILL)
        return daemon_tree

    try:
        project, _, orphans = faulty_run(
            cluster, images, weights_file, tmp_path / "project", kill_worker
        )
        for pid in orphans:  # the Python daemon exits with its executor
            wait_for(f"python daemon {pid} to exit", lambda pid=pid: not alive(pid), 30)
    finally:
        cluster.top_up()

    events = read_event_log(project / "logs/spark-events")
    assert len(removed_executors(events)) == 1
    failures = failed_tasks(events)
    # its running tasks are lost with it, and the shuffle output it held: neither counts
    # against the task (spark.task.maxFailures)
    lost = [f for f in failures if f["Reason"] == "ExecutorLostFailure"]
    assert lost and all(not f["Exit Caused By App"] for f in lost)
    # map output lost with the executor is fetched again (FetchFailed) or re-run (Resubmitted)
    assert {f["Reason"] for f in failures} <= {"ExecutorLostFailure", "FetchFailed", "Resubmitted"}
    assert_same_outputs(project / "data", clean / "data")


def test_a_decommissioned_worker_fails_no_task(cluster, clean, images, weights_file, tmp_path):
    worker = cluster.state.workers[-1]
    ui = next(w for w in master_json(cluster.state.web_ui)["workers"] if w["port"] == worker.port)

    def decommission(run_pid: int) -> float:
        executor = wait_for("the worker's executor", lambda: executors_of(worker.pid))[0]
        embedding_in(executor)
        os.kill(worker.pid, signal.SIGPWR)  # what EMR does on a spot interruption notice
        return time.time() * 1000

    try:
        project, _, struck_ms = faulty_run(
            cluster, images, weights_file, tmp_path / "project", decommission
        )
        states = {w["port"]: w["state"] for w in master_json(cluster.state.web_ui)["workers"]}
        assert states[worker.port] == "DECOMMISSIONED"
    finally:
        if alive(worker.pid):
            os.kill(worker.pid, signal.SIGTERM)
            wait_for("the decommissioned worker to stop", lambda: not alive(worker.pid), 60)
        cluster.top_up()

    events = read_event_log(project / "logs/spark-events")
    assert failed_tasks(events) == []
    leaving = {
        e["Executor ID"]
        for e in events
        if e["Event"] == "SparkListenerExecutorAdded"
        and e["Executor Info"]["Log Urls"]["stderr"].startswith(ui["webuiaddress"])
    }
    launched = [
        (e["Task Info"]["Launch Time"], e["Task Info"]["Executor ID"])
        for e in events
        if e["Event"] == "SparkListenerTaskStart"
    ]
    assert any(executor in leaving for t, executor in launched if t < struck_ms)
    # once told (a second for the message to go round), it is given no new task
    assert not [t for t, executor in launched if executor in leaving and t > struck_ms + 1000]
    assert_same_outputs(project / "data", clean / "data")


def test_a_killed_driver_never_leaves_a_complete_run(
    cluster, clean, images, weights_file, tmp_path
):
    project = copy_project(tmp_path / "project")
    args = (
        "--env=cluster",
        "--pipelines=embedding",
        *weights_params(images[0], weights_file, FAULT_PARTITIONS),
    )
    run = start_run(project, cluster.env(), *args)
    try:
        executor = wait_for(
            "an executor of the run",
            lambda: [e for w in cluster.state.workers for e in executors_of(w.pid)],
        )[0]
        embedding_in(executor)
        jvm = [c for c in children(run.pid) if b"org.apache.spark.deploy.SparkSubmit" in cmdline(c)]
        for pid in [run.pid, *jvm]:
            os.kill(pid, signal.SIGKILL)
        run.wait(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    cluster.wait_idle()

    data = project / "data"
    metrics = json.loads((data / "08_reporting/run_metrics.json").read_text())
    assert metrics["status"] == "running"  # never `complete`
    assert not (data / "04_feature/image_embeddings/_delta_log").exists()  # no version written
    committed = data / "04_feature/embedding_store/embeddings/_delta_log"
    assert len(list(committed.glob("*.json"))) == 1  # created empty; no chunk was committed
    # That a restart then embeds what is left, each image once: tests/test_incremental.py.


def test_local_mode_retries_a_crashed_python_worker_and_shows_its_ui(
    clean, images, weights_file, tmp_path
):
    project = copy_project(tmp_path / "project")
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}
    args = (
        "--env=local",
        "--pipelines=embedding",
        *weights_params(images[0], weights_file, FAULT_PARTITIONS),
    )
    run = start_run(project, env, *args)
    try:
        os.kill(embedding_in(run.pid), signal.SIGKILL)  # at once: the task is short
        log = (project / "run.log").read_text()
        ui = re.search(r"Spark UI: (http://127\.0\.0\.1:\d+)", log)
        assert ui, log[-3000:]
        with urllib.request.urlopen(f"{ui[1]}/api/v1/applications", timeout=10) as response:
            listed = json.load(response)
        finish(run, project)
    finally:
        if run.poll() is None:
            run.kill()

    assert [app["name"] for app in listed] == ["fruits-kedro"]  # the UI of the running app
    failures = failed_tasks(read_event_log(project / "logs/spark-events"))
    assert len(failures) >= 1
    assert "Python worker exited unexpectedly" in failures[0]["Description"]
    assert_same_outputs(project / "data", clean / "data")


def test_benchmark_compares_the_cluster_with_local_spark(cluster, mini_dir, weights_file, tmp_path):
    output = tmp_path / "benchmark.json"
    command = [
        sys.executable,
        "-m",
        "fruits_kedro.bench",
        "cluster",
        "--master",
        cluster.state.master_url,
        "--cluster-dir",
        str(cluster.folder),
        "--input-dir",
        str(mini_dir),  # the command, not the figure: the mini set is enough
        "--weights",
        str(weights_file),
        "--project-dir",
        str(PROJECT_ROOT),
        "--output",
        str(output),
    ]
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}
    result = run_command(command, None, env, RUN_TIMEOUT_S)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(output.read_text())
    assert json.loads(result.stdout.strip().splitlines()[-1]) == figures
    cluster_run, local_run = figures["cluster"], figures["local"]
    assert cluster_run["cores"] == 2 and cluster_run["images"]["embedded"] == 72
    assert local_run["images"] == cluster_run["images"]
    assert figures["ratio"] == round(cluster_run["img_s"] / local_run["img_s"], 3)
    assert cluster_run["executor_startup_s"] > 0
    assert cluster_run["model_mb"] > 5  # the fp32 MobileNetV2 flatbuffer that is broadcast
