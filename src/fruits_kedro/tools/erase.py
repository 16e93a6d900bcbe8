"""``fruits-erase``: erase images on request (GDPR), by path or ``image_id``.

Their rows leave the embedding store, this run's embeddings, the PCA features and their CSV, the
test predictions and the quarantine list; a later run never embeds them again (the store
records the ids). The Delta files that still hold them go with ``--vacuum``, once no version
younger than ``erasure.retention_hours`` needs them. ``run_metrics`` records the erased ids.

Example::

    fruits-erase --path "data/01_raw/fruits-360/Test/Apple Braeburn/r_1.jpg"
    fruits-erase --id 3f2a... --vacuum
"""

from __future__ import annotations

import argparse
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from delta.tables import DeltaTable
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from fruits_kedro.datasets.embedding_store_dataset import EmbeddingStoreDataset
from fruits_kedro.datasets.image_reader_dataset import literal_path
from fruits_kedro.pipelines.reduction.nodes import to_csv_rows

if TYPE_CHECKING:
    from collections.abc import Sequence

    from kedro.io import DataCatalog
    from pyspark.sql import DataFrame


logger = logging.getLogger(__name__)

# Delta tables of one row per image, besides the store, keyed by ``image_id``.
DELTA_OUTPUTS = ("image_embeddings", "pca_features", "test_predictions")
METRICS = "run_metrics"


def spark_path(path: str) -> str:
    """A path as Spark spells the ``path`` column of its file scans (``file:/abs`` locally)."""
    if "://" in path or path.startswith("file:"):
        return path
    return "file:" + str(Path(path).resolve())


def requested_ids(
    spark: SparkSession, store: EmbeddingStoreDataset, paths: Sequence[str], ids: Sequence[str]
) -> DataFrame:
    """The ``image_id`` of each requested id and of each requested path (from the store's file
    table, and from the file's bytes when it still exists)."""
    wanted = [spark_path(p) for p in paths]
    known = store.load().files.filter(F.col("path").isin(wanted)).select("image_id")
    frames = [known, spark.createDataFrame([(i,) for i in ids], "image_id string")]
    present = [literal_path(p) for p in paths if Path(p).is_file() or "://" in p]
    if present:
        read = spark.read.format("binaryFile").load(present)
        frames.append(read.select(F.sha2("content", 256).alias("image_id")))
    combined = frames[0]
    for frame in frames[1:]:
        combined = combined.unionByName(frame)
    return combined.distinct()


def embedding_store(catalog: DataCatalog) -> EmbeddingStoreDataset:
    """The catalog's ``embedding_store`` dataset."""
    store = catalog.get("embedding_store")
    if not isinstance(store, EmbeddingStoreDataset):
        raise TypeError(
            f"embedding_store is a {type(store).__name__}, not an EmbeddingStoreDataset"
        )
    return store


def table_paths(config: dict[str, Any], project: Path) -> dict[str, str]:
    """Where the Delta outputs of ``DELTA_OUTPUTS`` live (relative paths under ``project``)."""
    paths = {name: str(config[name]["filepath"]) for name in DELTA_OUTPUTS}
    return {n: p if "://" in p or p.startswith("/") else str(project / p) for n, p in paths.items()}


def erase(catalog: DataCatalog, tables: dict[str, str], image_ids: list[str]) -> list[str]:
    """Erase ``image_ids`` from every output that holds rows of images; the names changed."""
    spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
    store = embedding_store(catalog)
    ids = spark.createDataFrame([(i,) for i in image_ids], "image_id string")
    store.erase(ids)
    changed = ["embedding_store"]
    for name, path in tables.items():
        if DeltaTable.isDeltaTable(spark, path):
            DeltaTable.forPath(spark, path).delete(F.col("image_id").isin(image_ids))
            changed.append(name)
    if catalog.exists("pca_features") and catalog.exists("pca_variance"):
        rows = to_csv_rows(catalog.load("pca_features"), catalog.load("pca_variance"))
        catalog.save("pca_features_csv", rows)
        changed.append("pca_features_csv")
    if catalog.exists("image_quarantine"):
        kept = catalog.load("image_quarantine").filter(~F.col("image_id").isin(image_ids))
        catalog.save("image_quarantine", kept)
        changed.append("image_quarantine")
    return changed


def vacuum(catalog: DataCatalog, tables: dict[str, str], retention_hours: float) -> None:
    """Delete the Delta files no version younger than ``retention_hours`` needs."""
    spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
    # Delta refuses a retention below its default unless told the caller means it.
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    embedding_store(catalog).vacuum(retention_hours)
    for path in tables.values():
        if DeltaTable.isDeltaTable(spark, path):
            DeltaTable.forPath(spark, path).vacuum(retention_hours)


def record(catalog: DataCatalog, image_ids: list[str], outputs: list[str], vacuumed: bool) -> None:
    """Add the erasure (ids only) to ``run_metrics``."""
    metrics = catalog.load(METRICS) if catalog.exists(METRICS) else {}
    entry = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "image_ids": image_ids,
        "outputs": outputs,
        "vacuumed": vacuumed,
    }
    metrics.setdefault("erasures", []).append(entry)
    catalog.save(METRICS, metrics)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="fruits-erase", description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", action="append", default=[], help="an image file (repeatable)")
    parser.add_argument("--id", action="append", default=[], help="an image_id (repeatable)")
    parser.add_argument("--vacuum", action="store_true", help="then delete old Delta files")
    parser.add_argument(
        "--retention-hours",
        type=float,
        default=None,
        help="keep the versions of the last H hours (default: erasure.retention_hours)",
    )
    parser.add_argument("--env", default=None, help="Kedro environment (default: local)")
    parser.add_argument("--project", type=Path, default=Path.cwd(), help="project folder")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Erase the requested images; print what was erased."""
    args = parse_args(argv)
    if not args.path and not args.id and not args.vacuum:
        raise SystemExit("fruits-erase: give --path, --id or --vacuum")
    bootstrap_project(args.project)
    session = KedroSession.create(project_path=args.project, env=args.env)
    try:
        context = session.load_context()
        catalog = cast("DataCatalog", context.catalog)
        tables = table_paths(context.config_loader["catalog"], args.project.resolve())
        spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
        ids: list[str] = []
        outputs: list[str] = []
        if args.path or args.id:
            found = requested_ids(spark, embedding_store(catalog), args.path, args.id)
            ids = sorted(row["image_id"] for row in found.collect())
            outputs = erase(catalog, tables, ids)
        if args.vacuum:
            hours = args.retention_hours
            if hours is None:
                hours = float(context.params["erasure"]["retention_hours"])
            vacuum(catalog, tables, hours)
        record(catalog, ids, outputs, args.vacuum)
    finally:
        session.close()
    done = f"erased {len(ids)} image(s) from {', '.join(outputs) or 'nothing'}"
    print(done + ("; vacuumed" if args.vacuum else ""))  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
