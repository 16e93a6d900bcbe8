"""Benchmarks: the embedding stage, or the whole run, against the engine alone.

Runs the project's real pipelines (Kedro session, local Spark) in a scratch copy of the
project, then, in the same process, the same engine alone on the same images::

    python -m fruits_kedro.benchmark [--input-dir DIR] [--weights FILE] [--engine E]
    python -m fruits_kedro.benchmark --end-to-end [--input-dir DIR]
    python -m fruits_kedro.benchmark --master spark://127.0.0.1:7077 [--input-dir DIR]

The last line printed is one JSON object. The embedding benchmark gives ``pipeline_img_s``,
``ceiling_img_s``, ``ratio``, ``keras_img_s`` (plain Keras on a subset), ``peak_rss_mb``
(largest Spark Python worker) and ``knn_accuracy`` (Test split, 1-nearest-neighbour on the
Training features: a quality check). The end-to-end benchmark times the whole default
``kedro run`` and gives ``wall_s``, ``embed_s``, ``ceiling_img_s``, ``overhead_ratio`` =
``wall_s / (images / ceiling_img_s)``, the wall time of every node, the peak RSS of the driver
(Python and JVM) and of the largest Python worker, and the bytes written per dataset.
With ``--master``, the embedding pipeline runs on that standalone cluster (``cluster``
environment, the executors' Python of ``--cluster-dir``), then on local Spark with as many
cores as the cluster's executors, on the same images: ``cluster_img_s``, ``local_img_s``,
``ratio``, the executors' start-up (application start to executor registered) and the first
embedding task of each executor against the median task (the broadcast and engine build).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from fruits_kedro.fetch import IMAGE_SUFFIXES
from fruits_kedro.model.engines import KERAS, export_artifact, get_engine
from fruits_kedro.model.featurize import featurize
from fruits_kedro.model.mobilenet import WEIGHTS_FILE_NAME, load_weights
from fruits_kedro.run_metrics import EMBEDDING_NODE

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pandas as pd
    from kedro.framework.context import KedroContext

logger = logging.getLogger(__name__)

SPARK_WORKER_MARKS = (b"pyspark.daemon", b"pyspark.worker")
JVM_MARK = b"org.apache.spark.deploy.SparkSubmit"


def shared_folder() -> Path:
    """The folder of shared images and weights: ``$FRUITS_SHARED`` or ``../shared``."""
    return Path(os.environ.get("FRUITS_SHARED") or "../shared")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options; defaults read the shared sample and weights."""
    parser = argparse.ArgumentParser(prog="python -m fruits_kedro.benchmark", description=__doc__)
    parser.add_argument(
        "--input-dir", type=Path, default=shared_folder() / "data/fruits-360-sample"
    )
    parser.add_argument("--weights", default=str(shared_folder() / "models" / WEIGHTS_FILE_NAME))
    parser.add_argument("--engine", default=None, help="default: the project's parameter")
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument(
        "--params", default="", help="more Kedro params, e.g. embedding.batch_size=16"
    )
    parser.add_argument(
        "--keras-images",
        type=int,
        default=256,
        help="images for the plain-Keras reference (0 to skip)",
    )
    parser.add_argument(
        "--end-to-end",
        action="store_true",
        help="time the whole default kedro run instead of the embedding stage",
    )
    parser.add_argument(
        "--ceiling-images",
        type=int,
        default=4000,
        help="end-to-end: images (evenly spread) timed for the engine alone (0: all)",
    )
    parser.add_argument("--master", help="a standalone master URL: the cluster against local Spark")
    parser.add_argument(
        "--cluster-dir", type=Path, default=Path(".cluster"), help="of fruits-cluster up"
    )
    parser.add_argument("--project-dir", type=Path, default=Path.cwd())
    parser.add_argument(
        "--keep", type=Path, help="run in this new folder and keep it (default: a temporary one)"
    )
    parser.add_argument("--output", type=Path, help="also write the JSON result to this file")
    return parser.parse_args(argv)


def runtime_params(args: argparse.Namespace) -> dict[str, Any]:
    """Kedro runtime parameters, dotted keys nested as ``kedro run --params`` does."""
    flat: dict[str, Any] = {
        "input_dir": str(args.input_dir.resolve()),
        "weights": str(Path(args.weights).resolve()),
        "image.input_size": args.input_size,
    }
    if args.engine:
        flat["embedding.engine"] = args.engine
    flat.update(item.split("=", 1) for item in args.params.split(",") if item)
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        *groups, leaf = key.split(".")
        target = nested
        for group in groups:
            target = target.setdefault(group, {})
        target[leaf] = yaml.safe_load(value) if isinstance(value, str) else value
    return nested


def scratch_project(project: Path, target: Path) -> Path:
    """A copy of the project's configuration, so that the run writes only under ``target``."""
    (target / "src").mkdir(parents=True)
    shutil.copytree(project / "conf", target / "conf")
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(project / name, target / name)
    return target


def run_pipelines(
    project: Path, params: dict[str, Any], names: list[str], env: str = "local"
) -> None:
    """Run each named pipeline of the project in its own Kedro session."""
    bootstrap_project(project)
    for name in names:
        session = KedroSession.create(project_path=project, env=env, runtime_params=params)
        try:
            session.run(pipeline_name=name)
        finally:
            session.close()


@contextlib.contextmanager
def project_context(
    project: Path, params: dict[str, Any], env: str = "local"
) -> Iterator[KedroContext]:
    """The project's context (catalog, parameters, configuration) with ``params``."""
    bootstrap_project(project)
    session = KedroSession.create(project_path=project, env=env, runtime_params=params)
    try:
        yield session.load_context()
    finally:
        session.close()


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


def nearest_neighbour_accuracy(frame: pd.DataFrame) -> float | None:
    """Test-split accuracy of a cosine 1-nearest-neighbour on the Training split's features.

    A quick quality check of the features (e.g. across input sizes), not a classifier.

    Args:
        frame: ``label, split, features`` of the embedded images.
    """
    train, test = frame[frame["split"] == "Training"], frame[frame["split"] == "Test"]
    if train.empty or test.empty:
        return None
    a, b = (_unit_rows(np.stack(part["features"].to_numpy())) for part in (test, train))
    nearest = train["label"].to_numpy()[(a @ b.T).argmax(axis=1)]
    return float((nearest == test["label"].to_numpy()).mean())


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def image_files(folder: Path) -> list[Path]:
    """Every image below ``folder``, sorted."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def single_process_img_s(files: list[Path], artifact: Any, size: int, resample: str) -> float:
    """Images/s of read + decode + resize + engine in this one process, all cores."""
    engine = get_engine(artifact)
    engine(np.zeros((1, size, size, 3), np.uint8))  # warm-up: allocation, kernels
    start = time.perf_counter()
    for i in range(0, len(files), artifact.batch_size):
        chunk = files[i : i + artifact.batch_size]
        featurize([p.read_bytes() for p in chunk], engine, size, resample)
    return len(files) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its JSON line."""
    args = parse_args(argv)
    files = image_files(args.input_dir)
    if not files:
        raise SystemExit(f"no image below {args.input_dir}: pass --input-dir")
    if args.master:
        from fruits_kedro.cluster_benchmark import cluster_vs_local  # noqa: PLC0415

        result = cluster_vs_local(args)
    elif args.end_to_end:
        result = end_to_end(files, args)
    else:
        result = embedding_stage(files, args)
    line = json.dumps(result)
    if args.output:
        args.output.write_text(line + "\n")
    print(line)  # noqa: T201  (the benchmark's output)
    return 0


def embedding_stage(files: list[Path], args: argparse.Namespace) -> dict[str, Any]:
    """The embedding pipeline against the engine alone and plain Keras."""
    params = runtime_params(args)
    with workspace(args.keep) as tmp:
        project = scratch_project(args.project_dir.resolve(), tmp / "project")
        with WorkerPeakRss() as rss:
            run_pipelines(project, params, ["embedding"])
        with project_context(project, params) as context:
            metrics = context.catalog.load("run_metrics")
            embedded = context.catalog.load("image_embeddings").filter("reason IS NULL")
            metrics["knn_accuracy"] = nearest_neighbour_accuracy(
                embedded.select("label", "split", "features").toPandas()
            )
            settings = _settings(context.params)
    return _measure(files, args, metrics, settings, rss.peak_kb)


def end_to_end(files: list[Path], args: argparse.Namespace) -> dict[str, Any]:
    """The whole default run against the engine alone on the same images."""
    params = runtime_params(args)
    with workspace(args.keep) as tmp:
        project = scratch_project(args.project_dir.resolve(), tmp / "project")
        start = time.perf_counter()
        with WorkerPeakRss() as rss:
            run_pipelines(project, params, ["__default__"])
        wall_s = time.perf_counter() - start
        with project_context(project, params) as context:
            metrics = context.catalog.load("run_metrics")
            written = bytes_written(project, context.config_loader["catalog"])
            settings = _settings(context.params)
    timed = files[:: max(1, len(files) // args.ceiling_images)] if args.ceiling_images else files
    size = int(settings["image"]["input_size"])
    ceiling = _ceiling(timed, load_weights(str(Path(args.weights).resolve()), size), settings)
    images = int(metrics["images"]["read"])
    return {
        "images": images,
        "embedded": metrics["images"]["embedded"],
        "wall_s": round(wall_s, 1),
        "embed_s": metrics["node_wall_time_s"].get(EMBEDDING_NODE),
        "ceiling_img_s": round(ceiling, 2),
        "ceiling_images": len(timed),
        "overhead_ratio": round(wall_s / (images / ceiling), 3),
        "wall_ms_per_image": round(1000 * wall_s / images, 3),
        "node_wall_time_s": metrics["node_wall_time_s"],
        "driver_python_rss_mb": round(rss.self_peak_kb / 1024, 1),
        "driver_jvm_rss_mb": round(rss.jvm_peak_kb / 1024, 1),
        "worker_rss_mb": round(rss.peak_kb / 1024, 1),
        "input_bytes": sum(f.stat().st_size for f in files),
        "bytes_written": written,
        "bytes_written_total": sum(written.values()),
        "engine": settings["embedding"]["engine"],
        "input_size": settings["image"]["input_size"],
        "cores": os.cpu_count(),
    }


@contextlib.contextmanager
def workspace(keep: Path | None) -> Iterator[Path]:
    """``keep`` (created, kept afterwards), or a temporary folder removed afterwards."""
    if keep is not None:
        keep.mkdir(parents=True)
        yield keep.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="fruits-benchmark-") as tmp:
        yield Path(tmp)


def bytes_written(project: Path, entries: dict[str, Any]) -> dict[str, int]:
    """Bytes on disk of every output of the catalog configuration ``entries`` (files of a
    folder added up)."""
    sizes = {}
    for name, entry in entries.items():
        if name == "raw_images" or not isinstance(entry, dict) or "filepath" not in entry:
            continue
        path = Path(entry["filepath"])
        path = path if path.is_absolute() else project / path
        if path.is_file():
            sizes[name] = path.stat().st_size
        elif path.is_dir():
            sizes[name] = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return dict(sorted(sizes.items(), key=lambda item: -item[1]))


def _ceiling(
    files: list[Path], weights: list[np.ndarray], settings: dict[str, Any], engine: str = ""
) -> float:
    """Images/s of ``engine`` (default: the project's) alone, one process, all cores."""
    embedding, image = settings["embedding"], settings["image"]
    size, resample = int(image["input_size"]), str(image["resample"])
    artifact = export_artifact(
        weights,
        engine or embedding["engine"],
        size,
        os.cpu_count() or 1,
        int(embedding["batch_size"]),
    )
    return single_process_img_s(files, artifact, size, resample)


def _settings(parameters: dict[str, Any]) -> dict[str, Any]:
    return {"image": parameters["image"], "embedding": parameters["embedding"]}


def _measure(
    files: list[Path],
    args: argparse.Namespace,
    metrics: dict[str, Any],
    settings: dict[str, Any],
    peak_kb: int,
) -> dict[str, Any]:
    embedding = settings["embedding"]
    size, engine = int(settings["image"]["input_size"]), embedding["engine"]
    weights = load_weights(str(Path(args.weights).resolve()), size)
    ceiling = _ceiling(files, weights, settings)
    keras_img_s = None
    if args.keras_images:
        subset = files[:: max(1, len(files) // args.keras_images)]
        keras_img_s = _ceiling(subset, weights, settings, KERAS)
    pipeline = metrics["embedding_images_per_s"]
    return {
        "images": metrics["images"]["read"],
        "embedded": metrics["images"]["embedded"],
        "engine": engine,
        "input_size": size,
        "pipeline_img_s": pipeline,
        "ceiling_img_s": round(ceiling, 2),
        "ratio": round(pipeline / ceiling, 3),
        "keras_img_s": round(keras_img_s, 2) if keras_img_s else None,
        "speedup_vs_keras": round(pipeline / keras_img_s, 2) if keras_img_s else None,
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "knn_accuracy": metrics["knn_accuracy"],
        "cores": os.cpu_count() or 1,
        "threads_per_worker": embedding["threads_per_worker"],
        "batch_size": embedding["batch_size"],
        "partitions_per_core": embedding["partitions_per_core"],
        "arrow_max_records_per_batch": metrics["spark_conf"].get(
            "spark.sql.execution.arrow.maxRecordsPerBatch"
        ),
    }


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    raise SystemExit(main())
