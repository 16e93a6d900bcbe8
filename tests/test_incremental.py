"""Incremental runs for real: ``kedro run`` processes over real images, one killed by its PID
mid-embedding; the previous outputs stay readable and the restart finishes the work once."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from typing import TYPE_CHECKING

import pandas as pd
import pytest

from fruits_kedro.tools.corpus import make_variant, variant_rng
from tests.conftest import copy_project, read_delta, run_kedro, write_bad_files
from tests.processes import alive, cmdline, descendants, wait_for

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.shared, pytest.mark.e2e]

CHUNK = 8  # files per commit: several chunks on these few images
NEW = 24
STORE = "data/04_feature/embedding_store/embeddings/_delta_log"


def params(images: Path, weights: Path) -> list[str]:
    return ["--params", f"input_dir={images},weights={weights},embedding.chunk_size={CHUNK}"]


def merges(project: Path) -> int:
    """Chunks committed so far to the store's ``embeddings`` table."""
    return sum('"operation":"MERGE"' in p.read_text() for p in (project / STORE).glob("*.json"))


def inserted(project: Path) -> int:
    rows = 0
    for entry in (project / STORE).glob("*.json"):
        for line in entry.read_text().splitlines():
            info = json.loads(line).get("commitInfo", {})
            if info.get("operation") == "MERGE":
                rows += int(info["operationMetrics"]["numTargetRowsInserted"])
    return rows


def counts(project: Path) -> dict[str, int]:
    return json.loads((project / "data/08_reporting/image_counts.json").read_text())


def by_path(table: pd.DataFrame) -> pd.DataFrame:
    return table.sort_values("path").reset_index(drop=True)


@pytest.fixture(scope="module")
def first(tmp_path_factory, mini_dir: Path, weights_file: Path):
    """A complete embedding run over 24 real images and two bad files."""
    root = tmp_path_factory.mktemp("incremental")
    images = root / "images"
    for source in sorted(mini_dir.rglob("*.jpg"))[:24]:
        target = images / source.relative_to(mini_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    bad = write_bad_files(images)
    project = copy_project(root / "project")
    done = run_kedro(project, "run", "--pipelines=embedding", *params(images, weights_file))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return project, images, 24 + len(bad)


def test_the_first_run_embeds_every_image_in_chunks(first):
    project, _, read = first
    got = counts(project)
    assert got["read"] == got["new"] == read
    assert got["embedded"] + got["quarantined"] <= read
    assert merges(project) >= 3  # 26 files, 8 per chunk


def test_a_run_killed_mid_embedding_keeps_the_previous_outputs_and_resumes(
    first, mini_dir: Path, weights_file: Path
):
    project, images, read = first
    before = by_path(read_delta(project / "data/04_feature/image_embeddings"))
    already, rows_before = merges(project), inserted(project)
    for i, source in enumerate(sorted(mini_dir.rglob("*.jpg"))[24 : 24 + NEW]):
        folder = images / "Training" / "New arrivals"
        folder.mkdir(parents=True, exist_ok=True)
        data = make_variant(source.read_bytes(), variant_rng(5, source.name, i), (85, 95))
        (folder / f"new_{i}.jpg").write_bytes(data)

    command = [sys.executable, "-m", "kedro", "run", "--pipelines=embedding"]
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}
    run = subprocess.Popen(
        [*command, *params(images, weights_file)],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for("a chunk of the new images committed", lambda: merges(project) > already, 600)
        jvm = [
            p for p in descendants(run.pid) if b"org.apache.spark.deploy.SparkSubmit" in cmdline(p)
        ]
        for pid in [run.pid, *jvm]:
            os.kill(pid, signal.SIGKILL)
        run.wait(timeout=60)
        wait_for("the run's JVM to exit", lambda: not any(alive(p) for p in jvm), 60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    committed = inserted(project) - rows_before  # what the killed run committed

    # never worse: the table the killed run would have rewritten is at its previous version
    after_kill = by_path(read_delta(project / "data/04_feature/image_embeddings"))
    pd.testing.assert_frame_equal(after_kill, before)
    metrics = json.loads((project / "data/08_reporting/run_metrics.json").read_text())
    assert metrics["status"] == "running"

    done = run_kedro(project, "run", "--pipelines=embedding", *params(images, weights_file))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    resumed = counts(project)
    assert 0 < committed < NEW
    assert committed + resumed["embedded"] == NEW  # each new image through the model once
    assert resumed["read"] == read + NEW and resumed["reused"] == read + committed
    table = read_delta(project / "data/04_feature/image_embeddings")
    assert len(table) == read + NEW and table["path"].is_unique
    assert table[table["path"].str.contains("New arrivals")]["features"].notna().all()
