"""Progress of the running node, from Spark's status tracker: lines, samples, threads."""

from __future__ import annotations

import io
import logging
import re
import threading
import time
from typing import TYPE_CHECKING

import pandas as pd
import pytest
import rich
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import node
from rich.console import Console

from fruits_kedro.observe import logs
from fruits_kedro.observe.progress import ProgressHooks, Snapshot, clock
from fruits_kedro.observe.spark_status import Status

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pyspark.sql import DataFrame, SparkSession

ROWS, PARTITIONS = 64, 8
SETTINGS = {"interval_s": 0.2, "poll_s": 0.05, "images_input": "images", "bar": True}


def slow_rows(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    for batch in batches:
        time.sleep(0.15)  # a task per partition, long enough for a few polls
        yield batch


def embed(images: DataFrame) -> DataFrame:
    """Stands for ``embed_images``: the images in, one row per image out, lazily."""
    return images.repartition(PARTITIONS).mapInPandas(slow_rows, images.schema)


def progress_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("progress:")]


@pytest.fixture
def images(spark: SparkSession, tmp_path) -> DataFrame:
    """``ROWS`` one-row files, read as Spark reads the images: a file scan."""
    for i in range(ROWS):
        pd.DataFrame({"path": [f"image-{i}.jpg"]}).to_csv(tmp_path / f"{i}.csv", index=False)
    return spark.read.option("header", True).csv(str(tmp_path / "*.csv"))


def run_like_kedro(hooks: ProgressHooks, images: DataFrame, target: str) -> None:
    """What Kedro's sequential runner calls around one node whose output Spark writes."""
    catalog = DataCatalog({"params:progress": MemoryDataset(SETTINGS)})
    embed_node = node(embed, "images", "image_embeddings", name="embedding.embed_images")
    hooks.before_pipeline_run(catalog)
    hooks.before_node_run(embed_node)
    outputs = {"image_embeddings": embed(images)}
    hooks.after_node_run(embed_node, {"images": images}, outputs)
    outputs["image_embeddings"].write.mode("overwrite").parquet(target)
    hooks.after_dataset_saved(embed_node, "image_embeddings")
    hooks.after_pipeline_run()


def test_a_node_that_writes_the_images_reports_them_with_total_rate_and_eta(
    images, tmp_path, caplog
):
    hooks = ProgressHooks()

    with caplog.at_level(logging.INFO, logger="fruits_kedro.observe.progress"):
        run_like_kedro(hooks, images, str(tmp_path / "out.parquet"))

    lines = [r.getMessage() for r in caplog.records if r.name == "fruits_kedro.observe.progress"]
    running = [line for line in lines if "ETA" in line]
    assert running, lines
    assert re.match(rf"embedding\.embed_images: \d+/{ROWS} images \(\d+ %\)", running[0])
    final = re.fullmatch(
        rf"embedding\.embed_images: done, {ROWS}/{ROWS} images \(100 %\), ([\d.]+) images/s,"
        rf" in 0:\d\d, Spark tasks (\d+)/(\d+)",
        lines[-1],
    )
    assert final, lines[-1]
    assert float(final.group(1)) > 0
    assert final.group(2) == final.group(3)
    record = hooks.records["embedding.embed_images"]
    assert record["unit"] == "images"
    done = [d for _, d in record["samples"]]
    assert done == sorted(done)
    assert done[-1] == ROWS
    assert 0 < len(done) <= PARTITIONS + 2  # a sample when the count moves, not one per poll
    assert not progress_threads()


def test_a_terminal_gets_a_live_bar_instead_of_lines(images, tmp_path, caplog, monkeypatch):
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=160)
    monkeypatch.setattr(logs, "interactive", lambda: True)
    monkeypatch.setattr(rich, "get_console", lambda: console)
    hooks = ProgressHooks()

    with caplog.at_level(logging.INFO, logger="fruits_kedro.observe.progress"):
        run_like_kedro(hooks, images, str(tmp_path / "out.parquet"))

    drawn = screen.getvalue()
    assert "━" in drawn
    assert re.search(rf"embedding\.embed_images: \d+/{ROWS} images", drawn)
    lines = [r.getMessage() for r in caplog.records if r.name == "fruits_kedro.observe.progress"]
    assert len(lines) == 1  # the last one only: the bar showed the others
    assert lines[0].startswith(f"embedding.embed_images: done, {ROWS}/{ROWS} images")


def test_other_nodes_count_spark_tasks(spark, caplog):
    hooks = ProgressHooks()
    catalog = DataCatalog({"params:progress": MemoryDataset(SETTINGS)})
    counting = node(lambda df: df.count(), "table", "rows", name="reduction.fit_pca")
    hooks.before_pipeline_run(catalog)

    with caplog.at_level(logging.INFO, logger="fruits_kedro.observe.progress"):
        hooks.before_node_run(counting)
        spark.range(0, 64, numPartitions=4).mapInPandas(slow_rows, "id long").count()
        hooks.after_node_run(counting, {"table": spark.range(10)}, {"rows": 64})
        hooks.after_dataset_saved(counting, "rows")

    assert re.fullmatch(
        r"reduction\.fit_pca: done, Spark tasks (\d+)/\1 of \d+ job\(s\) so far, in 0:\d\d",
        caplog.records[-1].getMessage(),
    ), caplog.records[-1].getMessage()
    assert hooks.records["reduction.fit_pca"]["unit"] == "tasks"


def test_the_thread_stops_when_the_node_fails(spark, caplog):
    hooks = ProgressHooks()
    hooks.before_pipeline_run(DataCatalog({"params:progress": MemoryDataset(SETTINGS)}))
    failing = node(lambda df: df, "images", "image_embeddings", name="embedding.embed_images")
    hooks.before_node_run(failing)
    assert len(progress_threads()) == 1

    with caplog.at_level(logging.INFO, logger="fruits_kedro.observe.progress"):
        hooks.on_node_error(failing)

    assert not progress_threads()
    assert caplog.records[-1].getMessage().startswith("embedding.embed_images: failed, ")
    assert "embedding.embed_images" in hooks.records


def test_a_failed_save_stops_every_thread_with_the_run(spark):
    hooks = ProgressHooks()
    hooks.before_pipeline_run(DataCatalog({"params:progress": MemoryDataset(SETTINGS)}))
    saving = node(lambda df: df, "images", "image_embeddings", name="embedding.embed_images")
    hooks.before_node_run(saving)
    hooks.after_node_run(saving, {"images": spark.range(3)}, {"image_embeddings": spark.range(3)})

    hooks.on_pipeline_error()  # a failed save calls no node hook

    assert not progress_threads()


def test_progress_can_be_switched_off(spark):
    hooks = ProgressHooks()
    off = {**SETTINGS, "enabled": False}
    hooks.before_pipeline_run(DataCatalog({"params:progress": MemoryDataset(off)}))
    hooks.before_node_run(node(lambda df: df, "a", "b", name="n"))

    assert not progress_threads()
    assert not set(spark.sparkContext.getJobTags())


@pytest.mark.parametrize(
    ("snapshot", "line"),
    [
        (
            Snapshot("embed", 20.0, Status(2, 1, 8, 4, 500), images=1000),
            "embed: 500/1000 images (50 %), 25.0 images/s, ETA 0:20, elapsed 0:20, Spark tasks 4/8",
        ),
        (
            Snapshot("embed", 4.0, Status(1, 0, 4, 0, 0), images=1000),
            "embed: 0/1000 images (0 %), elapsed 0:04, Spark tasks 0/4",
        ),
        (
            Snapshot("fit", 65.0, Status(3, 2, 12, 9, 0)),
            "fit: Spark tasks 9/12 of 3 job(s) so far, elapsed 1:05",
        ),
        (Snapshot("plot", 2.0, Status()), "plot: no Spark job, elapsed 0:02"),
    ],
)
def test_lines_say_done_total_rate_and_eta(snapshot, line):
    assert snapshot.line() == line


def test_the_eta_leaves_the_start_up_out_once_images_are_written():
    snapshot = Snapshot("embed", 20.0, Status(2, 1, 8, 4, 500), images=1000, pace=50.0)
    assert snapshot.eta_s == 10.0  # 500 left at 50/s, not at the 25/s since the node started
    assert "25.0 images/s, ETA 0:10" in snapshot.line()


def test_the_total_is_never_below_the_rows_written():
    snapshot = Snapshot("embed", 10.0, Status(2, 2, 8, 8, 76), images=75)
    assert snapshot.line("done") == (
        "embed: done, 76/76 images (100 %), 7.6 images/s, in 0:10, Spark tasks 8/8"
    )


def test_clock():
    assert [clock(s) for s in (0.4, 75.4, 3725)] == ["0:00", "1:15", "1:02:05"]
