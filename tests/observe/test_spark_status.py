"""What the driver knows of a node's Spark jobs: tasks and rows written, by job tag."""

from __future__ import annotations

import time

from fruits_kedro.observe.spark_status import NodeJobs, listed_files


def test_job_status_sums_the_tagged_jobs_only(spark, tmp_path):
    context = spark.sparkContext
    context.addJobTag("kedro-node:test:0")
    try:
        spark.range(0, 100, numPartitions=4).write.parquet(str(tmp_path / "tagged"))
    finally:
        context.removeJobTag("kedro-node:test:0")
    spark.range(0, 50, numPartitions=2).write.parquet(str(tmp_path / "untagged"))
    jobs = NodeJobs(context, "kedro-node:test:0")

    deadline = time.monotonic() + 5  # Spark's listener records the tasks asynchronously
    while (status := jobs.status()).jobs_done < status.jobs and time.monotonic() < deadline:
        time.sleep(0.05)

    assert status.jobs == status.jobs_done >= 1
    assert status.tasks == status.tasks_done == 4
    assert status.rows_written == 100


def test_the_listing_counts_the_files_of_the_scan_without_a_job(spark, tmp_path):
    for i in range(5):
        (tmp_path / f"{i}.txt").write_text(f"line {i}\n")
    scan = spark.read.text(str(tmp_path))
    jobs_before = len(spark.sparkContext.statusTracker().getJobIdsForGroup())

    assert listed_files(scan.withColumnRenamed("value", "text")) == 5
    assert len(spark.sparkContext.statusTracker().getJobIdsForGroup()) == jobs_before
    assert listed_files({"not": "a DataFrame"}) is None
