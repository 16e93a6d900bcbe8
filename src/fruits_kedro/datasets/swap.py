"""Write a folder output next to the old one, then swap: a failed or killed write leaves the
previous folder readable.

The new folder is written to ``<path>.__new``; only when the write succeeded is ``<path>``
renamed to ``<path>.__old``, ``.__new`` to ``<path>``, and ``.__old`` deleted. Between the two
renames (one instant locally; a copy on S3) readers fall back to ``.__old``, and the next write
puts it back first. Paths go through Hadoop's ``FileSystem``, so ``file:``, ``s3a:`` and
``hdfs:`` all work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyspark.sql import SparkSession

if TYPE_CHECKING:
    from collections.abc import Callable

NEW, OLD = ".__new", ".__old"


def _fs_path(spark: SparkSession, path: str) -> tuple[Any, Any]:
    jvm: Any = spark.sparkContext._jvm  # Hadoop's FileSystem has no Python API
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    return hadoop_path.getFileSystem(conf), hadoop_path


def _exists(spark: SparkSession, path: str) -> bool:
    fs, hadoop_path = _fs_path(spark, path)
    return bool(fs.exists(hadoop_path))


def _rename(spark: SparkSession, source: str, target: str) -> None:
    fs, from_path = _fs_path(spark, source)
    _, to_path = _fs_path(spark, target)
    if not fs.rename(from_path, to_path):
        raise OSError(f"cannot rename {source} to {target}")


def _delete(spark: SparkSession, path: str) -> None:
    fs, hadoop_path = _fs_path(spark, path)
    fs.delete(hadoop_path, True)


def delete_folder(path: str, spark: SparkSession | None = None) -> None:
    """Delete ``path`` and everything below it, if it exists."""
    _delete(spark or _session(), path)


def readable_path(path: str, spark: SparkSession | None = None) -> str:
    """``path``, or its previous version while a swap is under way."""
    spark = spark or _session()
    if not _exists(spark, path) and _exists(spark, path + OLD):
        return path + OLD
    return path


def folder_exists(path: str, spark: SparkSession | None = None) -> bool:
    """Whether ``path`` (or its previous version, mid-swap) exists."""
    spark = spark or _session()
    return _exists(spark, readable_path(path, spark))


def swap_write(path: str, write: Callable[[str], None], spark: SparkSession | None = None) -> None:
    """Run ``write(folder)`` into a new folder, then put it in place of ``path``."""
    spark = spark or _session()
    if not _exists(spark, path) and _exists(spark, path + OLD):
        _rename(spark, path + OLD, path)  # an earlier swap was cut short
    _delete(spark, path + NEW)
    write(path + NEW)
    if _exists(spark, path):
        _delete(spark, path + OLD)
        _rename(spark, path, path + OLD)
    _rename(spark, path + NEW, path)
    _delete(spark, path + OLD)


def _session() -> SparkSession:
    return SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
