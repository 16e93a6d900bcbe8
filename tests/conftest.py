"""Shared fixtures: one local Spark session, the shared Fruits-360 data and weights, test images."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest
from moto.server import ThreadedMotoServer
from omegaconf import OmegaConf
from PIL import Image
from pyspark.sql import SparkSession

from fruits_kedro.bench.workspace import scratch_project
from fruits_kedro.model.mobilenet import WEIGHTS_FILE_NAME, build_model

if TYPE_CHECKING:
    from collections.abc import Iterator

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# The JVMs of the runs the tests start (Spark drivers, executors, masters, workers) live for a
# minute or less: the quick C1 compiler alone starts them faster than tiered compilation, whose
# optimising C2 threads compete for the two cores with the work. C1 alone reserves 48 MB of code
# cache, which a Spark JVM fills in about a minute (then runs without a JIT): 240 MB, tiered
# compilation's default, holds. Runs whose whole output a test reads (the mini run) and the
# tests' own long-lived session keep the user's JVM settings instead (``user_environment``).
_USER_JAVA_OPTIONS = os.environ.get("JAVA_TOOL_OPTIONS")
SHORT_JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=240m"
os.environ.setdefault("JAVA_TOOL_OPTIONS", SHORT_JVM_OPTIONS)


def user_environment() -> dict[str, str]:
    """This process's environment with the user's own JVM options, not the tests'."""
    environment = dict(os.environ)
    environment.pop("JAVA_TOOL_OPTIONS", None)
    if _USER_JAVA_OPTIONS is not None:
        environment["JAVA_TOOL_OPTIONS"] = _USER_JAVA_OPTIONS
    return environment


def shared_dir() -> Path:
    """The shared folder of real images and weights: ``$FRUITS_SHARED`` or ``../shared``."""
    return Path(os.environ.get("FRUITS_SHARED") or PROJECT_ROOT.parent / "shared").resolve()


def _shared_path(relative: str) -> Path:
    path = shared_dir() / relative
    if not path.exists() and os.environ.get("FRUITS_REQUIRE_SHARED"):
        pytest.fail(f"FRUITS_REQUIRE_SHARED is set but {path} is missing")
    if not path.exists():
        pytest.skip(f"needs {relative} of the shared folder (set FRUITS_SHARED); not found: {path}")
    return path


@pytest.fixture(scope="session")
def mini_dir() -> Path:
    """The 72 real Fruits-360 images (8 classes)."""
    return _shared_path("data/fruits-360-mini")


@pytest.fixture(scope="session")
def weights_file() -> Path:
    """The genuine ImageNet MobileNetV2 (no top) weights."""
    return _shared_path(f"models/{WEIGHTS_FILE_NAME}")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's server (S3, EMR, IAM, CloudFormation...) on a free loopback port; always stopped.

    moto keeps its state per process, so a module that needs a clean account calls
    :func:`reset_moto` first.
    """
    # Its request log would go to whatever handler the root logger has (Kedro's is on stdout).
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def reset_moto(endpoint: str) -> None:
    """Forget every resource moto holds (buckets, clusters, stacks...)."""
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))


DELTA_KEYS = (
    "spark.sql.hive.filesourcePartitionFileCacheSize",
    "spark.jars.packages",
    "spark.jars.excludes",
    "spark.sql.extensions",
    "spark.sql.catalog.spark_catalog",
    "spark.databricks.delta.snapshotPartitions",
    "spark.databricks.delta.stats.skipping",
    "spark.sql.sources.parallelPartitionDiscovery.parallelism",
)


def delta_conf() -> dict[str, str]:
    """The project's Delta Lake and file-listing settings (conf/base/spark.yml), for the tests'
    own session."""
    settings = OmegaConf.load(PROJECT_ROOT / "conf/base/spark.yml")
    return {key: str(settings[key]) for key in DELTA_KEYS}


@pytest.fixture(scope="session")
def spark() -> SparkSession:
    """One ``local[2]`` session for the whole test run, with Delta Lake."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    short_jvm = os.environ.pop("JAVA_TOOL_OPTIONS", None)
    if _USER_JAVA_OPTIONS is not None:
        os.environ["JAVA_TOOL_OPTIONS"] = _USER_JAVA_OPTIONS
    session = (
        SparkSession.builder.master("local[2]")
        .appName("fruits-kedro-tests")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "16")
        .config(map=delta_conf())
        .getOrCreate()
    )
    if short_jvm is not None:
        os.environ["JAVA_TOOL_OPTIONS"] = short_jvm
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def read_delta(table: Path) -> pd.DataFrame:
    """The rows of a local Delta table's latest version (the data files its log adds and has
    not removed), read with pandas."""
    live: dict[str, None] = {}
    for entry in sorted((table / "_delta_log").glob("*.json")):
        for line in entry.read_text().splitlines():
            action = json.loads(line)
            if "add" in action:
                live[action["add"]["path"]] = None
            if "remove" in action:
                live.pop(action["remove"]["path"], None)
    assert live, f"no data file in the Delta table {table}"
    return pd.concat(
        [pd.read_parquet(table / urllib.parse.unquote(p)) for p in live], ignore_index=True
    )


def embed_folder(
    folder: Path,
    store: Any,
    artifact: Any,
    *,
    image: dict[str, Any],
    params: dict[str, Any],
    stop_after: int | None = None,
) -> tuple[Any, dict[str, int]] | None:
    """The embedding nodes over ``folder`` as Kedro runs them: each chunk the generator yields
    is saved to ``store`` (an ``EmbeddingStoreDataset``) before the next is planned. Returns
    this run's embeddings (computed) and counts; ``None`` when the run dies after
    ``stop_after`` chunks."""
    from fruits_kedro.datasets import ImageFilesDataset
    from fruits_kedro.datasets.image_reader_dataset import ImageReader
    from fruits_kedro.pipelines.embedding.nodes import (
        embed_images,
        reconcile_counts,
        select_embeddings,
    )
    from fruits_kedro.pipelines.ingestion.nodes import label_images

    raw = ImageFilesDataset(filepath=str(folder), suffixes=["jpg", "jpeg", "png"]).load()
    ingested = label_images(raw, {"splits": ["Training", "Test"]})
    chunks = embed_images(
        ingested, ImageReader(), store.load(), model=artifact, image=image, params=params
    )
    changes = []
    for number, (chunk, change) in enumerate(chunks):
        if stop_after is not None and number == stop_after:
            chunks.close()
            return None
        store.save(chunk)
        changes.append(change)
    embeddings = select_embeddings(ingested, store.load(), artifact, image).localCheckpoint()
    return embeddings, reconcile_counts(ingested, embeddings, changes[-1])


def first_run_counts(usable: int, bad: int) -> dict[str, int]:
    """``image_counts`` of a first run (empty store) over ``usable`` images and ``bad`` files."""
    read = usable + bad
    return {
        "read": read,
        "usable": usable,
        "quarantined": bad,
        "erased": 0,
        "embedded": usable,
        "reused": 0,
        "new": read,
        "changed": 0,
        "unchanged": 0,
        "removed": 0,
        "feature_dim": 1280,
    }


def jpeg_bytes(
    color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (40, 30)
) -> bytes:
    """A small real JPEG made with Pillow."""
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="JPEG")
    return buffer.getvalue()


def noisy_jpeg_bytes(seed: int, size: int = 64) -> bytes:
    """A JPEG of random content, so that images differ from each other."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG")
    return buffer.getvalue()


BAD_FILES = {
    "Test/Broken/empty.jpg": (b"", "empty file"),
    "Test/Broken/truncated.jpg": (None, "truncated"),
    "Training/Broken/notes.jpg": (b"these are notes, not a picture\n", "not an image"),
    "Training/Broken/random.PNG": (bytes(range(256)) * 4, "not an image"),
}


def write_bad_files(root: Path) -> dict[str, str]:
    """Write one file of each bad kind under ``root``; returns path -> expected reason word."""
    expected = {}
    for relative, (content, reason) in BAD_FILES.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content if content is not None else noisy_jpeg_bytes(7)[:2000])
        expected[relative] = reason
    return expected


def run_command(
    command: list[str], cwd: Path | None, env: dict[str, str], timeout: int = 900
) -> subprocess.CompletedProcess:
    """Run ``command`` to its end, its output captured as text (the caller checks the code)."""
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def run_kedro(
    project: Path, *args: str, env: dict[str, str] | None = None, timeout: int = 900
) -> subprocess.CompletedProcess:
    """The real ``kedro`` command line, in ``project``, with telemetry off."""
    environment = {**(env or os.environ), "KEDRO_DISABLE_TELEMETRY": "true"}
    return run_command([sys.executable, "-m", "kedro", *args], project, environment, timeout)


def copy_project(target: Path) -> Path:
    """A copy of the project's configuration at ``target`` (the package stays installed),
    so that a run there writes its ``data/`` only there."""
    return scratch_project(PROJECT_ROOT, target)


def write_images(root: Path, classes: int = 2, per_split: int = 3, size: int = 48) -> int:
    """Small distinct JPEGs in the Fruits-360 layout; returns how many were written."""
    count = 0
    for offset, split in enumerate(("Training", "Test")):
        for c in range(classes):
            folder = root / split / f"Fruit {c}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_split):
                seed = 1000 * c + 100 * offset + i  # distinct bytes: each is embedded
                (folder / f"{i}_100.jpg").write_bytes(noisy_jpeg_bytes(seed, size))
                count += 1
    return count


@pytest.fixture(scope="session")
def random_weights(tmp_path_factory) -> Path:
    """A weights file of a randomly initialised MobileNetV2, for fast runs without downloads."""
    path = tmp_path_factory.mktemp("weights") / "random_mobilenet_v2.weights.h5"
    build_model(32, None).save_weights(path)
    return path


@dataclass(frozen=True)
class MiniRun:
    """A finished ``kedro run`` of the default pipeline in a scratch project."""

    project: Path
    images: Path
    bad: dict[str, str]
    result: subprocess.CompletedProcess

    @property
    def data(self) -> Path:
        return self.project / "data"


MINI_RUN_K = 20  # below the 48 training images: a well-posed classifier


@pytest.fixture(scope="session")
def mini_run(tmp_path_factory, mini_dir, weights_file) -> MiniRun:
    """One real run of the default pipeline on the mini set plus one file of each bad kind,
    with ``k`` fixed (shared by the end-to-end, predict and notebook tests)."""
    root = tmp_path_factory.mktemp("mini_run")
    images = root / "images"
    shutil.copytree(mini_dir, images)
    bad = write_bad_files(images)
    project = copy_project(root / "project")

    result = run_kedro(
        project,
        "run",
        "--env=local",
        "--params",
        f"input_dir={images},weights={weights_file},reduction.k={MINI_RUN_K}",
        env=user_environment(),  # its log is read whole: as a user's run prints it
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return MiniRun(project, images, bad, result)
