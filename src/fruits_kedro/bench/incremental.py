"""The incremental figures: a first run, the same run again, 200 new images, a killed run.

``bench incremental`` runs ``kedro run --pipelines embedding`` (the
listing, the embedding store, this run's embeddings) as a user does, in a scratch project over a
linked copy of the images, and prints one JSON document:

- ``first``: every image new; ``rerun``: nothing changed (0 images embedded);
- ``new_images``: ``--new`` variants of the images added (exactly that many embedded);
- ``killed``: a fresh store, the run killed (by its PID, with its JVM) once about half the
  chunks are committed, then run again: the images committed before the kill plus those the
  second run embedded, against the images in the folder.

Each run's ``wall_s`` is the command's wall time (JVM start included); ``run_s`` is the run's own
(``run_metrics.wall_time_s``). Run it alone: the cores are shared.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fruits_kedro.bench.workspace import link_tree, scratch_project, workspace
from fruits_kedro.tools.corpus import make_variant, variant_rng

if TYPE_CHECKING:
    import argparse

STORE_LOG = Path("data/04_feature/embedding_store/embeddings/_delta_log")
SEED = 11  # the new images: variants drawn from a fixed seed
NEW_FOLDER = "Training/New arrivals"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``bench incremental``, besides the shared ones."""
    parser.add_argument("--new", type=int, default=200, help="images added for the third run")
    parser.add_argument("--chunk-size", type=int, default=1000, help="embedding.chunk_size")


def add_variants(images: Path, count: int) -> None:
    """``count`` new images (variants of the folder's first ones) under ``NEW_FOLDER``."""
    folder = images / NEW_FOLDER
    folder.mkdir(parents=True)
    sources = sorted(p for p in images.rglob("*.jpg") if NEW_FOLDER not in str(p))[:count]
    for i, source in enumerate(sources):
        rng = variant_rng(SEED, source.name, i)
        (folder / f"new_{i}.jpg").write_bytes(make_variant(source.read_bytes(), rng, (85, 95)))


def command(images: Path, args: argparse.Namespace) -> list[str]:
    params = f"input_dir={images},weights={args.weights.resolve()},embedding.chunk_size="
    return [
        *(sys.executable, "-m", "kedro", "run", "--pipelines=embedding"),
        *("--params", params + str(args.chunk_size)),
    ]


def environment() -> dict[str, str]:
    return {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}


def timed_run(project: Path, images: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One ``kedro run --pipelines embedding``; its wall time and counts."""
    start = time.perf_counter()
    done = subprocess.run(
        command(images, args),
        cwd=project,
        env=environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"kedro run failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    metrics = json.loads((project / "data/08_reporting/run_metrics.json").read_text())
    return {"wall_s": round(wall, 1), "run_s": metrics["wall_time_s"], "images": metrics["images"]}


def committed_chunks(project: Path) -> int:
    """MERGE commits in the store's ``embeddings`` table so far."""
    count = 0
    for entry in sorted((project / STORE_LOG).glob("*.json")):
        count += '"operation":"MERGE"' in entry.read_text()
    return count


def committed_rows(project: Path) -> int:
    """Rows the MERGE commits inserted in the store's ``embeddings`` table."""
    rows = 0
    for entry in sorted((project / STORE_LOG).glob("*.json")):
        for line in entry.read_text().splitlines():
            info = json.loads(line).get("commitInfo", {})
            if info.get("operation") == "MERGE":
                rows += int(info["operationMetrics"].get("numTargetRowsInserted", 0))
    return rows


def killed_run(project: Path, images: Path, args: argparse.Namespace, total: int) -> dict:
    """Kill a run once half its chunks are committed, then run again."""
    chunks = -(-total // args.chunk_size)
    run = subprocess.Popen(
        command(images, args),
        cwd=project,
        env=environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while committed_chunks(project) < chunks // 2 and run.poll() is None:
            time.sleep(0.2)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)  # the run's own group: Python and its JVM
        run.wait()
    before, before_chunks = committed_rows(project), committed_chunks(project)
    again = timed_run(project, images, args)
    return {
        "chunks": chunks,
        "chunks_committed_before_kill": before_chunks,
        "embedded_before_kill": before,
        "embedded_after_restart": again["images"]["embedded"],
        "embedded_total": before + again["images"]["embedded"],
        "images": total,
        "restart": again,
    }


def run(files: list[Path], args: argparse.Namespace) -> dict[str, Any]:
    """The four measurements."""
    del files  # each run lists its folder itself
    with workspace(args.keep) as tmp:
        images = tmp / "images"
        link_tree(args.input_dir.resolve(), images)
        project = scratch_project(args.project_dir.resolve(), tmp / "project")
        first = timed_run(project, images, args)
        rerun = timed_run(project, images, args)
        add_variants(images, args.new)
        added = timed_run(project, images, args)
        shutil.rmtree(images / NEW_FOLDER)
        fresh = scratch_project(args.project_dir.resolve(), tmp / "killed")
        killed = killed_run(fresh, images, args, first["images"]["read"])
    return {
        "first": first,
        "rerun": rerun,
        "new_images": added,
        "rerun_wall_ratio": round(rerun["wall_s"] / first["wall_s"], 3),
        "new_images_wall_ratio": round(added["wall_s"] / first["wall_s"], 3),
        "killed": killed,
    }
