"""The one owner of the SparkSession: a hook that builds it from ``conf/<env>/spark.yml``."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from kedro.framework.hooks import hook_impl
from pyspark import SparkConf
from pyspark.sql import SparkSession

if TYPE_CHECKING:
    from collections.abc import Mapping

    from kedro.framework.context import KedroContext

logger = logging.getLogger(__name__)

# The standard variables boto3 and s3fs honour; Spark's S3A connector is given the same.
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")


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
    return resolved


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
        settings = local_paths(settings, Path(context.project_path))
        prepare_workers(settings)
        builder = SparkSession.builder.appName(settings.pop("spark.app.name", "fruits-kedro"))
        spark = builder.config(conf=SparkConf().setAll(list(settings.items()))).getOrCreate()
        spark.sparkContext.setLogLevel(settings.get("spark.log.level", "WARN"))
        logger.info(
            "Spark %s session %s on %s",
            spark.version,
            spark.sparkContext.appName,
            spark.sparkContext.master,
        )
        if spark.sparkContext.uiWebUrl:
            logger.info("Spark UI: %s", spark.sparkContext.uiWebUrl)
