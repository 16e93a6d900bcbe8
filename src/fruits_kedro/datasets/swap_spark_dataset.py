"""``SwapSparkDataset``: a Spark folder output (CSV, Parquet) that a failed write leaves at its
previous version."""

from __future__ import annotations

from typing import Any

from kedro_datasets._utils.databricks_utils import to_spark_path
from kedro_datasets.spark import SparkDatasetV2
from pyspark.sql import DataFrame, SparkSession

from fruits_kedro.datasets.swap import readable_path, swap_write


class SwapSparkDataset(SparkDatasetV2):
    """``spark.SparkDatasetV2`` whose save writes a new folder and swaps it in when complete.

    Example:
        .. code-block:: yaml

            pca_features_csv:
              type: fruits_kedro.datasets.SwapSparkDataset
              filepath: data/07_model_output/pca_features.csv
              file_format: csv
              save_args: {header: true}
    """

    def _spark_path(self) -> str:
        return to_spark_path(self._protocol, str(self._get_save_path()))

    def _load(self) -> DataFrame:
        spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
        reader = spark.read.schema(self._schema) if self._schema else spark.read
        path = readable_path(self._spark_path(), spark)
        return reader.format(self._file_format).options(**self._load_args).load(path)

    def _save(self, data: DataFrame) -> None:
        args: dict[str, Any] = {k: v for k, v in self._save_args.items() if k != "mode"}
        partition_by = args.pop("partitionBy", None)

        def write(folder: str) -> None:
            writer = data.write.mode("overwrite")
            if partition_by:
                writer = writer.partitionBy(partition_by)
            writer.format(self._file_format).options(**args).save(folder)

        swap_write(self._spark_path(), write)
