"""Shared fixtures: one local Spark session, the shared Fruits-360 data and weights, test images."""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from moto.server import ThreadedMotoServer
from PIL import Image
from pyspark.sql import SparkSession

from fruits_kedro.benchmark import scratch_project
from fruits_kedro.model.mobilenet import WEIGHTS_FILE_NAME, build_model

if TYPE_CHECKING:
    from collections.abc import Iterator

PROJECT_ROOT = Path(__file__).resolve().parents[1]


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


@pytest.fixture(scope="session")
def spark() -> SparkSession:
    """One ``local[2]`` session for the whole test run."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("fruits-kedro-tests")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "16")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


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
    for split in ("Training", "Test"):
        for c in range(classes):
            folder = root / split / f"Fruit {c}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_split):
                (folder / f"{i}_100.jpg").write_bytes(noisy_jpeg_bytes(1000 * c + i, size))
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
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return MiniRun(project, images, bad, result)
