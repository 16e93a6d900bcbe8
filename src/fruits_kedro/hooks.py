"""The one owner of the SparkSession: a hook that builds it from ``conf/<env>/spark.yml``."""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from kedro.framework.hooks import hook_impl
from pyspark import SparkConf
from pyspark.sql import SparkSession

from fruits_kedro.deploy import jars

if TYPE_CHECKING:
    from collections.abc import Mapping

    from kedro.framework.context import KedroContext

logger = logging.getLogger(__name__)

# The standard variables boto3 and s3fs honour; Spark's S3A connector is given the same.
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
S3A_FILE_SYSTEM = "org.apache.hadoop.fs.s3a.S3AFileSystem"
DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
JVM_OPTIONS = ("spark.driver.extraJavaOptions", "spark.executor.extraJavaOptions")
LOG4J_FILE = re.compile(r"-Dlog4j2\.configurationFile=(\S+)")
# Where event logs go when the environment names a cluster's HDFS but the run has none.
LOCAL_EVENTS = "logs/spark-events"


def under_spark_submit(environ: Mapping[str, str]) -> bool:
    """Whether spark-submit started this driver (an EMR step, a cluster's submit): it then
    brings the JVM libraries and folders of its cluster."""
    return "PYSPARK_GATEWAY_PORT" in environ


def started_here(settings: dict[str, str], repository: Path) -> dict[str, str]:
    """``settings`` for a session this process starts itself (``kedro run``, a notebook).

    It gets the jars of Delta Lake and, when ``s3://`` is served by S3A, of the S3A connector
    (EMR ships both): the files of the local Maven repository when all are there, else their
    coordinates for Spark to fetch. An event-log folder on HDFS, which only a cluster has,
    becomes the project's ``logs/spark-events``.
    """
    resolved = dict(settings)
    packages = [p for p in resolved.pop("spark.jars.packages", "").split(",") if p]
    delta = DELTA_EXTENSION in resolved.get("spark.sql.extensions", "")
    if delta and not any(p.startswith("io.delta:") for p in packages):
        packages.append(jars.DELTA[0])
    s3a = resolved.get("spark.hadoop.fs.s3.impl") == S3A_FILE_SYSTEM
    if s3a and jars.S3A[0] not in packages:
        packages.append(jars.S3A[0])
    files, missing = jars.local_jars(packages, repository)
    if files:
        resolved["spark.jars"] = ",".join(
            filter(None, [resolved.get("spark.jars", ""), *map(str, files)])
        )
    elif packages:
        logger.info(
            "Spark fetches %s from Maven Central (`make jars` keeps them in %s)",
            ", ".join(missing),
            repository,
        )
        resolved["spark.jars.packages"] = ",".join(packages)
    events = resolved.get("spark.eventLog.dir", "")
    if events.startswith("hdfs:"):
        logger.info("Spark event logs: %s (%s is the cluster's)", LOCAL_EVENTS, events)
        resolved["spark.eventLog.dir"] = LOCAL_EVENTS
    return resolved


def s3_endpoint_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """S3A settings for an S3-compatible endpoint named in the environment, if any."""
    endpoint = next((environ[v] for v in ENDPOINT_VARIABLES if environ.get(v)), None)
    if endpoint is None:
        return {}
    return {
        "spark.hadoop.fs.s3a.endpoint": endpoint,
        "spark.hadoop.fs.s3a.path.style.access": "true",
    }


def local_paths(settings: dict[str, str], project: Path) -> dict[str, str]:
    """``settings`` with a relative interpreter or event-log folder made absolute under
    ``project`` (executors run elsewhere; Spark resolves folders against its own cwd)."""
    resolved = dict(settings)
    python = resolved.get("spark.pyspark.python", "")
    if "/" in python and not Path(python).is_absolute():
        resolved["spark.pyspark.python"] = str(project / python)
    events = local_event_log(resolved)
    if events is not None:
        folder = Path(events)
        resolved["spark.eventLog.dir"] = str(folder if folder.is_absolute() else project / folder)
    for key in JVM_OPTIONS:
        if key in resolved:
            options = LOG4J_FILE.sub(lambda m: _log4j_option(m[1], project), resolved[key])
            if options.strip():
                resolved[key] = options.strip()
            else:
                del resolved[key]
    return resolved


def _log4j_option(path: str, project: Path) -> str:
    """The logging-configuration option with an absolute path, or none if there is no file
    (a configuration unpacked elsewhere, e.g. by spark-submit's entry point)."""
    file = Path(path) if Path(path).is_absolute() else project / path
    return f"-Dlog4j2.configurationFile={file}" if file.is_file() else ""


def local_event_log(settings: dict[str, str]) -> str | None:
    """The event-log folder when event logs are on and go to the local file system."""
    events = settings.get("spark.eventLog.dir", "")
    if settings.get("spark.eventLog.enabled", "").lower() != "true" or "://" in events:
        return None
    return events.removeprefix("file:")


def prepare_workers(settings: dict[str, str]) -> None:
    """Set the Python workers' interpreter and make the local event-log folder.

    The workers run the configured interpreter, else ``PYSPARK_PYTHON``, else this one (which
    has the project's packages); PySpark reads it from the environment. A path that does not
    exist fails here, naming the setting.
    """
    python = settings.get("spark.pyspark.python") or os.environ.get("PYSPARK_PYTHON")
    settings["spark.pyspark.python"] = python = python or sys.executable
    if "/" in python and not Path(python).exists():
        raise FileNotFoundError(
            f"spark.pyspark.python (spark.yml of the run's environment) is {python}, which does"
            " not exist: for a local cluster, run `make cluster-up` (it builds the executors'"
            " Python)"
        )
    os.environ["PYSPARK_PYTHON"] = python
    events = local_event_log(settings)
    if events is not None:
        Path(events).mkdir(parents=True, exist_ok=True)
    # Spark's web UIs bind to SPARK_LOCAL_IP, else to every interface: keep them on the
    # driver's address.
    if "spark.driver.bindAddress" in settings:
        os.environ.setdefault("SPARK_LOCAL_IP", settings["spark.driver.bindAddress"])


class SparkHooks:
    """Builds the SparkSession from ``conf/<env>/spark.yml`` when the context is created."""

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        """Start (or join, under spark-submit) the session with the environment's settings."""
        settings = {k: str(v) for k, v in context.config_loader["spark"].items() if v != ""}
        for key, value in s3_endpoint_settings(os.environ).items():
            settings.setdefault(key, value)
        if not under_spark_submit(os.environ):
            settings = started_here(settings, jars.maven_repository())
        settings = local_paths(settings, Path(context.project_path))
        prepare_workers(settings)
        builder = SparkSession.builder.appName(settings.pop("spark.app.name", "fruits-kedro"))
        try:
            spark = builder.config(conf=SparkConf().setAll(list(settings.items()))).getOrCreate()
        except Exception as exc:
            if "unresolved dependency" not in str(exc):
                raise
            raise RuntimeError(
                f"Spark could not fetch {settings.get('spark.jars.packages')} from Maven Central:"
                " run `make jars` (needs Maven) where there is a network, or check the proxy"
            ) from exc
        spark.sparkContext.setLogLevel(settings.get("spark.log.level", "WARN"))
        logger.info(
            "Spark %s session %s on %s",
            spark.version,
            spark.sparkContext.appName,
            spark.sparkContext.master,
        )
        if spark.sparkContext.uiWebUrl:
            logger.info("Spark UI: %s", spark.sparkContext.uiWebUrl)
